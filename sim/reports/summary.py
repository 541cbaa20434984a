"""The survival summary of a simulated cohort: a table (CSV and Markdown) and a figure.

``summarize(directory)`` reads ``directory/patients.parquet`` and writes, by primary site and for
all patients together (``primary_site`` = ``all``):

- overall and disease-free survival at 12, 36, 60 and 120 months with 95% intervals and numbers at
  risk, and their medians with 95% intervals (Kaplan–Meier, log-log intervals);
- for each site of recurrence (pelvis, liver, lung, other) at 60 months: one minus the Kaplan–Meier
  estimate of the time to its first detection (other events censored), and the Aalen–Johansen
  cumulative incidence of its first detection with death without it as the competing event;
- ``survival.png``: overall and disease-free survival curves with their 95% bands and the numbers at
  risk every 12 months under the x axis.

The CSV is tidy: one row per primary site, endpoint, quantity and time (``time_months``, empty for
medians). Each file is written under a temporary name in the directory and renamed when complete.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis import (
    cumulative_incidence,
    cumulative_incidence_at,
    kaplan_meier,
    median_survival,
    survival_at,
)

__all__ = ["summarize"]

SURVIVAL_MONTHS = (12.0, 36.0, 60.0, 120.0)
SITE_MONTHS = 60.0
AT_RISK_MONTHS = tuple(float(month) for month in range(0, 121, 12))
SITES = ("pelvis", "liver", "lung", "other")
ALL_PATIENTS = "all"
ENDPOINTS = {"overall_survival": ("os_months", "death"), "disease_free_survival": ("dfs_months", "dfs_event")}
LABELS = {"overall_survival": "Overall survival", "disease_free_survival": "Disease-free survival"}
QUANTITIES = ("survival", "median_months", "one_minus_km", "cumulative_incidence")
REQUIRED = ("primary_site", "os_months", "death", "dfs_months", "dfs_event",
            *(f"{site}_recurrence_months" for site in SITES))
COLUMNS = ["primary_site", "endpoint", "quantity", "time_months", "estimate", "lower", "upper", "at_risk"]


def summarize(directory) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md`` and ``survival.png`` next to ``patients.parquet``.

    Returns the paths by kind: ``{"csv": ..., "markdown": ..., "figure": ...}``.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    source = Path(directory) / "patients.parquet"
    names = pq.ParquetDataset(source).schema.names  # a single file or a dataset directory
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        raise ValueError(f"{source} lacks the column(s) {', '.join(missing)}.")
    patients = pq.read_table(source, columns=list(REQUIRED)).to_pandas()
    curves, table = _survival_table(patients)
    paths = {"csv": source.with_name("summary.csv"), "markdown": source.with_name("summary.md"),
             "figure": source.with_name("survival.png")}
    _write_atomically(paths["csv"], lambda file: file.write(table.to_csv(index=False).encode()))
    _write_atomically(paths["markdown"], lambda file: file.write(_markdown(table, patients).encode()))
    _write_atomically(paths["figure"], lambda file: _draw(curves, file))
    return paths


def _site_arrays(patients: pd.DataFrame, site: str):
    """(time, detected, died first): to the first detection at ``site``, else to death or censoring."""
    detected_at = patients[f"{site}_recurrence_months"].to_numpy(float)
    detected = ~np.isnan(detected_at)
    time = np.where(detected, detected_at, patients["os_months"].to_numpy(float))
    return time, detected, ~detected & patients["death"].to_numpy(bool)


def _by_site_and_overall(patients: pd.DataFrame, endpoints: dict[str, tuple[np.ndarray, np.ndarray]]):
    """(durations, events, groups) of every endpoint, each patient twice: under its primary site and
    under all patients; one analysis call then covers every endpoint and site."""
    site = patients["primary_site"].astype(str).to_numpy()
    n = site.shape[0]
    groups = {"endpoint": np.repeat(list(endpoints), 2 * n),
              "primary_site": np.tile(np.concatenate([site, np.full(n, ALL_PATIENTS)]), len(endpoints))}
    durations = np.concatenate([np.tile(duration, 2) for duration, _ in endpoints.values()])
    events = np.concatenate([np.tile(event, 2) for _, event in endpoints.values()])
    return durations, events, groups


def _survival_table(patients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Kaplan–Meier tables of overall and disease-free survival, the summary table)."""
    sites = {site: _site_arrays(patients, site) for site in SITES}
    endpoints = {name: (patients[duration].to_numpy(float), patients[event].to_numpy(bool))
                 for name, (duration, event) in ENDPOINTS.items()}
    endpoints |= {f"{site}_recurrence": (time, detected) for site, (time, detected, _) in sites.items()}
    km = kaplan_meier(*_by_site_and_overall(patients, endpoints))
    is_survival = km["endpoint"].isin(list(ENDPOINTS)).to_numpy()
    survival = km[is_survival]

    at_times = survival_at(survival, SURVIVAL_MONTHS).rename(columns={"survival": "estimate"})
    medians = median_survival(survival).rename(columns={"median": "estimate"})
    site_km = survival_at(km[~is_survival], [SITE_MONTHS])
    site_km = site_km.assign(estimate=1 - site_km["survival"], lower=1 - site_km["upper"],
                             upper=1 - site_km["lower"])  # one minus the curve: the ends swap
    causes = {f"{site}_recurrence": (time, np.where(detected, 1, np.where(died, 2, 0)))
              for site, (time, detected, died) in sites.items()}
    incidence = cumulative_incidence(*_by_site_and_overall(patients, causes))
    incidence = cumulative_incidence_at(incidence[incidence["cause"] == 1], [SITE_MONTHS])

    incidence = incidence.rename(columns={"cumulative_incidence": "estimate"})
    parts = [at_times.assign(quantity="survival"), medians.assign(quantity="median_months"),
             site_km.assign(quantity="one_minus_km"), incidence.assign(quantity="cumulative_incidence")]
    table = pd.concat(parts, ignore_index=True).rename(columns={"time": "time_months"})
    ranks = {"primary_site": {ALL_PATIENTS: ""},  # all patients first, then the sites in order
             "endpoint": {name: rank for rank, name in enumerate(endpoints)},
             "quantity": {name: rank for rank, name in enumerate(QUANTITIES)}}

    def rank(column: pd.Series) -> pd.Series:
        if column.name not in ranks:
            return column
        return column.map(lambda value: ranks[column.name].get(value, value))

    table = table.sort_values([*ranks, "time_months"], key=rank, kind="stable")
    table["at_risk"] = table["at_risk"].astype("Int64")
    return survival, table[COLUMNS].reset_index(drop=True)


def _markdown(table: pd.DataFrame, patients: pd.DataFrame) -> str:
    counts = patients["primary_site"].astype(str).value_counts().sort_index()
    by_site = ", ".join(f"{site} {count}" for site, count in counts.items())
    lines = ["# Survival summary", "",
             f"{len(patients)} patients ({by_site}); Kaplan–Meier estimates with 95% log-log intervals; "
             "times in months.", "",
             "## Overall and disease-free survival", "",
             "| Primary site | Endpoint | Months | Estimate (95% CI) | At risk |", "|---|---|---:|---|---:|"]
    for row in table[table["quantity"] == "survival"].itertuples():
        lines.append(f"| {row.primary_site} | {LABELS[row.endpoint]} | {row.time_months:g} | "
                     f"{_interval(row)} | {row.at_risk} |")
    lines += ["", "## Median survival", "",
              "| Primary site | Endpoint | Median months (95% CI) |", "|---|---|---|"]
    for row in table[table["quantity"] == "median_months"].itertuples():
        lines.append(f"| {row.primary_site} | {LABELS[row.endpoint]} | {_interval(row, 1)} |")
    lines += ["", f"## Recurrence by site at {SITE_MONTHS:g} months", "",
              "1 − Kaplan–Meier: time to the first detection at the site, other events censored. "
              "Cumulative incidence: Aalen–Johansen, death without recurrence at the site competing.", "",
              "| Primary site | Site | 1 − Kaplan–Meier (95% CI) | Cumulative incidence (95% CI) |",
              "|---|---|---|---|"]
    recurrence = table[table["quantity"].isin(["one_minus_km", "cumulative_incidence"])]
    for (site, endpoint), rows in recurrence.groupby(["primary_site", "endpoint"], sort=False):
        km, aj = (next(rows[rows["quantity"] == quantity].itertuples())
                  for quantity in ("one_minus_km", "cumulative_incidence"))
        name = endpoint.removesuffix("_recurrence")
        lines.append(f"| {site} | {name} | {_interval(km)} | {_interval(aj)} |")
    return "\n".join(lines) + "\n"


def _interval(row, digits: int = 3) -> str:
    def show(value: float) -> str:
        return f"{value:.{digits}f}" if np.isfinite(value) else "not reached"

    return f"{show(row.estimate)} ({show(row.lower)}–{show(row.upper)})"


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
            for month, count in zip(AT_RISK_MONTHS, counts, strict=True):
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
