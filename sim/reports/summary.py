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
_FIGURE_GRID = np.linspace(0.0, AT_RISK_MONTHS[-1], 2401)  # the curves drawn, every 0.05 month
COLUMNS = ["primary_site", "endpoint", "quantity", "time_months", "estimate", "lower", "upper", "at_risk"]


def summarize(directory) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md`` and ``survival.png`` next to ``patients.parquet``.

    Returns the paths by kind: ``{"csv": ..., "markdown": ..., "figure": ...}``. Memory is bounded
    by a few numbers per patient: the primary site is read as integer codes, and each endpoint
    is analysed on its own and reduced to its summary rows before the next.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    source = Path(directory) / "patients.parquet"
    names = pq.ParquetDataset(source).schema.names  # a single file or a dataset directory
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        raise ValueError(f"{source} lacks the column(s) {', '.join(missing)}.")
    patients = pq.read_table(source, columns=list(REQUIRED),
                             read_dictionary=["primary_site"]).to_pandas()
    if patients.empty:
        raise ValueError(f"{source} holds no patients")
    curves, at_risk, table = _survival_table(patients)
    paths = {"csv": source.with_name("summary.csv"), "markdown": source.with_name("summary.md"),
             "figure": source.with_name("survival.png")}
    _write_atomically(paths["csv"], lambda file: file.write(table.to_csv(index=False).encode()))
    _write_atomically(paths["markdown"], lambda file: file.write(_markdown(table, patients).encode()))
    _write_atomically(paths["figure"], lambda file: _draw(curves, at_risk, file))
    return paths


def _site_arrays(patients: pd.DataFrame, site: str):
    """(time, detected, died first): to the first detection at ``site``, else to death or censoring."""
    detected_at = patients[f"{site}_recurrence_months"].to_numpy(float)
    detected = ~np.isnan(detected_at)
    time = np.where(detected, detected_at, patients["os_months"].to_numpy(float))
    return time, detected, ~detected & patients["death"].to_numpy(bool)


def _endpoints(patients: pd.DataFrame):
    """(name, durations, events, causes or None) of each endpoint, one at a time."""
    for name, (duration, event) in ENDPOINTS.items():
        yield name, patients[duration].to_numpy(float), patients[event].to_numpy(bool), None
    for site in SITES:
        time, detected, died = _site_arrays(patients, site)
        yield f"{site}_recurrence", time, detected, np.where(detected, 1, np.where(died, 2, 0))


def _groups(patients: pd.DataFrame):
    """(name, rows) of all patients (rows None: no copy), then of each primary site."""
    categories = patients["primary_site"].astype("category")
    codes = categories.cat.codes.to_numpy()
    yield ALL_PATIENTS, None
    for code, name in enumerate(categories.cat.categories.astype(str)):
        yield name, codes == code


def _until(horizon: float, time: np.ndarray, event: np.ndarray):
    """The same estimates up to `horizon` from fewer distinct times: every time after it becomes
    one censored time (an estimate at `horizon` depends on nothing later)."""
    after = time > horizon
    return np.where(after, horizon + 1.0, time), np.where(after, 0, event)


def _survival_table(patients: pd.DataFrame):
    """(survival curves on a grid for the figure, numbers at risk under it, the summary table).

    One endpoint and one group at a time, each reduced to its summary rows before the next, so
    that memory stays a few arrays of the group's size."""
    parts, curves, at_risk = [], [], []
    for endpoint, durations, events, causes in _endpoints(patients):
        for site, rows in _groups(patients):
            time, event = (durations, events) if rows is None else (durations[rows], events[rows])
            label = {"endpoint": endpoint, "primary_site": site}
            if causes is None:   # overall and disease-free survival: the whole curve
                km = kaplan_meier(time, event)
                parts += [survival_at(km, SURVIVAL_MONTHS).rename(columns={"survival": "estimate"})
                          .assign(quantity="survival", **label),
                          median_survival(km).rename(columns={"median": "estimate"})
                          .assign(quantity="median_months", **label)]
                curves.append(survival_at(km, _FIGURE_GRID).assign(**label))
                at_risk.append(survival_at(km, AT_RISK_MONTHS).assign(**label))
                continue
            # a site of recurrence at 60 months
            one_minus = survival_at(kaplan_meier(*_until(SITE_MONTHS, time, event)), [SITE_MONTHS])
            parts.append(one_minus.assign(estimate=1 - one_minus["survival"],  # the ends swap
                                          lower=1 - one_minus["upper"], upper=1 - one_minus["lower"],
                                          quantity="one_minus_km", **label))
            cause = causes if rows is None else causes[rows]
            incidence = cumulative_incidence(*_until(SITE_MONTHS, time, cause))
            incidence = incidence[incidence["cause"] == 1]
            if incidence.empty:   # no recurrence at this site in the group: none by 60 months
                incidence = one_minus[["time", "at_risk"]].assign(
                    cumulative_incidence=0.0, se=0.0, lower=0.0, upper=0.0)
            else:
                incidence = cumulative_incidence_at(incidence, [SITE_MONTHS])
            parts.append(incidence.rename(columns={"cumulative_incidence": "estimate"})
                         .assign(quantity="cumulative_incidence", **label))
    table = pd.concat(parts, ignore_index=True).rename(columns={"time": "time_months"})
    ranks = {"primary_site": {ALL_PATIENTS: ""},  # all patients first, then the sites in order
             "endpoint": {name: rank for rank, name in enumerate(
                 [*ENDPOINTS, *(f"{site}_recurrence" for site in SITES)])},
             "quantity": {name: rank for rank, name in enumerate(QUANTITIES)}}

    def rank(column: pd.Series) -> pd.Series:
        if column.name not in ranks:
            return column
        return column.map(lambda value: ranks[column.name].get(value, value))

    table = table.sort_values([*ranks, "time_months"], key=rank, kind="stable")
    table["at_risk"] = table["at_risk"].astype("Int64")
    return (pd.concat(curves, ignore_index=True), pd.concat(at_risk, ignore_index=True),
            table[COLUMNS].reset_index(drop=True))


def _markdown(table: pd.DataFrame, patients: pd.DataFrame) -> str:
    counts = patients["primary_site"].value_counts().sort_index()
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


def _draw(curves: pd.DataFrame, at_risk: pd.DataFrame, file) -> None:
    """Overall and disease-free survival with 95% bands, numbers at risk in a table under each panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 (keeps `import sim` light)
    from matplotlib.figure import Figure  # noqa: PLC0415

    sites = [ALL_PATIENTS, *sorted(set(curves["primary_site"]) - {ALL_PATIENTS})]
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
