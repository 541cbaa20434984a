"""The economic evaluation against references: dampack's worked example for the incremental
analysis, closed forms for discounting and for a patient priced by hand, the analytic EVPI of two
options with normal net benefits, and EVPPI against its bounds and a case solved by hand."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import sim
from conftest import ROOT
from sim.cli import main
from sim.model.economics import discount_factor, load_economics
from sim.studies.comparison import load_comparison
from sim.studies.decision import icers
from sim.studies.economics import (STRUCTURES, course_of, discounted_years, norm_integral,
                                  patient_economics)

US = ROOT / "scenarios" / "economics" / "us.toml"
UK = ROOT / "scenarios" / "economics" / "uk-nice.toml"


def test_icers_reproduce_dampacks_hiv_screening_example():
    """dampack's basic_cea vignette (calculate_icers on the HIV screening strategies): printed
    ICERs 37500.00, 58285.71, 100800.00, and "1 year" strongly dominated (D)."""
    table = icers(["Status Quo", "One time", "5 year", "3 year", "1 year"],
                  [26000, 27000, 28020, 28440, 29440],
                  np.array([277.25, 277.57, 277.78, 277.83, 277.76]) / 12).set_index("policy")
    assert list(table.index) == ["Status Quo", "One time", "5 year", "3 year", "1 year"]
    assert list(table["status"]) == ["ND", "ND", "ND", "ND", "D"]
    assert np.isnan(table.loc["Status Quo", "icer"]) and np.isnan(table.loc["1 year", "icer"])
    np.testing.assert_allclose(table.loc[["One time", "5 year", "3 year"], "icer"].round(2),
                               [37500.00, 58285.71, 100800.00])
    np.testing.assert_allclose(table.loc[["One time", "5 year", "3 year"], "incremental_cost"],
                               [1000, 1020, 420])


def test_icers_remove_extended_dominance_until_the_ratios_rise():
    """C's ICER against B (40) exceeds D's against C (3.3): C is extendedly dominated, and D is
    then compared with B: (35 - 10) / (3 - 1) = 12.5."""
    table = icers(["A", "B", "C", "D", "E"], [0, 10, 30, 35, 40], [0, 1, 1.5, 3, 2.5]).set_index("policy")
    assert table.loc[["A", "B", "C", "D", "E"], "status"].tolist() == ["ND", "ND", "ED", "ND", "D"]
    assert table.loc["B", "icer"] == pytest.approx(10.0)
    assert table.loc["D", "icer"] == pytest.approx(12.5)


@pytest.mark.parametrize("rate, start, end", [(0.03, 0.0, 10.0), (0.035, 2.5, 7.25), (0.0, 1.0, 4.0)])
def test_discounting_is_the_closed_form_of_a_constant_stream(rate, start, end):
    """Year t weighs (1 + r)^-t, as NICE and the Second Panel define it."""
    expected = integrate.quad(lambda t: (1 + rate) ** -t, start, end)[0]
    assert discounted_years(start, end, rate) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rate", [0.03, 0.035])
def test_discounting_weighs_year_t_as_the_guidelines_do(rate):
    """The weight of year 30 is (1 + r)^-30 (0.4120 at 3%, 0.3563 at 3.5%), not exp(-30 r); a
    payment at the start of every year for 30 years sums to the annuity-due closed form."""
    assert discount_factor(30.0, rate) == pytest.approx((1 + rate) ** -30, rel=1e-13)
    assert discount_factor(30.0, rate) > math.exp(-30 * rate)
    annuity_due = (1 - (1 + rate) ** -30) / (rate / (1 + rate))
    assert discount_factor(np.arange(30.0), rate).sum() == pytest.approx(annuity_due, rel=1e-12)
    # a continuous stream over the 30 years: (1 - (1 + r)^-30) / ln(1 + r)
    assert discounted_years(0.0, 30.0, rate) == pytest.approx(
        (1 - (1 + rate) ** -30) / math.log1p(rate), rel=1e-12)


def _area(rate, a, b, weight=lambda t: 1.0):
    return integrate.quad(lambda t: weight(t) * (1 + rate) ** -t, a, b, limit=200)[0]


def _norm(economics, age, male):
    c = economics.norm
    return lambda t: (c["intercept"] + c["male"] * male + c["age"] * (age + t)
                      + c["age_squared"] * (age + t) ** 2)


@pytest.mark.parametrize("rate", [0.0, 0.035])
@pytest.mark.parametrize("path", [US, UK])
def test_the_population_norm_is_integrated_in_closed_form(rate, path):
    economics = load_economics(path)
    for age, male, a, b in ((45.0, 1.0, 0.0, 12.5), (71.3, 0.0, 2.25, 3.0), (60.0, 1.0, 5.0, 40.0)):
        expected = _area(rate, a, b, _norm(economics, age, male))
        assert norm_integral(a, b, age, male, economics.norm, rate) == pytest.approx(expected,
                                                                                     rel=1e-9)


def _patient(events, symptom_months, age=60.0, sex="male"):
    return pd.DataFrame({"patient_id": [events["patient_id"].iloc[0]], "age_years": [age],
                         "sex": [sex], "first_symptom_months": [symptom_months]})


def _span(rate, a, b, weight=lambda t: 1.0):
    """The discounted area from a to b, 0 when b <= a (a phase cut short before it starts)."""
    return _area(rate, a, b, weight) if b > a else 0.0


def _phases(u, r, therapy_from, end_of_life_from, supportive_from=0.0):
    """The phases of incurable disease by hand: first line from `therapy_from`, then the
    maintenance or treatment-free interval, second line in its share (supportive care in the
    others), best supportive care from `supportive_from` to the end of life."""
    first_end = therapy_from + u["duration.first_line_months"] / 12
    pause_end = first_end + u["duration.maintenance_months"] / 12
    second_end = pause_end + u["duration.second_line_months"] / 12
    share = u["probability.second_line"]
    eol = end_of_life_from
    return 12 * (u["monthly.first_line_therapy"] * _span(r, therapy_from, min(eol, first_end))
                 + u["monthly.maintenance"] * _span(r, first_end, min(eol, pause_end))
                 + share * u["monthly.second_line_therapy"]
                 * _span(r, pause_end, min(eol, second_end))
                 + u["monthly.best_supportive_care"]
                 * ((1 - share) * _span(r, max(supportive_from, pause_end), min(eol, second_end))
                    + _span(r, max(supportive_from, second_end), eol)))


def _unsurveilled():
    return {"discounted_tests": np.zeros((1, 0)), "discounted_workups": np.zeros(1),
            "discounted_visits": np.zeros(1)}


def _systemic_from_detection(patient_id, detected_months, death_months):
    """A lung recurrence found at `detected_months`, treated systemically from then, and a
    cancer death."""
    return pd.DataFrame({"patient_id": [patient_id] * 4,
                         "time_months": [0.0, detected_months, detected_months, death_months],
                         "event": ["hepatectomy", "detection", "systemic_therapy", "death"],
                         "site": [None, "lung", None, None],
                         "detail": ["resection", None, None, "cancer"]})


@pytest.mark.parametrize("path", [US, UK])
def test_a_patient_priced_by_hand_under_every_structure(path):
    """Disease-free for a year, an incurable recurrence found at 12 months (it would have caused
    symptoms at 15), ablated at 13 and then treated by phase, a cancer death at 3 years: every
    integral by quadrature, the population norm at the patient's age as it rises. The month
    between detection and the ablation is detected untreated disease; the last months before
    the death are the end of life, whatever else."""
    economics = load_economics(path)
    u = dict(economics.means)
    r, re = economics.discount_costs, economics.discount_effects
    events = pd.DataFrame({"patient_id": [7] * 5, "time_months": [0.0, 10.0, 12.0, 13.0, 36.0],
                           "event": ["hepatectomy", "onset", "detection", "reoperation",
                                     "death"],
                           "site": [None, "liver", "liver", "liver", None],
                           "detail": ["resection", "latent", None, "other", "cancer"]})
    discounted = {"discounted_tests": np.array([[2.0, 1.5]]),
                  "discounted_workups": np.array([0.5]), "discounted_visits": np.array([3.0])}
    priced = patient_economics(_patient(events, 15.0), events, discounted, ("cea", "ct_cap"), u,
                               economics).iloc[0]
    norm = _norm(economics, 60.0, 1.0)
    eol = 3.0 - u["duration.end_of_life_months"] / 12
    care, symptoms = 13 / 12, 1.25
    surveillance = (2.0 * u["test.cea"] + 1.5 * u["test.ct_cap"] + 0.5 * u["cost.workup"]
                    + 3.0 * u["cost.clinic_visit"])
    one_off = (u["cost.palliative_procedure"] * (1 + r) ** -care
               + 12 * u["monthly.end_of_life"] * _area(r, eol, 3))

    def untreated(until):
        return 12 * u["monthly.untreated_recurrence"] * _span(r, 1.0, until)

    def qalys(symptom_free_until):
        return (u["utility.disease_free_after_hepatectomy"]
                * _area(re, 0, symptom_free_until, norm)
                + u["utility.recurrence"] * _area(re, symptom_free_until, eol, norm)
                + u["utility.end_of_life"] * _area(re, eol, 3) - u["disutility.workup"] * 0.5
                - u["disutility.operation"] * (1 + re) ** -care)

    base = untreated(care) + _phases(u, r, care, eol) + one_off
    to_death = (untreated(care) + 12 * u["monthly.first_line_therapy"] * _area(r, care, eol)
                + one_off)
    expected = {"base": (base, qalys(1.0)), "therapy_to_death": (to_death, qalys(1.0)),
                "lead_time_disease_free": (untreated(care) + _phases(u, r, care, eol, symptoms) + one_off,
                                           qalys(symptoms)),
                "both": (to_death, qalys(symptoms)), "ten_years": (base, qalys(1.0)),
                "therapy_at_symptoms": (untreated(symptoms) + _phases(u, r, symptoms, eol)
                                        + one_off, qalys(1.0)),
                "untreated_free": (base - untreated(care), qalys(1.0))}
    assert {s.name for s in STRUCTURES} == set(expected)
    for structure, (treatment, effect) in expected.items():
        suffix = "" if structure == "base" else f":{structure}"
        assert priced[f"cost_treatment{suffix}"] == pytest.approx(treatment, rel=1e-9), structure
        assert priced[f"qalys{suffix}"] == pytest.approx(effect, rel=1e-9), structure
        assert priced[f"life_years{suffix}"] == pytest.approx(_area(re, 0, 3), rel=1e-12)
        assert priced[f"cost_surveillance{suffix}"] == pytest.approx(surveillance, rel=1e-12)
    # the phases differ: the untreated month, the wait for symptoms and therapy to death each
    # change the cost
    assert len({round(t, 6) for t, _ in expected.values()}) >= 4


def test_a_death_during_first_line_leaves_only_the_end_of_life_after_it():
    """Systemic therapy from detection at 24 months and a cancer death at 28: the last three
    months are the end of life (not first line), the month before it first line, nothing else."""
    economics = load_economics(UK)
    u = dict(economics.means)
    r = economics.discount_costs
    events = _systemic_from_detection(4, 24.0, 28.0)
    discounted = _unsurveilled()
    priced = patient_economics(_patient(events, np.nan), events, discounted, (), u,
                               economics).iloc[0]
    eol = 28 / 12 - u["duration.end_of_life_months"] / 12
    assert priced["cost_treatment"] == pytest.approx(
        12 * (u["monthly.first_line_therapy"] * _area(r, 2, eol)
              + u["monthly.end_of_life"] * _area(r, eol, 28 / 12)), rel=1e-9)


def test_a_horizon_cuts_the_course_and_a_death_after_it_is_not_an_end_of_life():
    economics = load_economics(US)
    u = dict(economics.means)
    r, re = economics.discount_costs, economics.discount_effects
    events = _systemic_from_detection(3, 96.0, 180.0)
    discounted = _unsurveilled()
    priced = patient_economics(_patient(events, np.nan, 50.0, "female"), events, discounted, (),
                               u, economics).iloc[0]
    norm = _norm(economics, 50.0, 0.0)
    assert priced["life_years:ten_years"] == pytest.approx(_area(re, 0, 10), rel=1e-12)
    assert priced["qalys:ten_years"] == pytest.approx(
        u["utility.disease_free_after_hepatectomy"] * _area(re, 0, 8, norm)
        + u["utility.recurrence"] * _area(re, 8, 10, norm), rel=1e-9)
    assert priced["cost_treatment:ten_years"] == pytest.approx(_phases(u, r, 8.0, 10.0),
                                                               rel=1e-9)
    assert priced["life_years"] == pytest.approx(_area(re, 0, 15), rel=1e-12)


def test_a_curative_repeat_operation_is_priced_by_its_sites_and_its_complications():
    economics = load_economics(US)
    u = dict(economics.means)
    r, re = economics.discount_costs, economics.discount_effects
    events = pd.DataFrame({"patient_id": [1] * 4, "time_months": [0.0, 24.0, 25.0, 60.0],
                           "event": ["hepatectomy", "detection", "reoperation", "censored"],
                           "site": [None, "liver+lung", "liver+lung", None],
                           "detail": ["resection", None, "curative", "horizon"]})
    discounted = _unsurveilled()
    priced = patient_economics(_patient(events, 30.0), events, discounted, (), u,
                               economics).iloc[0]
    complication = u["probability.major_complication"]
    operation = (u["cost.repeat_liver_resection"] + u["cost.lung_resection"]
                 + complication * u["cost.major_complication"]) * (1 + r) ** (-25 / 12)
    assert priced["cost_treatment"] == pytest.approx(operation, rel=1e-12)
    norm = _norm(economics, 60.0, 1.0)
    qalys = (u["utility.disease_free_after_hepatectomy"] * _area(re, 0, 2, norm)
             + u["utility.recurrence"] * _area(re, 2, 25 / 12, norm)
             + u["utility.disease_free_after_repeat"] * _area(re, 25 / 12, 5, norm)
             - (u["disutility.operation"] + complication * u["disutility.major_complication"])
             * (1 + re) ** (-25 / 12))
    assert priced["qalys"] == pytest.approx(qalys, rel=1e-9)


@pytest.mark.parametrize("mean, sd", [(0.0, 1.0), (0.5, 2.0), (-1.0, 0.7)])
def test_evpi_of_two_options_with_normal_net_benefits(mean, sd):
    """EVPI = E[max(0, X)] - max(0, E X) for X ~ N(mean, sd^2): sd phi(m/sd) + m Phi(m/sd) -
    max(0, m); within 4 Monte Carlo standard errors."""
    draws = np.random.default_rng(11).normal(mean, sd, 200_000)
    net = np.stack([np.zeros_like(draws), draws], axis=1)[None]
    analytic = sd * stats.norm.pdf(mean / sd) + mean * stats.norm.cdf(mean / sd) - max(0.0, mean)
    error = np.maximum(draws, 0).std() / math.sqrt(len(draws))
    assert abs(sim.evpi(net[0]).value - analytic) < 4 * error + 1e-3 * sd


def test_evppi_is_bounded_by_evpi_and_reaches_it_with_every_parameter():
    """Net benefit of option 2 is a + b (option 1: 0), a and b standard normal: knowing a is
    worth E[max(0, a)] = 1/sqrt(2 pi); knowing both, EVPI = E[max(0, a + b)] = 1/sqrt(pi)."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3000))
    net = np.stack([np.zeros_like(a), a + b], axis=1)[None]
    total = sim.evpi(net[0]).value
    assert total == pytest.approx(1 / math.sqrt(math.pi), rel=0.05)
    partial = sim.evppi(net[0], a[:, None])
    assert partial <= total
    assert partial == pytest.approx(1 / math.sqrt(2 * math.pi), rel=0.08)
    both = sim.evppi(net[0], np.stack([a, b], axis=1))
    assert partial < both <= total * 1.01 and both == pytest.approx(total, rel=0.03)
    assert sim.evppi(net[0], np.ones((3000, 1))) == 0.0          # a constant is worth nothing


@pytest.fixture(scope="module")
def guidelines(tmp_path_factory):
    comparison = load_comparison(ROOT / "scenarios" / "comparisons" / "guidelines.toml", US)
    small = dataclasses.replace(comparison,
                                cohort=comparison.cohort.model_copy(update={"patients": 300}),
                                uncertainty=comparison.uncertainty.model_copy(update={"draws": 6}))
    out = tmp_path_factory.mktemp("economics") / "out"
    return out, sim.compare(small, out=out)


def test_the_guidelines_comparison_writes_every_economic_output(guidelines):
    out, _ = guidelines
    for name in ("economics.csv", "icers.csv", "ceac.csv", "evppi.csv", "plane.png", "ceac.png",
                 "evpi.png"):
        assert (out / name).stat().st_size > 100, name
    summary = pd.read_csv(out / "economics.csv")
    assert len(summary) == 6 and (summary["draws"] == 6).all()
    assert np.allclose(summary["cost_total"], summary["cost_surveillance"] + summary["cost_treatment"])
    assert (summary.set_index("policy").loc["symptoms-only", "cost_surveillance"] == 0)
    table = pd.read_csv(out / "icers.csv")
    assert set(table["status"]) <= {"ND", "D", "ED"} and (table["status"] == "ND").sum() >= 1
    ceac = pd.read_csv(out / "ceac.csv")
    assert np.allclose(ceac.groupby("wtp")["probability_best"].sum(), 1.0)
    assert (ceac.groupby("wtp")["on_acceptability_frontier"].sum() == 1).all()
    assert ceac["wtp"].min() == 0 and ceac["wtp"].max() == 200_000
    value = pd.read_csv(out / "evppi.csv")
    assert {"EVPI", "all parameters", "natural history", "test accuracy", "costs",
            "utilities"} <= set(value["group"])
    assert {"group", "parameters", "wtp", "evppi", "se"} <= set(value.columns)
    assert (value["se"] >= 0).all() and (value["evppi"] >= 0).all()
    page = (out / "report.html").read_text()
    assert "Cost-effectiveness" in page and page.count("USD, 2024 prices") >= 8
    patients = pd.read_parquet(out / "patients", columns=["cost_surveillance", "cost_treatment",
                                                          "life_years", "qalys"])
    assert (patients["life_years"] > 0).all() and (patients["qalys"] < patients["life_years"]).all()


def test_compare_returns_every_table_in_memory_equal_to_the_files_it_writes(guidelines):
    out, result = guidelines
    assert result.out == out
    names = {"results.csv", "results_by_draw.csv", "capacity.csv", "capacity_by_quarter.csv",
             "economics.csv", "economics_by_draw.csv", "icers.csv", "ceac.csv", "evppi.csv",
             "structures.csv", "evppi_ranking.csv", "monte_carlo_error.csv", "inputs.csv",
             "evppi_checks.csv",
             "deterministic.csv", "one_way.csv", "two_way.csv", "thresholds.csv"}
    assert set(result.tables()) == names
    for name, frame in result.tables().items():
        assert frame.to_csv(index=False).encode() == (out / name).read_bytes(), name
    for name, frame in (("icers.csv", result.icers), ("ceac.csv", result.ceac),
                        ("evppi.csv", result.evppi), ("economics.csv", result.economics)):
        pd.testing.assert_frame_equal(frame, pd.read_csv(out / name), check_dtype=False)


def test_the_decision_tables_follow_from_the_per_draw_outcomes(guidelines):
    # the per-draw sample is the probabilistic analysis: the ICERs along the frontier, the
    # acceptability curve and the EVPI are recomputed from it by their definitions
    _, result = guidelines
    by_draw = result.decision.by_draw
    means = by_draw.groupby("scenario_id")[["cost_total", "qalys"]].mean()
    frontier = result.icers[result.icers["status"] == "ND"].reset_index(drop=True)
    for previous, current in zip(frontier.itertuples(), frontier.iloc[1:].itertuples()):
        step = means.loc[current.policy] - means.loc[previous.policy]
        expected = step["cost_total"] / step["qalys"]
        assert current.icer == pytest.approx(expected, rel=1e-9)
    for wtp in (0.0, 50_000.0, 100_000.0):
        net = (wtp * by_draw["qalys"] - by_draw["cost_total"]).to_numpy()
        table = pd.DataFrame({"policy": by_draw["scenario_id"], "draw": by_draw["draw"],
                              "net": net}).pivot(index="draw", columns="policy", values="net")
        evpi_expected = table.max(axis=1).mean() - table.mean().max()
        value = result.evppi
        row = value[(value["group"] == "EVPI") & (value["wtp"] == wtp)]
        assert row["evppi"].iloc[0] == pytest.approx(evpi_expected, rel=1e-9, abs=1e-9)
        shares = table.idxmax(axis=1).value_counts(normalize=True)
        ceac = result.ceac[result.ceac["wtp"] == wtp].set_index("policy")["probability_best"]
        assert ceac.to_dict() == pytest.approx({p: shares.get(p, 0.0) for p in ceac.index})


@pytest.mark.parametrize("old, new, message", [
    ("ct_cap = {", "ct_scan = {", r"test_cost: no cost for 'ct_cap', a modality of policy"),
    ('recurrence = { value = 0.895, distribution = "beta", se = 0.043,',
     'recurrence = { value = 0.895, distribution = "beta", se = 0.43,',
     r"utility.recurrence: .*se below"),
    ("price_year = 2024", 'price_year = "2024"', r"price_year: Input should be a valid integer"),
    ("[disutility]", "[disutilities]", r"disutilities: unknown key; did you mean 'disutility'"),
])
def test_a_bad_economics_file_is_one_line(capsys, tmp_path, old, new, message):
    import re

    text = US.read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    code = main(["run", str(ROOT / "scenarios" / "comparisons" / "rectal-pelvis.toml"),
                 "--economics", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_report_priced_by_the_nice_file_names_its_currency_and_no_other(tmp_path):
    """The comparison's policies give their costs in USD; priced by the NICE file, every cost
    the report names is in the file's currency and price year, and USD appears nowhere."""
    nice = load_economics(ROOT / "scenarios" / "economics" / "uk-nice.toml")
    comparison = load_comparison(ROOT / "scenarios" / "comparisons" / "esmo-intensive-economics.toml",
                                 ROOT / "scenarios" / "economics" / "uk-nice.toml")
    assert {policy.currency for policy in sim.load_comparison(
        "comparisons/esmo-intensive-economics").policies} == {"USD"}
    small = dataclasses.replace(comparison,
                                cohort=comparison.cohort.model_copy(update={"patients": 200}),
                                uncertainty=comparison.uncertainty.model_copy(update={"draws": 3}))
    sim.compare(small, out=tmp_path / "out", keep_patients=False)
    text = (tmp_path / "out" / "results.md").read_text()
    unit = f"{nice.currency}, {nice.price_year} prices"
    assert unit == "GBP, 2024 prices"
    assert f"Costs are in {unit}, as the economics file uk-nice prices them" in text
    assert "USD" not in text and "policies' currency" not in text
    page = (tmp_path / "out" / "report.html").read_text()
    assert "USD" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)


def test_a_course_is_read_the_same_from_text_and_from_categorical_events():
    """The events' text columns as plain strings or as categories (as Arrow's dictionaries come
    out of to_pandas) give the same course: codes are looked up by name, a missing site or
    detail is the empty label."""
    events = pd.DataFrame({"patient_id": [1, 1, 1, 1, 2, 2, 2],
                           "time_months": [0.0, 20.0, 21.0, 40.0, 0.0, 30.0, 50.0],
                           "event": ["hepatectomy", "detection", "systemic_therapy", "death",
                                     "hepatectomy", "detection", "censored"],
                           "site": [None, "liver+lung", None, None, None, "pelvis", None],
                           "detail": ["resection", None, None, "cancer", "resection", None,
                                      "horizon"]})
    patients = pd.DataFrame({"patient_id": [1, 2], "age_years": [60.0, 70.0],
                             "sex": ["male", "female"], "first_symptom_months": [25.0, np.nan]})
    discounted = {"discounted_tests": np.zeros((2, 0)), "discounted_workups": np.zeros(2),
                  "discounted_visits": np.zeros(2)}
    plain = course_of(patients, events, discounted)
    categorical = course_of(patients, events.astype({c: "category" for c in
                                                     ("event", "site", "detail")}), discounted)
    for name in plain._fields:
        np.testing.assert_array_equal(getattr(plain, name), getattr(categorical, name), name)
    # patient 1: untreated from detection (20) to therapy (21), incurable to death (40), cancer
    assert plain.cancer.tolist() == [True, False] and plain.end.tolist() == [40 / 12, 50 / 12]
    assert plain.incurable_from[0] == pytest.approx(21 / 12) and np.isinf(plain.incurable_from[1])
    assert plain.state.tolist() == [0, 4, 3, 0, 1]      # patient 2 still awaits at censoring
