"""Cost-effectiveness of follow-up policies, patient by patient: costs, life-years and QALYs.

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
  under a capacity at the scheduled, not the delayed, time). A work-up's QALY loss is discounted
  with the same factor, i.e. at the costs' rate (both packaged files use one rate for both).

The hepatectomy itself is the same under every policy and is not priced.

Over the draws, the decision analysis of the priced outcomes is `sim.studies.decision`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["discounted_years", "patient_economics", "ECONOMIC_COLUMNS"]

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
