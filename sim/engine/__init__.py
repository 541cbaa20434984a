"""The SimPy engine: one process per patient in one environment per chunk of patients
(`sim.engine.patients`), and departments with limited slots (`sim.engine.capacity`)."""

from sim.engine.patients import DETAILS, EVENTS, ChunkResult, simulate_chunk

__all__ = ["simulate_chunk", "ChunkResult", "EVENTS", "DETAILS"]
