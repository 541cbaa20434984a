"""The cost-effectiveness section of a comparison's report: its tables in words and its figures.

The numbers are the decision analysis (`sim.studies.decision.DecisionTables`): per policy the
mean discounted costs, life-years and QALYs with their 95% intervals over the draws, the paired
differences from the reference and the net monetary benefit at the file's thresholds; the
incremental analysis; the acceptability curves and frontier; the value of information. The
figures: the cost-effectiveness plane, the acceptability curves and the EVPI.
"""

from __future__ import annotations

import numpy as np

from sim.studies.decision import ALL, EVPI
from sim.studies.results import value_of_information_violations
from sim.reports.document import Block, Bullets, Figure, Heading, Paragraph, Table
from sim.reports.figures import png_bytes
from sim.reports.text import number
from sim.reports.economics_more import more as _more
from sim.reports.economics_more import wtp_curves
from sim.studies.decision import DecisionTables

__all__ = ["blocks"]


def _plane(by_draw, names, reference, economics):
    per_draw = by_draw.set_index(["scenario_id", "draw"])

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7.5, 5))
        ref = per_draw.xs(reference, level="scenario_id")
        for k, name in enumerate(names):
            if name == reference:
                continue
            values = per_draw.xs(name, level="scenario_id")
            dq = values["qalys"].to_numpy() - ref.loc[values.index, "qalys"].to_numpy()
            dc = values["cost_total"].to_numpy() - ref.loc[values.index, "cost_total"].to_numpy()
            axis.scatter(dq, dc, s=12, alpha=0.5, color=f"C{k}", label=name)
            axis.scatter([dq.mean()], [dc.mean()], s=80, marker="X", color=f"C{k}",
                         edgecolor="black")
        axis.axhline(0, color="black", linewidth=0.8)
        axis.axvline(0, color="black", linewidth=0.8)
        left, right = axis.get_xlim()
        for threshold, style in zip(economics.thresholds, (":", "--", "-.")):
            xs = np.array([left, right])
            axis.plot(xs, threshold * xs, color="grey", linestyle=style, linewidth=1,
                      label=f"{threshold:,.0f} per QALY")
        axis.set_xlim(left, right)
        axis.set(xlabel=f"QALYs gained against {reference} (per patient, discounted)",
                 ylabel=f"Additional cost ({economics.cost_unit})",
                 title="Cost-effectiveness plane: every draw (X: the mean)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        return figure
    return draw


def _evpi(value, economics, population):
    def draw(plt):
        figure, axis = plt.subplots(figsize=(7.5, 4.2))
        rows = value[value["group"] == EVPI]
        axis.plot(rows["wtp"], rows["evppi"], color="C0", label="EVPI (each draw's net benefit)")
        axis.fill_between(rows["wtp"], rows["evppi"] - 2 * rows["se"],
                          rows["evppi"] + 2 * rows["se"], color="C0", alpha=0.2,
                          label="± 2 standard errors")
        parameters = value[value["group"] == ALL]
        if len(parameters):
            axis.errorbar(parameters["wtp"], parameters["evppi"], yerr=2 * parameters["se"],
                          fmt="o", color="C3", capsize=3,
                          label="EVPI of the parameters (patient noise regressed away)")
        axis.legend(fontsize=8)
        for threshold in economics.thresholds:
            axis.axvline(threshold, color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel=f"Willingness to pay per QALY ({economics.cost_unit})",
                 ylabel=f"EVPI per patient ({economics.currency})",
                 title=f"Expected value of perfect information (population: x {population:,.0f})")
        axis.grid(alpha=0.3)
        return figure
    return draw


def _money(value: float) -> str:
    return number(value, ",.0f")


def _span(row, column: str, digits: int | None = None) -> str:
    spec = ",.0f" if digits is None else f".{digits}f"
    return (f"{number(row[column], spec)} ({number(row[f'{column}_lower'], spec)} to "
            f"{number(row[f'{column}_upper'], spec)})")


def blocks(result: DecisionTables, economics, reference: str, comparison=None) -> list[Block]:
    """The cost-effectiveness section, in words, with the currency and price year on every
    cost, and its figures drawn; `comparison` (the `ComparisonResult`) adds its inputs,
    deterministic analyses and value of sample information."""
    unit = economics.cost_unit
    summary, incremental, value = result.economics, result.icers, result.evppi
    intro = [f"Economics file: {economics.name} ({economics.description}). Costs in {unit}, "
             f"discounted at {economics.discount_costs:.1%} a year and effects at "
             f"{economics.discount_effects:.1%}, year t from the hepatectomy weighing (1 + r)^-t "
             "(in continuous time); "
             "the hepatectomy itself is the same under every policy and is not priced. Values "
             "per patient: means over the draws (natural history from the posterior sample, "
             "economic parameters from their distributions in the file) with the 2.5th to 97.5th "
             "percentile."]
    levels = [[row["policy"], _span(row, "cost_surveillance"), _span(row, "cost_treatment"),
               _span(row, "cost_total"), _span(row, "life_years", 3), _span(row, "qalys", 3)]
              for _, row in summary.iterrows()]
    differences = [[row["policy"], _span(row, "cost_total_difference"),
                    _span(row, "life_years_difference", 3), _span(row, "qalys_difference", 3),
                    *[_span(row, f"net_benefit_at_{t:.0f}_difference")
                      for t in economics.thresholds]]
                   for _, row in summary.iterrows() if row["policy"] != reference]
    status = {"ND": "on the frontier", "D": "dominated (costlier, no more QALYs)",
              "ED": "extendedly dominated (a mix of its neighbours does better)"}
    frontier = [[row.policy, _money(row.cost), f"{row.effect:.3f}", status[row.status],
                 "–" if np.isnan(row.icer) else _money(row.icer)]
                for row in incremental.itertuples()]
    tables = [
        (["policy", f"surveillance cost ({unit})", f"treatment cost ({unit})",
          f"total cost ({unit})", "life-years", "QALYs"], levels),
        (["policy", f"additional cost against {reference} ({unit})",
          f"life-years gained against {reference}", f"QALYs gained against {reference}",
          *[f"net monetary benefit against {reference} at {t:,.0f} per QALY ({unit})"
            for t in economics.thresholds]],
         differences),
        (["policy (by cost)", f"mean cost ({unit})", "mean QALYs", "status",
          f"ICER ({unit} per QALY)"], frontier)]
    closing = []
    ceac = result.ceac
    for threshold in economics.thresholds:
        at = ceac[ceac["wtp"] == threshold]
        chosen = at[at["on_acceptability_frontier"]].iloc[0]
        closing.append(f"At {threshold:,.0f} per QALY ({unit}) the policy with the highest expected "
                       f"net benefit is {chosen['policy']}, best in {chosen['probability_best']:.0%} "
                       f"of the draws.")
        rows = value[value["wtp"] == threshold]
        if not len(rows):
            closing.append("No value of information: one parameter set (uncertainty.draws = 0) "
                           "leaves no uncertainty to value; give draws of the posterior sample.")
        elif len(rows):
            parts = [f"{r.group} {_money(r.evppi)} (SE {_money(r.se)}"
                     + (f", R² {r.r2:.2f}" if np.isfinite(r.r2) else "") + ")"
                     for r in rows.itertuples()]
            whole = rows[rows["group"] == ALL]
            whole = whole if len(whole) else rows[rows["group"] == EVPI]
            closing.append(f"Value of information per patient at {threshold:,.0f} per QALY "
                           f"({unit}): " + "; ".join(parts) + f". For the population "
                           f"({economics.incident_per_year:,.0f} patients a year for "
                           f"{economics.population_years:g} years, discounted: "
                           f"{result.population:,.0f} patients) perfect information on all "
                           f"parameters would be worth {_money(whole.iloc[0].evppi_population)}"
                           f" (SE {_money(whole.iloc[0].se_population)}).")
    closing.append("EVPI is taken over each draw's net benefit, which still holds the patients' "
                   "Monte Carlo noise; \"all parameters\" is the EVPI of the parameters alone, "
                   "each draw's net benefit regressed on every parameter that varies. Partial "
                   "values regress each policy's costs and QALYs on the group's parameters over "
                   "the draws (Strong, Oakley and Brennan 2014; an additive spline model or a "
                   "Gaussian process, chosen by cross-validation, R² as cross-validated), with "
                   "standard errors from the fit's posterior (Strong 2014) and the draws.")
    violations = value_of_information_violations(
        result.evppi_checks, None if comparison is None else comparison.evsi_checks)
    closing += [f"CHECK FAILED: {text}." for text in violations]
    names = list(summary["policy"])
    extra = _more(result, economics, reference, comparison, names)
    return [Heading("Cost-effectiveness"), *[Paragraph(text) for text in intro],
            *[Table(tuple(header), tuple(tuple(row) for row in rows)) for header, rows in tables],
            Bullets(tuple(closing)),
            Figure("plane.png", "Cost-effectiveness plane",
                   png_bytes(_plane(result.by_draw, names, reference, economics)), heading=3),
            Figure("ceac.png", "Acceptability curves and frontier",
                   png_bytes(wtp_curves(ceac, names, economics, "probability_best",
                                        "Probability of the highest net benefit",
                                        "Acceptability curves (dots: the acceptability frontier)",
                                        frontier=True)), heading=3),
            Figure("evpi.png", "Expected value of perfect information",
                   png_bytes(_evpi(value, economics, result.population)), heading=3),
            *extra]
