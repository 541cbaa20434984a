"""Cost-effectiveness of follow-up policies: each patient priced, then the incremental analysis,
acceptability curves and the value of information over the parameter draws.

**Each patient** (`patient_economics`), from the event table, in continuous time (discounting
``exp(-r t)``, ``r`` a year, t in years from the hepatectomy):

- states: disease-free after the hepatectomy until a recurrence is detected; awaiting a curative
  repeat operation from its detection; disease-free after a curative repeat operation; incurable
  recurrence from a non-curative procedure or the start of systemic therapy until death or
  censoring. The last ``end_of_life_months`` before a cancer death take the end-of-life utility
  (in place of the state's) and add the end-of-life cost per month;
- utilities per state, integrated over time: discounted QALYs; life-years the same with utility 1;
- costs per month: systemic therapy for the first ``systemic_therapy_months`` of incurable
  recurrence, best supportive care after; one-off costs at their event: a curative repeat
  operation by the sites operated (liver, lung, pelvis, other: each site's resection), a
  non-curative procedure; one-off QALY losses for an operation and a work-up;
- surveillance: every examination at its scheduled visit by the file's test cost, every false
  positive's work-up; discounted at the visit (from the engine, `sim.engine.records.VisitSpans`;
  under a capacity at the scheduled, not the delayed, time). A work-up's QALY loss is discounted with the
  same factor, i.e. at the costs' rate (both packaged files use one rate for both).

The hepatectomy itself is the same under every policy and is not priced.

**Over the draws** (`summarise_economics`): the incremental analysis of the mean costs and QALYs
as dampack's ``calculate_icers`` does it (`icers`); net monetary benefit; the acceptability
curves and frontier (`acceptability`); the expected value of perfect information (`evpi`) and of
partial perfect information by a regression metamodel (`evppi`: Strong, Oakley and Brennan, Med
Decis Making 2014;34:311-326, with scikit-learn's additive splines and ridge regression).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["discounted_years", "patient_economics", "icers", "acceptability", "evpi", "evppi",
           "population_factor", "ECONOMIC_COLUMNS"]

ECONOMIC_COLUMNS = (
    ("cost_surveillance", "discounted cost of the surveillance examinations and work-ups"),
    ("cost_treatment", "discounted cost of repeat operations, procedures, systemic therapy, "
                       "supportive and end-of-life care"),
    ("life_years", "discounted life-years from the hepatectomy to death or censoring"),
    ("qalys", "discounted quality-adjusted life-years over the same time"),
)


def discounted_years(start, end, rate: float):
    """The integral of exp(-rate t) dt from `start` to `end` (years), elementwise; `end` below
    `start` gives 0."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    end = np.maximum(end, start)
    if rate == 0:
        return end - start
    return (np.exp(-rate * start) - np.exp(-rate * end)) / rate


_DF1, _AWAIT, _DF2, _INCURABLE = 0, 1, 2, 3


def patient_economics(patients: pd.DataFrame, events: pd.DataFrame, discounted_tests: np.ndarray,
                      discounted_workups: np.ndarray, modality_names, values: dict[str, float],
                      economics) -> pd.DataFrame:
    """The four economic columns (`ECONOMIC_COLUMNS`) of each patient, in the patients' order."""
    rc, re = economics.discount_costs, economics.discount_effects
    ids = patients["patient_id"].to_numpy()
    position = pd.Series(np.arange(len(ids)), index=ids)
    ev = events[["patient_id", "time_months", "event", "site", "detail"]].copy()
    ev["event"] = ev["event"].astype(str)
    ev["row"] = position.loc[ev["patient_id"].to_numpy()].to_numpy()
    years = ev["time_months"].to_numpy(float) / 12.0
    kind, detail = ev["event"].to_numpy(), ev["detail"].astype(object).to_numpy()
    row = ev["row"].to_numpy()
    n = len(ids)

    # each patient's end and whether it is a cancer death
    ends = ev[kind == "death"].groupby("row")["time_months"].first()
    end = np.zeros(n)
    censored = ev[kind == "censored"].groupby("row")["time_months"].first()
    end[censored.index.to_numpy()] = censored.to_numpy() / 12.0
    end[ends.index.to_numpy()] = ends.to_numpy() / 12.0
    cancer = np.zeros(n, bool)
    cancer[ev[(kind == "death") & (detail == "cancer")]["row"].to_numpy()] = True

    # the state each event starts (progression and latent onset keep the state they find)
    state = np.full(len(ev), np.nan)
    state[kind == "hepatectomy"] = _DF1
    state[kind == "detection"] = _AWAIT
    curative = (kind == "reoperation") & (detail == "curative")
    other = (kind == "reoperation") & (detail != "curative")
    state[curative] = _DF2
    state[other | (kind == "systemic_therapy")] = _INCURABLE
    state = pd.Series(state).groupby(row).ffill().to_numpy()
    following = np.append(years[1:], np.inf)
    last = np.append(row[1:] != row[:-1], True)
    following[last] = end[row[last]]
    segment_end = np.minimum(following, end[row])
    alive = (kind != "death") & (kind != "censored")
    start, stop, state = years[alive], segment_end[alive], state[alive].astype(int)
    who = row[alive]

    u = values
    utility = np.array([u["utility.disease_free_after_hepatectomy"], u["utility.recurrence"],
                        u["utility.disease_free_after_repeat"], u["utility.recurrence"]])
    eol_start = np.where(cancer, end - economics.end_of_life_months / 12.0, np.inf)[who]
    overlap = (np.maximum(start, eol_start), stop)
    qaly = (utility[state] * discounted_years(start, stop, re)
            + (u["utility.end_of_life"] - utility[state]) * discounted_years(*overlap, re))
    life_years = discounted_years(0.0, end, re)

    # incurable recurrence: systemic therapy first, then best supportive care
    incurable_from = np.full(n, np.inf)
    starts_incurable = alive.copy()
    starts_incurable[alive] = state == _INCURABLE
    begun = pd.Series(years[starts_incurable]).groupby(row[starts_incurable]).min()
    incurable_from[begun.index.to_numpy()] = begun.to_numpy()
    switch = incurable_from + economics.systemic_therapy_months / 12.0
    on = state == _INCURABLE
    systemic = discounted_years(np.maximum(start, incurable_from[who]),
                                np.minimum(stop, switch[who]), rc) * on
    supportive = discounted_years(np.maximum(start, switch[who]), stop, rc) * on
    end_of_life = discounted_years(*overlap, rc)
    treatment = 12.0 * (u["monthly.systemic_therapy"] * systemic
                        + u["monthly.best_supportive_care"] * supportive
                        + u["monthly.end_of_life"] * end_of_life)

    # one-off costs and QALY losses at their events
    site_cost = {"liver": u["cost.repeat_liver_resection"], "lung": u["cost.lung_resection"],
                 "pelvis": u["cost.pelvic_surgery"], "other": u["cost.other_site_resection"]}
    operated = ev["site"].astype(object).fillna("").to_numpy()
    curative_cost = np.array([sum(site_cost[s] for s in sites.split("+") if s)
                              for sites in operated[curative]])
    one_off = np.zeros(len(ev))
    one_off[curative] = curative_cost
    one_off[other] = u["cost.palliative_procedure"]
    operations = curative | other
    at_event_cost = one_off * np.exp(-rc * years)
    loss = operations * u["disutility.operation"] * np.exp(-re * years)

    cost_treatment = (np.bincount(who, weights=treatment, minlength=n)
                      + np.bincount(row, weights=at_event_cost, minlength=n))
    test_prices = np.array([u[f"test.{m}"] for m in modality_names])
    cost_surveillance = (discounted_tests @ test_prices if len(test_prices) else np.zeros(n)) \
        + u["cost.workup"] * discounted_workups
    qalys = (np.bincount(who, weights=qaly, minlength=n)
             - np.bincount(row, weights=loss, minlength=n)
             - u["disutility.workup"] * discounted_workups)
    return pd.DataFrame({"cost_surveillance": cost_surveillance, "cost_treatment": cost_treatment,
                         "life_years": life_years, "qalys": qalys})


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
