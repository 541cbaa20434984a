"""Cost-effectiveness of follow-up policies, patient by patient: costs, life-years and QALYs.

A patient's course is read once from the event table (`course_of`): the states it passes
through, when, its operations, its surveillance (discounted examinations, work-ups and visits
from the engine) and its age and sex. It is then priced (`price`) with one set of the economics
file's inputs under one model structure (`Structure`), as often as an analysis needs: the
probabilistic analysis prices every draw's patients in the worker under every structure; the
one-way, two-way and threshold analyses price one base-case cohort many times
(`sim.studies.sensitivity`).

**Pricing**, in continuous time (discounting ``(1 + r) ** -t`` as NICE and the Second Panel
define it, ``r`` the annual rate, t in years from the hepatectomy; `discount_factor`):

- states: disease-free after the hepatectomy until a recurrence is detected; awaiting a curative
  repeat operation from its detection; disease-free after a curative repeat operation; incurable
  recurrence from a non-curative procedure or the start of systemic therapy until death or
  censoring;
- utilities: each state's multiplier times the age-sex population norm (the file's
  ``utility_norm``, integrated in closed form over the patient's ageing), except the last
  ``end_of_life_months`` before a cancer death, valued at the absolute end-of-life utility;
  life-years the same with utility 1;
- systemic therapy by line (``therapy="lines"``): first line for its months from the start of
  incurable disease, then a second line for its months in the file's share of patients, each at
  its monthly cost; best supportive care for the rest of the time with incurable disease;
  ``therapy="to_death"`` (the former costing): first-line therapy every month to death, so that
  each month of lead time adds a month of chemotherapy;
- lead time (``lead_time``): ``"recurrence"`` values every month from detection at the
  recurrence's utility and charges supportive care for every month with incurable disease off
  therapy; ``"disease_free"`` values the months between detection and when the first recurrence
  would have caused symptoms at the disease-free utility (asymptomatic) and charges no
  supportive care before then (therapy by line still starts at detection);
- one-off: a curative repeat operation by the sites operated (each site's resection), with the
  expected cost and QALY loss of a major complication after a liver resection; a non-curative
  procedure; the QALY loss of an operation and of a work-up; the end-of-life cost per month
  over the last months before a cancer death;
- surveillance: every examination at its scheduled visit by the file's test cost, a clinic
  visit at every visit attended, every false positive's work-up; discounted at the visit
  (under a capacity at the scheduled, not the delayed, time). A work-up's QALY loss is
  discounted with the same factor, i.e. at the costs' rate;
- a horizon (``horizon_years``) cuts the course at that time: states, deaths and operations after
  it are not counted (surveillance visits after it, which only later recurrences' schedules
  have, still are).

The hepatectomy itself is the same under every policy and is not priced. Over the draws, the
decision analysis of the priced outcomes is `sim.studies.decision`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from sim.model.economics import discount_factor

__all__ = ["discounted_years", "patient_economics", "ECONOMIC_COLUMNS", "Course", "course_of",
           "price", "Structure", "STRUCTURES", "priced_columns", "norm_integral"]

ECONOMIC_COLUMNS = (
    ("cost_surveillance", "discounted cost of the surveillance examinations, clinic visits and "
                          "work-ups"),
    ("cost_treatment", "discounted cost of repeat operations and their complications, "
                       "procedures, systemic therapy, supportive and end-of-life care"),
    ("life_years", "discounted life-years from the hepatectomy to death or the horizon"),
    ("qalys", "discounted quality-adjusted life-years over the same time"),
)


@dataclass(frozen=True)
class Structure:
    """A model structure for the economic evaluation: how systemic therapy is costed, how the
    months of lead time are valued, and the horizon (None: lifetime)."""

    name: str
    label: str
    therapy: Literal["lines", "to_death"] = "lines"
    lead_time: Literal["recurrence", "disease_free"] = "recurrence"
    horizon_years: float | None = None


STRUCTURES = (
    Structure("base", "base case: therapy by line, recurrence utility from detection, lifetime"),
    Structure("therapy_to_death", "systemic therapy every month to death (the former costing)",
              therapy="to_death"),
    Structure("lead_time_disease_free", "months before symptoms valued as disease-free",
              lead_time="disease_free"),
    Structure("both", "therapy to death and lead time valued as disease-free",
              therapy="to_death", lead_time="disease_free"),
    Structure("ten_years", "a 10-year horizon (the former horizon)", horizon_years=10.0),
)
"""The structural scenarios every economic comparison prices: the base case first."""


def priced_columns(structures=STRUCTURES) -> tuple[str, ...]:
    """The patients' priced columns: the base case's plain, the others' as ``column:name``."""
    return tuple(column if s.name == "base" else f"{column}:{s.name}"
                 for s in structures for column, _ in ECONOMIC_COLUMNS)


def discounted_years(start, end, rate: float):
    """The integral of the discount factor ``(1 + rate) ** -t`` dt from `start` to `end` (years),
    elementwise, `rate` the annual rate; `end` below `start` gives 0."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    end = np.maximum(end, start)
    if rate == 0:
        return end - start
    force = np.log1p(rate)
    return (discount_factor(start, rate) - discount_factor(end, rate)) / force


def norm_integral(start, end, age, male, norm: dict[str, float], rate: float):
    """The integral of the population norm at age ``age + t`` times ``(1 + rate) ** -t`` dt from
    `start` to `end` (years), elementwise; the norm is ``intercept + male * 1{male} + age * a +
    age_squared * a^2``. In closed form: the norm is a quadratic in t."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    end = np.maximum(end, start)
    c1, c2 = norm["age"], norm["age_squared"]
    alpha = norm["intercept"] + norm["male"] * male + c1 * age + c2 * age ** 2
    beta, gamma = c1 + 2 * c2 * age, c2
    if rate == 0:
        def antiderivative(t):
            return alpha * t + beta * t ** 2 / 2 + gamma * t ** 3 / 3
    else:
        r = np.log1p(rate)

        def antiderivative(t):
            return -np.exp(-r * t) * (alpha / r + beta * (t / r + 1 / r ** 2)
                                      + gamma * (t ** 2 / r + 2 * t / r ** 2 + 2 / r ** 3))
    return antiderivative(end) - antiderivative(start)


_DF1, _AWAIT, _DF2, _INCURABLE = 0, 1, 2, 3
_SITES = ("liver", "lung", "pelvis", "other")


class Course(NamedTuple):
    """The priced facts of a chunk's patients under one policy (`course_of`): per patient its
    end (years), whether a cancer death, age, sex, the time its first recurrence would have
    caused symptoms, when incurable disease began (inf: never), discounted examinations by
    modality, work-ups and visits; per state segment its patient, start, stop and state; per
    operation its patient, time, whether curative, and the sites operated (operation x site)."""

    end: np.ndarray
    cancer: np.ndarray
    age: np.ndarray
    male: np.ndarray
    symptom: np.ndarray
    incurable_from: np.ndarray
    tests: np.ndarray
    workups: np.ndarray
    visits: np.ndarray
    who: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    state: np.ndarray
    op_who: np.ndarray
    op_time: np.ndarray
    op_curative: np.ndarray
    op_sites: np.ndarray


def course_of(patients: pd.DataFrame, events: pd.DataFrame, discounted: dict) -> Course:
    """A chunk's courses from its patients (patient_id, age_years, sex, first_symptom_months)
    and events, and the engine's discounted surveillance (`discounted_tests`,
    `discounted_workups`, `discounted_visits`)."""
    ids = patients["patient_id"].to_numpy()
    position = pd.Series(np.arange(len(ids)), index=ids)
    ev = events[["patient_id", "time_months", "event", "site", "detail"]]
    years = ev["time_months"].to_numpy(float) / 12.0
    kind = ev["event"].astype(str).to_numpy()
    detail = ev["detail"].astype(object).to_numpy()
    row = position.loc[ev["patient_id"].to_numpy()].to_numpy()
    n = len(ids)

    end = np.zeros(n)
    terminal = (kind == "death") | (kind == "censored")
    end[row[terminal]] = years[terminal]
    cancer = np.zeros(n, bool)
    cancer[row[(kind == "death") & (detail == "cancer")]] = True

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
    alive = ~terminal
    who = row[alive]
    stop = np.minimum(following, end[row])[alive]
    state = state[alive].astype(np.int8)
    start = years[alive]

    incurable_from = np.full(n, np.inf)
    np.minimum.at(incurable_from, who[state == _INCURABLE], start[state == _INCURABLE])

    operations = curative | other
    sites = ev["site"].astype(object).fillna("").to_numpy()[operations]
    op_sites = np.array([[name in str(s).split("+") for name in _SITES] for s in sites],
                        bool).reshape(-1, len(_SITES))
    symptom = patients["first_symptom_months"].to_numpy(float) / 12.0
    return Course(end, cancer, patients["age_years"].to_numpy(float),
                  (patients["sex"].to_numpy() == "male").astype(float),
                  np.where(np.isnan(symptom), np.inf, symptom), incurable_from,
                  np.asarray(discounted["discounted_tests"], float),
                  np.asarray(discounted["discounted_workups"], float),
                  np.asarray(discounted["discounted_visits"], float),
                  who, start, stop, state, row[operations], years[operations],
                  curative[operations], op_sites)


def price(course: Course, values: dict[str, float], economics, modality_names,
          structure: Structure = STRUCTURES[0]) -> dict[str, np.ndarray]:
    """The four economic columns (`ECONOMIC_COLUMNS`) of each patient of `course`, priced with
    `values` (the inputs by dotted name) under `structure`."""
    u, rc, re = values, economics.discount_costs, economics.discount_effects
    c, n = course, len(course.end)
    horizon = np.inf if structure.horizon_years is None else structure.horizon_years
    end = np.minimum(c.end, horizon)
    cancer = c.cancer & (c.end <= horizon)
    who, state = c.who, c.state
    start, stop = np.minimum(c.start, horizon), np.minimum(c.stop, horizon)
    age, male = c.age[who], c.male[who]

    # utilities: multiplier x norm, the months before symptoms as disease-free if so valued,
    # the end of life absolute
    multiplier = np.array([u["utility.disease_free_after_hepatectomy"], u["utility.recurrence"],
                           u["utility.disease_free_after_repeat"], u["utility.recurrence"]])
    eol = u["duration.end_of_life_months"] / 12.0
    eol_start = np.where(cancer, end - eol, np.inf)[who]
    if structure.lead_time == "disease_free":
        recurrent = (state == _AWAIT) | (state == _INCURABLE)
        split = np.where(recurrent, np.clip(c.symptom[who], start, stop), start)
        parts = [(start, split, np.full(len(start), multiplier[_DF1])),
                 (split, stop, multiplier[state])]
    else:
        parts = [(start, stop, multiplier[state])]
    qaly = np.zeros(len(start))
    for a, b, m in parts:
        qaly += (m * norm_integral(a, np.minimum(b, eol_start), age, male, economics.norm, re)
                 + u["utility.end_of_life"] * discounted_years(np.maximum(a, eol_start), b, re))
    life_years = discounted_years(0.0, end, re)

    # systemic therapy and supportive care over the incurable segments
    on = state == _INCURABLE
    held = discounted_years(start, stop, rc) * on
    if structure.therapy == "lines":
        t0 = c.incurable_from[who]
        first_end = t0 + u["duration.first_line_months"] / 12.0
        second_end = first_end + u["duration.second_line_months"] / 12.0
        first = discounted_years(np.maximum(start, t0), np.minimum(stop, first_end), rc) * on
        second = discounted_years(np.maximum(start, first_end),
                                  np.minimum(stop, second_end), rc) * on
        share = u["probability.second_line"]
        supportive = held - first - share * second
        if structure.lead_time == "disease_free":   # no supportive care before symptoms
            after = np.maximum(start, c.symptom[who])
            supportive = (discounted_years(after, stop, rc)
                          - discounted_years(np.maximum(after, t0), np.minimum(stop, first_end),
                                             rc)
                          - share * discounted_years(np.maximum(after, first_end),
                                                     np.minimum(stop, second_end), rc)) * on
        monthly = (u["monthly.first_line_therapy"] * first
                   + share * u["monthly.second_line_therapy"] * second
                   + u["monthly.best_supportive_care"] * supportive)
    else:
        monthly = u["monthly.first_line_therapy"] * held
    end_of_life = discounted_years(np.maximum(start, eol_start), stop, rc)
    treatment = 12.0 * (monthly + u["monthly.end_of_life"] * end_of_life)

    # one-off costs and QALY losses at the operations
    kept = c.op_time <= horizon
    site_cost = np.array([u["cost.repeat_liver_resection"], u["cost.lung_resection"],
                          u["cost.pelvic_surgery"], u["cost.other_site_resection"]])
    liver = c.op_sites[:, 0] & c.op_curative
    complication = u["probability.major_complication"] * liver
    cost_at = np.where(c.op_curative, c.op_sites @ site_cost, u["cost.palliative_procedure"])
    cost_at = cost_at + complication * u["cost.major_complication"]
    loss_at = u["disutility.operation"] + complication * u["disutility.major_complication"]
    op_who = c.op_who[kept]
    cost_treatment = (np.bincount(who, weights=treatment, minlength=n)
                      + np.bincount(op_who, weights=(cost_at * discount_factor(c.op_time, rc))[kept],
                                    minlength=n))
    test_prices = np.array([u[f"test.{m}"] for m in modality_names])
    cost_surveillance = ((c.tests @ test_prices if len(test_prices) else np.zeros(n))
                         + u["cost.workup"] * c.workups + u["cost.clinic_visit"] * c.visits)
    qalys = (np.bincount(who, weights=qaly, minlength=n)
             - np.bincount(op_who, weights=(loss_at * discount_factor(c.op_time, re))[kept],
                           minlength=n)
             - u["disutility.workup"] * c.workups)
    return {"cost_surveillance": cost_surveillance, "cost_treatment": cost_treatment,
            "life_years": life_years, "qalys": qalys}


def patient_economics(patients: pd.DataFrame, events: pd.DataFrame, discounted: dict,
                      modality_names, values: dict[str, float], economics,
                      structures=STRUCTURES) -> pd.DataFrame:
    """The priced columns (`priced_columns`) of each patient, in the patients' order: the four
    economic columns under each structure."""
    course = course_of(patients, events, discounted)
    columns = {}
    for structure in structures:
        priced = price(course, values, economics, modality_names, structure)
        for name, column in zip(priced_columns((structure,)), priced.values()):
            columns[name] = column
    return pd.DataFrame(columns)
