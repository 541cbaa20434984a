"""Run a cohort unit by unit (chunks of patients) on an executor and write it: a partitioned
Parquet dataset and a manifest, all or nothing, resumable.

Memory is bounded by the chunk size and the units in flight, not by the cohort size.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.model.cohort import PRIMARY_CHOICES, sample_cohort
from sim.model.design import DESIGNS, censoring
from sim.engine.chunk import simulate_chunk
from sim.engine.draws import ChunkDraws, SharedDraws
from sim.errors import InputError
from sim.limits import MAX_PATIENTS
from sim.execution.executor import LocalExecutor, Progress
from sim.execution.staging import check_out, finish, release, staging_for
from sim.model.params import Params
from sim.model.policy import Policy
from sim.output.tables import WITHOUT_ROWS, events_table, patient_columns, patients_table
from sim.output.tally import merge, tally_of

__all__ = ["CohortSpec", "run_cohort", "simulate_tables", "simulate_department", "simulate_priced",
           "prepare_cohort", "simulate_unit", "PreparedCohort", "PricedChunk",
           "versions", "DEFAULT_CHUNK", "write_atomic"]

DEFAULT_CHUNK = 10_000


@dataclass(frozen=True)
class CohortSpec:
    """What to simulate: size, seed, design and primary site (`check` says what is wrong)."""

    n: int
    seed: int
    design: str = "paper"
    primary: str = "rectum"
    years: float = 10.0
    replicate: int = 0

    def check(self) -> "CohortSpec":
        if not isinstance(self.n, int) or not 0 < self.n <= MAX_PATIENTS:
            raise InputError(f"n: must be a positive number of patients, at most "
                             f"{MAX_PATIENTS:,} (got {self.n})")
        if self.seed < 0:
            raise InputError(f"seed: must be a non-negative integer (got {self.seed})")
        if self.replicate < 0:
            raise InputError(f"replicate: must be a non-negative integer (got {self.replicate})")
        if self.design not in DESIGNS:
            raise InputError(f"design: must be one of {', '.join(DESIGNS)} (got {self.design!r})")
        if self.primary not in PRIMARY_CHOICES:
            raise InputError(f"primary: must be one of {', '.join(PRIMARY_CHOICES)} "
                             f"(got {self.primary!r})")
        if not 0 < self.years <= 100:   # also refuses inf and nan
            raise InputError(f"years: must be a positive number of years, at most 100 "
                             f"(got {self.years})")
        return self


def simulate_tables(spec: CohortSpec, params: Params, policy: Policy, first: int,
                    count: int) -> tuple[pa.Table, pa.Table]:
    """Patients `first .. first + count - 1` as (patients, events) tables."""
    patients, events, _ = simulate_department(spec, params, policy, first, count)
    return patients, events


def simulate_department(spec: CohortSpec, params: Params, policy: Policy, first: int, count: int,
                        accrual_months: float = 0.0) -> tuple[pa.Table, pa.Table, dict | None]:
    """As `simulate_tables`, plus the department's waits when the policy has a capacity; its
    patients then arrive spread uniformly over `accrual_months`."""
    patients, events, department, _ = simulate_priced(spec, params, policy, first, count,
                                                      accrual_months, None)
    return patients, events, department


class PreparedCohort(NamedTuple):
    """A chunk's patients before any policy (`prepare_cohort`)."""

    cohort: dict                 # covariates and course, by name
    censor_months: np.ndarray
    censor_detail: np.ndarray    # why (`sim.engine.records.Detail` codes)
    arrays: dict                 # the covariates as Arrow arrays, filled on first use


class PricedChunk(NamedTuple):
    """A chunk under one policy (`simulate_priced`)."""

    patients: pa.Table | dict    # a table, or its columns as numpy arrays (`table` False)
    events: pa.Table | None      # None when not asked for
    department: dict | None      # the department's waits (a policy with a capacity)
    discounted: dict | None      # {"discounted_tests", "discounted_workups", "discounted_visits"}


def prepare_cohort(spec: CohortSpec, params: Params, first: int, count: int,
                   accrual_months: float) -> PreparedCohort:
    """Patients `first .. first + count - 1` before any policy: their covariates and course
    (entering spread over `accrual_months`), the months and reasons of their censoring, and a
    place for their covariates as Arrow arrays (converted once for all policies)."""
    cohort = sample_cohort(params, spec.primary, spec.seed, spec.replicate, first, count)
    cohort["entry_months"] = cohort.pop("entry_fraction") * accrual_months
    months, why = censoring(spec.design, cohort, params, spec.years)
    return PreparedCohort(cohort, months, why, {})


def simulate_priced(spec: CohortSpec, params: Params, policy: Policy, first: int, count: int,
                    accrual_months: float, discount_rate: float | None,
                    prepared: PreparedCohort | None = None, shared: SharedDraws | None = None,
                    events: bool = True, table: bool = True,
                    columns: tuple[str, ...] | None = None,
                    drawn: ChunkDraws | None = None) -> PricedChunk:
    """As `simulate_department`, plus (with a `discount_rate`) each patient's discounted
    examinations by modality, work-ups and visits: {"discounted_tests", "discounted_workups",
    "discounted_visits"}.
    Several policies on the same patients: pass each the same `prepare_cohort` result and
    `SharedDraws` (their common draws are then made once). `events` False: no events table
    (None in its place), for a caller that needs only the patients; `table` False: the patients
    as numpy columns (`sim.output.tables.patient_columns`; `columns`: only these are needed),
    for a caller that summarises them without writing them. `drawn`: the policy's draws on
    this cohort already made (`sim.engine.draws.draw_chunks`)."""
    cohort, months, why, arrays = prepared or prepare_cohort(spec, params, first, count,
                                                             accrual_months)
    # event rows only when something reads them (a table, events, or columns beyond the ends
    # and firsts a run without rows keeps)
    rows = table or events or columns is None or not set(columns) <= {*cohort, *WITHOUT_ROWS}
    result = simulate_chunk(params, policy, cohort, months, why, spec.seed, spec.replicate,
                            discount_rate, shared=shared, rows=rows, drawn=drawn)
    priced = ({name: result.patients[name] for name in ("discounted_tests", "discounted_workups",
                                                        "discounted_visits")}
              if discount_rate is not None else None)
    patients = (patients_table(cohort, result, arrays) if table
                else patient_columns(cohort, result, columns))
    return PricedChunk(patients,
                       events_table(cohort, result, policy) if events else None,
                       result.department, priced)


@dataclass(frozen=True)
class _Unit:
    """One chunk of patients: everything a worker needs, picklable."""

    index: int
    first: int
    count: int
    spec: CohortSpec
    params: Params
    policy: Policy
    staging: str


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` under a temporary name, renamed when complete: no reader ever
    sees half of a partition."""
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def simulate_unit(unit: _Unit) -> tuple[int, dict]:
    """Simulate one chunk and write its two partitions (each to a temporary name, renamed when
    complete); the unit's tally, written last, marks it done (for `--resume`)."""
    patients, events = simulate_tables(unit.spec, unit.params, unit.policy, unit.first, unit.count)
    staging = Path(unit.staging)
    name = f"part-{unit.index:06d}.parquet"
    write_atomic(patients, staging / "patients.parquet" / name)
    write_atomic(events, staging / "events.parquet" / name)
    counts = tally_of(patients)
    done = staging / _UNITS / f"{unit.index:06d}.json"
    done.with_name(f".{done.name}.partial").write_text(json.dumps(counts))
    os.replace(done.with_name(f".{done.name}.partial"), done)
    return unit.count, counts


_UNITS = "_units"


def run_cohort(spec: CohortSpec, params: Params, policy: Policy, out: Path, manifest: dict,
               chunk_size: int = DEFAULT_CHUNK, executor=None, resume: bool = False,
               progress: bool | None = None) -> dict:
    """Simulate unit by unit and write the dataset `out/patients.parquet/`,
    `out/events.parquet/` (one partition per chunk, in patient order) and `out/manifest.json`.

    The run is assembled in a hidden directory beside `out` and renamed when complete; each
    partition is written to a temporary name and renamed, so no reader ever sees half of one.
    An interrupted run is finished by the same call with ``resume=True``: only missing units
    are computed, and the output is identical to an uninterrupted run. Returns the tally.
    """
    spec.check()
    out = check_out(out)
    # the run's identity is its content: a resumed run must be the same run, file edits included
    run = {"spec": asdict(spec), "parameter_hash": params.digest(), "policy": policy.name,
           "policy_hash": policy.digest(), "chunk_size": chunk_size, "versions": versions()}
    staging = staging_for(out, run, resume, ("patients.parquet", "events.parquet", _UNITS))
    done = {int(p.stem) for p in (staging / _UNITS).glob("*.json")}
    units = [_Unit(k, first, min(chunk_size, spec.n - first), spec, params, policy, str(staging))
             for k, first in enumerate(range(0, spec.n, chunk_size)) if k not in done]
    executor = executor or LocalExecutor(1)
    bar = Progress(spec.n, len(units) + len(done), progress,
                   done_patients=sum(min(chunk_size, spec.n - k * chunk_size) for k in done),
                   done_units=len(done))
    try:
        executor.run(simulate_unit, units, lambda result: bar.update(result[0]))
    except BaseException:
        release(staging)      # the units done stay, for --resume
        raise
    finally:
        bar.close()
    total = merge(json.loads(p.read_text()) for p in sorted((staging / _UNITS).glob("*.json")))
    manifest = {**manifest, "n": spec.n, "seed": spec.seed, "replicate": spec.replicate,
                "design": spec.design, "primary": spec.primary,
                "years": spec.years if spec.design == "horizon" else None,
                "chunk_size": chunk_size, "parameter_hash": params.digest(),
                "parameter_set": params.meta.name, "policy": policy.name,
                "policy_hash": policy.digest(), "versions": versions()}
    shutil.rmtree(staging / _UNITS)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    finish(staging, out)
    return total


@lru_cache(maxsize=1)
def _versions() -> tuple:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415
    found = {"python": platform.python_version()}
    # numba: whether the compiled kernels ran (`sim.model.kernels`), and which
    for name in ("crlm-sim", "simpy", "numpy", "scipy", "pandas", "pyarrow", "pydantic", "numba"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return tuple(found.items())


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a run depends on (for its manifest; read once
    per process: a calibration asks for them at every evaluation)."""
    return dict(_versions())
