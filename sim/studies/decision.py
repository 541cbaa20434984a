"""The decision analysis of a comparison's priced outcomes, over the parameter draws.

From the means of the priced columns (`sim.studies.economics.priced_columns`) of every
(policy, draw): per policy the mean discounted costs, life-years and QALYs with their 95%
intervals over the draws, each one's paired difference from the reference, and the net monetary
benefit at the file's thresholds (`economics`); the incremental analysis of the means as
dampack's ``calculate_icers`` does it (`icers`: dominance and extended dominance); the
acceptability curves and frontier from 0 to 200,000 per QALY with each policy's expected loss
(`ceac`: `acceptability`, `expected_loss`); the expected value of perfect information per
patient and for the file's population over the same range, and of partial perfect
information by group of parameters and by parameter (at the thresholds and `value_points`),
ranked as BCEA's ``info.rank`` does, each with its standard error, and checked for nesting
(`value_of_information`, by `sim.studies.voi`); the same base-case results under every
structural scenario (`structures`); and the patient-level Monte Carlo error of every
incremental result (`monte_carlo_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.model.economics import GROUPS
from sim.studies.economics import STRUCTURES, discounted_years
from sim.studies import voi
from sim.studies.summaries import levels_and_differences

__all__ = ["DecisionTables", "decision_tables", "icers", "acceptability", "value_of_information",
           "estimate_at", "noisy", "NOISE_LIMIT", "priced_arrays", "nesting", "nesting_checks",
           "ALL", "EVPI", "INFORMED", "expected_loss", "population_factor", "parameter_groups", "parameter_columns",
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
    decision concerns (discounted patients); `evppi_checks` (every nested pair of groups: the
    inner's EVPPI at most the outer's within 2 standard errors)."""

    by_draw: pd.DataFrame
    economics: pd.DataFrame
    icers: pd.DataFrame
    ceac: pd.DataFrame
    evppi: pd.DataFrame
    population: float
    evppi_ranking: pd.DataFrame | None = None
    structures: pd.DataFrame | None = None
    monte_carlo: pd.DataFrame | None = None
    evppi_checks: pd.DataFrame | None = None


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


INFORMED = "natural history and test accuracy"
"""The group a trial of follow-up informs (its EVPPI bounds the EVSI)."""
ALL = "all parameters"
"""Every parameter that varies between draws: its EVPPI is the EVPI of the parameter
uncertainty, the patients' Monte Carlo noise in each draw's net benefit regressed away."""
EVPI = "EVPI"
"""The EVPI over each draw's net benefit (patient noise included, so a little above `ALL`)."""


def parameter_groups(group: dict[str, str]) -> dict[str, list[str]]:
    """The groups valued, by name: each group of parameters that vary between draws (natural
    history, test accuracy, costs, utilities, durations and probabilities), natural history with
    test accuracy (what a trial informs), and all of them; `group` maps each parameter to its
    group (`parameter_columns`)."""
    groups: dict[str, list[str]] = {}
    for column, name in group.items():
        groups.setdefault(name, []).append(column)
    groups[INFORMED] = [c for c, g in group.items() if g in ("natural history", "test accuracy")]
    groups[ALL] = list(group)
    return {name: columns for name, columns in groups.items() if columns}


def nesting(groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(inner, outer) pairs of groups where the outer holds every parameter of the inner, so
    that EVPPI(inner) <= EVPPI(outer) (`ALL` <= `EVPI` too)."""
    pairs = [(a, b) for a, cols_a in groups.items() for b, cols_b in groups.items()
             if a != b and set(cols_a) < set(cols_b)]
    return pairs + [(ALL, EVPI)]


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
    cost, qaly = priced_arrays(per_draw, names)
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
    value, ranking, checks = value_of_information(per_draw, names, grid, value_points(economics),
                                                  draws, prices, population)
    structures = pd.DataFrame([
        row for structure in STRUCTURES
        for row in _structure_rows(_base(means, structure.name), structure, names, reference,
                                   economics)])
    return DecisionTables(per_draw.reset_index(), summary, incremental, ceac, value, population,
                          ranking, structures,
                          monte_carlo_error(means, per_draw, names, reference, economics), checks)


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


def priced_arrays(per_draw: pd.DataFrame, names) -> tuple[np.ndarray, np.ndarray]:
    """(cost, QALYs), each (draw, policy), from the priced means by scenario_id and draw."""
    return tuple(np.stack([per_draw.xs(n, level="scenario_id")[column].to_numpy() for n in names],
                          axis=1) for column in ("cost_total", "qalys"))


def _value_row(group, parameters, wtp, estimate, population) -> dict:
    return {"group": group, "parameters": parameters, "wtp": wtp, "evppi": float(estimate),
            "se": estimate.se, "evppi_population": float(estimate) * population,
            "se_population": estimate.se * population, "method": estimate.method or "exact",
            "r2": estimate.r2, "residual_check": estimate.residual_check}


def value_of_information(per_draw: pd.DataFrame, names, grid, points, draws: int,
                         prices: list[dict], population: float
                         ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """(EVPI at every willingness to pay of `grid` and EVPPI of every group at `points`, each
    with its standard error, per patient and for the population; the EVPPI of every parameter
    alone at `points`, ranked as BCEA's ``info.rank``; the nesting checks). EVPPI by
    `sim.studies.voi.evppi_curve` (costs and QALYs fitted once each, the regression chosen by
    cross-validation); with fewer than 3 draws, or one policy, only the EVPI."""
    cost, qalys = priced_arrays(per_draw, names)
    if len(names) < 2 or len(cost) < 2:
        return pd.DataFrame(columns=["group", "parameters", "wtp", "evppi", "se"]), None, None
    rows = [_value_row(EVPI, "(each draw's net benefit)", w, voi.evpi(w * qalys - cost),
                       population) for w in grid]
    if draws < 3:
        return pd.DataFrame(rows), None, None
    frame, group = parameter_columns(draws, prices)
    groups = parameter_groups(group)
    for name, columns in groups.items():
        curve = voi.evppi_curve(cost, qalys, points, frame[columns].to_numpy())
        rows += [_value_row(name, ";".join(columns), w, e, population)
                 for w, e in zip(points, curve)]
    value = pd.DataFrame(rows)
    ranking = []
    for column in frame.columns:
        curve = voi.evppi_curve(cost, qalys, points, frame[[column]].to_numpy(), method="gam")
        ranking += [_value_row(group[column], column, w, e, population)
                    for w, e in zip(points, curve)]
    ranking = pd.DataFrame(ranking).rename(columns={"parameters": "parameter"})
    total = value[value["group"] == ALL].set_index("wtp")["evppi"]
    ranking["share_of_evpi"] = [e / total[w] if total[w] > 0 else np.nan
                                for e, w in zip(ranking["evppi"], ranking["wtp"])]
    ranking["rank"] = ranking.groupby("wtp")["evppi"].rank(ascending=False, method="first")
    ranking = ranking.sort_values(["wtp", "rank"], ignore_index=True)
    return value, ranking, nesting_checks(value, ranking, groups)


def estimate_at(value: pd.DataFrame, group: str, wtp: float) -> voi.Estimate:
    """A group's EVPPI at `wtp` from the table of `value_of_information`, with its standard
    error."""
    row = value[(value["group"] == group) & (value["wtp"] == wtp)].iloc[0]
    return voi.Estimate(row["evppi"], row["se"], row["method"], row["r2"], row["residual_check"])


def nesting_checks(value: pd.DataFrame, ranking: pd.DataFrame | None,
                   groups: dict[str, list[str]]) -> pd.DataFrame:
    """Every pair (inner, outer) of `nesting(groups)`, and every parameter within its group, at
    each willingness to pay valued: the inner's EVPPI, the outer's, and whether the inner is at
    most the outer within 2 standard errors of their difference (`holds`)."""
    by = value.set_index(["group", "wtp"])
    points = sorted(value.loc[value["group"] == ALL, "wtp"])
    pairs = nesting(groups)
    if ranking is not None:
        single = ranking.set_index(["parameter", "wtp"])
        by = pd.concat([by, single[["evppi", "se"]].rename_axis(["group", "wtp"])])
        pairs += [(p, g) for g, columns in groups.items() if g != ALL for p in columns
                  if len(columns) > 1]
    rows = []
    for inner, outer in pairs:
        for w in points:
            a, b = by.loc[(inner, w)], by.loc[(outer, w)]
            tolerance = 2 * float(np.hypot(a["se"], b["se"]))
            rows.append({"wtp": w, "inner": inner, "outer": outer, "inner_evppi": a["evppi"],
                         "outer_evppi": b["evppi"], "tolerance": tolerance,
                         "holds": bool(a["evppi"] <= b["evppi"] + tolerance)})
    return pd.DataFrame(rows)


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


NOISE_LIMIT = 0.05
"""The share of the PSA variance of an incremental net benefit that patient noise may take
before a run is warned (issue 36: each draw's cohort large enough that the draws' spread is the
parameters')."""


def noisy(monte_carlo: pd.DataFrame | None) -> list[str]:
    """One sentence for each incremental net benefit whose patient noise is `NOISE_LIMIT` or more
    of its variance over the draws (`monte_carlo_error`)."""
    if monte_carlo is None:
        return []
    rows = monte_carlo[monte_carlo["measure"].str.startswith("net_benefit_at_")
                       & (monte_carlo["noise_share"] >= NOISE_LIMIT)]
    out = []
    for r in rows.itertuples():
        # noise share s = N / (N + P), N the noise variance (1 / patients): under the limit L
        # needs patients x s (1 - L) / (L (1 - s))
        needed = r.patients_per_draw * r.noise_share * (1 - NOISE_LIMIT) / (
            NOISE_LIMIT * max(1 - r.noise_share, 1e-9))
        out.append(f"patient noise is {r.noise_share:.1%} of the variance over the draws of "
                   f"{r.policy}'s incremental {r.measure.replace('_', ' ')} "
                   f"({r.patients_per_draw:,.0f} patients per draw; under {NOISE_LIMIT:.0%} "
                   f"needs about {needed:,.0f})")
    return out


def population_factor(economics) -> float:
    """Patients a decision concerns, discounted: incident patients a year over the file's years,
    each year's discounted at the cost rate (continuous, from the decision)."""
    return economics.incident_per_year * float(
        discounted_years(0.0, economics.population_years, economics.discount_costs))
