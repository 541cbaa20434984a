"""Write a power curve: ``power.csv`` (one row per endpoint and sample size), ``power.md`` (the same
with the design, the effect assumed by the formulas and the smallest sample size), ``power.png``
(the curve with its intervals and the analytic curve) and ``power.json`` (the summary, the run).

Each file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sim.studies.power.curve import PowerCurve

__all__ = ["write_report", "render_markdown", "describe_smallest"]

_FILES = ("power.csv", "power.md", "power.png", "power.json")


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


def _markdown_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---:" if shown[c].dtype.kind in "iuf" else "---" for c in shown.columns) + "|"
    lines = [header, rule]
    for row in shown.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(curve: PowerCurve, command: str = "") -> str:
    """The report as Markdown."""
    design = curve.design
    effects = curve.smallest.drop_duplicates("effect")["effect"]
    lines = [f"# Power: {design.name}", ""]
    if design.description:
        lines += [design.description, ""]
    lines += [f"- design: `{design.kind}`, two-sided alpha {design.alpha:g}, target power {design.target_power:.0%}",
              f"- {curve.replicates:,} replicate trials per sample size (seed {curve.seed}); "
              "power with its Wilson 95% interval",
              *[f"- effect assumed by the formulas: {effect}" for effect in effects]]
    if curve.parameter_hash:
        lines.append(f"- model parameters: hash {curve.parameter_hash}")
    if command:
        lines.append(f"- command: `{command}`")
    lines += ["", "## Smallest sample size", "", *[f"- {line}" for line in describe_smallest(curve)], "",
              "The interval is where the Wilson upper and lower bounds of the simulated power cross the "
              "target (interpolated on the probit scale against the square root of n).", "",
              "## Power by sample size", "", _markdown_table(curve.table), ""]
    return "\n".join(lines)


def _figure(curve: PowerCurve, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only when writing the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    keys = curve.table[["endpoint", "test"]].drop_duplicates().itertuples(index=False)
    keys = list(keys)
    columns = min(2, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.0 * rows), squeeze=False)
    for axis, (endpoint, test) in zip(axes.ravel(), keys):
        part = curve.table[(curve.table["endpoint"] == endpoint) & (curve.table["test"] == test)]
        fine = curve.analytic[(curve.analytic["endpoint"] == endpoint) & (curve.analytic["test"] == test)]
        error = np.vstack([part["power"] - part["power_lower"], part["power_upper"] - part["power"]])
        error = np.clip(error, 0.0, None)   # Wilson's bound at power 0 or 1 is it, to rounding
        axis.errorbar(part["n"], part["power"], yerr=error, fmt="o", capsize=3, color="C0",
                      label=f"simulated ({curve.replicates:,} trials, Wilson 95%)")
        if fine["analytic_power"].notna().any():
            formula = "Schoenfeld" if test in ("logrank", "cox") else "normal approximation"
            axis.plot(fine["n"], fine["analytic_power"], color="C1", label=f"analytic ({formula})")
        axis.axhline(curve.design.target_power, color="grey", linestyle=":", linewidth=1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("patients (n)")
        axis.set_ylabel("power")
        axis.set_title(f"{endpoint} ({test})")
        axis.legend(loc="best", fontsize="small")
    for axis in axes.ravel()[len(keys):]:
        axis.set_visible(False)
    figure.suptitle(curve.design.name)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=120)
    plt.close(figure)


def write_report(curve: PowerCurve, out: str | Path, command: str = "") -> dict[str, Path]:
    """Write the four files into ``out`` (created if missing); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in _FILES}
    _replace(paths["power.csv"], lambda p: curve.table.to_csv(p, index=False, float_format="%.6g"))
    _replace(paths["power.md"], lambda p: p.write_text(render_markdown(curve, command)))
    _replace(paths["power.png"], lambda p: _figure(curve, p))
    summary = {"design": curve.design.model_dump(mode="json"), "design_file": curve.design.path,
               "replicates": curve.replicates, "seed": curve.seed, "command": command,
               "parameter_hash": curve.parameter_hash,
               "smallest": json.loads(curve.smallest.to_json(orient="records"))}
    _replace(paths["power.json"], lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return paths
