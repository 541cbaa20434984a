"""Summaries and pictures of a policy comparison: per policy, with 95% intervals over the
parameter draws.

Every (policy, draw) is summarised in one vectorized pass of `sim.analysis` (Kaplan-Meier and
restricted mean by group); differences against the reference policy are taken draw by draw (the
same patients and parameters), then summarised over draws: the mean, and the 2.5th and 97.5th
percentiles as the uncertainty interval.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.analysis import kaplan_meier, rmst, survival_at
from sim.reports.figures import png_bytes
from sim.reports.text import number

__all__ = ["summarise", "digest", "draw_batches", "write_outputs", "METRICS"]

_COLUMNS = ["scenario_id", "draw", "os_months", "death", "recurrence", "recurrence_months",
            "first_symptom_months", "curative_reoperation_months", "n_scans", "n_imaging", "n_workups",
            "surveillance_cost"]
METRICS = {  # name: (label, unit, definition, format)
    "os_36": ("overall survival at 3 years", "proportion",
              "Kaplan–Meier estimate of being alive 36 months after the hepatectomy", "{:.3f}"),
    "os_60": ("overall survival at 5 years", "proportion", "the same at 60 months", "{:.3f}"),
    "os_120": ("overall survival at 10 years", "proportion", "the same at 120 months", "{:.3f}"),
    "rmst_120_months": ("restricted mean survival to 10 years", "months",
                        "mean time alive within the first 120 months (area under the survival "
                        "curve)", "{:.2f}"),
    "life_years_gained": ("life-years gained within 10 years", "years per patient",
                          "restricted mean survival minus the reference policy's, in years "
                          "(itself a difference from the reference)", "{:.3f}"),
    "curative_share": ("curative re-resection", "proportion of patients",
                       "share of patients with a curative-intent repeat operation during "
                       "follow-up", "{:.3f}"),
    "found_before_symptoms": ("recurrence found before symptoms", "proportion of recurrences",
                              "among patients with a detected recurrence, the share whose first "
                              "recurrence was found before it would have caused symptoms", "{:.3f}"),
    "median_lead_months": ("median lead time", "months",
                           "median, over detected recurrences, of the time from detection to when "
                           "symptoms would have appeared (0 when found by symptoms)", "{:.2f}"),
    "visits_per_patient": ("surveillance visits", "per patient",
                           "scheduled surveillance visits attended", "{:.2f}"),
    "scans_per_patient": ("imaging examinations", "per patient",
                          "imaging examinations (CT, MRI) at the visits attended; markers such as "
                          "CEA and work-ups not included", "{:.2f}"),
    "workups_per_patient": ("work-ups of false positives", "per patient",
                            "work-ups (further imaging, a clinic visit) of a positive result "
                            "without recurrence", "{:.3f}"),
    "cost_per_patient": ("surveillance cost", "per patient, in the policies' currency",
                         "every examination at the visits attended (imaging and markers) plus "
                         "the work-up of every false positive; the work-up of a true positive is "
                         "the start of treatment and is not counted", "{:.0f}"),
    "scans_per_additional_curative": (
        "imaging examinations per additional curative re-resection", "examinations",
        "(imaging per patient minus the reference's) / (curative re-resection share minus the "
        "reference's), draw by draw, over the draws where both differences are positive (the "
        "others are counted below the table)", "{:.0f}"),
}
PAIRED = [m for m in METRICS if m not in ("life_years_gained", "scans_per_additional_curative")]
"""The metrics whose difference from the reference is reported (paired by draw)."""


BATCH_ROWS = 2_000_000
"""Patients read at a time by the analysis (whole draws at a time): memory is bounded by this,
not by the comparison's size."""

SURVIVAL_GRID = np.arange(0.0, 121.0, 1.0)
"""Months at which the survival picture reads every (policy, draw) curve."""


def draw_batches(staging: Path, rows: int | None = None, skip: set[int] = frozenset()) -> list[list[Path]]:
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


def _patients(tables: list[pa.Table]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(the tables' patients without their policy, each row's policy as an integer code, the
    policies' names in sorted order, which is the codes' order). Millions of policy names as
    Python strings were most of the analysis's cost; a partition holds one policy, so its
    names are kept as one dictionary."""
    local = []
    for table in tables:
        policy = table.column("scenario_id")
        if not pa.types.is_dictionary(policy.type):
            policy = policy.dictionary_encode()
        policy = policy.combine_chunks()
        local.append((policy.dictionary.to_pylist(), policy.indices.to_numpy(zero_copy_only=False)))
    names = np.array(sorted({name for dictionary, _ in local for name in dictionary}), dtype=object)
    position = {name: code for code, name in enumerate(names)}
    codes = np.concatenate([np.array([position[name] for name in dictionary], np.int64)[indices]
                            for dictionary, indices in local])
    patients = pa.concat_tables([table.drop_columns(["scenario_id"]) for table in tables])
    return patients.to_pandas(), codes, names


def _by_policy_and_draw(table: pd.DataFrame, names: np.ndarray) -> pd.DataFrame:
    """`table`, indexed by (policy code, draw), indexed by (policy name, draw) instead."""
    index = table.index
    table.index = pd.MultiIndex.from_arrays(
        [names[index.get_level_values(0).to_numpy()], index.get_level_values(1)],
        names=["scenario_id", "draw"])
    return table


def digest_tables(tables: list[pa.Table], extra_columns: tuple[str, ...] = ()) -> tuple:
    """(metrics, survival on `SURVIVAL_GRID`, means of `extra_columns` or None) of every (policy,
    draw) of the patient `tables`, which hold every patient of each of their draws."""
    columns = _COLUMNS + list(extra_columns)
    patients, codes, names = _patients([table.select(columns) for table in tables])
    km, table = _draw_metrics(patients, codes, names)
    means = (_by_policy_and_draw(patients.groupby([codes, patients["draw"].to_numpy()])[
        list(extra_columns)].mean(), names) if extra_columns else None)
    return table, survival_at(km, SURVIVAL_GRID), means


def _digest_batch(batch: _Batch) -> tuple:
    columns = _COLUMNS + list(batch.extra_columns)
    return batch.index, *digest_tables(
        [pq.read_table(path, columns=columns, read_dictionary=["scenario_id"])
         for path in batch.paths], batch.extra_columns)


_DIGEST_PARTS = ("metrics", "survival", "means")


def store_digest(staging: Path, draw: int, tables: list[pa.Table],
                 extra_columns: tuple[str, ...] = ()) -> None:
    """Digest a whole draw where it was simulated (its patients still in memory) and keep the
    result in `staging`/digests/<draw> (Parquet: data only), so that the analysis need not read
    the draw back."""
    folder = staging / "digests"
    folder.mkdir(exist_ok=True)
    partial, done = folder / f".{draw}.partial", folder / str(draw)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, frame in zip(_DIGEST_PARTS, digest_tables(tables, extra_columns)):
        if frame is not None:
            pq.write_table(pa.Table.from_pandas(frame), partial / f"{name}.parquet")
    shutil.rmtree(done, ignore_errors=True)      # (a unit run again after an interruption)
    os.replace(partial, done)


def _stored_digests(staging: Path) -> dict[int, tuple]:
    stored = {}
    for folder in sorted((staging / "digests").glob("[0-9]*")):
        stored[int(folder.name)] = tuple(
            pq.read_table(folder / f"{name}.parquet").to_pandas()
            if (folder / f"{name}.parquet").exists() else None for name in _DIGEST_PARTS)
    return stored


def digest(staging: Path, extra_columns: tuple[str, ...] = (), rows: int | None = None,
           executor=None) -> dict[str, pd.DataFrame]:
    """One pass over the patients, batch by batch (on `executor`'s workers when given): each
    (policy, draw)'s metrics before the reference is taken into account (`metrics`), its
    survival on `SURVIVAL_GRID` (`survival`), and the means of `extra_columns` (`means`, for
    the economic evaluation). The draws digested where they were simulated (`store_digest`) are
    not read again. The result does not depend on `rows`, the executor or the stored digests."""
    stored = _stored_digests(staging)
    batches = [_Batch(k, tuple(paths), tuple(extra_columns))
               for k, paths in enumerate(draw_batches(staging, rows, skip=set(stored)))]
    results = {-1 - k: part for k, part in enumerate(stored.values())}

    def keep(result):
        results[result[0]] = result[1:]

    if executor is None or len(batches) < 2:
        for batch in batches:
            keep(_digest_batch(batch))
    else:
        executor.run(_digest_batch, batches, keep)
    parts = [results[k] for k in sorted(results)]
    return {"metrics": pd.concat([p[0] for p in parts]).sort_index(),
            "survival": pd.concat([p[1] for p in parts], ignore_index=True).sort_values(
                ["scenario_id", "draw", "time"], kind="stable", ignore_index=True),
            "means": pd.concat([p[2] for p in parts]).sort_index() if extra_columns else None}


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
    restricted = rmst(km, 120.0).set_index(["scenario_id", "draw"])["rmst"].rename("rmst_120_months")
    recurred = patients["recurrence"].to_numpy()
    lead = (patients["first_symptom_months"] - patients["recurrence_months"])[recurred].clip(lower=0)
    keys = [codes, draw]
    by = patients.groupby(keys)
    recurrence_keys = [codes[recurred], draw[recurred]]
    counts = pd.concat([
        patients["curative_reoperation_months"].notna().groupby(keys).mean().rename("curative_share"),
        (lead > 1e-9).groupby(recurrence_keys).mean().rename("found_before_symptoms"),
        lead.groupby(recurrence_keys).median().rename("median_lead_months"),
        by["n_scans"].mean().rename("visits_per_patient"),
        by["n_imaging"].mean().rename("scans_per_patient"),
        by["n_workups"].mean().rename("workups_per_patient"),
        by["surveillance_cost"].mean().rename("cost_per_patient"),
    ], axis=1)
    table = pd.concat([at, restricted, _by_policy_and_draw(counts, names)], axis=1)
    return km, table


def _per_draw(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The metrics of each (policy, draw) with those taken against the reference, draw by draw."""
    table = table.copy()
    ref = table.xs(reference, level="scenario_id")
    draws = table.index.get_level_values("draw")
    table["life_years_gained"] = (table["rmst_120_months"].to_numpy()
                                  - ref.loc[draws, "rmst_120_months"].to_numpy()) / 12.0
    extra_scans = table["scans_per_patient"].to_numpy() - ref.loc[draws, "scans_per_patient"].to_numpy()
    extra_cures = table["curative_share"].to_numpy() - ref.loc[draws, "curative_share"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        # defined when the policy buys cures with extra imaging (not when it saves imaging too)
        table["scans_per_additional_curative"] = np.where((extra_cures > 0) & (extra_scans > 0),
                                                          extra_scans / extra_cures, np.nan)
    is_reference = table.index.get_level_values("scenario_id") == reference
    table["ratio_excluded"] = np.select(
        [is_reference, extra_cures <= 0, extra_scans <= 0],
        ["reference", "no_additional_reresection", "no_additional_imaging"], "")
    return table


QUARTER_MONTHS = 3.0
WEEKS_PER_QUARTER = 13.0


def _departments(staging: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(waits and utilisation per policy and kind of slot: over the whole run and at the peak
    quarter; the same by quarter of the departments' time). A department is one chunk of
    patients of one draw; quarters count from its first patient's hepatectomy."""
    requests = []
    for path in sorted((staging / "departments").glob("*.json")):
        record = json.loads(path.read_text())
        for kind, data in (record["department"] or {}).items():
            waits, asked = np.asarray(data["waits"], float), np.asarray(data["asked"], float)
            requests.append(pd.DataFrame({
                "scenario_id": record["scenario_id"], "slots": kind, "department": path.stem,
                "wait_weeks": waits * (52 / 12),
                "quarter": np.floor(asked / QUARTER_MONTHS),                # when the wait began
                "started": np.floor((asked + waits) / QUARTER_MONTHS),      # when the slot was used
                "per_week": data["per_week"], "offered": data["offered"]}))
    overall_columns = ["scenario_id", "slots", "mean_wait_weeks", "p95_wait_weeks", "utilisation",
                       "peak_quarter", "peak_quarter_mean_wait_weeks", "peak_quarter_utilisation"]
    quarter_columns = ["scenario_id", "slots", "quarter", "months_from", "mean_wait_weeks",
                       "p95_wait_weeks", "utilisation"]
    if not requests:
        return pd.DataFrame(columns=overall_columns), pd.DataFrame(columns=quarter_columns)
    every = pd.concat(requests, ignore_index=True)
    overall, quarters = [], []
    for (name, kind), rows in every.groupby(["scenario_id", "slots"], sort=False):
        departments = rows.drop_duplicates("department")
        capacity_per_quarter = departments["per_week"].sum() * WEEKS_PER_QUARTER
        by_quarter = rows.groupby("quarter")["wait_weeks"]
        used = rows.groupby("started").size().rename_axis("quarter")
        table = pd.DataFrame({"mean_wait_weeks": by_quarter.mean(),
                              "p95_wait_weeks": by_quarter.quantile(0.95)}).join(
            (used / capacity_per_quarter).rename("utilisation"), how="outer")
        table = table.fillna({"utilisation": 0.0}).reset_index().assign(scenario_id=name, slots=kind)
        table = table[table["mean_wait_weeks"].notna()]   # quarters in which someone asked
        table["months_from"] = table["quarter"] * QUARTER_MONTHS
        quarters.append(table[quarter_columns])
        peak = table.loc[table["mean_wait_weeks"].idxmax()]
        overall.append({"scenario_id": name, "slots": kind,
                        "mean_wait_weeks": rows["wait_weeks"].mean(),
                        "p95_wait_weeks": rows["wait_weeks"].quantile(0.95),
                        "utilisation": len(rows) / departments["offered"].sum(),
                        "peak_quarter": int(peak["quarter"]),
                        "peak_quarter_mean_wait_weeks": peak["mean_wait_weeks"],
                        "peak_quarter_utilisation": peak["utilisation"]})
    return (pd.DataFrame(overall, columns=overall_columns),
            pd.concat(quarters, ignore_index=True))


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan, np.nan
    return values.mean(), np.percentile(values, 2.5), np.percentile(values, 97.5)


def summarise(staging: Path, reference: str, order: list[str], digested: dict | None = None):
    """(per policy summary: each metric's mean and 95% interval over the draws, its paired
    difference from the reference with its interval, and the draws the ratio leaves out; the
    per (policy, draw) table; the departments' waits overall and by quarter). `digested`: what
    `digest` read of the patients (read now if not given)."""
    digested = digested or digest(staging)
    per_draw = _per_draw(digested["metrics"], reference)
    ref = per_draw.xs(reference, level="scenario_id")
    rows = []
    for name in order:
        values = per_draw.xs(name, level="scenario_id")
        row = {"policy": name, "draws": len(values)}
        for metric in METRICS:
            row[metric], row[f"{metric}_lower"], row[f"{metric}_upper"] = _interval(
                values[metric].to_numpy(dtype=float))
        for metric in PAIRED:   # the same draws (and patients) in both: paired
            difference = values[metric].to_numpy(float) - ref.loc[values.index, metric].to_numpy(float)
            (row[f"{metric}_difference"], row[f"{metric}_difference_lower"],
             row[f"{metric}_difference_upper"]) = _interval(difference)
        status = values["ratio_excluded"]
        row["ratio_draws_used"] = int((status == "").sum())
        row["ratio_draws_no_additional_reresection"] = int((status == "no_additional_reresection").sum())
        row["ratio_draws_no_additional_imaging"] = int((status == "no_additional_imaging").sum())
        rows.append(row)
    overall, quarters = _departments(staging)
    return pd.DataFrame(rows), per_draw, overall, quarters


def _dominated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A policy is dominated when another costs no more and achieves at least as much, and is
    strictly better in one of the two."""
    out = np.zeros(len(x), bool)
    for i in range(len(x)):
        better = (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        out[i] = better.any()
    return out


_STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]


def _survival_picture(at: pd.DataFrame, order: list[str], reference: str):
    """Overall survival by policy (means over draws) and each policy's difference from the
    reference, draw by draw, with its 95% band; `at`: each curve on `SURVIVAL_GRID`."""
    grid = SURVIVAL_GRID
    curves = {name: at[at["scenario_id"] == name].pivot(index="draw", columns="time",
                                                        values="survival") for name in order}

    def draw(plt):
        figure, (levels, differences) = plt.subplots(1, 2, figsize=(12, 4.4))
        for k, name in enumerate(order):
            style = dict(color=f"C{k}", linestyle=_STYLES[k % len(_STYLES)], linewidth=1.6)
            levels.plot(grid, curves[name].mean().to_numpy(), label=name, **style)
            if name == reference:
                continue
            difference = curves[name] - curves[reference].loc[curves[name].index]
            differences.plot(grid, 100 * difference.mean().to_numpy(), label=name, **style)
            if len(difference) > 2:
                differences.fill_between(grid, 100 * difference.quantile(0.025).to_numpy(),
                                         100 * difference.quantile(0.975).to_numpy(),
                                         color=f"C{k}", alpha=0.12, linewidth=0)
        differences.axhline(0.0, color="black", linewidth=0.8)
        levels.set(xlabel="Months from hepatectomy", ylabel="Overall survival", ylim=(0, 1),
                   xlim=(0, 120), title="Overall survival (mean over parameter draws)")
        differences.set(xlabel="Months from hepatectomy", xlim=(0, 120),
                        ylabel=f"Difference from {reference} (percentage points)",
                        title=f"Difference from {reference}, draw by draw (95% band)")
        for axis in (levels, differences):
            axis.set_xticks(np.arange(0, 121, 12))
            axis.grid(alpha=0.3)
            if axis.get_legend_handles_labels()[0]:   # (no other policy: no difference drawn)
                axis.legend(fontsize=8)
        return figure
    return draw


def _spread(positions: np.ndarray, gap: float) -> np.ndarray:
    """Label heights (axes fraction) at least `gap` apart, as near their points as possible,
    kept inside [0, 1]: the labels never overlap."""
    order = np.argsort(positions)
    placed = positions[order].astype(float).copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - 1.0 if len(placed) else 0.0
    if overflow > 0:
        placed -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    out = np.empty_like(placed)
    out[order] = placed
    return out


def _frontier_picture(summary: pd.DataFrame, cost_unit: str):
    def draw(plt):
        figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        x = summary["cost_per_patient"].to_numpy()
        for axis, metric, scale, label in (
                (axes[0], "curative_share", 1.0, "Share with a curative re-resection"),
                (axes[1], "rmst_120_months", 1 / 12, "Life-years per patient within 10 years")):
            y = summary[metric].to_numpy() * scale
            lower = summary[f"{metric}_lower"].to_numpy() * scale
            upper = summary[f"{metric}_upper"].to_numpy() * scale
            dominated = _dominated(x, y)
            order = np.argsort(x)
            frontier = order[~dominated[order]]
            axis.plot(x[frontier], y[frontier], "-", color="gray", lw=1, label="efficiency frontier")
            for i in range(len(x)):
                axis.errorbar(x[i], y[i], yerr=[[max(y[i] - lower[i], 0)], [max(upper[i] - y[i], 0)]],
                              fmt="o", color=f"C{i}", mfc="white" if dominated[i] else f"C{i}",
                              capsize=3)
            axis.set(xlabel=f"Surveillance cost per patient ({cost_unit})", ylabel=label)
            axis.grid(alpha=0.3)
            axis.margins(x=0.08, y=0.12)
            figure.canvas.draw()   # the limits are final: place the labels in axes fraction
            bottom, top = axis.get_ylim()
            heights = _spread((y - bottom) / (top - bottom), 0.075)
            for i, name in enumerate(summary["policy"]):
                axis.annotate(name + (" (dominated)" if dominated[i] else ""), (x[i], y[i]),
                              xytext=(1.03, heights[i]), textcoords="axes fraction", fontsize=8,
                              va="center", color=f"C{i}",
                              arrowprops=dict(arrowstyle="-", color=f"C{i}", lw=0.6, alpha=0.7))
        axes[0].legend(fontsize=8, loc="lower right")
        figure.suptitle("Cost of surveillance against outcomes (open markers: dominated; "
                        "bars: 95% interval over parameter draws)")
        figure.subplots_adjust(wspace=0.55, right=0.85)
        return figure
    return draw


def _capacity_picture(quarters: pd.DataFrame):
    def draw(plt):
        kinds = list(dict.fromkeys(quarters["slots"]))
        figure, axes = plt.subplots(2, len(kinds), figsize=(6 * len(kinds), 6.4), squeeze=False,
                                    sharex=True)
        for column, kind in enumerate(kinds):
            wait, used = axes[0, column], axes[1, column]
            for k, (name, rows) in enumerate(quarters[quarters["slots"] == kind].groupby(
                    "scenario_id", sort=False)):
                years = (rows["months_from"] + QUARTER_MONTHS / 2) / 12
                wait.plot(years, rows["mean_wait_weeks"], color=f"C{k}", label=name)
                wait.fill_between(years, 0, rows["p95_wait_weeks"], color=f"C{k}", alpha=0.1,
                                  linewidth=0)
                used.plot(years, 100 * rows["utilisation"], color=f"C{k}", label=name)
            wait.set(ylabel="Wait (weeks)",
                     title=f"{kind.capitalize()} slots: mean wait by quarter (shaded: to the "
                           "95th percentile)")
            used.axhline(100, color="black", linewidth=0.8)
            used.set(xlabel="Years from the department's first hepatectomy",
                     ylabel="Slots used (%)", title=f"{kind.capitalize()} slots: share used by quarter")
            for axis in (wait, used):
                axis.grid(alpha=0.3)
                axis.legend(fontsize=8)
        return figure
    return draw


def _cell(row, metric: str, suffix: str = "") -> str:
    _, _, _, fmt = METRICS[metric]
    value = row[f"{metric}{suffix}"]
    if not np.isfinite(value):
        return "–"

    def show(value: float) -> str:
        return number(value, fmt[2:-1])     # "{:.3f}" -> ".3f"

    sign = "+" if suffix and value > 0 and show(value) != show(0.0) else ""
    cell = sign + show(value)
    if row["draws"] > 1 and np.isfinite(row[f"{metric}{suffix}_lower"]):
        cell += f" ({show(row[f'{metric}{suffix}_lower'])} to {show(row[f'{metric}{suffix}_upper'])})"
    return cell


def _schedule(policy) -> str:
    if not policy.schedule:
        return "no scheduled visit: recurrences are found by symptoms"
    return "; ".join(f"months {start:g}–{end:g}: every {interval:g} months, {' + '.join(tests)}"
                     for start, end, interval, tests in policy.schedule)


def _policy_rows(policies) -> list[list[str]]:
    rows = []
    for policy in policies:
        capacity = ", ".join(f"{what} {value:g} slot{'s' * (value != 1)} a week" for what, value in (
            ("imaging", policy.imaging_slots_per_week),
            ("operating", policy.operating_slots_per_week)) if value) or "unlimited"
        positive = ("a positive test is worked up (imaging, clinic visit); a recurrence found "
                    "is staged and treated, with curative-intent surgery when resectable"
                    if policy.schedule else "–")
        rows.append([policy.name, policy.description, _schedule(policy),
                     f"{policy.adherence:.0%} of visits attended", positive, capacity])
    return rows


_POLICY_HEADER = ["policy", "what it is", "schedule (months from the hepatectomy or a curative "
                  "repeat operation)", "adherence", "after a positive test", "capacity"]


def _exclusions(summary: pd.DataFrame, reference: str) -> list[str]:
    lines = []
    for row in summary.itertuples():
        if row.policy == reference:
            continue
        left_out = row.ratio_draws_no_additional_reresection + row.ratio_draws_no_additional_imaging
        if left_out:
            lines.append(f"{row.policy}: imaging per additional curative re-resection over "
                         f"{row.ratio_draws_used} of {row.draws} draws; left out "
                         f"{row.ratio_draws_no_additional_reresection} draw(s) with no more "
                         f"curative re-resections than {reference} and "
                         f"{row.ratio_draws_no_additional_imaging} with no more imaging (a ratio "
                         "is then undefined or meaningless).")
    return lines


def _notes(meta: dict, cost_unit: str) -> list[str]:
    draws = meta["draws"]
    uncertainty = (f"Each value is the mean over {draws} parameter sets drawn from the "
                   "calibration's posterior sample; the interval in parentheses is the 2.5th to the "
                   f"97.5th percentile over those {draws} draws (parameter uncertainty, with the "
                   f"Monte Carlo error of {meta['patients']:,} patients per draw inside it)."
                   if draws > 1 else "One parameter set (the fitted point estimate): no interval.")
    return [f"{meta['patients']:,} patients ({meta['primary']} primaries) per policy and draw, "
            f"followed {meta['years']:g} years. Reference policy: {meta['reference']}.",
            uncertainty,
            "Every policy runs on the same simulated patients with the same parameters in each "
            "draw (common random numbers): a patient's disease is the same under every policy, so "
            "differences are taken draw by draw (paired) and their intervals are narrower than "
            "the levels' would suggest.",
            f"Costs are in {cost_unit} (as the policy files give them)."]


def _markdown(summary, overall, meta, policies, cost_unit) -> str:
    reference = meta["reference"]
    names = list(summary["policy"])
    lines = [f"# {meta['description'] or meta['name']}", "", f"Comparison `{meta['name']}`.", "",
             *[f"- {note}" for note in _notes(meta, cost_unit)], "", "## Policies", "",
             "| " + " | ".join(_POLICY_HEADER) + " |", "|---" * len(_POLICY_HEADER) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in _policy_rows(policies)]
    lines += ["", "## Results by policy", "", "| metric | unit | " + " | ".join(names) + " |",
              "|---" * (len(names) + 2) + "|"]
    for metric, (label, unit, _, _) in METRICS.items():
        lines.append(f"| {label} | {unit} | "
                     + " | ".join(_cell(row, metric) for _, row in summary.iterrows()) + " |")
    others = [name for name in names if name != reference]
    lines += ["", f"## Difference from {reference} (paired by draw)", "",
              "| metric | unit | " + " | ".join(others) + " |", "|---" * (len(others) + 2) + "|"]
    for metric in PAIRED:
        label, unit, _, _ = METRICS[metric]
        lines.append(f"| {label} | {unit} | " + " | ".join(
            _cell(row, metric, "_difference") for _, row in summary.iterrows()
            if row["policy"] != reference) + " |")
    exclusions = _exclusions(summary, reference)
    if exclusions:
        lines += ["", "Left out of a ratio:", "", *[f"- {line}" for line in exclusions]]
    if len(overall):
        lines += ["", "## Capacity", "", "One department per chunk of patients, its patients "
                  "accrued over the comparison's accrual years; waits in weeks.", "",
                  "| policy | slots | mean wait | 95th percentile | utilisation, whole run | "
                  "worst quarter (years from start) | its mean wait | its utilisation |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in overall.itertuples():
            lines.append(f"| {r.scenario_id} | {r.slots} | {r.mean_wait_weeks:.1f} | "
                         f"{r.p95_wait_weeks:.1f} | {r.utilisation:.0%} | "
                         f"{r.peak_quarter * QUARTER_MONTHS / 12:.2f} | "
                         f"{r.peak_quarter_mean_wait_weeks:.1f} | {r.peak_quarter_utilisation:.0%} |")
        lines += ["", "![Waits and utilisation by quarter](capacity.png)"]
    if "economic_section" in meta:
        intro, tables, closing = meta["economic_section"]
        lines += ["", "## Cost-effectiveness", "", *[f"{text}\n" for text in intro]]
        for header, rows in tables:
            lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
                      *["| " + " | ".join(row) + " |" for row in rows], ""]
        lines += [*[f"- {text}" for text in closing], "",
                  "![Cost-effectiveness plane](plane.png)", "",
                  "![Acceptability curves](ceac.png)", "", "![EVPI](evpi.png)"]
    lines += ["", "## Figures", "", "![Overall survival by policy and its difference from the "
              "reference](survival.png)", "",
              "![Cost of surveillance against outcomes](frontier.png)", "", "## Glossary", "",
              "| metric | unit | definition |", "|---|---|---|"]
    lines += [f"| {label} | {unit} | {definition} |"
              for label, unit, definition, _ in METRICS.values()]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]], first_bold: bool = True) -> str:
    escape = html.escape
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(
        f"<td{' class=name' if first_bold and k == 0 else ''}>{escape(cell)}</td>"
        for k, cell in enumerate(cells)) + "</tr>" for cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(summary, overall, meta, policies, cost_unit, pictures: dict[str, tuple[str, bytes]]) -> str:
    escape = html.escape
    reference = meta["reference"]
    names = list(summary["policy"])
    levels = [[label, unit, *(_cell(row, metric) for _, row in summary.iterrows())]
              for metric, (label, unit, _, _) in METRICS.items()]
    others = [name for name in names if name != reference]
    differences = [[METRICS[m][0], METRICS[m][1], *(_cell(row, m, "_difference")
                                                    for _, row in summary.iterrows()
                                                    if row["policy"] != reference)]
                   for m in PAIRED]
    exclusions = _exclusions(summary, reference)
    parts = [f"<h1>{escape(meta['description'] or meta['name'])}</h1>",
             f"<p class=sub>Comparison <b>{escape(meta['name'])}</b></p>",
             "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in _notes(meta, cost_unit)) + "</ul>",
             "<h2>Policies</h2>", _table(_POLICY_HEADER, _policy_rows(policies)),
             "<h2>Results by policy</h2>", _table(["metric", "unit", *names], levels),
             f"<h2>Difference from {escape(reference)} (paired by draw)</h2>",
             _table(["metric", "unit", *others], differences)]
    if exclusions:
        parts.append("<p>Left out of a ratio:</p><ul>"
                     + "".join(f"<li>{escape(line)}</li>" for line in exclusions) + "</ul>")
    if len(overall):
        rows = [[r.scenario_id, r.slots, f"{r.mean_wait_weeks:.1f}", f"{r.p95_wait_weeks:.1f}",
                 f"{r.utilisation:.0%}", f"{r.peak_quarter * QUARTER_MONTHS / 12:.2f}",
                 f"{r.peak_quarter_mean_wait_weeks:.1f}", f"{r.peak_quarter_utilisation:.0%}"]
                for r in overall.itertuples()]
        parts += ["<h2>Capacity</h2><p>One department per chunk of patients, its patients "
                  "accrued over the comparison's accrual years; waits in weeks.</p>",
                  _table(["policy", "slots", "mean wait", "95th percentile",
                          "utilisation, whole run", "worst quarter (years from start)",
                          "its mean wait", "its utilisation"], rows)]
    economic_pictures = ("plane.png", "ceac.png", "evpi.png")
    if "economic_section" in meta:
        intro, tables, closing = meta["economic_section"]
        parts += ["<h2>Cost-effectiveness</h2>", *[f"<p>{escape(text)}</p>" for text in intro]]
        parts += [_table(header, rows) for header, rows in tables]
        parts.append("<ul>" + "".join(f"<li>{escape(text)}</li>" for text in closing) + "</ul>")
        parts += [f'<h3>{escape(pictures[name][0])}</h3><img alt="{escape(pictures[name][0])}" '
                  f'src="data:image/png;base64,{base64.b64encode(pictures[name][1]).decode()}">'
                  for name in economic_pictures if name in pictures]
    for name, (title, png) in pictures.items():
        if name in economic_pictures:
            continue
        parts.append(f'<h2>{escape(title)}</h2><img alt="{escape(title)}" '
                     f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    parts += ["<h2>Glossary</h2>", _table(["metric", "unit", "definition"],
                                          [[label, unit, definition] for label, unit, definition, _
                                           in METRICS.values()])]
    style = ("body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}"
             "th{background:#f3f3f3} td.name{font-weight:600} .sub{color:#555;margin-top:-.5em}"
             "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{escape(meta['description'] or meta['name'])}</title><style>{style}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def _cost_unit(policies) -> str:
    units = {policy.cost_unit for policy in policies if policy.schedule}
    return " / ".join(sorted(units)) or "no costs given"


def write_outputs(staging: Path, meta: dict, policies, economics=None,
                  prices: list | None = None, executor=None) -> dict[str, Path]:
    """results.csv, results_by_draw.csv, capacity.csv, capacity_by_quarter.csv, results.md,
    report.html and the figures in `staging` (each under a temporary name, then renamed); with
    an `economics` file, also economics.csv, icers.csv, ceac.csv, evppi.csv, the plane, the
    acceptability curves and the EVPI, and a cost-effectiveness section."""
    order = [policy.name for policy in policies]
    priced = ()
    if economics is not None:
        from sim.reports.economics import PRICED_COLUMNS, economic_outputs, section  # noqa: PLC0415
        priced = PRICED_COLUMNS
    digested = digest(staging, priced, executor=executor)
    summary, per_draw, overall, quarters = summarise(staging, meta["reference"], order, digested)
    cost_unit = _cost_unit(policies)
    economic = None
    if economics is not None:
        economic = economic_outputs(digested["means"], order, meta["reference"], economics, prices,
                                    meta["draws"] if meta["draws"] > 1 else 0)
        meta = {**meta, "economic_section": section(economic, economics, meta["reference"])}
    pictures = {
        "survival.png": ("Overall survival by policy and its difference from the reference",
                         png_bytes(_survival_picture(digested["survival"], order, meta["reference"]))),
        "frontier.png": ("Cost of surveillance against outcomes",
                         png_bytes(_frontier_picture(summary, cost_unit)))}
    if len(quarters):
        pictures["capacity.png"] = ("Waits and utilisation by quarter",
                                    png_bytes(_capacity_picture(quarters)))
    if economic is not None:
        pictures.update(economic["pictures"])
    files = {"results.csv": summary.to_csv(index=False).encode(),
             "results_by_draw.csv": per_draw.reset_index().to_csv(index=False).encode(),
             "capacity.csv": overall.to_csv(index=False).encode(),
             "capacity_by_quarter.csv": quarters.to_csv(index=False).encode(),
             "results.md": _markdown(summary, overall, meta, policies, cost_unit).encode(),
             "report.html": _html(summary, overall, meta, policies, cost_unit, pictures).encode(),
             **{name: png for name, (_, png) in pictures.items()}}
    if economic is not None:
        files |= {f"{name}.csv": economic[name].to_csv(index=False).encode()
                  for name in ("economics", "icers", "ceac", "evppi")}
    paths = {}
    for name, data in files.items():
        partial = staging / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(staging / name)
        paths[name] = staging / name
    return paths
