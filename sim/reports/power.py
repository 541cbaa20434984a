"""Write a power curve: ``power.csv`` (one row per endpoint and sample size), ``power.md`` (the same
with the design, the effect assumed by the formulas and the smallest sample size), ``power.png``
(the curve with its intervals, the formula's curve, the smallest n and, for a cohort design, the
study's n), ``report.html`` (all of it in one self-contained page) and ``power.json`` (the summary,
the run).

Each file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sim.reports.document import (Bullets, Document, Figure, Heading, Paragraph, Table, html,
                                  markdown)
from sim.reports.text import number
from sim.studies.power.curve import PowerCurve

__all__ = ["write_report", "render_markdown", "power_document", "describe_smallest"]

_FILES = ("power.csv", "power.md", "power.png", "power.json", "report.html")


def _replace(path: Path, write) -> None:
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def _bound(value: float, where: str, first: int, last: int) -> str:
    if where == "beyond":
        return f">{last:,}"
    if where == "at_or_below":
        return f"<={first:,}"
    return f"{value:,.0f}"


def describe_smallest(curve: PowerCurve) -> list[str]:
    """One line per endpoint: the smallest n reaching the target, its interval, the formula's n."""
    first, last = curve.design.sample_sizes[0], curve.design.sample_sizes[-1]
    lines = []
    for row in curve.smallest.itertuples():
        # no effect (a null design) needs infinitely many: the formula never reaches the target
        analytic = (f"n = {row.analytic_n:,.0f}" if math.isfinite(row.analytic_n)
                    else "not reached")
        events = (f" ({math.ceil(row.analytic_events):,} events)"
                  if math.isfinite(row.analytic_events) else "")
        interval = (f"interval {_bound(row.n_lower, row.n_lower_where, first, last)} to "
                    f"{_bound(row.n_upper, row.n_upper_where, first, last)}")
        if row.n_where == "beyond":
            found = f"not reached by n = {last:,}, the largest size simulated ({interval})"
        elif row.n_where == "at_or_below":
            found = f"reached already at n = {first:,}, the smallest size simulated ({interval})"
        else:
            found = f"at n = {row.n:,.0f} ({interval})"
        lines.append(f"{row.endpoint} ({row.test}): {row.target_power:.0%} power {found}; formula: {analytic}{events}")
    return lines


_WORDS = {"endpoint": "endpoint", "test": "test", "n": "patients", "replicates": "trials simulated",
          "events": "mean events", "power": "power (simulated)", "power_lower": "its 95% lower",
          "power_upper": "its 95% upper", "analytic_power": "power (formula)",
          "schoenfeld_power": "power (Schoenfeld)", "freedman_power": "power (Freedman)",
          "failed": "failed fits", "expected_events": "expected events",
          "expected_months": "expected duration (months)"}
_LOOK_WORDS = {"n": "patients", "look": "look", "fraction": "information fraction", "boundary_z": "boundary (z)",
               "stop": "stops here (simulated)", "futility_z": "futility boundary (-z)",
               "futility_stop": "stops for futility", "events": "mean events", "months": "month (mean)",
               "months_lower": "month 2.5%", "months_upper": "month 97.5%"}


def looks_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """The per-look columns of a sequential design's table, one row per (endpoint, test,
    patients, look); None without looks."""
    looks = sorted({int(c[4:c.index("_")]) for c in table.columns if c.startswith("look")})
    if not looks:
        return None
    names = [name for name in ("fraction", "boundary_z", "stop", "futility_z", "futility_stop",
                               "events", "months", "months_lower", "months_upper")
             if f"look1_{name}" in table.columns]
    rows = []
    for _, row in table.iterrows():
        for k in looks:
            rows.append({"endpoint": row["endpoint"], "test": row["test"], "n": int(row["n"]),
                         "look": k, **{name: row[f"look{k}_{name}"] for name in names}})
    return pd.DataFrame(rows)


def hypothesis_line(design) -> str:
    """The hypothesis, level and looks of a design, in words."""
    hypothesis = getattr(design, "hypothesis", "superiority")
    if hypothesis == "non_inferiority":
        text = (f"non-inferiority of the experimental arm on the hazard ratio, margin "
                f"{design.margin:g}, one-sided alpha {design.alpha:g}")
    elif hypothesis == "equivalence":
        text = (f"equivalence of the arms on the hazard ratio, margins {1 / design.margin:.3g} and "
                f"{design.margin:g} (two one-sided tests, each at alpha {design.alpha:g})")
    else:
        text = f"two-sided alpha {design.alpha:g}"
    looks = getattr(design, "fractions", (1.0,))
    if len(looks) > 1:
        at = (", ".join(f"{e:,}" for e in design.look_events) + " events"
              if design.look_events is not None
              else "information fractions " + ", ".join(f"{f:g}" for f in looks))
        text += (f"; {len(looks)} analyses at {at} ({design.spending} alpha spending"
                 + (f", non-binding futility by {design.futility} beta spending)"
                    if design.futility else ", efficacy only)"))
    return text


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The power table as a reader sees it: columns in words, and Schoenfeld's column only where
    it is not the formula's column already (it is for log-rank and Cox)."""
    shown = table[[c for c in table.columns if not c.startswith("look")]].copy()
    same = np.isclose(shown["schoenfeld_power"], shown["analytic_power"], equal_nan=True)
    if same.all():
        shown = shown.drop(columns="schoenfeld_power")
    return shown.rename(columns=_WORDS)


def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return number(value, ".3f" if abs(value) < 10 else ",.1f")
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def _table(shown: pd.DataFrame) -> Table:
    """A table of the report: its cells as `_cell` writes them, numbers aligned right."""
    return Table(tuple(str(c) for c in shown.columns),
                 tuple(tuple(_cell(value) for value in row)
                       for row in shown.itertuples(index=False)),
                 numeric=tuple(shown[c].dtype.kind in "iuf" for c in shown.columns),
                 first_bold=False)


def power_document(curve: PowerCurve, command: str = "", png: bytes = b"",
                   looks_png: bytes | None = None) -> Document:
    """The report: the design, the smallest sample sizes, the figures and the tables, in words
    (`png`, `looks_png`: the figures, drawn by `write_report`)."""
    design = curve.design
    effects = curve.smallest.drop_duplicates("effect")["effect"]
    facts = [f"Design: {design.kind}, {hypothesis_line(design)}, target power "
             f"{design.target_power:.0%}.",
             f"{curve.replicates:,} replicate trials per sample size (seed {curve.seed}); power "
             "with its Wilson 95% interval.",
             *[f"Effect assumed by the formulas: {effect}." for effect in effects]]
    if curve.parameter_hash:
        facts.append(f"Model parameters: hash {curve.parameter_hash}.")
    if command:
        facts.append(f"Command: {command}")
    blocks = [*([Paragraph(design.description)] if design.description else []),
              Bullets(tuple(facts)),
              Heading("Smallest sample size reaching the target"),
              Bullets(tuple(describe_smallest(curve))),
              Paragraph("The interval is where the Wilson upper and lower bounds of the simulated "
                        "power cross the target (interpolated on the probit scale against the "
                        "square root of n)."),
              Heading("Power by sample size"),
              Figure("power.png", "Power by sample size", png),
              _table(display_table(curve.table))]
    looks = looks_table(curve.table)
    if looks is not None:
        blocks += [Heading("Analyses: boundaries, stopping and timing"),
                   Paragraph(_looks_text(design)),
                   *([Figure("looks.png", "Boundaries, stopping and timing", looks_png)]
                     if looks_png is not None else []),
                   _table(looks.rename(columns=_LOOK_WORDS))]
    return Document(f"Power: {design.name}", tuple(blocks))


def render_markdown(curve: PowerCurve, command: str = "") -> str:
    """The report as Markdown (the figures linked by their file names)."""
    looks = len(getattr(curve.design, "fractions", (1.0,))) > 1
    return markdown(power_document(curve, command, b"", b"" if looks else None))


def _looks_text(design) -> str:
    when = ("Each analysis is held when the trial reaches its number of events, or at the end of "
            "follow-up if it does not" if getattr(design, "look_events", None) is not None else
            "Each analysis is held when the trial reaches its share of the events expected at the "
            "final analysis (the last analysis is the final one)")
    return (f"{when}; a trial stops at the first analysis whose statistic crosses the boundary. "
            "Months count from the start of accrual; the spread is over the simulated trials.")


def _draw_looks(curve: PowerCurve):
    """The analyses of a sequential design, a row per endpoint: the boundaries by information
    fraction (futility at the sample size nearest the target's), the probability of having stopped
    for success by each look, and each look's calendar month, against the sample size."""
    def draw(plt):
        table = curve.table
        keys = list(table[["endpoint", "test"]].drop_duplicates().itertuples(index=False))
        looks = len(curve.design.fractions)
        figure, axes = plt.subplots(len(keys), 3, figsize=(15.0, 4.0 * len(keys)), squeeze=False)
        for row_axes, (endpoint, test) in zip(axes, keys):
            part = table[(table["endpoint"] == endpoint) & (table["test"] == test)]
            nearest = part.iloc[int(np.argmin(np.abs(part["power"] - curve.design.target_power)))]
            fractions = [nearest[f"look{k}_fraction"] for k in range(1, looks + 1)]
            bounds, stops, months = row_axes
            bounds.plot(fractions, [nearest[f"look{k}_boundary_z"] for k in range(1, looks + 1)],
                        "o-", color="C3", label="efficacy boundary")
            if "look1_futility_z" in part.columns:
                bounds.plot(fractions, [nearest[f"look{k}_futility_z"] for k in range(1, looks + 1)],
                            "s--", color="C0", label=f"futility boundary (n = {int(nearest['n']):,})")
            bounds.set(xlim=(0, 1.05), xlabel="Information fraction", ylabel="Boundary (z)",
                       title=f"{endpoint}: boundaries")
            cumulative = np.zeros(len(part))
            for k in range(1, looks + 1):
                cumulative = cumulative + part[f"look{k}_stop"].to_numpy()
                stops.plot(part["n"], cumulative, "o-", color=plt.cm.viridis(k / (looks + 1)),
                           label=f"by look {k}" + (" (power)" if k == looks else ""))
            stops.axhline(curve.design.target_power, color="grey", linestyle=":", linewidth=1)
            stops.set(ylim=(0, 1.02), xlabel="Patients (n)", ylabel="Stopped for success",
                      title=f"{endpoint}: stopping for success (simulated)")
            for k in range(1, looks + 1):
                color = plt.cm.viridis(k / (looks + 1))
                months.fill_between(part["n"], part[f"look{k}_months_lower"],
                                    part[f"look{k}_months_upper"], color=color, alpha=0.2, linewidth=0)
                months.plot(part["n"], part[f"look{k}_months"], "o-", color=color, label=f"look {k}")
            months.set(ylim=(0, None), xlabel="Patients (n)", ylabel="Months from the first patient",
                       title=f"{endpoint}: when each analysis is held (mean, 95% of trials)")
            for axis in row_axes:
                axis.grid(alpha=0.3)
                axis.legend(fontsize="small")
        figure.suptitle(f"{curve.design.name}: interim analyses")
        figure.tight_layout()
        return figure
    return draw


STUDY_N = {"rectum": 141, "colon": 441, "both": 582}
"""The study's patients by primary site, marked on a cohort design's curve."""


def _x_limit(part: pd.DataFrame, fine: pd.DataFrame) -> float:
    """The axis ends a little past where the power stops changing (the first simulated size at
    which the simulated power and the formula both reach 0.99), or at the largest size."""
    done = part[(part["power"] >= 0.99) & ~(part["analytic_power"] < 0.99)]["n"].to_numpy()
    largest = float(part["n"].max())
    return min(largest, float(done[0]) * 1.15) if len(done) else largest


def _draw(curve: PowerCurve):
    def draw(plt):
        keys = list(curve.table[["endpoint", "test"]].drop_duplicates().itertuples(index=False))
        columns = min(2, len(keys))
        rows = math.ceil(len(keys) / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(6.0 * columns, 4.2 * rows),
                                    squeeze=False)
        design = curve.design
        study_n = STUDY_N.get(getattr(design, "primary", None)) if design.kind == "cohort" else None
        for axis, (endpoint, test) in zip(axes.ravel(), keys):
            part = curve.table[(curve.table["endpoint"] == endpoint) & (curve.table["test"] == test)]
            fine = curve.analytic[(curve.analytic["endpoint"] == endpoint)
                                  & (curve.analytic["test"] == test)]
            right = _x_limit(part, fine)
            error = np.vstack([part["power"] - part["power_lower"], part["power_upper"] - part["power"]])
            error = np.clip(error, 0.0, None)   # Wilson's bound at power 0 or 1 is it, to rounding
            axis.errorbar(part["n"], part["power"], yerr=error, fmt="o", capsize=3, color="C0",
                          label=f"simulated ({curve.replicates:,} trials, Wilson 95%)")
            if fine["analytic_power"].notna().any():
                formula = "Schoenfeld" if test in ("logrank", "cox") else "normal approximation"
                axis.plot(fine["n"], fine["analytic_power"], color="C1", label=f"formula ({formula})")
            axis.axhline(design.target_power, color="grey", linestyle=":", linewidth=1)
            smallest = curve.smallest[(curve.smallest["endpoint"] == endpoint)
                                      & (curve.smallest["test"] == test)]
            for row in smallest.itertuples():
                if math.isfinite(row.n):
                    low = row.n_lower if math.isfinite(row.n_lower) else row.n
                    high = row.n_upper if math.isfinite(row.n_upper) else row.n
                    axis.axvspan(low, high, color="C2", alpha=0.15, linewidth=0)
                    axis.axvline(row.n, color="C2", linewidth=1,
                                 label=f"{design.target_power:.0%} power at n = {row.n:,.0f} "
                                       f"({low:,.0f} to {high:,.0f})")
            if study_n is not None and study_n <= right:
                axis.axvline(study_n, color="black", linestyle="--", linewidth=1,
                             label=f"the study's n = {study_n}")
            axis.set(xlim=(0, right), ylim=(0, 1.02), xlabel="Patients (n)", ylabel="Power",
                     title=f"{endpoint} ({test})")
            axis.grid(alpha=0.3)
            axis.legend(loc="lower right", fontsize="small")
        for axis in axes.ravel()[len(keys):]:
            axis.set_visible(False)
        figure.suptitle(design.name)
        figure.tight_layout()
        return figure
    return draw


def write_report(curve: PowerCurve, out: str | Path, command: str = "") -> dict[str, Path]:
    """Write the five files into ``out`` (created if missing); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in _FILES}
    _replace(paths["power.csv"], lambda p: curve.table.to_csv(p, index=False, float_format="%.6g"))
    from sim.reports.figures import png_bytes  # noqa: PLC0415 - matplotlib on use only

    png = png_bytes(_draw(curve))
    _replace(paths["power.png"], lambda p: p.write_bytes(png))
    looks_png = None
    if len(getattr(curve.design, "fractions", (1.0,))) > 1:
        looks_png = png_bytes(_draw_looks(curve))
        paths["looks.png"] = out / "looks.png"
        _replace(paths["looks.png"], lambda p: p.write_bytes(looks_png))
    document = power_document(curve, command, png, looks_png)
    _replace(paths["power.md"], lambda p: p.write_text(markdown(document)))
    _replace(paths["report.html"], lambda p: p.write_text(html(document)))
    summary = {"design": curve.design.model_dump(mode="json"), "design_file": curve.design.path,
               "replicates": curve.replicates, "seed": curve.seed, "command": command,
               "parameter_hash": curve.parameter_hash,
               "smallest": json.loads(curve.smallest.to_json(orient="records"))}
    _replace(paths["power.json"], lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return paths
