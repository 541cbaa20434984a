"""The digest of a comparison's patients: every (policy, draw) summarised in one vectorized pass.

A comparison writes each policy's patients of each unit as a Parquet partition
(`sim.studies.comparison`). `digest` reads them back a few whole draws at a time (memory bounded
by `BATCH_ROWS`, on the executor's workers when given) and summarises every (policy, draw) with
`sim.analysis` (Kaplan-Meier and restricted mean by group): the metrics before the reference is
taken into account, overall survival on `SURVIVAL_GRID`, and the means of extra columns (the
priced ones, for the economic evaluation). A unit holding a whole draw digests it where it was
simulated (`store_digest`), so the analysis need not read it back.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.analysis import kaplan_meier, rmst, survival_at

__all__ = ["DIGESTED", "Digest", "digest", "digest_tables", "digest_columns", "store_digest",
           "draw_batches", "BATCH_ROWS", "SURVIVAL_GRID", "NOISE_COLUMNS"]

DIGESTED = ("scenario_id", "draw", "os_months", "death", "recurrence", "recurrence_months",
            "first_symptom_months", "curative_reoperation_months", "n_scans", "n_imaging",
            "n_workups", "surveillance_cost", "patient_id", "replicate", "recurrence_onset_months")
"""The patient columns the digest reads (besides the priced ones of an economic evaluation)."""


BATCH_ROWS = 2_000_000
"""Patients read at a time by the analysis (whole draws at a time): memory is bounded by this,
not by the comparison's size."""

SURVIVAL_GRID = np.arange(0.0, 121.0, 1.0)
"""Months at which the survival picture reads every (policy, draw) curve."""


def draw_batches(staging: Path, rows: int | None = None,
                 skip: set[int] = frozenset()) -> list[list[Path]]:
    """The comparison's patient partitions in batches of a few whole draws (every policy,
    replicate and chunk of a draw in one batch, in the order of the partitions' names), each of
    about `rows` patients (default `BATCH_ROWS`) or one draw. Every summary is per (policy,
    draw), so batches give exactly what one read of everything would, in bounded memory.

    Every draw of a comparison has the same patients, so the first draw's partitions give the
    size of all (reading the footer of each of thousands of partitions took seconds). The draws
    in `skip` are left out."""
    rows = BATCH_ROWS if rows is None else rows
    by_draw: dict[int, list[Path]] = {}
    for path in sorted((staging / "patients").glob("*.parquet")):
        draw = int(path.stem.split("-")[1][1:])
        if draw not in skip:
            by_draw.setdefault(draw, []).append(path)
    if not by_draw:
        return []
    per_draw = sum(pq.read_metadata(path).num_rows for path in by_draw[min(by_draw)])
    together = max(1, -(-rows // max(per_draw, 1)))   # draws a batch: ceil(rows / per_draw)
    draws = sorted(by_draw)
    return [sorted(path for draw in draws[k:k + together] for path in by_draw[draw])
            for k in range(0, len(draws), together)]


@dataclass(frozen=True)
class _Batch:
    """A unit of the analysis for the executor: the partitions of a few draws."""

    index: int
    paths: tuple[Path, ...]
    extra_columns: tuple[str, ...]
    reference: str | None


def _patients(tables: list[pa.Table]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(the tables' patients without their policy, as numpy columns with NaN for null, each
    row's policy as an integer code, the policies' names in sorted order, which is the codes'
    order). Millions of policy names as Python strings were most of the analysis's cost; a
    partition holds one policy, so its names are kept as one dictionary."""
    policies = []
    for table in tables:
        policy = table.column("scenario_id")
        if not pa.types.is_dictionary(policy.type):
            policy = policy.dictionary_encode()
        policy = policy.combine_chunks()
        policies.append((policy.dictionary.to_pylist(),
                         policy.indices.to_numpy(zero_copy_only=False)))
    codes, names = _codes(policies)
    patients = pa.concat_tables([table.drop_columns(["scenario_id"]) for table in tables])
    return ({name: _numpy(patients.column(name)) for name in patients.column_names}, codes,
            names)


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A column as numpy, null as NaN (as pandas reads it)."""
    if column.null_count:
        return column.to_numpy().astype(float)   # (a column with nulls: a float one)
    return column.to_numpy()


def _local_codes(names: np.ndarray) -> tuple[list, np.ndarray]:
    """(the distinct policy names of a part, each row's index among them): a part of a unit
    holds one policy, seen at once."""
    names = np.asarray(names)
    if len(names) and (names == names[0]).all():
        return [names[0]], np.zeros(len(names), np.int64)
    indices, distinct = pd.factorize(names)
    return list(distinct), indices


def _codes(local: list[tuple[list, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(each row's policy as an integer code, the policies' names in sorted order), from the
    parts' policies as (names, each row's index among them)."""
    names = np.array(sorted({name for dictionary, _ in local for name in dictionary}), dtype=object)
    position = {name: code for code, name in enumerate(names)}
    codes = np.concatenate([np.array([position[name] for name in dictionary], np.int64)[indices]
                            for dictionary, indices in local])
    return codes, names


@dataclass(frozen=True)
class Digest:
    """Every (policy, draw) of a comparison, summarised: `metrics` (indexed by scenario_id and
    draw; before the reference is taken into account), `survival` (overall survival on
    `SURVIVAL_GRID`: scenario_id, draw, time, survival) and `means` of the extra columns asked
    for (the priced ones, for the economic evaluation; None if none were)."""

    metrics: pd.DataFrame
    survival: pd.DataFrame
    means: pd.DataFrame | None

    def parts(self) -> dict[str, pd.DataFrame | None]:
        return {"metrics": self.metrics, "survival": self.survival, "means": self.means}


def digest_tables(tables: list[pa.Table], extra_columns: tuple[str, ...] = (),
                  reference: str | None = None) -> Digest:
    """The digest of every (policy, draw) of the patient `tables`, which hold every patient of
    each of their draws under every policy; `reference`: the policy the detection advance is
    taken against (None: no advance)."""
    columns = [*DIGESTED, *extra_columns]
    return _digest(*_patients([table.select(columns) for table in tables]), extra_columns,
                   reference)


def digest_columns(parts: list[dict[str, np.ndarray]], extra_columns: tuple[str, ...] = (),
                   reference: str | None = None) -> Digest:
    """As `digest_tables`, of patients held as numpy columns (NaN where a table has a null):
    a worker digests what it simulated without building a table. The same digest, to the bit,
    as of the same patients written and read back."""
    names = [name for name in [*DIGESTED, *extra_columns] if name != "scenario_id"]
    patients = {name: np.concatenate([part[name] for part in parts]) for name in names}
    codes, policies = _codes([_local_codes(part["scenario_id"]) for part in parts])
    return _digest(patients, codes, policies, extra_columns, reference)


def _digest(patients: dict[str, np.ndarray], codes: np.ndarray, names: np.ndarray,
            extra_columns: tuple[str, ...], reference: str | None) -> Digest:
    groups = _Groups(codes, patients["draw"], names)
    paired = _reference_rows(patients, groups, reference) if reference in names else None
    grid, metrics = _draw_metrics(patients, groups)
    table = groups.frame(metrics | _detection(patients, groups, paired))
    means = None
    if extra_columns:
        means = groups.frame({name: groups.mean(patients[name]) for name in extra_columns})
        if paired is not None and {"qalys", "cost_treatment"} <= set(extra_columns):
            means = means.join(_paired_noise(patients, groups, paired))
    return Digest(table, grid, means)


class _Groups:
    """The rows of a batch grouped by (policy, draw), the groups in the order of (policy name,
    draw), with the statistics the digest takes of each group: numpy over the group codes
    (pandas' groupby cost more than the simulation's own tallies). NaN values are left out of
    every statistic, as pandas leaves them out; a group with no value gets NaN."""

    def __init__(self, codes: np.ndarray, draw: np.ndarray, names: np.ndarray):
        self.codes, self.draw, self.names = codes, np.asarray(draw, np.int64), names
        order = np.lexsort((self.draw, codes))
        code, at = codes[order], self.draw[order]
        new = (np.r_[True, (code[1:] != code[:-1]) | (at[1:] != at[:-1])] if len(order)
               else np.zeros(0, bool))
        starts = np.flatnonzero(new)
        self.size = len(starts)
        self.of_row = np.empty(len(order), np.int64)
        self.of_row[order] = np.cumsum(new) - 1
        self.index = pd.MultiIndex.from_arrays([names[code[starts]], at[starts]],
                                               names=["scenario_id", "draw"])

    def frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        return pd.DataFrame(columns, index=self.index)

    def _kept(self, values: np.ndarray, where: np.ndarray | None):
        values = np.asarray(values, float)
        kept = ~np.isnan(values) if where is None else where & ~np.isnan(values)
        if kept.all():
            return values, self.of_row
        return values[kept], self.of_row[kept]

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self._kept(values, None)[1], minlength=self.size)

    def mean(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        values, group = self._kept(values, where)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.bincount(group, values, minlength=self.size)
                    / np.bincount(group, minlength=self.size))

    def variance(self, values: np.ndarray) -> np.ndarray:
        """Sample variance (n - 1)."""
        return self.covariance(values, values)

    def covariance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Sample covariance (n - 1), over the rows where both are known."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        both = ~np.isnan(x) & ~np.isnan(y)
        group = self.of_row[both]
        mean_x, mean_y = self.mean(x, both), self.mean(y, both)
        products = (x[both] - mean_x[group]) * (y[both] - mean_y[group])
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.bincount(group, products, minlength=self.size)
                    / (np.bincount(group, minlength=self.size) - 1))

    def quantiles(self, values: np.ndarray, qs: tuple[float, ...],
                  where: np.ndarray | None = None) -> list[np.ndarray]:
        """The `qs` quantiles of each group, interpolated linearly as numpy's (and pandas')
        default computes them: each group's order statistics by a partition, then numpy's
        interpolation operation for operation (its `_quantile` and `_lerp`, without their cost
        per call; `tests/test_policies.py` compares them bit for bit)."""
        values, group = self._kept(values, where)
        values = values[np.argsort(group, kind="stable")]          # grouped (a few groups)
        counts = np.bincount(group, minlength=self.size)
        ends = np.cumsum(counts)
        q = np.asarray(qs, float)
        out = np.full((len(qs), self.size), np.nan)
        for g in np.flatnonzero(counts).tolist():
            n = int(counts[g])
            virtual = (n - 1) * q                      # numpy's virtual index ("linear")
            below = np.floor(virtual)
            last = virtual >= n - 1                    # numpy takes the last value (index -1)
            lower = np.where(last, n - 1, below).astype(np.int64)
            upper = np.where(last, n - 1, below + 1).astype(np.int64)
            gamma = virtual - np.where(last, -1.0, below)
            ordered = np.partition(values[ends[g] - n:ends[g]], np.unique([*lower, *upper]))
            a, b = ordered[lower], ordered[upper]
            difference = b - a
            out[:, g] = np.where(gamma >= 0.5, b - difference * (1 - gamma),
                                 a + difference * gamma)
        return list(out)


NOISE_COLUMNS = ("noise_patients", "noise_var_cost", "noise_var_qalys", "noise_var_life_years",
                 "noise_cov_cost_qalys")
"""Per (policy, draw), over the patients paired with the reference's (the same patient under
both policies): their number and the variance and covariance of the per-patient differences in
total cost, QALYs and life-years. The patient-level Monte Carlo variance of a draw's mean
difference is each variance over the number (`sim.studies.decision.monte_carlo_error`)."""


def _digest_batch(batch: _Batch) -> tuple[int, Digest]:
    columns = [*DIGESTED, *batch.extra_columns]
    return batch.index, digest_tables(
        [pq.read_table(path, columns=columns, read_dictionary=["scenario_id"])
         for path in batch.paths], batch.extra_columns, batch.reference)


def store_digest(staging: Path, draw: int, parts: list[dict[str, np.ndarray]],
                 extra_columns: tuple[str, ...] = (), reference: str | None = None) -> None:
    """Digest a whole draw where it was simulated (its patients still in memory, as the numpy
    columns of `digest_columns`) and keep the result in `staging`/digests/<draw> (Arrow IPC, the
    index as columns), so that the analysis need not read the draw back."""
    folder = staging / "digests"
    folder.mkdir(exist_ok=True)
    partial, done = folder / f".{draw}.partial", folder / str(draw)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, frame in digest_columns(parts, extra_columns, reference).parts().items():
        if frame is not None:   # Arrow IPC, the index as columns: read back a thousand at once
            table = pa.Table.from_pandas(frame.reset_index(list(_INDEXED.get(name, ()))),
                                         preserve_index=False)
            with pa.OSFile(str(partial / f"{name}.arrow"), "wb") as sink:
                with pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
    shutil.rmtree(done, ignore_errors=True)      # (a unit run again after an interruption)
    os.replace(partial, done)


_INDEXED = {"metrics": ("scenario_id", "draw"), "means": ("scenario_id", "draw")}
"""The parts of a `Digest` indexed by (policy, draw); `survival` is a plain table."""


def _stored_digests(staging: Path) -> tuple[set[int], Digest | None]:
    """(the draws digested where they were simulated, their digests as one `Digest`): each part
    read as Arrow tables, joined, and converted to pandas once."""
    folders = sorted((staging / "digests").glob("[0-9]*"))
    if not folders:
        return set(), None
    frames = {}
    for name in ("metrics", "survival", "means"):
        paths = [folder / f"{name}.arrow" for folder in folders]
        if not paths[0].exists():
            frames[name] = None
            continue
        tables = []
        for path in paths:
            with pa.memory_map(str(path)) as source:
                tables.append(pa.ipc.open_file(source).read_all())
        frame = pa.concat_tables(tables).to_pandas()
        frames[name] = frame.set_index(list(_INDEXED[name])) if name in _INDEXED else frame
    return {int(folder.name) for folder in folders}, Digest(**frames)


def digest(staging: Path, extra_columns: tuple[str, ...] = (), rows: int | None = None,
           executor=None, reference: str | None = None) -> Digest:
    """One pass over the patients, batch by batch (on `executor`'s workers when given): each
    (policy, draw)'s metrics before the reference is taken into account (`metrics`), its
    survival on `SURVIVAL_GRID` (`survival`), and the means of `extra_columns` (`means`, for
    the economic evaluation). The draws digested where they were simulated (`store_digest`) are
    not read again. The result does not depend on `rows`, the executor or the stored digests."""
    stored, digested = _stored_digests(staging)
    batches = [_Batch(k, tuple(paths), tuple(extra_columns), reference)
               for k, paths in enumerate(draw_batches(staging, rows, skip=stored))]
    results = {-1: digested} if digested is not None else {}

    def keep(result):
        results[result[0]] = result[1]

    if executor is None or len(batches) < 2:
        for batch in batches:
            keep(_digest_batch(batch))
    else:
        executor.run(_digest_batch, batches, keep)
    parts = [results[k] for k in sorted(results)]
    return Digest(pd.concat([p.metrics for p in parts]).sort_index(),
                  pd.concat([p.survival for p in parts], ignore_index=True).sort_values(
                      ["scenario_id", "draw", "time"], kind="stable", ignore_index=True),
                  pd.concat([p.means for p in parts]).sort_index() if extra_columns else None)


def _draw_metrics(patients: dict[str, np.ndarray],
                  groups: _Groups) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(survival on `SURVIVAL_GRID`, the metrics by name) of each (policy, draw) of
    `patients`, in the groups' order."""
    km = kaplan_meier(patients["os_months"], patients["death"], groups=groups.of_row)
    grid = survival_at(km, SURVIVAL_GRID)     # curves in the groups' order, then times
    group = grid.pop("group").to_numpy()      # the group's number, then its policy and draw
    grid.insert(0, "draw", groups.index.get_level_values("draw").to_numpy()[group])
    grid.insert(0, "scenario_id", groups.index.get_level_values("scenario_id").to_numpy()[group])
    on_grid = grid["survival"].to_numpy().reshape(groups.size, len(SURVIVAL_GRID))
    metrics = {f"os_{month}": on_grid[:, np.searchsorted(SURVIVAL_GRID, month)]
               for month in (36, 60, 120)}
    metrics["rmst_120_months"] = rmst(km, 120.0)["rmst"].to_numpy()
    recurred = patients["recurrence"].astype(bool)
    lead = np.clip(patients["first_symptom_months"] - patients["recurrence_months"], 0, None)
    return grid, metrics | {
        "curative_share": groups.mean(~np.isnan(patients["curative_reoperation_months"])),
        "found_before_symptoms": groups.mean(lead > 1e-9, recurred),
        "median_lead_months": groups.quantiles(lead, (0.5,), recurred)[0],
        "visits_per_patient": groups.mean(patients["n_scans"]),
        "scans_per_patient": groups.mean(patients["n_imaging"]),
        "workups_per_patient": groups.mean(patients["n_workups"]),
        "cost_per_patient": groups.mean(patients["surveillance_cost"]),
    }


ADVANCE_COLUMNS = ("onset_to_detection_months", "onset_to_detection_median_months",
                   "detection_advance_months", "detection_advance_median_months",
                   "detection_advance_q25_months", "detection_advance_q75_months")


def _reference_rows(patients: dict[str, np.ndarray], groups: _Groups, reference: str) -> np.ndarray:
    """Each row's patient under the `reference` policy: its row (the same draw, replicate and
    patient), or -1 if the reference has no such patient."""
    draw, replicate, patient = (np.asarray(patients[name], np.int64)
                                for name in ("draw", "replicate", "patient_id"))
    key = (draw * (int(replicate.max()) + 1) + replicate) * (int(patient.max()) + 1) + patient
    theirs = np.flatnonzero(groups.codes == int(np.searchsorted(groups.names, reference)))
    theirs = theirs[np.argsort(key[theirs], kind="stable")]
    at = np.minimum(np.searchsorted(key[theirs], key), len(theirs) - 1)
    return np.where(key[theirs[at]] == key, theirs[at], -1)


def _under(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` at `rows` (`_reference_rows`), NaN where there is none."""
    return np.where(rows >= 0, np.asarray(values, float)[rows], np.nan)


def _detection(patients: dict[str, np.ndarray], groups: _Groups,
               reference: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per (policy, draw): the months from the onset of the first recurrence to its detection
    (mean and median, over the patients whose first recurrence is detected), and the detection
    advance over the `reference` policy, paired by patient: among the patients whose first
    recurrence is detected under both, the reference's detection time minus this policy's (mean,
    median, quartiles). A patient is the same under every policy (common random numbers), so the
    first recurrence is the same disease with the same onset in both. `reference`: each row's
    reference row (`_reference_rows`; None: no advance)."""
    recurred = patients["recurrence"].astype(bool)
    detected = np.asarray(patients["recurrence_months"], float)
    wait = detected - patients["recurrence_onset_months"]
    table = {"onset_to_detection_months": groups.mean(wait, recurred),
             "onset_to_detection_median_months": groups.quantiles(wait, (0.5,), recurred)[0]}
    if reference is not None:
        against = _under(reference, np.where(recurred, detected, np.nan))
        advance = against - detected
        paired = recurred & np.isfinite(against)
        median, q25, q75 = groups.quantiles(advance, (0.5, 0.25, 0.75), paired)
        table |= {"detection_advance_months": groups.mean(advance, paired),
                  "detection_advance_median_months": median,
                  "detection_advance_q25_months": q25, "detection_advance_q75_months": q75}
    return {name: table.get(name, np.full(groups.size, np.nan)) for name in ADVANCE_COLUMNS}


def _paired_noise(patients: dict[str, np.ndarray], groups: _Groups,
                  reference: np.ndarray) -> pd.DataFrame:
    cost = patients["cost_surveillance"] + patients["cost_treatment"]
    difference = {name: values - _under(reference, values)
                  for name, values in (("cost", cost), ("qalys", patients["qalys"]),
                                       ("life_years", patients["life_years"]))}
    return groups.frame({
        "noise_patients": groups.count(difference["cost"]),
        "noise_var_cost": groups.variance(difference["cost"]),
        "noise_var_qalys": groups.variance(difference["qalys"]),
        "noise_var_life_years": groups.variance(difference["life_years"]),
        "noise_cov_cost_qalys": groups.covariance(difference["cost"], difference["qalys"])})
