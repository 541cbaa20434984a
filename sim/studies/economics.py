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
  repeat operation from its detection; disease-free after a curative repeat operation; living
  with a detected incurable recurrence not yet treated (from the detection of a recurrence that
  is not operated with curative intent to its non-curative procedure or systemic therapy);
  incurable recurrence from that procedure or therapy until death or censoring;
- utilities: each state's multiplier times the age-sex population norm (the file's
  ``utility_norm``, integrated in closed form over the patient's ageing), except the last
  ``end_of_life_months`` before a cancer death, valued at the absolute end-of-life utility;
  under ``lead_time="disease_free"`` the months between detection and when the first recurrence
  would have caused symptoms are valued at the disease-free utility (asymptomatic);
- every month of recurrence is in exactly one phase, each at its monthly cost: the last
  ``end_of_life_months`` before a cancer death are the end of life, whatever else; before them,
  detected untreated disease (``untreated_recurrence``) until incurable-phase care starts, then
  (``therapy="lines"``) first-line therapy for ``first_line_months``, the maintenance or
  treatment-free interval for ``maintenance_months``, second-line therapy for
  ``second_line_months`` in the ``second_line`` share of patients (best supportive care in the
  others), and best supportive care for the rest; a phase is cut short by the end of life or
  death. ``therapy="to_death"`` (the former costing) charges first-line therapy every month from
  the start of care to the end of life;
- when first-line therapy starts (``therapy_from``): ``"care"``, at the start of incurable-phase
  care as the engine records it; ``"symptoms"``, not before the first recurrence would have
  caused symptoms (expectancy), the months before it lived as detected untreated disease. With
  ``untreated="free"`` the months of detected untreated disease cost nothing (the former
  costing). Under ``lead_time="disease_free"`` no supportive care is charged before symptoms;
- one-off: a curative repeat operation by the sites operated (each site's resection), with the
  expected cost and QALY loss of a major complication after a liver resection; a non-curative
  procedure; the QALY loss of an operation and of a work-up;
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
    """A model structure for the economic evaluation: how systemic therapy is costed, when it
    starts and what the months before it cost, how the months of lead time are valued, and the
    horizon (None: lifetime)."""

    name: str
    label: str
    therapy: Literal["lines", "to_death"] = "lines"
    lead_time: Literal["recurrence", "disease_free"] = "recurrence"
    horizon_years: float | None = None
    therapy_from: Literal["care", "symptoms"] = "care"
    untreated: Literal["costed", "free"] = "costed"


STRUCTURES = (
    Structure("base", "base case: therapy by line, recurrence utility from detection, lifetime"),
    Structure("therapy_to_death", "systemic therapy every month to death (the former costing)",
              therapy="to_death"),
    Structure("lead_time_disease_free", "months before symptoms valued as disease-free",
              lead_time="disease_free"),
    Structure("both", "therapy to death and lead time valued as disease-free",
              therapy="to_death", lead_time="disease_free"),
    Structure("ten_years", "a 10-year horizon (the former horizon)", horizon_years=10.0),
    Structure("therapy_at_symptoms", "first-line therapy waits for symptoms (expectancy); the "
              "months before it as detected untreated disease", therapy_from="symptoms"),
    Structure("untreated_free", "months of detected untreated incurable disease cost nothing "
              "(the former costing)", untreated="free"),
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
        return np.where(end > start, end - start, 0.0)
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


_DF1, _AWAIT, _DF2, _INCURABLE, _UNTREATED = 0, 1, 2, 3, 4
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


def _codes(column: pd.Series) -> tuple[np.ndarray, list]:
    """(each row's code, the labels by code) of a text or categorical column (a missing value
    labelled ""), without turning every row into a Python string."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, labels = column.cat.codes.to_numpy(), [str(c) for c in column.cat.categories]
    else:
        codes, uniques = pd.factorize(column.to_numpy(object))
        labels = [str(u) for u in uniques]
    return np.where(codes < 0, len(labels), codes), labels + [""]


def _is(codes: np.ndarray, labels: list, name: str) -> np.ndarray:
    return codes == labels.index(name) if name in labels else np.zeros(len(codes), bool)


def _fill_forward(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each NaN of `values` given the last value before it in its group (groups begin where
    `starts` is True; a group's leading NaNs stay NaN), as pandas' groupby().ffill()."""
    index = np.where(~np.isnan(values) | starts, np.arange(len(values)), 0)
    return values[np.maximum.accumulate(index)] if len(values) else values


def course_of(patients: pd.DataFrame, events: pd.DataFrame, discounted: dict) -> Course:
    """A chunk's courses from its patients (patient_id, age_years, sex, first_symptom_months)
    and events (one patient's rows together, in time order), and the engine's discounted
    surveillance (`discounted_tests`, `discounted_workups`, `discounted_visits`)."""
    ids = patients["patient_id"].to_numpy()
    years = events["time_months"].to_numpy(float) / 12.0
    event, events_named = _codes(events["event"])
    detail, details_named = _codes(events["detail"])
    row = pd.Index(ids).get_indexer(events["patient_id"].to_numpy())
    n = len(ids)

    def kind(name):
        return _is(event, events_named, name)

    end = np.zeros(n)
    death = kind("death")
    terminal = death | kind("censored")
    end[row[terminal]] = years[terminal]
    cancer = np.zeros(n, bool)
    cancer[row[death & _is(detail, details_named, "cancer")]] = True

    # the state each event starts (progression and latent onset keep the state they find)
    first = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, bool)
    last = np.r_[row[1:] != row[:-1], True] if len(row) else np.zeros(0, bool)
    state = np.full(len(row), np.nan)
    state[kind("hepatectomy")] = _DF1
    state[kind("detection")] = _AWAIT
    reoperation = kind("reoperation")
    curative = reoperation & _is(detail, details_named, "curative")
    other = reoperation & ~curative
    state[curative] = _DF2
    state[other | kind("systemic_therapy")] = _INCURABLE
    state = _fill_forward(state, first)
    # a wait that ends in incurable-phase care, not a curative operation or the end, is
    # detected untreated incurable disease: the next settled state of the patient after it
    settled = np.where(state == _AWAIT, np.nan, state)
    settled[terminal] = -1.0
    following_state = np.append(settled[1:], np.nan)
    following_state[last] = np.nan
    following_state = _fill_forward(following_state[::-1], last[::-1])[::-1]
    state[(state == _AWAIT) & (following_state == _INCURABLE)] = _UNTREATED
    following = np.append(years[1:], np.inf)
    following[last] = end[row[last]]
    alive = ~terminal
    who = row[alive]
    stop = np.minimum(following, end[row])[alive]
    state = state[alive].astype(np.int8)
    start = years[alive]

    incurable_from = np.full(n, np.inf)
    np.minimum.at(incurable_from, who[state == _INCURABLE], start[state == _INCURABLE])

    operations = curative | other
    site, sites_named = _codes(events["site"])
    by_label = np.array([[name in label.split("+") for name in _SITES] for label in sites_named],
                        bool).reshape(-1, len(_SITES))
    op_sites = by_label[site[operations]] if len(by_label) else np.zeros((0, len(_SITES)), bool)
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
    recurrence = u["utility.recurrence"]
    multiplier = np.array([u["utility.disease_free_after_hepatectomy"], recurrence,
                           u["utility.disease_free_after_repeat"], recurrence, recurrence])
    eol = u["duration.end_of_life_months"] / 12.0
    eol_start = np.where(cancer, end - eol, np.inf)[who]
    if structure.lead_time == "disease_free":
        recurrent = np.isin(state, (_AWAIT, _INCURABLE, _UNTREATED))
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
    treatment = _phase_costs(c, u, structure, start, stop, eol_start, state, who, rc)

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


def _phase_costs(c: Course, u, structure: Structure, start, stop, eol_start, state, who,
                 rate: float) -> np.ndarray:
    """`_recurrence_costs` of the segments that can have any (detected incurable disease, or an
    end of life that overlaps them), 0 for the others (most: the disease-free)."""
    some = (state == _INCURABLE) | (state == _UNTREATED) | (eol_start < stop)
    out = np.zeros(len(state))
    out[some] = _recurrence_costs(c, u, structure, start[some], stop[some], eol_start[some],
                                  state[some], who[some], rate)
    return out


def _recurrence_costs(c: Course, u, structure: Structure, start, stop, eol_start, state, who,
                      rate: float) -> np.ndarray:
    """The discounted cost of each state segment's months of recurrence, each month in one
    phase: the end of life over its window; before it, detected untreated disease until
    first-line therapy starts, then first line, maintenance or treatment-free interval, second
    line (in its share; supportive care in the others) and best supportive care
    (``therapy="lines"``), or first line to the end of life (``"to_death"``)."""
    def span(a, b):
        return discounted_years(a, b, rate)

    incurable = state == _INCURABLE
    before_eol = np.minimum(stop, eol_start)
    therapy_from = c.incurable_from[who]
    if structure.therapy_from == "symptoms":
        therapy_from = np.maximum(therapy_from, c.symptom[who])
    untreated = span(start, np.where(incurable, np.minimum(before_eol, therapy_from),
                                     before_eol)) * (incurable | (state == _UNTREATED))
    if structure.untreated == "free":
        untreated = 0.0
    if structure.therapy == "to_death":
        therapy = u["monthly.first_line_therapy"] * span(np.maximum(start, therapy_from),
                                                         before_eol)
    else:
        first_end = therapy_from + u["duration.first_line_months"] / 12.0
        pause_end = first_end + u["duration.maintenance_months"] / 12.0
        second_end = pause_end + u["duration.second_line_months"] / 12.0
        # no supportive care before symptoms when the lead time is valued as disease-free
        supportive_from = (np.maximum(start, c.symptom[who])
                           if structure.lead_time == "disease_free" else start)
        share = u["probability.second_line"]
        therapy = (u["monthly.first_line_therapy"]
                   * span(np.maximum(start, therapy_from), np.minimum(before_eol, first_end))
                   + u["monthly.maintenance"]
                   * span(np.maximum(start, first_end), np.minimum(before_eol, pause_end))
                   + share * u["monthly.second_line_therapy"]
                   * span(np.maximum(start, pause_end), np.minimum(before_eol, second_end))
                   + u["monthly.best_supportive_care"]
                   * ((1 - share) * span(np.maximum(supportive_from, pause_end),
                                         np.minimum(before_eol, second_end))
                      + span(np.maximum(supportive_from, second_end), before_eol)))
    end_of_life = span(np.maximum(start, eol_start), stop)
    return 12.0 * (u["monthly.untreated_recurrence"] * untreated
                   + np.where(incurable, therapy, 0.0)
                   + u["monthly.end_of_life"] * end_of_life)


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
