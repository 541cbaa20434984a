"""The report of a policy comparison: its tables in words, its figures, as Markdown and HTML.

The numbers come from the comparison's result (`sim.studies.results.ComparisonResult`: every
metric per policy with its 95% interval over the parameter draws, the paired differences, the
departments' waits and the decision analysis); this module only renders them: one document
(`sim.reports.document`) with the policies, the results by policy and against the reference,
the capacity, the cost-effectiveness section (`sim.reports.economics`), the figures and a
glossary, written as results.md and report.html.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.reports import economics as economic_section
from sim.reports.document import (Bullets, Document, Figure, Heading, Paragraph, Table, html,
                                  markdown)
from sim.reports.figures import png_bytes
from sim.reports.text import number
from sim.studies.digest import SURVIVAL_GRID
from sim.studies.results import ComparisonResult
from sim.studies.summaries import METRICS, PAIRED, QUARTER_MONTHS

__all__ = ["render", "comparison_document"]

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


def _frontier_picture(summary: pd.DataFrame, cost_per_patient: np.ndarray, cost_label: str):
    """Outcomes against `cost_per_patient` (one per row of `summary`), whose axis reads
    `cost_label`."""
    def draw(plt):
        figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        x = cost_per_patient
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
            axis.set(xlabel=cost_label, ylabel=label)
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
                     title=f"{kind.capitalize()} slots: mean wait by quarter\n(shaded: to the "
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



def _horizon(years) -> str:
    return ("to death or age 100 (a lifetime horizon)" if years == "lifetime"
            else f"{years:g} years")


def _notes(result: ComparisonResult, costs: str) -> list[str]:
    draws, patients = result.draws, result.patients
    uncertainty = (f"Each value is the mean over {draws} parameter sets drawn from the "
                   "calibration's posterior sample; the interval in parentheses is the 2.5th to the "
                   f"97.5th percentile over those {draws} draws (parameter uncertainty, with the "
                   f"Monte Carlo error of {patients:,} patients per draw inside it)."
                   if draws > 1 else "One parameter set (the fitted point estimate): no interval.")
    return [f"{patients:,} patients ({result.primary} primaries) per policy and draw, "
            f"followed {_horizon(result.years)}. Reference policy: {result.reference}.",
            uncertainty,
            "Every policy runs on the same simulated patients with the same parameters in each "
            "draw (common random numbers): a patient's disease is the same under every policy, so "
            "differences are taken draw by draw (paired) and their intervals are narrower than "
            "the levels' would suggest.",
            costs]


def _cost_unit(policies) -> str:
    units = {policy.cost_unit for policy in policies if policy.schedule}
    return " / ".join(sorted(units)) or "no costs given"


def _costs_note(policies, economics) -> str:
    """Where the report's costs come from: the economics file when it prices the comparison (its
    currency and price year), otherwise the policy files."""
    if economics is not None:
        return (f"Costs are in {economics.cost_unit}, as the economics file {economics.name} "
                "prices them (discounted; the section Cost-effectiveness).")
    return f"Costs are in {_cost_unit(policies)} (as the policy files give them)."


def _capacity_rows(overall: pd.DataFrame) -> list[list[str]]:
    return [[r.scenario_id, r.slots, f"{r.mean_wait_weeks:.1f}", f"{r.p95_wait_weeks:.1f}",
             f"{r.utilisation:.0%}", f"{r.peak_quarter * QUARTER_MONTHS / 12:.2f}",
             f"{r.peak_quarter_mean_wait_weeks:.1f}", f"{r.peak_quarter_utilisation:.0%}"]
            for r in overall.itertuples()]


def _rows(rows) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(row) for row in rows)


def comparison_document(result: ComparisonResult, policies, economics=None) -> Document:
    """The report of `result` (its `policies`, as loaded; `economics`: the economics file, with
    a decision analysis in `result`), figures drawn."""
    summary, reference = result.summary, result.reference
    names = list(summary["policy"])
    others = [name for name in names if name != reference]
    # with an economics file the surveillance cost is the cost-effectiveness section's (in its
    # currency and price year, discounted): the policies' own cost figures are left out
    priced = result.decision is not None
    shown = [m for m in METRICS if not (priced and m == "cost_per_patient")]
    if priced:
        by_policy = result.decision.economics.set_index("policy")
        cost = by_policy.loc[names, "cost_surveillance"].to_numpy()
        cost_label = f"Surveillance cost per patient\n({economics.cost_unit}, discounted)"
    else:
        cost = summary["cost_per_patient"].to_numpy()
        cost_label = f"Surveillance cost per patient ({_cost_unit(policies)})"
    levels = [[METRICS[m][0], METRICS[m][1], *(_cell(row, m) for _, row in summary.iterrows())]
              for m in shown]
    differences = [[METRICS[m][0], METRICS[m][1], *(_cell(row, m, "_difference")
                                                    for _, row in summary.iterrows()
                                                    if row["policy"] != reference)]
                   for m in PAIRED if m in shown]
    blocks = [Paragraph(f"Comparison {result.name}."),
              Bullets(tuple(_notes(result, _costs_note(policies, economics)))),
              Heading("Policies"), Table(tuple(_POLICY_HEADER), _rows(_policy_rows(policies))),
              Heading("Results by policy"), Table(("metric", "unit", *names), _rows(levels)),
              Heading(f"Difference from {reference} (paired by draw)"),
              Table(("metric", "unit", *others), _rows(differences))]
    exclusions = _exclusions(summary, reference)
    if exclusions:
        blocks += [Paragraph("Left out of a ratio:"), Bullets(tuple(exclusions))]
    if len(result.capacity):
        blocks += [Heading("Capacity"),
                   Paragraph("One department per chunk of patients, its patients accrued over "
                             "the comparison's accrual years; waits in weeks."),
                   Table(("policy", "slots", "mean wait", "95th percentile",
                          "utilisation, whole run", "worst quarter (years from start)",
                          "its mean wait", "its utilisation"), _rows(_capacity_rows(result.capacity))),
                   Figure("capacity.png", "Waits and utilisation by quarter",
                          png_bytes(_capacity_picture(result.capacity_by_quarter)))]
    if result.decision is not None:
        blocks += economic_section.blocks(result.decision, economics, reference, result)
    blocks += [Heading("Figures"),
               Figure("survival.png",
                      "Overall survival by policy and its difference from the reference",
                      png_bytes(_survival_picture(result.survival, list(result.policies),
                                                  reference)), heading=3),
               Figure("frontier.png", "Cost of surveillance against outcomes",
                      png_bytes(_frontier_picture(summary, cost, cost_label)), heading=3),
               Heading("Glossary"),
               Table(("metric", "unit", "definition"),
                     _rows(METRICS[m][:3] for m in shown))]
    return Document(result.description or result.name, tuple(blocks))


def render(result: ComparisonResult, policies, economics=None) -> dict[str, bytes]:
    """results.md, report.html and the figures of the report, as bytes by file name."""
    document = comparison_document(result, policies, economics)
    return {"results.md": markdown(document).encode(), "report.html": html(document).encode(),
            **document.figures}
