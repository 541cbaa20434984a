"""The statistics of a comparison: each metric per policy over the parameter draws, and paired.

Every (policy, draw) has its metrics from the digest (`sim.studies.digest`); the differences
against the reference policy are taken draw by draw (the same patients and parameters: paired),
then every level and difference is summarised over the draws by its mean and the 2.5th and
97.5th percentiles (`interval`). The departments' records give the waits and utilisation of a
policy with a capacity, over the whole run and by quarter (`departments`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["METRICS", "PAIRED", "interval", "paired_per_draw", "summarise", "departments",
           "department_records", "QUARTER_MONTHS", "levels_and_differences"]

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
                              "recurrence was found before it would have caused symptoms",
                              "{:.3f}"),
    "median_lead_months": ("median lead time", "months",
                           "median, over detected recurrences, of the time from detection to when "
                           "symptoms would have appeared (0 when found by symptoms)", "{:.2f}"),
    "onset_to_detection_months": (
        "onset to detection of the first recurrence", "months",
        "mean, over patients with a detected recurrence, of the time from the onset of the first "
        "(its first lesion at 5 mm) to its detection", "{:.2f}"),
    "onset_to_detection_median_months": (
        "onset to detection, median", "months", "the median of the same times", "{:.2f}"),
    "detection_advance_months": (
        "detection advance over the reference", "months",
        "paired by patient: among patients whose first recurrence is detected under both this "
        "policy and the reference, the mean of the reference's detection time minus this "
        "policy's (itself a difference from the reference)", "{:.2f}"),
    "detection_advance_median_months": (
        "detection advance, median", "months", "the median of the same paired advances",
        "{:.2f}"),
    "detection_advance_q25_months": (
        "detection advance, 25th percentile", "months", "the lower quartile of the same",
        "{:.2f}"),
    "detection_advance_q75_months": (
        "detection advance, 75th percentile", "months", "the upper quartile of the same",
        "{:.2f}"),
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
PAIRED = [m for m in METRICS if m not in ("life_years_gained", "scans_per_additional_curative")
          and not m.startswith("detection_advance")]
"""The metrics whose difference from the reference is reported (paired by draw)."""


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, 2.5th percentile, 97.5th percentile) of the finite `values` (NaN if none)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan, np.nan
    return values.mean(), np.percentile(values, 2.5), np.percentile(values, 97.5)



def paired_per_draw(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The metrics of each (policy, draw) with those taken against the reference, draw by draw."""
    table = table.copy()
    ref = table.xs(reference, level="scenario_id")
    draws = table.index.get_level_values("draw")
    table["life_years_gained"] = (table["rmst_120_months"].to_numpy()
                                  - ref.loc[draws, "rmst_120_months"].to_numpy()) / 12.0
    extra_scans = (table["scans_per_patient"].to_numpy()
                   - ref.loc[draws, "scans_per_patient"].to_numpy())
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


def department_records(staging: Path) -> list[dict]:
    """Every department's record (one per policy of a unit, under its `name`), in the order of
    their names: each unit done keeps its policies' records in one file of
    `staging`/departments."""
    records = [record for path in (staging / "departments").glob("*.json")
               for record in json.loads(path.read_text())]
    return sorted(records, key=lambda record: record["name"])


def departments(staging: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(waits and utilisation per policy and kind of slot: over the whole run and at the peak
    quarter; the same by quarter of the departments' time). A department is one chunk of
    patients of one draw; quarters count from its first patient's hepatectomy."""
    requests = []
    for record in department_records(staging):
        for kind, data in (record["department"] or {}).items():
            waits, asked = np.asarray(data["waits"], float), np.asarray(data["asked"], float)
            requests.append(pd.DataFrame({
                "scenario_id": record["scenario_id"], "slots": kind, "department": record["name"],
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
        table = table.fillna({"utilisation": 0.0}).reset_index().assign(scenario_id=name,
                                                                         slots=kind)
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



def levels_and_differences(per_draw: pd.DataFrame, reference: str, order: list[str],
                           levels: list[str], paired: list[str], derived: dict | None = None,
                           interleaved: bool = False) -> list[dict]:
    """One row per policy of `order`: each column of `levels` summarised over the draws
    (`interval`: the column, its `_lower` and `_upper`), and each of `paired` taken against the
    reference draw by draw (the same draws and patients in both) and summarised the same way
    (`_difference`, `_difference_lower`, `_difference_upper`). `per_draw` is indexed by
    (scenario_id, draw); `derived` maps further names to functions of a policy's per-draw rows
    (a net benefit), each summarised both ways. The row's columns: every level, then every
    difference; `interleaved`: each level followed by its difference."""
    derived = derived or {}
    ref = per_draw.xs(reference, level="scenario_id")
    rows = []
    for name in order:
        values = per_draw.xs(name, level="scenario_id")
        against = ref.loc[values.index]
        series = {**{c: (values[c].to_numpy(float), against[c].to_numpy(float))
                     for c in dict.fromkeys([*levels, *paired])},
                  **{k: (f(values), f(against)) for k, f in derived.items()}}
        level, difference = {}, {}
        for column, (mine, theirs) in series.items():
            if column in levels or column in derived:
                level[column] = dict(zip((column, f"{column}_lower", f"{column}_upper"),
                                         interval(mine)))
            if column in paired or column in derived:
                suffixes = ("_difference", "_difference_lower", "_difference_upper")
                difference[column] = dict(zip((column + end for end in suffixes),
                                              interval(mine - theirs)))
        row = {"policy": name, "draws": len(values)}
        for part in ([level.get(c, {}) | difference.get(c, {}) for c in series] if interleaved
                     else [*level.values(), *difference.values()]):
            row |= part
        rows.append(row)
    return rows


def summarise(metrics: pd.DataFrame, reference: str,
              order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per policy: each metric's mean and 95% interval over the draws, its paired difference
    from the reference with its interval, and the draws the ratio leaves out; per (policy,
    draw): the metrics with those taken against the reference). `metrics`: the digest's."""
    per_draw = paired_per_draw(metrics, reference)
    rows = levels_and_differences(per_draw, reference, order, list(METRICS), PAIRED)
    for row in rows:
        status = per_draw.xs(row["policy"], level="scenario_id")["ratio_excluded"]
        row["ratio_draws_used"] = int((status == "").sum())
        row["ratio_draws_no_additional_reresection"] = int(
            (status == "no_additional_reresection").sum())
        row["ratio_draws_no_additional_imaging"] = int((status == "no_additional_imaging").sum())
    return pd.DataFrame(rows), per_draw
