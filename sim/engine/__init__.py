"""The engine: a chunk's pre-drawn randomness (`draws`), two schedulers that apply the model's
rules to it (`simpy_scheduler`, the engine of record, with departments of limited slots in
`capacity`; `direct`, all patients at once when no one waits), and the records both produce
(`records`); `chunk` ties them together."""

from sim.engine.chunk import ENGINES, simulate_chunk
from sim.engine.draws import SharedDraws
from sim.engine.records import DETAILS, EVENTS, ChunkResult

__all__ = ["simulate_chunk", "SharedDraws", "ChunkResult", "EVENTS", "DETAILS", "ENGINES"]
