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


LOOKED_TESTS = ("cox_wald", "cox_noninferiority", "cox_equivalence")
"""The tests analysed at the design's looks (`sim.studies.power.looks`); the others once."""


def analyses_of(design, test: str) -> int:
    """How many analyses `test` has under `design`: the design's looks for a hazard ratio
    analysed at them, else one (the final analysis)."""
    return len(getattr(design, "fractions", (1.0,))) if test in LOOKED_TESTS else 1


def _analyses_words(count: int) -> str:
    return "one analysis" if count == 1 else f"{count} analyses"


def formula_name(test: str, analyses: int = 1, short: bool = False) -> str:
    """The formula behind a test's analytic power (`short`: for a legend)."""
    if test in ("logrank", "cox"):
        return "Schoenfeld"
    if test in LOOKED_TESTS:
        margin = "" if test == "cox_wald" else " with the margin"
        return (f"Schoenfeld{margin}" if analyses == 1 or short
                else f"Schoenfeld{margin}, crossing the {analyses} analyses' boundaries")
    if short:
        return "normal approximation"
    if test.startswith("rmst_difference"):
        return "normal approximation of the difference in restricted mean survival"
    return "normal approximation of the difference of two proportions"


def which_power(curve: PowerCurve) -> list[str]:
    """One line per (endpoint, test): which design each power column of the table belongs to."""
    design = curve.design
    lines = []
    for endpoint, test in curve.table[["endpoint", "test"]].drop_duplicates().itertuples(index=False):
        count = analyses_of(design, test)
        formula = formula_name(test, count)
        source = formula if formula.startswith("Schoenfeld") else f"the {formula}"
        if count > 1:
            lines.append(f"{endpoint} ({test}): the design as planned, with {count} analyses (the "
                         "last is the final one). Power (simulated) is the share of trials that "
                         "stop for success at any analysis; power (formula) is the same design's, "
                         f"from {source} (recursive integration); power, one analysis "
                         "(Schoenfeld) is that of the same trial analysed once, at the final "
                         "analysis, without interim looks or futility stops.")
        else:
            freedman = ("; power (Freedman) from Freedman's formula"
                        if test in ("logrank", "cox") else "")
            lines.append(f"{endpoint} ({test}): analysed once, at the final analysis. Power "
                         "(simulated) is the share of trials that reject; power (formula) comes "
                         f"from {source}{freedman}.")
    return lines


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
        analyses = _analyses_words(analyses_of(curve.design, row.test))
        lines.append(f"{row.endpoint} ({row.test}, {analyses}): {row.target_power:.0%} power "
                     f"{found}; formula: {analytic}{events}")
    return lines


_WORDS = {"endpoint": "endpoint", "test": "test", "n": "patients", "replicates": "trials simulated",
          "events": "mean events", "power": "power (simulated)", "power_lower": "its 95% lower",
          "power_upper": "its 95% upper", "analytic_power": "power (formula)",
          "schoenfeld_power": "power (Schoenfeld)", "freedman_power": "power (Freedman)",
          "failed": "failed fits", "expected_events": "expected events",
          "expected_months": "expected duration (months)"}
_LOOK_WORDS = {"n": "patients", "look": "look", "fraction": "information fraction",
               "stop": "stops here for success (simulated)",
               "futility_stop": "stops here for futility (simulated)", "events": "mean events",
               "months": "month (mean)", "months_lower": "month 2.5%",
               "months_upper": "month 97.5%"}
_SUCCESS_WORDS = {"superiority": "efficacy boundary: success if |z| ≥",
                  "non_inferiority": "efficacy boundary: success if z ≤",
                  "equivalence": "efficacy boundary: success if both |z| ≥"}
_FUTILITY_WORDS = "futility boundary: stop if z ≥"


def boundaries_on_z(design, efficacy, futility):
    """The boundaries as values of the statistic z = (log HR - log margin) / se
    (`sim.studies.power.looks`), from the tables' scale (on which a non-inferiority trial
    succeeds when -z >= efficacy and stops for futility when -z <= futility): for
    non-inferiority both change sign; superiority and equivalence keep their magnitudes, since
    their rules are on |z|."""
    if getattr(design, "hypothesis", "superiority") == "non_inferiority":
        return -np.asarray(efficacy, float), (None if futility is None
                                              else -np.asarray(futility, float))
    return np.asarray(efficacy, float), futility


def _statistic_words(design) -> str:
    """The statistic and the stopping rules, in words, with the sign convention of the tables."""
    hypothesis = getattr(design, "hypothesis", "superiority")
    if hypothesis == "non_inferiority":
        rule = ("z = (log HR - log margin) / se, HR the hazard ratio of the experimental arm "
                "against the control and se its standard error: negative when the experimental "
                "arm does better than the margin. A trial stops for success at the first analysis "
                "where z is at or below the efficacy boundary")
        if getattr(design, "futility", None):
            rule += (", and for futility (non-binding) at an interim analysis where z is at or "
                     "above the futility boundary")
    elif hypothesis == "equivalence":
        rule = ("two statistics, z = (log HR - log margin) / se and (log HR + log margin) / se, "
                "HR the hazard ratio of the experimental arm against the control and se its "
                "standard error. A trial stops for success at the first analysis where the first "
                "is at or below minus the boundary and the second at or above it")
    else:
        rule = ("z = log HR / se, HR the hazard ratio of the experimental arm against the control "
                "and se its standard error. A trial stops for success at the first analysis where "
                "|z| is at or above the boundary")
    return "Boundaries are values of the Cox Wald statistic " + rule + "."


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


def display_table(table: pd.DataFrame, design=None) -> pd.DataFrame:
    """The power table as a reader sees it: columns in words, Schoenfeld's column only where it
    is not the formula's column already (it is for log-rank and Cox), named the one-analysis
    design's when `design` has interim analyses, and no column without a value."""
    shown = table[[c for c in table.columns if not c.startswith("look")]].copy()
    same = np.isclose(shown["schoenfeld_power"], shown["analytic_power"], equal_nan=True)
    if same.all():
        shown = shown.drop(columns="schoenfeld_power")
    shown = shown.drop(columns=[c for c in ("schoenfeld_power", "freedman_power")
                                if c in shown and shown[c].isna().all()])
    words = dict(_WORDS)
    if design is not None and any(analyses_of(design, test) > 1 for test in shown["test"]):
        words["schoenfeld_power"] = "power, one analysis (Schoenfeld)"
    return shown.rename(columns=words)


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
              Paragraph("Which power is which:"),
              Bullets(tuple(which_power(curve))),
              _table(display_table(curve.table, design))]
    looks = looks_table(curve.table)
    if looks is not None:
        efficacy, futility = boundaries_on_z(
            design, looks["boundary_z"], looks["futility_z"] if "futility_z" in looks else None)
        looks["boundary_z"] = efficacy
        words = {**_LOOK_WORDS, "boundary_z": _SUCCESS_WORDS[getattr(design, "hypothesis",
                                                                      "superiority")]}
        if futility is not None:
            looks["futility_z"], words["futility_z"] = futility, _FUTILITY_WORDS
        blocks += [Heading("Analyses: boundaries, stopping and timing"),
                   Paragraph(_looks_text(design)),
                   Paragraph(_statistic_words(design)),
                   *([Figure("looks.png", "Boundaries, stopping and timing", looks_png)]
                     if looks_png is not None else []),
                   _table(looks.rename(columns=words))]
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
            futile = "look1_futility_z" in part.columns
            efficacy, futility = boundaries_on_z(
                curve.design, [nearest[f"look{k}_boundary_z"] for k in range(1, looks + 1)],
                [nearest[f"look{k}_futility_z"] for k in range(1, looks + 1)] if futile else None)
            hypothesis = getattr(curve.design, "hypothesis", "superiority")
            bounds.plot(fractions, efficacy, "o-", color="C3",
                        label=_SUCCESS_WORDS[hypothesis].replace("efficacy boundary: ", "efficacy: ")
                        + " it")
            if futility is not None:
                bounds.plot(fractions, futility, "s--", color="C0",
                            label=f"futility: stop if z ≥ it (n = {int(nearest['n']):,})")
            bounds.axhline(0.0, color="black", linewidth=0.6)
            statistic = ("z = log HR / se" if hypothesis == "superiority"
                         else "z = (log HR - log margin) / se")
            bounds.set(xlim=(0, 1.05), xlabel="Information fraction",
                       ylabel=f"Boundary on {statistic}", title=f"{endpoint}: boundaries")
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


def _x_limit(part: pd.DataFrame) -> tuple[float, float]:
    """(the largest simulated size drawn, the axis's right end): the sizes drawn end a little
    past where the power stops changing (the first simulated size at which the simulated power
    and the formula both reach 0.99, plus 15%), or at the largest size; the axis goes on by 4%
    so that the last point and its interval are drawn whole."""
    done = part[(part["power"] >= 0.99) & ~(part["analytic_power"] < 0.99)]["n"].to_numpy()
    sizes = part["n"].to_numpy(float)
    reach = min(sizes[-1], float(done[0]) * 1.15) if len(done) else sizes[-1]
    shown = float(sizes[sizes <= reach][-1])
    return shown, shown * 1.04


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
            shown, right = _x_limit(part)
            beyond = part[part["n"] > shown]
            part, fine = part[part["n"] <= shown], fine[fine["n"] <= right]
            analyses = analyses_of(design, test)
            error = np.vstack([part["power"] - part["power_lower"], part["power_upper"] - part["power"]])
            error = np.clip(error, 0.0, None)   # Wilson's bound at power 0 or 1 is it, to rounding
            axis.errorbar(part["n"], part["power"], yerr=error, fmt="o", capsize=3, color="C0",
                          label=f"simulated, {_analyses_words(analyses)} ({curve.replicates:,} "
                                "trials, Wilson 95%)")
            if fine["analytic_power"].notna().any():
                axis.plot(fine["n"], fine["analytic_power"], color="C1",
                          label=f"formula, {_analyses_words(analyses)} ({formula_name(test, short=True)})")
            if analyses > 1 and fine["schoenfeld_power"].notna().any():
                axis.plot(fine["n"], fine["schoenfeld_power"], color="C1", linestyle="--",
                          linewidth=1, label="formula, one analysis (Schoenfeld)")
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
            title = f"{endpoint} ({test}, {_analyses_words(analyses)})"
            if len(beyond):
                title += f"\n(n ≥ {int(beyond['n'].min()):,}: levelled off, in the table)"
            axis.set(xlim=(0, right), ylim=(0, 1.02), xlabel="Patients (n)", ylabel="Power",
                     title=title)
            axis.grid(alpha=0.3)
            axis.legend(loc="best", fontsize="small")
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
