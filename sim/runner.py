"""Run a cohort chunk by chunk and write it: Parquet tables and a manifest, all or nothing.

The output directory is assembled under a temporary name beside `out` and renamed when complete,
so a reader never sees half a cohort. Chunks are written as they finish (row groups), so memory is
bounded by the chunk size, not the cohort size.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.cohort import PRIMARY_CHOICES, sample_cohort
from sim.design import DESIGNS, censoring
from sim.engine import simulate_chunk
from sim.errors import InputError
from sim.params import Params
from sim.policy import Policy
from sim.schema import events_schema, patients_schema
from sim.tables import events_table, patients_table

__all__ = ["CohortSpec", "run_cohort", "simulate_tables", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 10_000
ROW_GROUP = 65_536  # rows per Parquet row group, whatever the chunking: same seed, same bytes


class _RowGroupWriter:
    """A Parquet writer that cuts row groups at fixed row counts, not at chunk boundaries, so
    the file's bytes do not depend on how the patients were chunked."""

    def __init__(self, path: Path, schema: pa.Schema):
        self._writer = pq.ParquetWriter(path, schema)
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.concat_tables(self._pending)
        cut = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP
        if cut:
            self._writer.write_table(table.slice(0, cut), row_group_size=ROW_GROUP)
        self._pending = [table.slice(cut)]
        self._rows = table.num_rows - cut

    def close(self) -> None:
        if self._rows:
            self._flush(final=True)
        self._writer.close()

    def __enter__(self) -> "_RowGroupWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class CohortSpec:
    """What to simulate: size, seed, design and primary site (checked on construction)."""

    n: int
    seed: int
    design: str = "paper"
    primary: str = "rectum"
    years: float = 10.0
    replicate: int = 0

    def check(self) -> "CohortSpec":
        if not isinstance(self.n, int) or self.n <= 0:
            raise InputError(f"--n: must be a positive number of patients (got {self.n})")
        if self.seed < 0:
            raise InputError(f"--seed: must be a non-negative integer (got {self.seed})")
        if self.design not in DESIGNS:
            raise InputError(f"--design: must be one of {', '.join(DESIGNS)} (got {self.design!r})")
        if self.primary not in PRIMARY_CHOICES:
            raise InputError(f"--primary: must be one of {', '.join(PRIMARY_CHOICES)} "
                             f"(got {self.primary!r})")
        if not self.years > 0:
            raise InputError(f"--years: must be a positive number of years (got {self.years})")
        return self


def simulate_tables(spec: CohortSpec, params: Params, policy: Policy, first: int,
                    count: int) -> tuple[pa.Table, pa.Table]:
    """Patients `first .. first + count - 1` as (patients, events) tables."""
    cohort = sample_cohort(params, spec.primary, spec.seed, spec.replicate, first, count)
    months, why = censoring(spec.design, cohort, params, spec.years)
    result = simulate_chunk(params, policy, cohort, months, why, spec.seed, spec.replicate)
    for name in ("periop_death_draw", "periop_death_draw_months", "background_death_months",
                 "lost_to_follow_up_months"):
        cohort.pop(name)
    return patients_table(cohort, result), events_table(cohort, result, policy)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm  # noqa: PLC0415 - only on a terminal
    return tqdm(total=total, unit="patient", unit_scale=True, leave=False)


def run_cohort(spec: CohortSpec, params: Params, policy: Policy, out: Path,
               manifest: dict, chunk_size: int = DEFAULT_CHUNK,
               progress: bool | None = None) -> dict[str, np.ndarray]:
    """Simulate and write `out/patients.parquet`, `out/events.parquet`, `out/manifest.json`.

    Returns a few columns of the patients for the summary.
    """
    spec.check()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out: must be a new or empty directory ({out} exists and is not empty)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    staging.chmod(0o777 & ~_umask())
    bar = _progress(spec.n, sys.stderr.isatty() if progress is None else progress)
    keep = ("primary_site", "os_months", "death", "recurrence", "n_recurrence_sites",
            "pelvis_recurrence_months", "liver_recurrence_months", "lung_recurrence_months",
            "other_recurrence_months", "curative_reoperation_months", "n_scans")
    kept: dict[str, list] = {name: [] for name in keep}
    try:
        with _RowGroupWriter(staging / "patients.parquet", patients_schema()) as patients, \
                _RowGroupWriter(staging / "events.parquet", events_schema()) as events:
            for first in range(0, spec.n, chunk_size):
                count = min(chunk_size, spec.n - first)
                table, event_table = simulate_tables(spec, params, policy, first, count)
                patients.write(table)
                events.write(event_table)
                for name in keep:
                    kept[name].append(table.column(name).to_numpy(zero_copy_only=False))
                if bar is not None:
                    bar.update(count)
        manifest = {**manifest, "n": spec.n, "seed": spec.seed, "replicate": spec.replicate,
                    "design": spec.design, "primary": spec.primary,
                    "years": spec.years if spec.design == "horizon" else None,
                    "parameter_hash": params.digest(), "parameter_set": params.meta.name,
                    "policy": policy.name, "versions": _versions()}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return {name: np.concatenate(parts) for name, parts in kept.items()}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415
    found = {"python": platform.python_version()}
    for name in ("crlm-sim", "simpy", "numpy", "scipy", "pandas", "pyarrow", "pydantic"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
