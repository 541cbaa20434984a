"""The cost-effectiveness section of a comparison: tables, figures and the words around them.

From the priced patients of every (policy, draw) (`sim.studies.economics`): per policy the mean
discounted costs, life-years and QALYs with their 95% intervals over the draws, and each one's
paired difference from the reference; the incremental analysis of the means (`icers.csv`); the
net monetary benefit at the file's thresholds; the acceptability curves and frontier from 0 to
200,000 per QALY (`ceac.csv`); the expected value of perfect information per patient and for the
file's population over the same range, and of partial perfect information by group of parameters
at the thresholds (`evppi.csv`); the cost-effectiveness plane, the curves and the EVPI (figures).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.model.economics import GROUPS
from sim.reports.comparison import _interval
from sim.reports.figures import png_bytes
from sim.reports.text import number
from sim.studies.economics import acceptability, evpi, evppi, icers, population_factor

__all__ = ["economic_outputs", "WTP", "PRICED_COLUMNS"]

WTP = np.arange(0.0, 200_001.0, 2_000.0)
"""Willingness to pay per QALY for the acceptability curves and the EVPI (the file's currency)."""
PRICED_COLUMNS = ("cost_surveillance", "cost_treatment", "life_years", "qalys")
"""The patients' priced columns whose means per (policy, draw) the evaluation starts from."""


def _parameter_groups(draws: int, prices: list[dict]) -> dict[str, np.ndarray]:
    """(draw x parameter) matrices of the groups whose values change between draws: natural
    history and test accuracy (the posterior sample's columns), costs and utilities."""
    import importlib.resources as resources  # noqa: PLC0415

    sample = pd.read_csv(str(resources.files("sim") / "data" / "posterior.csv")).head(draws)
    columns = [c for c in sample.columns if "." in c]
    accuracy = [c for c in columns if c.startswith("detection.")]
    groups = {"natural history": sample[[c for c in columns if c not in accuracy]].to_numpy(),
              "test accuracy": sample[accuracy].to_numpy()}
    for group, prefixes in GROUPS.items():
        names = [k for k in prices[0] if k.startswith(prefixes)]
        groups[group] = np.array([[p[k] for k in names] for p in prices])
    groups["all parameters"] = np.hstack(list(groups.values()))
    return groups


def economic_outputs(means: pd.DataFrame, order: list[str], reference: str, economics,
                     prices: list[dict], draws: int) -> dict:
    """Tables (`economics`, `icers`, `ceac`, `evppi`), figures and the section's Markdown and
    HTML parts, from the means of `PRICED_COLUMNS` per (policy, draw) (`means`, indexed by
    scenario_id and draw: `sim.reports.comparison.digest` reads them)."""
    per_draw = means.copy()
    per_draw["cost_total"] = per_draw["cost_surveillance"] + per_draw["cost_treatment"]
    names = order
    reference_values = per_draw.xs(reference, level="scenario_id")
    rows = []
    for name in names:
        values = per_draw.xs(name, level="scenario_id")
        row = {"policy": name, "draws": len(values)}
        for column in [*PRICED_COLUMNS, "cost_total"]:
            row[column], row[f"{column}_lower"], row[f"{column}_upper"] = _interval(
                values[column].to_numpy())
            difference = values[column].to_numpy() - reference_values.loc[values.index, column].to_numpy()
            (row[f"{column}_difference"], row[f"{column}_difference_lower"],
             row[f"{column}_difference_upper"]) = _interval(difference)
        for threshold in economics.thresholds:
            def nmb(frame):
                return threshold * frame["qalys"].to_numpy() - frame["cost_total"].to_numpy()
            key = f"net_benefit_at_{threshold:.0f}"
            row[key], row[f"{key}_lower"], row[f"{key}_upper"] = _interval(nmb(values))
            (row[f"{key}_difference"], row[f"{key}_difference_lower"],
             row[f"{key}_difference_upper"]) = _interval(
                nmb(values) - nmb(reference_values.loc[values.index]))
        rows.append(row)
    summary = pd.DataFrame(rows)
    incremental = icers(names, summary["cost_total"], summary["qalys"])

    cost = np.stack([per_draw.xs(n, level="scenario_id")["cost_total"].to_numpy() for n in names], axis=1)
    qaly = np.stack([per_draw.xs(n, level="scenario_id")["qalys"].to_numpy() for n in names], axis=1)
    grid = np.unique(np.concatenate([WTP, economics.thresholds]))
    net = grid[:, None, None] * qaly[None] - cost[None]        # (wtp, draw, policy)
    shares, best = acceptability(net)
    ceac = pd.DataFrame([{"wtp": w, "policy": names[p], "probability_best": shares[i, p],
                          "expected_net_benefit": net[i, :, p].mean(),
                          "on_acceptability_frontier": bool(best[i] == p)}
                         for i, w in enumerate(grid) for p in range(len(names))])
    population = population_factor(economics)
    perfect = evpi(net) if cost.shape[0] > 1 else np.full(len(grid), np.nan)
    value_rows = [{"group": "all parameters (EVPI)", "wtp": w, "per_patient": v,
                   "population": v * population} for w, v in zip(grid, perfect)]
    if cost.shape[0] > 2:
        groups = _parameter_groups(draws, prices)
        at = np.isin(grid, economics.thresholds)
        for group, matrix in groups.items():
            partial = evppi(net[at], matrix)
            value_rows += [{"group": group, "wtp": w, "per_patient": v, "population": v * population}
                           for w, v in zip(grid[at], partial)]
    value = pd.DataFrame(value_rows)
    pictures = {"plane.png": ("Cost-effectiveness plane", png_bytes(
                    _plane(per_draw, names, reference, economics))),
                "ceac.png": ("Acceptability curves and frontier", png_bytes(
                    _ceac(ceac, names, economics))),
                "evpi.png": ("Expected value of perfect information", png_bytes(
                    _evpi(value, economics, population)))}
    return {"economics": summary, "icers": incremental, "ceac": ceac, "evppi": value,
            "pictures": pictures, "population": population}


def _plane(per_draw, names, reference, economics):
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


def _ceac(ceac, names, economics):
    def draw(plt):
        figure, axis = plt.subplots(figsize=(7.5, 4.6))
        for k, name in enumerate(names):
            rows = ceac[ceac["policy"] == name]
            axis.plot(rows["wtp"], rows["probability_best"], color=f"C{k}", label=name)
            front = rows[rows["on_acceptability_frontier"]]
            axis.scatter(front["wtp"], front["probability_best"], s=14, color=f"C{k}",
                         edgecolor="black", linewidth=0.5, zorder=3)
        for threshold in economics.thresholds:
            axis.axvline(threshold, color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel=f"Willingness to pay per QALY ({economics.cost_unit})",
                 ylabel="Probability of the highest net benefit", ylim=(0, 1.02),
                 title="Acceptability curves (dots: the acceptability frontier)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        return figure
    return draw


def _evpi(value, economics, population):
    def draw(plt):
        figure, axis = plt.subplots(figsize=(7.5, 4.2))
        rows = value[value["group"] == "all parameters (EVPI)"]
        axis.plot(rows["wtp"], rows["per_patient"], color="C0")
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


def section(result: dict, economics, reference: str) -> tuple[list[str], list[tuple[list[str], list[list[str]]]], list[str]]:
    """(paragraphs, tables as (header, rows), closing paragraphs) of the cost-effectiveness
    section, in words, with the currency and price year on every cost."""
    unit = economics.cost_unit
    summary, incremental, value = result["economics"], result["icers"], result["evppi"]
    intro = [f"Economics file: {economics.name} ({economics.description}). Costs in {unit}, "
             f"discounted at {economics.discount_costs:.1%} a year and effects at "
             f"{economics.discount_effects:.1%}, both in continuous time from the hepatectomy; "
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
    ceac = result["ceac"]
    for threshold in economics.thresholds:
        at = ceac[ceac["wtp"] == threshold]
        chosen = at[at["on_acceptability_frontier"]].iloc[0]
        closing.append(f"At {threshold:,.0f} per QALY ({unit}) the policy with the highest expected "
                       f"net benefit is {chosen['policy']}, best in {chosen['probability_best']:.0%} "
                       f"of the draws.")
        rows = value[value["wtp"] == threshold]
        if len(rows) and not np.isfinite(rows.iloc[0].per_patient):
            closing.append("No value of information: one parameter set (uncertainty.draws = 0) "
                           "leaves no uncertainty to value; give draws of the posterior sample.")
        elif len(rows):
            parts = [f"{r.group} {_money(r.per_patient)} per patient" for r in rows.itertuples()]
            closing.append(f"Value of information at {threshold:,.0f} per QALY ({unit}): "
                           + "; ".join(parts) + f". For the population "
                           f"({economics.incident_per_year:,.0f} patients a year for "
                           f"{economics.population_years:g} years, discounted: "
                           f"{result['population']:,.0f} patients) perfect information on all "
                           f"parameters would be worth {_money(rows.iloc[0].population)}.")
    closing.append("Partial values come from a regression of each policy's net benefit on the "
                   "group's parameters over the draws (Strong, Oakley and Brennan 2014); with few "
                   "draws they are rough, and a group that does not vary between draws is worth 0.")
    return intro, tables, closing
