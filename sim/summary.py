"""The survival summary of a simulated cohort: a table (CSV and Markdown) and a figure.

``summarize(directory)`` reads ``directory/patients.parquet`` and writes, by primary site and for
all patients together:

- overall and disease-free survival at 12, 36, 60 and 120 months with 95% intervals and numbers at
  risk, and their medians with 95% intervals (Kaplan–Meier, log-log intervals);
- for each site of recurrence (pelvis, liver, lung, other) at 60 months: one minus the Kaplan–Meier
  estimate of the time to its first detection (other events censored), and the Aalen–Johansen
  cumulative incidence of its first detection with death without it as the competing event;
- ``survival.png``: overall and disease-free survival curves with their 95% bands and the numbers at
  risk every 12 months under the x axis.

Each file is written under a temporary name in the directory and renamed when complete.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis import cumulative_incidence, cumulative_incidence_at, kaplan_meier, median_survival, survival_at

__all__ = ["summarize"]

SURVIVAL_MONTHS = (12.0, 36.0, 60.0, 120.0)
SITE_MONTHS = 60.0
AT_RISK_MONTHS = tuple(float(m) for m in range(0, 121, 12))
SITES = ("pelvis", "liver", "lung", "other")
ALL_PATIENTS = "all"
ENDPOINTS = {"overall_survival": ("os_months", "death"), "disease_free_survival": ("dfs_months", "dfs_event")}
LABELS = {"overall_survival": "Overall survival", "disease_free_survival": "Disease-free survival"}
REQUIRED = ("primary_site", "os_months", "death", "dfs_months", "dfs_event",
            *(f"{site}_recurrence_months" for site in SITES))
COLUMNS = ["primary_site", "endpoint", "quantity", "time_months", "estimate", "lower", "upper", "at_risk"]


def summarize(directory) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md`` and ``survival.png`` next to ``patients.parquet``.

    Returns the paths by kind: ``{"csv": ..., "markdown": ..., "figure": ...}``.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    source = Path(directory) / "patients.parquet"
    missing = [column for column in REQUIRED if column not in pq.read_schema(source).names]
    if missing:
        raise ValueError(f"{source} lacks the column(s) {', '.join(missing)}.")
    patients = pq.read_table(source, columns=list(REQUIRED)).to_pandas()
    directory = source.parent
    curves, table = _survival_table(patients)
    paths = {"csv": directory / "summary.csv", "markdown": directory / "summary.md",
             "figure": directory / "survival.png"}
    _write_atomically(paths["csv"], lambda f: f.write(table.to_csv(index=False).encode()))
    _write_atomically(paths["markdown"], lambda f: f.write(_markdown(table, patients).encode()))
    _write_atomically(paths["figure"], lambda f: _draw(curves, f))
    return paths


def _stacked(patients: pd.DataFrame, endpoints: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Every endpoint's (duration, event) for each patient twice: under its primary site and under
    all patients; with the endpoint and site labels as the groups of one analysis call."""
    site = patients["primary_site"].astype(str).to_numpy()
    n = site.shape[0]
    groups = {"endpoint": np.repeat(list(endpoints), 2 * n),
              "primary_site": np.tile(np.concatenate([site, np.full(n, ALL_PATIENTS)]), len(endpoints))}
    duration = np.concatenate([np.tile(d, 2) for d, _ in endpoints.values()])
    event = np.concatenate([np.tile(e, 2) for _, e in endpoints.values()])
    return duration, event, groups


def _site_arrays(patients: pd.DataFrame, site: str):
    """(time, detected, died first): to the first detection at ``site``, else to death or censoring."""
    detected_at = patients[f"{site}_recurrence_months"].to_numpy(float)
    detected = ~np.isnan(detected_at)
    time = np.where(detected, detected_at, patients["os_months"].to_numpy(float))
    return time, detected, ~detected & patients["death"].to_numpy(bool)


def _survival_table(patients: pd.DataFrame):
    endpoints = {name: (patients[d].to_numpy(float), patients[e].to_numpy(bool)) for name, (d, e) in ENDPOINTS.items()}
    sites = {site: _site_arrays(patients, site) for site in SITES}
    endpoints |= {f"{site}_recurrence": (time, detected) for site, (time, detected, _) in sites.items()}
    km = kaplan_meier(*_stacked(patients, endpoints))
    survival = km[km["endpoint"].isin(list(ENDPOINTS))]

    at_times = survival_at(survival, SURVIVAL_MONTHS).assign(quantity="survival")
    medians = median_survival(survival).assign(quantity="median_months", time_months=np.nan, at_risk=np.nan)
    medians = medians.rename(columns={"median": "estimate"})
    site_km = survival_at(km[~km["endpoint"].isin(list(ENDPOINTS))], [SITE_MONTHS])
    # one minus the curve: the interval's ends swap
    site_km = site_km.assign(quantity="one_minus_km", estimate=1 - site_km["survival"],
                             lower=1 - site_km["upper"], upper=1 - site_km["lower"])

    causes = {name: (time, np.where(detected, 1, np.where(died, 2, 0))) for name, (time, detected, died) in sites.items()}
    incidence = cumulative_incidence(*_stacked(patients, {f"{s}_recurrence": c for s, c in causes.items()}))
    incidence = cumulative_incidence_at(incidence[incidence["cause"] == 1], [SITE_MONTHS])
    incidence = incidence.drop(columns="cause").assign(quantity="cumulative_incidence")

    parts = [at_times.rename(columns={"survival": "estimate"}), medians, site_km, incidence.rename(
        columns={"cumulative_incidence": "estimate"})]
    table = pd.concat([p.rename(columns={"time": "time_months"}) for p in parts], ignore_index=True)
    ranks = {"primary_site": {ALL_PATIENTS: ""}, "endpoint": {name: i for i, name in enumerate(endpoints)},
             "quantity": {"survival": 0, "median_months": 1, "one_minus_km": 2, "cumulative_incidence": 3}}
    table = table.sort_values([*ranks, "time_months"], kind="stable",  # all patients first, then by site
                              key=lambda c: c.map(lambda v: ranks[c.name].get(v, v)) if c.name in ranks else c)
    table["at_risk"] = table["at_risk"].astype("Int64")
    return survival, table[COLUMNS].reset_index(drop=True)


def _markdown(table: pd.DataFrame, patients: pd.DataFrame) -> str:
    counts = patients["primary_site"].astype(str).value_counts().sort_index()
    lines = ["# Survival summary", "",
             f"{len(patients)} patients ({', '.join(f'{site} {n}' for site, n in counts.items())}); "
             "Kaplan–Meier estimates with 95% log-log intervals; times in months.", ""]

    def interval(row, digits=3):
        def show(value):
            return f"{value:.{digits}f}" if np.isfinite(value) else "not reached"

        return f"{show(row.estimate)} ({show(row.lower)}–{show(row.upper)})"

    lines += ["## Overall and disease-free survival", "",
              "| Primary site | Endpoint | Months | Estimate (95% CI) | At risk |", "|---|---|---:|---|---:|"]
    for row in table[table["quantity"] == "survival"].itertuples():
        lines.append(f"| {row.primary_site} | {LABELS[row.endpoint]} | {row.time_months:g} | {interval(row)} | "
                     f"{row.at_risk} |")
    lines += ["", "## Median survival", "", "| Primary site | Endpoint | Median months (95% CI) |", "|---|---|---|"]
    for row in table[table["quantity"] == "median_months"].itertuples():
        lines.append(f"| {row.primary_site} | {LABELS[row.endpoint]} | {interval(row, 1)} |")
    lines += ["", f"## Recurrence by site at {SITE_MONTHS:g} months", "",
              "1 − Kaplan–Meier: time to the first detection at the site, other events censored. "
              "Cumulative incidence: Aalen–Johansen, death without recurrence at the site competing.", "",
              "| Primary site | Site | 1 − Kaplan–Meier (95% CI) | Cumulative incidence (95% CI) |", "|---|---|---|---|"]
    by_site = table[table["quantity"].isin(["one_minus_km", "cumulative_incidence"])]
    for (site, endpoint), rows in by_site.groupby(["primary_site", "endpoint"], sort=False):
        km, aj = (next(rows[rows["quantity"] == q].itertuples()) for q in ("one_minus_km", "cumulative_incidence"))
        lines.append(f"| {site} | {endpoint.removesuffix('_recurrence')} | {interval(km)} | {interval(aj)} |")
    return "\n".join(lines) + "\n"


def _draw(curves: pd.DataFrame, file) -> None:
    """Overall and disease-free survival with 95% bands, numbers at risk in a table under each panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 (keeps `import sim` light)
    from matplotlib.figure import Figure  # noqa: PLC0415

    sites = [ALL_PATIENTS, *sorted(set(curves["primary_site"]) - {ALL_PATIENTS})]
    at_risk = survival_at(curves, AT_RISK_MONTHS)
    figure = Figure(figsize=(12, 6), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 2, height_ratios=[5, 0.4 + 0.25 * len(sites)])
    for column, endpoint in enumerate(ENDPOINTS):
        panel = figure.add_subplot(grid[0, column])
        counts_axes = figure.add_subplot(grid[1, column], sharex=panel)
        for k, site in enumerate(sites):
            rows = curves[(curves["endpoint"] == endpoint) & (curves["primary_site"] == site)]
            rows = rows[rows["time"] <= AT_RISK_MONTHS[-1]]
            time = np.concatenate([[0.0], rows["time"], [AT_RISK_MONTHS[-1]]])
            color = f"C{k}"
            panel.step(time, _steps(rows, "survival"), where="post", color=color, label=site)
            panel.fill_between(time, _steps(rows, "lower"), _steps(rows, "upper"), step="post", color=color,
                               alpha=0.15, linewidth=0)
            counts = at_risk[(at_risk["endpoint"] == endpoint) & (at_risk["primary_site"] == site)]["at_risk"]
            for month, count in zip(AT_RISK_MONTHS, counts):
                counts_axes.text(month, k, f"{count}", ha="center", va="center", fontsize=8, color=color)
        panel.set(title=LABELS[endpoint], xlim=(0, AT_RISK_MONTHS[-1]), ylim=(0, 1.02), xticks=AT_RISK_MONTHS,
                  xlabel="Months from hepatectomy", ylabel="Survival" if column == 0 else None)
        panel.grid(alpha=0.3)
        counts_axes.set(ylim=(len(sites) - 0.5, -0.5), yticks=range(len(sites)), yticklabels=sites)
        counts_axes.set_title("Number at risk", fontsize=9, loc="left")
        counts_axes.tick_params(bottom=False, labelbottom=False, left=False, pad=14)
        for k, label in enumerate(counts_axes.get_yticklabels()):
            label.set_color(f"C{k}")
        for spine in counts_axes.spines.values():
            spine.set_visible(False)
    figure.axes[0].legend(title="Primary site", loc="upper right")
    figure.savefig(file, format="png", dpi=120)


def _steps(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A curve's values from time 0 (where it is 1) to the right edge of the plot."""
    values = rows[column].to_numpy()
    return np.concatenate([[1.0], values, values[-1:] if values.size else [1.0]])


def _write_atomically(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, then rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:  # a new file, with the usual permissions
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
