"""One chunk of patients through the engine: draws, a scheduler, the chunk's columns.

`simulate_chunk` draws the chunk's randomness (`sim.engine.draws`), runs it with a scheduler
(the SimPy one, `sim.engine.simpy_scheduler`, or the direct one, `sim.engine.direct`; both call
the rules of `sim.model.rules`) and turns the record into columns (`sim.engine.records`). The
engine writes no files and computes no statistics.
"""

from __future__ import annotations

import numpy as np

from sim.engine.direct import run_direct
from sim.engine.draws import ChunkDraws, SharedDraws, draw_chunk
from sim.engine.records import ChunkResult, chunk_result
from sim.engine.simpy_scheduler import run_simpy
from sim.model.params import Params
from sim.model.policy import Policy

__all__ = ["simulate_chunk", "ENGINES"]

ENGINES = ("auto", "simpy", "direct")
"""The schedulers `simulate_chunk` can take ("auto": the direct one whenever the policy allows)."""


def simulate_chunk(params: Params, policy: Policy, cohort: dict[str, np.ndarray],
                   censor_months: np.ndarray, censor_detail: np.ndarray, seed: int,
                   replicate: int, discount_rate: float | None = None,
                   engine: str = "auto", shared: SharedDraws | None = None,
                   rows: bool = True, drawn: ChunkDraws | None = None) -> ChunkResult:
    """Run one chunk of patients through the engine; returns per-patient and per-event columns
    (with `discount_rate`, also the discounted examinations an economic evaluation prices).

    `engine`: "simpy" runs one SimPy process per patient; "direct" applies the same rules to
    all patients at once (byte for byte the same output, for a policy without capacity only);
    "auto" takes the direct path whenever the policy allows it. `shared`: draws common to the
    policies run on this cohort (`SharedDraws`). `rows` False: the direct scheduler records no
    event rows (`ChunkResult.events` None), only what `sim.output.tables.WITHOUT_ROWS` needs;
    the SimPy scheduler always records them. `drawn`: the chunk's draws already made
    (`sim.engine.draws.draw_chunks` of several policies), else they are drawn here."""
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)} (got {engine!r})")
    if engine == "direct" and policy.has_capacity:
        raise ValueError("engine: the direct path cannot run a policy with a capacity")
    chunk = drawn or draw_chunk(params, policy, cohort, censor_months, censor_detail, seed,
                                replicate, shared)
    if engine == "simpy" or policy.has_capacity:
        record = run_simpy(chunk)
    else:
        record = run_direct(chunk, rows)
    return chunk_result(record, chunk.hepatic, policy, discount_rate)
