"""The decision analysis of a comparison's priced outcomes, over the parameter draws.

From the means of the priced columns (`PRICED_COLUMNS`, `sim.studies.economics`) of every
(policy, draw): per policy the mean discounted costs, life-years and QALYs with their 95%
intervals over the draws, each one's paired difference from the reference, and the net monetary
benefit at the file's thresholds (`economics`); the incremental analysis of the means as
dampack's ``calculate_icers`` does it (`icers`: dominance and extended dominance); the
acceptability curves and frontier from 0 to 200,000 per QALY (`ceac`: `acceptability`); the
expected value of perfect information per patient and for the file's population over the same
range (`evpi`), and of partial perfect information by group of parameters at the thresholds by
a regression metamodel (`evppi`: Strong, Oakley and Brennan, Med Decis Making 2014;34:311-326,
with scikit-learn's additive splines and ridge regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.model.economics import GROUPS
from sim.studies.economics import discounted_years
from sim.studies.summaries import levels_and_differences

__all__ = ["DecisionTables", "decision_tables", "icers", "acceptability", "evpi", "evppi",
           "population_factor", "parameter_groups", "WTP", "PRICED_COLUMNS"]

WTP = np.arange(0.0, 200_001.0, 2_000.0)
"""Willingness to pay per QALY for the acceptability curves and the EVPI (the file's currency)."""
PRICED_COLUMNS = ("cost_surveillance", "cost_treatment", "life_years", "qalys")
"""The patients' priced columns whose means per (policy, draw) the evaluation starts from."""


@dataclass(frozen=True)
class DecisionTables:
    """The decision analysis, as frames: `by_draw` (the priced means and total cost of every
    (policy, draw): the probabilistic sensitivity analysis's sample), `economics` (per policy),
    `icers`, `ceac`, `evppi` (EVPI and EVPPI by group, per patient and for the population), and
    the population the decision concerns (discounted patients)."""

    by_draw: pd.DataFrame
    economics: pd.DataFrame
    icers: pd.DataFrame
    ceac: pd.DataFrame
    evppi: pd.DataFrame
    population: float


def parameter_groups(draws: int, prices: list[dict]) -> dict[str, np.ndarray]:
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
    # (all of them together is the EVPI itself, computed exactly: not a group of its own)
    return groups


def decision_tables(means: pd.DataFrame, order: list[str], reference: str, economics,
                    prices: list[dict], draws: int) -> DecisionTables:
    """The decision analysis from the means of `PRICED_COLUMNS` per (policy, draw) (`means`,
    indexed by scenario_id and draw: `sim.studies.digest.digest` reads them); `draws`: the
    posterior sample's draws used (0: the point estimate)."""
    per_draw = means.copy()
    per_draw["cost_total"] = per_draw["cost_surveillance"] + per_draw["cost_treatment"]
    names = order
    columns = [*PRICED_COLUMNS, "cost_total"]

    def net_benefit(threshold):
        return lambda frame: threshold * frame["qalys"].to_numpy() - frame["cost_total"].to_numpy()

    summary = pd.DataFrame(levels_and_differences(
        per_draw, reference, names, columns, columns,
        {f"net_benefit_at_{t:.0f}": net_benefit(t) for t in economics.thresholds},
        interleaved=True))
    incremental = icers(names, summary["cost_total"], summary["qalys"])

    cost = np.stack([per_draw.xs(n, level="scenario_id")["cost_total"].to_numpy()
                     for n in names], axis=1)
    qaly = np.stack([per_draw.xs(n, level="scenario_id")["qalys"].to_numpy() for n in names],
                    axis=1)
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
        at = np.isin(grid, economics.thresholds)
        for group, matrix in parameter_groups(draws, prices).items():
            partial = evppi(net[at], matrix)
            value_rows += [{"group": group, "wtp": w, "per_patient": v,
                            "population": v * population} for w, v in zip(grid[at], partial)]
    by_draw = per_draw.reset_index()
    return DecisionTables(by_draw, summary, incremental, ceac, pd.DataFrame(value_rows),
                          population)


def icers(names, cost, effect) -> pd.DataFrame:
    """The incremental analysis as dampack's ``calculate_icers``: order by cost (then effect);
    strongly dominated options (costlier and no more effective than another, "D") removed;
    then, repeatedly, an option whose ICER exceeds the next one's is extendedly dominated
    ("ED"); ICERs along the frontier ("ND"). Rows in order of cost."""
    table = pd.DataFrame({"policy": list(names), "cost": np.asarray(cost, float),
                          "effect": np.asarray(effect, float)})
    table = table.sort_values(["cost", "effect"], ascending=[True, False], kind="stable")
    table = table.reset_index(drop=True)
    status = np.array(["ND"] * len(table), dtype=object)
    best = -np.inf
    for i, effect_i in enumerate(table["effect"]):   # cheapest first: dominated if not better
        if effect_i <= best:
            status[i] = "D"
        best = max(best, effect_i)
    while True:
        frontier = np.flatnonzero(status == "ND")
        c, e = table["cost"].to_numpy()[frontier], table["effect"].to_numpy()[frontier]
        ratios = np.diff(c) / np.diff(e)
        worse = np.flatnonzero(ratios[:-1] > ratios[1:])
        if not len(worse):
            break
        status[frontier[worse[0] + 1]] = "ED"
    table["status"] = status
    table["incremental_cost"] = np.nan
    table["incremental_effect"] = np.nan
    table["icer"] = np.nan
    frontier = np.flatnonzero(status == "ND")
    for previous, current in zip(frontier[:-1], frontier[1:]):
        dc = table.at[current, "cost"] - table.at[previous, "cost"]
        de = table.at[current, "effect"] - table.at[previous, "effect"]
        table.loc[current, ["incremental_cost", "incremental_effect", "icer"]] = [dc, de, dc / de]
    return table


def acceptability(net_benefit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the share of draws in which each policy has the highest net benefit, the policy with the
    highest expected net benefit) at each willingness-to-pay; `net_benefit` is (wtp, draw,
    policy)."""
    best = net_benefit.argmax(axis=2)
    shares = np.stack([(best == p).mean(axis=1) for p in range(net_benefit.shape[2])], axis=1)
    return shares, net_benefit.mean(axis=1).argmax(axis=1)


def evpi(net_benefit: np.ndarray) -> np.ndarray:
    """Expected value of perfect information per patient, at each willingness-to-pay:
    E[max over policies] - max over policies of E; `net_benefit` is (wtp, draw, policy). Taken
    as the mean, over draws, of what the best policy of each draw gains over the policy best on
    average: the same number, never negative, and exactly 0 when no draw disagrees."""
    return _regret(net_benefit)


def _regret(values: np.ndarray) -> np.ndarray:
    """mean over draws of (max over policies - the policy with the highest mean), per wtp."""
    chosen = values.mean(axis=1).argmax(axis=1)                   # (wtp,)
    at_chosen = np.take_along_axis(values, chosen[:, None, None], axis=2)[..., 0]
    return (values.max(axis=2) - at_chosen).mean(axis=1)


def evppi(net_benefit: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Expected value of partial perfect information for a group of parameters (Strong, Oakley
    and Brennan 2014): each policy's net benefit, relative to the first policy, is regressed on
    the group's parameters over the draws (an additive cubic-spline model with ridge penalty
    chosen by leave-one-out cross-validation, scikit-learn); the fitted values g stand for the
    net benefit expected given the parameters, and EVPPI = E[max g] - max E[g]. `net_benefit`
    is (wtp, draw, policy), `parameters` (draw, parameter)."""
    from sklearn.linear_model import RidgeCV  # noqa: PLC0415 - only for the value of information
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import SplineTransformer, StandardScaler  # noqa: PLC0415

    parameters = np.asarray(parameters, float)
    varied = parameters.std(axis=0) > 0
    out = np.zeros(net_benefit.shape[0])
    if not varied.any():
        return out
    x = parameters[:, varied]
    draws = x.shape[0]
    knots = max(2, min(5, draws // 10))
    for w in range(net_benefit.shape[0]):
        relative = net_benefit[w] - net_benefit[w][:, :1]
        fitted = np.zeros_like(relative)
        for p in range(1, relative.shape[1]):
            model = make_pipeline(StandardScaler(), SplineTransformer(n_knots=knots, degree=3),
                                  RidgeCV(alphas=np.logspace(-4, 4, 33)))
            fitted[:, p] = model.fit(x, relative[:, p]).predict(x)
        out[w] = _regret(fitted[None])[0]
    return out


def population_factor(economics) -> float:
    """Patients a decision concerns, discounted: incident patients a year over the file's years,
    each year's discounted at the cost rate (continuous, from the decision)."""
    return economics.incident_per_year * float(
        discounted_years(0.0, economics.population_years, economics.discount_costs))
