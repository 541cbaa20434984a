"""Replicate trials of a power design, simulated unit by unit (a unit: a batch of replicates) on
the executor layer.

Every replicate is simulated once at the largest sample size of the grid; a trial of ``n``
patients is its first ``n`` patients (entry times, allocation, dropout and disease are per patient,
so the first ``n`` of a larger trial are a trial of ``n``). The curve then uses common random
numbers across sample sizes, which makes it smooth and costs one simulation per replicate instead
of one per grid point; each point is still an average over independent replicates.

Randomness: the engine's draws are keyed by (seed, replicate, patient_id, purpose) (`sim.model.streams`);
the draws added here (allocation, entry, dropout, exponential survival) come from generators keyed
by ``SeedSequence(seed, spawn_key=(replicate, POWER_STREAM, draw))``, patient ``i`` taking the
``i``-th value. Nothing depends on the number of workers or on the batching of replicates.

Resuming: given a folder (`saved`), each unit's arrays are kept there as it arrives
(``<first replicate>.npz``, written under a temporary name and renamed, read back without
pickle); a run interrupted and started again on the same folder simulates only the units that are
not there, and ends with the same arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from sim.model.params import Params, load_params
from sim.model.policy import Policy, load_policy
from sim.studies.power.designs import CohortDesign, Design, ExponentialDesign, TrialDesign, resolve

__all__ = ["Replicates", "simulate_replicates", "simulate_unit", "POWER_STREAM",
           "dropout_rate_per_month", "inputs_identity"]

POWER_STREAM = 0x706F776572  # "power": keeps these keys apart from the engine's (replicate, purpose)
_VALUES_PER_UNIT = {"exponential": 400_000, "trial": 8_000, "cohort": 10_000}
_TRIAL_COLUMNS = ("os_months", "death", "dfs_months", "dfs_event", "curative_reoperation_months")


class _Draw(IntEnum):
    ALLOCATION = 0
    ENTRY = 1
    DROPOUT = 2
    SURVIVAL = 3


def _generator(seed: int, replicate: int, draw: _Draw) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        seed, spawn_key=(replicate, POWER_STREAM, int(draw)))))


def dropout_rate_per_month(dropout_per_year: float) -> float:
    """Exponential dropout rate for a share ``dropout_per_year`` lost within a year."""
    return -np.log1p(-dropout_per_year) / 12.0


def _allocation(seed: int, replicate: int, allocation: tuple[int, int], n: int) -> np.ndarray:
    """Arm of every patient (1 experimental, 0 control): permuted blocks of ``sum(allocation)``."""
    experimental, control = allocation
    width = experimental + control
    blocks = -(-n // width)
    keys = _generator(seed, replicate, _Draw.ALLOCATION).random((blocks, width))
    pattern = np.repeat(np.array([1, 0], dtype=np.int8), [experimental, control])
    return pattern[np.argsort(keys, axis=1)].reshape(-1)[:n]


def _entry_and_dropout(seed: int, replicate: int, accrual_months: float, dropout_per_year: float, n: int):
    entry = _generator(seed, replicate, _Draw.ENTRY).random(n) * accrual_months
    rate = dropout_rate_per_month(dropout_per_year)
    exponential = _generator(seed, replicate, _Draw.DROPOUT).standard_exponential(n)
    dropout = exponential / rate if rate > 0 else np.full(n, np.inf)
    return entry, dropout


@dataclass(frozen=True)
class _Unit:
    """A batch of replicates: everything a worker needs, picklable."""

    design: Design
    seed: int
    first: int
    count: int
    max_n: int
    params: Params | None = None
    policies: tuple[Policy, ...] = ()


def _exponential(unit: _Unit, replicate: int) -> dict[str, np.ndarray]:
    design: ExponentialDesign = unit.design
    arm = _allocation(unit.seed, replicate, design.allocation, unit.max_n)
    control_rate = np.log(2.0) / design.control_median_months
    rate = np.where(arm == 1, control_rate * design.hazard_ratio, control_rate)
    time = _generator(unit.seed, replicate, _Draw.SURVIVAL).standard_exponential(unit.max_n) / rate
    entry, dropout = _entry_and_dropout(unit.seed, replicate, design.accrual_months, design.dropout_per_year,
                                        unit.max_n)
    return {"arm": arm, "time_months": time, "entry_months": entry, "dropout_months": dropout}


def _trial(unit: _Unit, replicate: int) -> dict[str, np.ndarray]:
    from sim.engine.draws import SharedDraws  # noqa: PLC0415 - the engine, only in workers
    from sim.execution.runner import CohortSpec, prepare_cohort, simulate_priced  # noqa: PLC0415

    design: TrialDesign = unit.design
    spec = CohortSpec(unit.max_n, unit.seed, "horizon", design.primary, design.horizon_months / 12.0,
                      replicate=replicate)
    arm = _allocation(unit.seed, replicate, design.allocation, unit.max_n)
    # the same patients (same disease) under both policies, drawn once (common random numbers);
    # each keeps the one of its arm
    prepared, shared = prepare_cohort(spec, unit.params, 0, unit.max_n, 0.0), SharedDraws()
    tables = [simulate_priced(spec, unit.params, policy, 0, unit.max_n, 0.0, None, prepared,
                              shared, events=False)[0] for policy in unit.policies]
    out = {"arm": arm}
    for column in _TRIAL_COLUMNS:
        control, experimental = (t.column(column).to_numpy(zero_copy_only=False) for t in tables)
        out[column] = np.where(arm == 1, experimental, control)
    out["entry_months"], out["dropout_months"] = _entry_and_dropout(
        unit.seed, replicate, design.accrual_months, design.dropout_per_year, unit.max_n)
    return out


def _cohort(unit: _Unit, replicate: int) -> dict[str, np.ndarray]:
    from sim.execution.runner import CohortSpec, simulate_priced  # noqa: PLC0415

    design: CohortDesign = unit.design
    spec = CohortSpec(unit.max_n, unit.seed, design.design, design.primary, design.years, replicate=replicate)
    patients = simulate_priced(spec, unit.params, unit.policies[0], 0, unit.max_n, 0.0, None,
                               events=False)[0]
    column = lambda name: patients.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
    if design.endpoint in ("os", "dfs"):
        duration, event = ("os_months", "death") if design.endpoint == "os" else ("dfs_months", "dfs_event")
        time, observed = column(duration), column(event)
    else:  # first detection at the site; followed to death or censoring (the paper's 1 - KM by site)
        at_site = column(f"{design.endpoint}_recurrence_months")
        observed = ~np.isnan(at_site)
        time = np.where(observed, at_site, column("os_months"))
    values = column(design.covariate)
    if values.dtype == np.bool_:
        x = values
    elif design.equals is not None:
        x = np.asarray(values == design.equals, dtype=bool)
    elif design.above is not None:
        x = np.asarray(values, dtype=float) > design.above
    else:
        x = np.asarray(values, dtype=float)
    return {"time_months": time, "event": observed, "x": x}


_SIMULATORS = {"exponential": _exponential, "trial": _trial, "cohort": _cohort}


def simulate_unit(unit: _Unit) -> tuple[int, dict[str, np.ndarray]]:
    """Simulate replicates ``first .. first + count - 1``: arrays of shape (count, max_n)."""
    rows = [_SIMULATORS[unit.design.kind](unit, r) for r in range(unit.first, unit.first + unit.count)]
    return unit.first, {name: np.stack([row[name] for row in rows]) for name in rows[0]}


@dataclass(frozen=True)
class Replicates:
    """Per-patient quantities of every replicate trial, each an array of shape (replicates,
    max_n): row r is replicate r, column i patient i; a trial of n patients is columns 0..n-1."""

    design: Design
    seed: int
    columns: dict[str, np.ndarray] = field(repr=False)
    parameter_hash: str | None = None  # of the model's parameters (trial and cohort designs)

    @property
    def n_replicates(self) -> int:
        return next(iter(self.columns.values())).shape[0]

    @property
    def max_n(self) -> int:
        return next(iter(self.columns.values())).shape[1]


def _inputs(design: Design) -> tuple[Params | None, tuple[Policy, ...]]:
    """Parameters and policies of a design (loaded once, shipped to the workers)."""
    if design.kind == "exponential":
        return None, ()
    from pathlib import Path  # noqa: PLC0415

    path = Path(design.path)
    params = load_params(resolve(path, "params", design.params) if design.params else None)[0]
    names = ("control", "experimental") if design.kind == "trial" else ("policy",)
    return params, tuple(load_policy(resolve(path, name, getattr(design, name))) for name in names)


def inputs_identity(design: Design) -> dict:
    """What decides a design's replicates besides the design itself: the digests of the model's
    parameters and of the policies it names (none for the exponential design)."""
    params, policies = _inputs(design)
    return {"parameter_hash": params.digest() if params is not None else None,
            "policies": [policy.digest() for policy in policies]}


def _saved_path(saved: Path, first: int) -> Path:
    return saved / f"{first:09d}.npz"


def _save(saved: Path, first: int, arrays: dict[str, np.ndarray]) -> None:
    """A unit's arrays kept under a temporary name, then renamed: never half-written."""
    final = _saved_path(saved, first)
    partial = final.with_name(f".{final.name}.partial")
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(partial, final)


def _load(saved: Path, first: int) -> dict[str, np.ndarray]:
    with np.load(_saved_path(saved, first), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def simulate_replicates(design: Design, replicates: int, seed: int, executor=None,
                        progress: bool | None = False, saved: Path | None = None) -> Replicates:
    """Simulate ``replicates`` trials of the largest sample size of the design on ``executor``
    (default: this process). Progress as `sim.execution.executor.Progress` shows it (None: a bar
    on a terminal, log lines otherwise). `saved`: a folder where each unit is kept as it
    arrives, and from which the units already there are read instead of simulated (resuming)."""
    from sim.execution.executor import LocalExecutor, Progress  # noqa: PLC0415

    max_n = design.sample_sizes[-1]
    params, policies = _inputs(design)
    batch = max(1, min(replicates, _VALUES_PER_UNIT[design.kind] // max_n))
    units = [_Unit(design, seed, first, min(batch, replicates - first), max_n, params, policies)
             for first in range(0, replicates, batch)]
    kept = {u.first for u in units if saved is not None and _saved_path(saved, u.first).exists()}
    done = [u for u in units if u.first in kept]
    todo = [u for u in units if u.first not in kept]
    columns: dict[str, np.ndarray] = {}
    bar = Progress(replicates * max_n, len(units), progress,
                   done_patients=sum(u.count for u in done) * max_n, done_units=len(done))

    def place(first: int, arrays: dict[str, np.ndarray]) -> None:
        for name, values in arrays.items():
            if name not in columns:
                columns[name] = np.empty((replicates, max_n), dtype=values.dtype)
            columns[name][first:first + values.shape[0]] = values

    def keep(result: tuple[int, dict[str, np.ndarray]]) -> None:
        first, arrays = result
        if saved is not None:
            _save(saved, first, arrays)
        place(first, arrays)
        bar.update(next(iter(arrays.values())).shape[0] * max_n)

    for unit in done:
        place(unit.first, _load(saved, unit.first))
    try:
        if todo:
            (executor or LocalExecutor(1)).run(simulate_unit, todo, keep)
    finally:
        bar.close()
    return Replicates(design, seed, columns, params.digest() if params is not None else None)
