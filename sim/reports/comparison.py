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
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sim.analysis import kaplan_meier, rmst, survival_at
from sim.reports.figures import png_bytes

__all__ = ["summarise", "write_outputs", "METRICS"]

_COLUMNS = ["scenario_id", "draw", "os_months", "death", "recurrence", "recurrence_months",
            "first_symptom_months", "curative_reoperation_months", "n_scans", "n_imaging", "n_workups",
            "surveillance_cost"]
METRICS = {  # name: (label, format)
    "os_36": ("overall survival at 3 years", "{:.3f}"),
    "os_60": ("overall survival at 5 years", "{:.3f}"),
    "os_120": ("overall survival at 10 years", "{:.3f}"),
    "rmst_120_months": ("restricted mean survival to 10 years (months)", "{:.2f}"),
    "life_years_gained": ("life-years gained per patient vs reference (to 10 years)", "{:.3f}"),
    "curative_share": ("share of patients with a curative re-resection", "{:.3f}"),
    "found_before_symptoms": ("share of recurrences found before symptoms", "{:.3f}"),
    "median_lead_months": ("median lead time of detection against symptoms (months)", "{:.2f}"),
    "visits_per_patient": ("surveillance visits per patient", "{:.2f}"),
    "scans_per_patient": ("imaging examinations per patient", "{:.2f}"),
    "workups_per_patient": ("work-ups of false positives per patient", "{:.3f}"),
    "scans_per_additional_curative": ("imaging examinations per additional curative re-resection vs reference", "{:.0f}"),
    "cost_per_patient": ("surveillance cost per patient", "{:.0f}"),
}


def _read(staging: Path) -> pd.DataFrame:
    return pq.read_table(staging / "patients", columns=_COLUMNS).to_pandas()


def _per_draw(patients: pd.DataFrame, reference: str) -> pd.DataFrame:
    groups = {"scenario_id": patients["scenario_id"].to_numpy(), "draw": patients["draw"].to_numpy()}
    km = kaplan_meier(patients["os_months"], patients["death"], groups=groups)
    at = survival_at(km, [36.0, 60.0, 120.0]).pivot(index=["scenario_id", "draw"], columns="time",
                                                    values="survival")
    at.columns = ["os_36", "os_60", "os_120"]
    restricted = rmst(km, 120.0).set_index(["scenario_id", "draw"])["rmst"].rename("rmst_120_months")
    recurred = patients[patients["recurrence"]]
    lead = (recurred["first_symptom_months"] - recurred["recurrence_months"]).clip(lower=0)
    by = patients.groupby(["scenario_id", "draw"])
    table = pd.concat([
        at, restricted,
        patients["curative_reoperation_months"].notna().groupby(
            [patients["scenario_id"], patients["draw"]]).mean().rename("curative_share"),
        (lead > 1e-9).groupby([recurred["scenario_id"], recurred["draw"]]).mean()
        .rename("found_before_symptoms"),
        lead.groupby([recurred["scenario_id"], recurred["draw"]]).median().rename("median_lead_months"),
        by["n_scans"].mean().rename("visits_per_patient"),
        by["n_imaging"].mean().rename("scans_per_patient"),
        by["n_workups"].mean().rename("workups_per_patient"),
        by["surveillance_cost"].mean().rename("cost_per_patient"),
    ], axis=1)
    ref = table.xs(reference, level="scenario_id")
    draws = table.index.get_level_values("draw")
    table["life_years_gained"] = (table["rmst_120_months"].to_numpy()
                                  - ref.loc[draws, "rmst_120_months"].to_numpy()) / 12.0
    extra_scans = table["scans_per_patient"].to_numpy() - ref.loc[draws, "scans_per_patient"].to_numpy()
    extra_cures = table["curative_share"].to_numpy() - ref.loc[draws, "curative_share"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        # defined when the policy buys cures with extra visits (not when it saves visits too)
        table["scans_per_additional_curative"] = np.where((extra_cures > 0) & (extra_scans > 0),
                                                          extra_scans / extra_cures, np.nan)
    return table


def _departments(staging: Path) -> pd.DataFrame:
    rows = {}
    for path in sorted((staging / "departments").glob("*.json")):
        record = json.loads(path.read_text())
        if not record["department"]:
            continue
        into = rows.setdefault(record["scenario_id"], {})
        for kind, data in record["department"].items():
            slot = into.setdefault(kind, {"waits": [], "used": 0, "offered": 0.0})
            slot["waits"] += data["waits"]
            slot["used"] += data["used"]
            slot["offered"] += data["offered"]
    out = []
    for name, kinds in rows.items():
        for kind, data in kinds.items():
            waits = np.asarray(data["waits"]) * (52 / 12)  # weeks
            out.append({"scenario_id": name, "slots": kind,
                        "mean_wait_weeks": float(waits.mean()) if len(waits) else 0.0,
                        "p95_wait_weeks": float(np.percentile(waits, 95)) if len(waits) else 0.0,
                        "utilisation": data["used"] / data["offered"] if data["offered"] else np.nan})
    return pd.DataFrame(out, columns=["scenario_id", "slots", "mean_wait_weeks", "p95_wait_weeks",
                                      "utilisation"])


def summarise(staging: Path, reference: str, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per policy summary with intervals, per (policy, draw) table, department waits)."""
    per_draw = _per_draw(_read(staging), reference)
    rows = []
    for name in order:
        values = per_draw.xs(name, level="scenario_id")
        row = {"policy": name, "draws": len(values)}
        for metric in METRICS:
            v = values[metric].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            row[metric] = v.mean() if len(v) else np.nan
            row[f"{metric}_lower"] = np.percentile(v, 2.5) if len(v) else np.nan
            row[f"{metric}_upper"] = np.percentile(v, 97.5) if len(v) else np.nan
        rows.append(row)
    return pd.DataFrame(rows), per_draw, _departments(staging)


def _dominated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A policy is dominated when another needs no more imaging and achieves at least as much,
    and is strictly better in one of the two."""
    out = np.zeros(len(x), bool)
    for i in range(len(x)):
        better = (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        out[i] = better.any()
    return out


def _survival_picture(staging: Path, order: list[str]):
    patients = _read(staging)
    grid = np.arange(0.0, 121.0, 1.0)
    groups = {"scenario_id": patients["scenario_id"].to_numpy(), "draw": patients["draw"].to_numpy()}
    at = survival_at(kaplan_meier(patients["os_months"], patients["death"], groups=groups), grid)

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for name in order:
            curves = at[at["scenario_id"] == name].pivot(index="draw", columns="time", values="survival")
            axis.plot(grid, curves.mean().to_numpy(), label=name)
            if len(curves) > 2:
                axis.fill_between(grid, curves.quantile(0.025).to_numpy(), curves.quantile(0.975).to_numpy(),
                                  alpha=0.12)
        axis.set(xlabel="months from hepatectomy", ylabel="overall survival", ylim=(0, 1), xlim=(0, 120),
                 title="Overall survival by policy (mean and 95% interval over parameter draws)")
        axis.set_xticks(np.arange(0, 121, 12))
        axis.legend(fontsize=7)
        return figure
    return draw


def _frontier_picture(summary: pd.DataFrame):
    def draw(plt):
        figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for axis, metric, scale, label in (
                (axes[0], "curative_share", 1.0, "share with a curative re-resection"),
                (axes[1], "rmst_120_months", 1 / 12, "life-years per patient within 10 years")):
            x, y = summary["scans_per_patient"].to_numpy(), summary[metric].to_numpy() * scale
            lower = summary[f"{metric}_lower"].to_numpy() * scale
            upper = summary[f"{metric}_upper"].to_numpy() * scale
            dominated = _dominated(x, y)
            order = np.argsort(x)
            frontier = order[~dominated[order]]
            axis.plot(x[frontier], y[frontier], "-", color="gray", lw=1, label="efficiency frontier")
            for i, name in enumerate(summary["policy"]):
                axis.errorbar(x[i], y[i], yerr=[[y[i] - lower[i]], [upper[i] - y[i]]],
                              fmt="o", mfc="white" if dominated[i] else None, capsize=3)
                axis.annotate(name + (" (dominated)" if dominated[i] else ""), (x[i], y[i]),
                              fontsize=7, xytext=(4, 4), textcoords="offset points")
            axis.set(xlabel="imaging examinations per patient", ylabel=label)
        axes[0].legend(fontsize=7, loc="lower right")
        figure.suptitle("Imaging against outcomes (open markers: dominated policies)")
        return figure
    return draw


def _metric_rows(summary: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Each metric's label and one cell per policy: mean over draws [95% interval]."""
    rows = []
    for metric, (label, fmt) in METRICS.items():
        cells = []
        for _, row in summary.iterrows():
            if not np.isfinite(row[metric]):
                cells.append("")
                continue
            cell = fmt.format(row[metric])
            if row["draws"] > 1 and np.isfinite(row[f"{metric}_lower"]):
                cell += f" [{fmt.format(row[f'{metric}_lower'])}, {fmt.format(row[f'{metric}_upper'])}]"
            cells.append(cell)
        rows.append((label, cells))
    return rows


def _heading(meta: dict) -> str:
    return (f"{meta['patients']} patients ({meta['primary']}) per policy and draw, followed "
            f"{meta['years']} years; {meta['draws']} parameter draw(s); reference policy: "
            f"`{meta['reference']}`. Values: mean over draws [95% interval].")


def _markdown(summary: pd.DataFrame, departments: pd.DataFrame, meta: dict) -> str:
    lines = [f"# {meta['name']}", "", meta["description"], "", _heading(meta), ""]
    lines += ["| metric | " + " | ".join(summary["policy"]) + " |", "|---" * (len(summary) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in _metric_rows(summary)]
    if len(departments):
        lines += ["", "Capacity (one department per chunk of patients):", "",
                  "| policy | slots | mean wait (weeks) | 95th percentile wait (weeks) | utilisation |",
                  "|---|---|---|---|---|"]
        for r in departments.itertuples():
            lines.append(f"| {r.scenario_id} | {r.slots} | {r.mean_wait_weeks:.2f} | "
                         f"{r.p95_wait_weeks:.2f} | {r.utilisation:.2f} |")
    lines += ["", "![survival by policy](survival.png)", "", "![frontier](frontier.png)", ""]
    return "\n".join(lines)


def _html(summary: pd.DataFrame, departments: pd.DataFrame, meta: dict,
          pictures: dict[str, bytes]) -> str:
    escape = html.escape
    head = "".join(f"<th>{escape(p)}</th>" for p in summary["policy"])
    body = "".join(f"<tr><td>{escape(label)}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
                   + "</tr>" for label, cells in _metric_rows(summary))
    capacity = ""
    if len(departments):
        capacity = ("<h2>Capacity</h2>" + departments.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
    images = "".join(f'<h2>{escape(name)}</h2><img alt="{escape(name)}" src="data:image/png;base64,'
                     f'{base64.b64encode(png).decode()}">' for name, png in pictures.items())
    style = ("body{font-family:sans-serif;max-width:75em;margin:auto} table{border-collapse:collapse;"
             "font-size:12px} td,th{border:1px solid #ccc;padding:3px 6px} td:first-child{font-weight:600}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(meta['name'])}</title>"
            f"<style>{style}</style></head><body><h1>{escape(meta['name'])}</h1>"
            f"<p>{escape(meta['description'])}</p><p>{escape(_heading(meta))}</p>"
            f"<table><tr><th>metric</th>{head}</tr>{body}</table>{capacity}{images}</body></html>\n")


def write_outputs(staging: Path, meta: dict, order: list[str]) -> dict[str, Path]:
    """results.csv, results_by_draw.csv, capacity.csv, results.md, report.html, survival.png,
    frontier.png in `staging` (each under a temporary name, then renamed)."""
    summary, per_draw, departments = summarise(staging, meta["reference"], order)
    pictures = {"survival.png": png_bytes(_survival_picture(staging, order)),
                "frontier.png": png_bytes(_frontier_picture(summary))}
    markdown = _markdown(summary, departments, meta)
    page = _html(summary, departments, meta, pictures)
    files = {"results.csv": summary.to_csv(index=False).encode(),
             "results_by_draw.csv": per_draw.reset_index().to_csv(index=False).encode(),
             "capacity.csv": departments.to_csv(index=False).encode(),
             "results.md": markdown.encode(), "report.html": page.encode(), **pictures}
    paths = {}
    for name, data in files.items():
        partial = staging / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(staging / name)
        paths[name] = staging / name
    return paths
