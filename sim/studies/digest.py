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

__all__ = ["Digest", "digest", "digest_tables", "digest_columns", "store_digest", "draw_batches", "BATCH_ROWS",
           "SURVIVAL_GRID", "NOISE_COLUMNS"]

_COLUMNS = ["scenario_id", "draw", "os_months", "death", "recurrence", "recurrence_months",
            "first_symptom_months", "curative_reoperation_months", "n_scans", "n_imaging",
            "n_workups", "surveillance_cost", "patient_id", "replicate", "recurrence_onset_months"]


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


def _patients(tables: list[pa.Table]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(the tables' patients without their policy, each row's policy as an integer code, the
    policies' names in sorted order, which is the codes' order). Millions of policy names as
    Python strings were most of the analysis's cost; a partition holds one policy, so its
    names are kept as one dictionary."""
    policies = []
    for table in tables:
        policy = table.column("scenario_id")
        if not pa.types.is_dictionary(policy.type):
            policy = policy.dictionary_encode()
        policies.append(policy.combine_chunks())
    codes, names = _codes(policies)
    patients = pa.concat_tables([table.drop_columns(["scenario_id"]) for table in tables])
    return patients.to_pandas(), codes, names


def _codes(policies: list[pa.DictionaryArray]) -> tuple[np.ndarray, np.ndarray]:
    """(each row's policy as an integer code, the policies' names in sorted order)."""
    local = [(policy.dictionary.to_pylist(), policy.indices.to_numpy(zero_copy_only=False))
             for policy in policies]
    names = np.array(sorted({name for dictionary, _ in local for name in dictionary}), dtype=object)
    position = {name: code for code, name in enumerate(names)}
    codes = np.concatenate([np.array([position[name] for name in dictionary], np.int64)[indices]
                            for dictionary, indices in local])
    return codes, names


def _by_policy_and_draw(table: pd.DataFrame, names: np.ndarray) -> pd.DataFrame:
    """`table`, indexed by (policy code, draw), indexed by (policy name, draw) instead."""
    index = table.index
    table.index = pd.MultiIndex.from_arrays(
        [names[index.get_level_values(0).to_numpy()], index.get_level_values(1)],
        names=["scenario_id", "draw"])
    return table


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
    columns = _COLUMNS + list(extra_columns)
    return _digest(*_patients([table.select(columns) for table in tables]), extra_columns,
                   reference)


def digest_columns(parts: list[dict[str, np.ndarray]], extra_columns: tuple[str, ...] = (),
                   reference: str | None = None) -> Digest:
    """As `digest_tables`, of patients held as numpy columns (NaN where a table has a null):
    a worker digests what it simulated without building a table. The same digest, to the bit,
    as of the same patients written and read back."""
    names = [name for name in _COLUMNS + list(extra_columns) if name != "scenario_id"]
    patients = pd.DataFrame({name: np.concatenate([part[name] for part in parts])
                             for name in names})
    codes, policies = _codes([pa.array(part["scenario_id"]).dictionary_encode() for part in parts])
    return _digest(patients, codes, policies, extra_columns, reference)


def _digest(patients: pd.DataFrame, codes: np.ndarray, names: np.ndarray,
            extra_columns: tuple[str, ...], reference: str | None) -> Digest:
    km, table = _draw_metrics(patients, codes, names)
    table = pd.concat([table, _detection(patients, codes, names, reference)], axis=1)
    means = None
    if extra_columns:
        means = patients.groupby([codes, patients["draw"].to_numpy()])[list(extra_columns)].mean()
        if reference is not None and {"qalys", "cost_treatment"} <= set(extra_columns):
            means = means.join(_paired_noise(patients, codes, names, reference))
        means = _by_policy_and_draw(means, names)
    return Digest(table, survival_at(km, SURVIVAL_GRID), means)


NOISE_COLUMNS = ("noise_patients", "noise_var_cost", "noise_var_qalys", "noise_var_life_years",
                 "noise_cov_cost_qalys")
"""Per (policy, draw), over the patients paired with the reference's (the same patient under
both policies): their number and the variance and covariance of the per-patient differences in
total cost, QALYs and life-years. The patient-level Monte Carlo variance of a draw's mean
difference is each variance over the number (`sim.studies.decision.monte_carlo_error`)."""


def _paired_noise(patients: pd.DataFrame, codes: np.ndarray, names: np.ndarray,
                  reference: str) -> pd.DataFrame:
    position = {name: code for code, name in enumerate(names)}
    draw = patients["draw"].to_numpy()
    key = pd.MultiIndex.from_arrays([draw, patients["replicate"].to_numpy(),
                                     patients["patient_id"].to_numpy()])
    values = pd.DataFrame({
        "cost": (patients["cost_surveillance"] + patients["cost_treatment"]).to_numpy(),
        "qalys": patients["qalys"].to_numpy(), "life_years": patients["life_years"].to_numpy()})
    mine = codes == position[reference]
    theirs = values[mine].set_axis(key[mine]).reindex(key)
    difference = values - theirs.to_numpy()
    by = difference.groupby([codes, draw])
    variance = by.var()
    cov = (difference["cost"] * difference["qalys"]).groupby([codes, draw]).sum()
    count = by["cost"].count()
    cov = (cov - count * by["cost"].mean() * by["qalys"].mean()) / (count - 1)
    return pd.DataFrame({"noise_patients": count, "noise_var_cost": variance["cost"],
                         "noise_var_qalys": variance["qalys"],
                         "noise_var_life_years": variance["life_years"],
                         "noise_cov_cost_qalys": cov})


def _digest_batch(batch: _Batch) -> tuple[int, Digest]:
    columns = _COLUMNS + list(batch.extra_columns)
    return batch.index, digest_tables(
        [pq.read_table(path, columns=columns, read_dictionary=["scenario_id"])
         for path in batch.paths], batch.extra_columns, batch.reference)


def store_digest(staging: Path, draw: int, parts: list[dict[str, np.ndarray]],
                 extra_columns: tuple[str, ...] = (), reference: str | None = None) -> None:
    """Digest a whole draw where it was simulated (its patients still in memory, as the numpy
    columns of `digest_columns`) and keep the result in `staging`/digests/<draw> (Parquet: data
    only), so that the analysis need not read the draw back."""
    folder = staging / "digests"
    folder.mkdir(exist_ok=True)
    partial, done = folder / f".{draw}.partial", folder / str(draw)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, frame in digest_columns(parts, extra_columns, reference).parts().items():
        if frame is not None:
            pq.write_table(pa.Table.from_pandas(frame), partial / f"{name}.parquet")
    shutil.rmtree(done, ignore_errors=True)      # (a unit run again after an interruption)
    os.replace(partial, done)


def _stored_digests(staging: Path) -> dict[int, Digest]:
    stored = {}
    for folder in sorted((staging / "digests").glob("[0-9]*")):
        stored[int(folder.name)] = Digest(*(
            pq.read_table(folder / f"{name}.parquet").to_pandas()
            if (folder / f"{name}.parquet").exists() else None
            for name in ("metrics", "survival", "means")))
    return stored


def digest(staging: Path, extra_columns: tuple[str, ...] = (), rows: int | None = None,
           executor=None, reference: str | None = None) -> Digest:
    """One pass over the patients, batch by batch (on `executor`'s workers when given): each
    (policy, draw)'s metrics before the reference is taken into account (`metrics`), its
    survival on `SURVIVAL_GRID` (`survival`), and the means of `extra_columns` (`means`, for
    the economic evaluation). The draws digested where they were simulated (`store_digest`) are
    not read again. The result does not depend on `rows`, the executor or the stored digests."""
    stored = _stored_digests(staging)
    batches = [_Batch(k, tuple(paths), tuple(extra_columns), reference)
               for k, paths in enumerate(draw_batches(staging, rows, skip=set(stored)))]
    results = {-1 - k: part for k, part in enumerate(stored.values())}

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


def _draw_metrics(patients: pd.DataFrame, codes: np.ndarray,
                  names: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Kaplan-Meier table, metrics table) of each (policy, draw) of `patients`, whose policies
    are `names[codes]`: the groups are taken on the integer codes, in the order of the names."""
    draw = patients["draw"].to_numpy()
    km = kaplan_meier(patients["os_months"], patients["death"],
                      groups={"scenario_id": codes, "draw": draw})
    km["scenario_id"] = names[km["scenario_id"].to_numpy()]
    at = survival_at(km, [36.0, 60.0, 120.0]).pivot(index=["scenario_id", "draw"], columns="time",
                                                    values="survival")
    at.columns = ["os_36", "os_60", "os_120"]
    restricted = rmst(km, 120.0).set_index(["scenario_id", "draw"])["rmst"].rename(
        "rmst_120_months")
    recurred = patients["recurrence"].to_numpy()
    lead = (patients["first_symptom_months"]
            - patients["recurrence_months"])[recurred].clip(lower=0)
    keys = [codes, draw]
    by = patients.groupby(keys)
    recurrence_keys = [codes[recurred], draw[recurred]]
    counts = pd.concat([
        patients["curative_reoperation_months"].notna().groupby(keys).mean().rename(
            "curative_share"),
        (lead > 1e-9).groupby(recurrence_keys).mean().rename("found_before_symptoms"),
        lead.groupby(recurrence_keys).median().rename("median_lead_months"),
        by["n_scans"].mean().rename("visits_per_patient"),
        by["n_imaging"].mean().rename("scans_per_patient"),
        by["n_workups"].mean().rename("workups_per_patient"),
        by["surveillance_cost"].mean().rename("cost_per_patient"),
    ], axis=1)
    table = pd.concat([at, restricted, _by_policy_and_draw(counts, names)], axis=1)
    return km, table


ADVANCE_COLUMNS = ("onset_to_detection_months", "onset_to_detection_median_months",
                   "detection_advance_months", "detection_advance_median_months",
                   "detection_advance_q25_months", "detection_advance_q75_months")


def _detection(patients: pd.DataFrame, codes: np.ndarray, names: np.ndarray,
               reference: str | None) -> pd.DataFrame:
    """Per (policy, draw): the months from the onset of the first recurrence to its detection
    (mean and median, over the patients whose first recurrence is detected), and the detection
    advance over the `reference` policy, paired by patient: among the patients whose first
    recurrence is detected under both, the reference's detection time minus this policy's (mean,
    median, quartiles). A patient is the same under every policy (common random numbers), so the
    first recurrence is the same disease with the same onset in both."""
    draw = patients["draw"].to_numpy()
    recurred = patients["recurrence"].to_numpy()
    detected = patients["recurrence_months"].to_numpy()
    wait = pd.Series(detected - patients["recurrence_onset_months"].to_numpy())[recurred]
    keys = [codes[recurred], draw[recurred]]
    table = pd.DataFrame({"onset_to_detection_months": wait.groupby(keys).mean(),
                          "onset_to_detection_median_months": wait.groupby(keys).median()})
    position = {name: code for code, name in enumerate(names)}
    if reference in position:
        patient = pd.MultiIndex.from_arrays([draw, patients["replicate"].to_numpy(),
                                             patients["patient_id"].to_numpy()])
        is_reference = codes == position[reference]
        theirs = pd.Series(np.where(recurred, detected, np.nan)[is_reference],
                           index=patient[is_reference])
        against = theirs.reindex(patient).to_numpy()
        paired = recurred & np.isfinite(against)
        advance = pd.Series(against[paired] - detected[paired])
        by = advance.groupby([codes[paired], draw[paired]])
        table = table.join(pd.DataFrame({
            "detection_advance_months": by.mean(),
            "detection_advance_median_months": by.median(),
            "detection_advance_q25_months": by.quantile(0.25),
            "detection_advance_q75_months": by.quantile(0.75)}))
    return _by_policy_and_draw(table.reindex(columns=list(ADVANCE_COLUMNS)), names)
