"""The decision analysis of a comparison's priced outcomes, over the parameter draws.

From the means of the priced columns (`sim.studies.economics.priced_columns`) of every
(policy, draw): per policy the mean discounted costs, life-years and QALYs with their 95%
intervals over the draws, each one's paired difference from the reference, and the net monetary
benefit at the file's thresholds (`economics`); the incremental analysis of the means as
dampack's ``calculate_icers`` does it (`icers`: dominance and extended dominance); the
acceptability curves and frontier from 0 to 200,000 per QALY with each policy's expected loss
(`ceac`: `acceptability`, `expected_loss`); the expected value of perfect information per
patient and for the file's population over the same range (`evpi`), and of partial perfect
information by group of parameters and by parameter (at the thresholds and `value_points`),
ranked as BCEA's ``info.rank`` does (`evppi`: Strong, Oakley and Brennan, Med Decis Making
2014;34:311-326, with scikit-learn's additive splines and ridge regression); the same base-case
results under every
structural scenario (`structures`); and the patient-level Monte Carlo error of every
incremental result (`monte_carlo_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.model.economics import GROUPS
from sim.studies.economics import STRUCTURES, discounted_years
from sim.studies.summaries import levels_and_differences

__all__ = ["DecisionTables", "decision_tables", "icers", "acceptability", "evpi", "evppi",
           "expected_loss", "population_factor", "parameter_groups", "parameter_columns",
           "monte_carlo_error", "value_points", "net_benefit_by_draw", "WTP", "PRICED_COLUMNS"]

WTP = np.arange(0.0, 200_001.0, 2_000.0)
"""Willingness to pay per QALY for the acceptability curves and the EVPI (the file's currency)."""
PRICED_COLUMNS = ("cost_surveillance", "cost_treatment", "life_years", "qalys")
"""The patients' priced columns (base case) whose means per (policy, draw) the evaluation starts
from; each structural scenario has the same with its name (`sim.studies.economics`)."""


@dataclass(frozen=True)
class DecisionTables:
    """The decision analysis, as frames: `by_draw` (the priced means and total cost of every
    (policy, draw): the probabilistic sensitivity analysis's sample), `economics` (per policy),
    `icers`, `ceac` (with each policy's expected loss), `evppi` (EVPI and EVPPI by group, per
    patient and for the population), `evppi_ranking` (EVPPI of each parameter at the
    thresholds, ranked), `structures` (the base-case results under every structural scenario),
    `monte_carlo` (the Monte Carlo error of each incremental result), and the population the
    decision concerns (discounted patients)."""

    by_draw: pd.DataFrame
    economics: pd.DataFrame
    icers: pd.DataFrame
    ceac: pd.DataFrame
    evppi: pd.DataFrame
    population: float
    evppi_ranking: pd.DataFrame | None = None
    structures: pd.DataFrame | None = None
    monte_carlo: pd.DataFrame | None = None


def value_points(economics) -> np.ndarray:
    """The willingness-to-pay values at which partial and sample information are valued: the
    file's thresholds and 50,000 to 200,000 by 50,000 (where the EVPI may first be positive)."""
    return np.unique(np.concatenate([economics.thresholds, np.arange(50_000.0, 200_001.0,
                                                                        50_000.0)]))


def parameter_columns(draws: int, prices: list[dict]) -> tuple[pd.DataFrame, dict[str, str]]:
    """(draw x parameter frame of every parameter that changes between draws: the posterior
    sample's natural history and test accuracy, the economic inputs that affect the policies'
    net benefit; each parameter's group)."""
    import importlib.resources as resources  # noqa: PLC0415

    sample = pd.read_csv(str(resources.files("sim") / "data" / "posterior.csv")).head(draws)
    columns = [c for c in sample.columns if "." in c]
    frame = sample[columns].reset_index(drop=True)
    group = {c: "test accuracy" if c.startswith("detection.") else "natural history"
             for c in columns}
    for name, prefixes in GROUPS.items():
        for key in prices[0]:
            if key.startswith(prefixes):
                frame[key] = [p[key] for p in prices]
                group[key] = name
    varied = [c for c in frame.columns if frame[c].std() > 0]
    return frame[varied], {c: group[c] for c in varied}


def parameter_groups(draws: int, prices: list[dict]) -> dict[str, np.ndarray]:
    """(draw x parameter) matrices of the groups whose values change between draws: natural
    history and test accuracy (the posterior sample's columns), costs, utilities, durations and
    probabilities; and natural history with test accuracy together (what a trial informs)."""
    frame, group = parameter_columns(draws, prices)
    groups = {}
    for name in dict.fromkeys(group.values()):
        groups[name] = frame[[c for c in frame.columns if group[c] == name]].to_numpy()
    # (all of them together is the EVPI itself, computed exactly: not a group of its own)
    informed = [c for c in frame.columns if group[c] in ("natural history", "test accuracy")]
    groups["natural history and test accuracy"] = frame[informed].to_numpy()
    return groups


def _base(means: pd.DataFrame, structure: str = "base") -> pd.DataFrame:
    """The priced means of one structure under the base case's column names, with total cost."""
    suffix = "" if structure == "base" else f":{structure}"
    frame = means[[f"{c}{suffix}" for c in PRICED_COLUMNS]].copy()
    frame.columns = list(PRICED_COLUMNS)
    frame["cost_total"] = frame["cost_surveillance"] + frame["cost_treatment"]
    return frame


def net_benefit_by_draw(per_draw: pd.DataFrame, names, grid) -> np.ndarray:
    """The (wtp, draw, policy) net benefits of `per_draw` (cost_total and qalys by
    scenario_id and draw) at each willingness-to-pay of `grid`."""
    cost = np.stack([per_draw.xs(n, level="scenario_id")["cost_total"].to_numpy()
                     for n in names], axis=1)
    qaly = np.stack([per_draw.xs(n, level="scenario_id")["qalys"].to_numpy() for n in names],
                    axis=1)
    return grid[:, None, None] * qaly[None] - cost[None]        # (wtp, draw, policy)


def decision_tables(means: pd.DataFrame, order: list[str], reference: str, economics,
                    prices: list[dict], draws: int) -> DecisionTables:
    """The decision analysis from the means of the priced columns per (policy, draw) (`means`,
    indexed by scenario_id and draw: `sim.studies.digest.digest` reads them); `draws`: the
    posterior sample's draws used (0: the point estimate)."""
    per_draw = _base(means)
    names = order
    columns = [*PRICED_COLUMNS, "cost_total"]

    def net_benefit(threshold):
        return lambda frame: threshold * frame["qalys"].to_numpy() - frame["cost_total"].to_numpy()

    summary = pd.DataFrame(levels_and_differences(
        per_draw, reference, names, columns, columns,
        {f"net_benefit_at_{t:.0f}": net_benefit(t) for t in economics.thresholds},
        interleaved=True))
    incremental = icers(names, summary["cost_total"], summary["qalys"])

    grid = np.unique(np.concatenate([WTP, economics.thresholds]))
    net = net_benefit_by_draw(per_draw, names, grid)
    shares, best = acceptability(net)
    loss = expected_loss(net)
    ceac = pd.DataFrame([{"wtp": w, "policy": names[p], "probability_best": shares[i, p],
                          "expected_net_benefit": net[i, :, p].mean(),
                          "expected_loss": loss[i, p],
                          "on_acceptability_frontier": bool(best[i] == p)}
                         for i, w in enumerate(grid) for p in range(len(names))])
    population = population_factor(economics)
    perfect = evpi(net) if net.shape[1] > 1 else np.full(len(grid), np.nan)
    value_rows = [{"group": "all parameters (EVPI)", "wtp": w, "per_patient": v,
                   "population": v * population} for w, v in zip(grid, perfect)]
    ranking = None
    if net.shape[1] > 2:
        at = np.isin(grid, value_points(economics))
        for group, matrix in parameter_groups(draws, prices).items():
            partial = evppi(net[at], matrix)
            value_rows += [{"group": group, "wtp": w, "per_patient": v,
                            "population": v * population} for w, v in zip(grid[at], partial)]
        ranking = evppi_ranking(net[at], grid[at], perfect[at], draws, prices)
    structures = pd.DataFrame([
        row for structure in STRUCTURES
        for row in _structure_rows(_base(means, structure.name), structure, names, reference,
                                   economics)])
    return DecisionTables(per_draw.reset_index(), summary, incremental, ceac,
                          pd.DataFrame(value_rows), population, ranking, structures,
                          monte_carlo_error(means, per_draw, names, reference, economics))


def _structure_rows(per_draw: pd.DataFrame, structure, names, reference, economics) -> list[dict]:
    """Per policy under one structure: mean cost, life-years, QALYs, their differences from the
    reference, the ICER against it and, at each threshold, the incremental net benefit and the
    share of draws in which the policy is best."""
    thresholds = np.asarray(economics.thresholds, float)
    net = net_benefit_by_draw(per_draw, names, thresholds)
    shares, _ = acceptability(net)
    ref = per_draw.xs(reference, level="scenario_id")
    rows = []
    for p, name in enumerate(names):
        mine = per_draw.xs(name, level="scenario_id")
        dc = (mine["cost_total"] - ref["cost_total"]).mean()
        dq = (mine["qalys"] - ref["qalys"]).mean()
        row = {"structure": structure.name, "label": structure.label, "policy": name,
               "cost_total": mine["cost_total"].mean(), "life_years": mine["life_years"].mean(),
               "qalys": mine["qalys"].mean(), "cost_difference": dc,
               "life_years_difference": (mine["life_years"] - ref["life_years"]).mean(),
               "qalys_difference": dq,
               "icer": dc / dq if name != reference and dq > 0 else np.nan}
        for t, threshold in enumerate(thresholds):
            row[f"net_benefit_difference_at_{threshold:.0f}"] = threshold * dq - dc
            row[f"probability_best_at_{threshold:.0f}"] = shares[t, p]
        rows.append(row)
    return rows


def monte_carlo_error(means: pd.DataFrame, per_draw: pd.DataFrame, names, reference,
                      economics) -> pd.DataFrame | None:
    """Per policy against the reference: the mean incremental cost, QALYs and net benefit at each
    threshold over the draws, the Monte Carlo standard error of that mean (the draws' sd over
    the square root of their number), the patient-level noise in each draw's difference (the
    paired per-patient variance over the patients, averaged over the draws), its share of the
    variance over the draws, and the variance over the draws with the noise taken out (the
    parameter uncertainty). None without the digest's noise columns."""
    if "noise_var_cost" not in means.columns:
        return None
    ref = per_draw.xs(reference, level="scenario_id")
    rows = []
    for name in names:
        if name == reference:
            continue
        mine = per_draw.xs(name, level="scenario_id")
        noise = means.xs(name, level="scenario_id")
        count = noise["noise_patients"].to_numpy(float)
        dc = (mine["cost_total"] - ref["cost_total"]).to_numpy()
        dq = (mine["qalys"] - ref["qalys"]).to_numpy()
        dl = (mine["life_years"] - ref["life_years"]).to_numpy()
        measures = {"cost": (dc, noise["noise_var_cost"].to_numpy() / count),
                    "qalys": (dq, noise["noise_var_qalys"].to_numpy() / count),
                    "life_years": (dl, noise["noise_var_life_years"].to_numpy() / count)}
        for t in economics.thresholds:
            within = (t ** 2 * noise["noise_var_qalys"] + noise["noise_var_cost"]
                      - 2 * t * noise["noise_cov_cost_qalys"]).to_numpy() / count
            measures[f"net_benefit_at_{t:.0f}"] = (t * dq - dc, within)
        for measure, (values, within) in measures.items():
            total = values.var(ddof=1) if len(values) > 1 else np.nan
            rows.append({"policy": name, "measure": measure, "mean": values.mean(),
                         "draws": len(values), "patients_per_draw": float(count.mean()),
                         "mcse_of_mean": np.sqrt(total / len(values)) if len(values) > 1
                         else np.sqrt(within.mean()),
                         "patient_noise_variance": within.mean(),
                         "variance_over_draws": total,
                         "noise_share": within.mean() / total if total > 0 else np.nan,
                         "parameter_variance": max(total - within.mean(), 0.0)
                         if np.isfinite(total) else np.nan})
    return pd.DataFrame(rows)


def evppi_ranking(net_benefit: np.ndarray, thresholds, perfect, draws: int,
                  prices: list[dict]) -> pd.DataFrame:
    """The EVPPI of every parameter alone at each threshold, its share of the EVPI and its rank
    (1: the most valuable), as BCEA's ``info.rank``."""
    frame, group = parameter_columns(draws, prices)
    rows = []
    for column in frame.columns:
        partial = evppi(net_benefit, frame[[column]].to_numpy())
        for w, value, total in zip(thresholds, partial, perfect):
            rows.append({"parameter": column, "group": group[column], "wtp": w,
                         "per_patient": value,
                         "share_of_evpi": value / total if total > 0 else np.nan})
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("wtp")["per_patient"].rank(ascending=False, method="first")
    return table.sort_values(["wtp", "rank"], ignore_index=True)


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


def expected_loss(net_benefit: np.ndarray) -> np.ndarray:
    """Each policy's expected loss at each willingness-to-pay: the mean over draws of what the
    draw's best policy gains over it; `net_benefit` is (wtp, draw, policy). The policy of least
    expected loss is the one of highest expected net benefit, and its loss is the EVPI."""
    return (net_benefit.max(axis=2, keepdims=True) - net_benefit).mean(axis=1)


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
