"""The economic evaluation's further analyses against references: EVSI against its closed form
on a conjugate normal case, the deterministic analyses against direct pricing, the Monte Carlo
error against the patients it comes from, the lifetime horizon's censoring, and every input of
the economics files sourced, distributed and varied."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from conftest import ROOT
from sim.model.economics import TABLES, load_economics
from sim.model.params import load_params
from sim.studies.comparison import load_comparison
import sim.studies.voi
from sim.studies.decision import priced_arrays, value_points
from sim.studies.evsi import evsi_table, trial_likelihood
from sim.studies.sensitivity import Priced, base_courses, sensitivity

FILES = [ROOT / "scenarios" / "economics" / name for name in ("us.toml", "uk-nice.toml")]
ECONOMIC = ROOT / "scenarios" / "comparisons" / "esmo-intensive-economics.toml"


def _conjugate(n: int, draws: int, seed: int, mu0=-0.3, sd0=1.0, sd=4.0):
    """Option 2's incremental net benefit theta ~ N(mu0, sd0^2) (option 1: 0); a trial of n
    observes the mean of n draws of N(theta, sd^2)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(mu0, sd0, draws)
    mean = theta + rng.normal(0.0, sd / math.sqrt(n), draws)
    net = np.stack([np.zeros(draws), theta], axis=1)[None]
    s = sd0 ** 2 / math.sqrt(sd0 ** 2 + sd ** 2 / n)          # sd of the posterior mean
    analytic = s * stats.norm.pdf(mu0 / s) + mu0 * stats.norm.cdf(mu0 / s) - max(mu0, 0.0)
    return net, theta, mean, analytic


@pytest.mark.parametrize("n", [4, 16, 64])
def test_evsi_by_regression_matches_the_conjugate_closed_form(n):
    """EVSI = s phi(mu0 / s) + mu0 Phi(mu0 / s) - max(0, mu0), s^2 the variance of the
    posterior mean (preposterior analysis of a normal mean with known variance); within 4
    Monte Carlo standard errors of the estimator (its sd over 20 independent samples)."""
    estimates = []
    for seed in range(20):
        net, _, mean, analytic = _conjugate(n, 2000, seed)
        estimates.append(sim.evsi(net[0], None, mean[:, None]).value)
    estimates = np.array(estimates)
    error = estimates.std(ddof=1) / math.sqrt(len(estimates))
    assert abs(estimates.mean() - analytic) < 4 * error + 0.01 * analytic, (estimates.mean(),
                                                                             analytic, error)


def test_evsi_lies_below_the_evppi_of_what_the_trial_informs_and_grows_with_n():
    rng = np.random.default_rng(5)
    theta = rng.normal(-0.3, 1.0, 3000)
    net = np.stack([np.zeros_like(theta), theta], axis=1)[None]
    noise = rng.normal(size=3000)
    rows = [{"draw": d, "per_arm": n, "restricted_mean_difference_months": theta[d]
             + 4.0 / math.sqrt(n) * noise[d], "curative_share_difference": rng.normal()}
            for n in (4, 16, 64, 256) for d in range(3000)]
    perfect = sim.evpi(net[0])
    informed = sim.evppi(net[0], theta[:, None])
    cost = np.stack([np.zeros_like(theta), -theta], axis=1)     # net benefit at wtp 1: theta
    table, checks = evsi_table(cost, np.zeros_like(cost), [1.0], pd.DataFrame(rows), 1000.0,
                               50.0, 0.1, [informed], [perfect])
    curve = table.sort_values("per_arm")["evsi"].to_numpy()
    assert np.all(np.diff(curve) > 0) and curve[-1] <= informed <= perfect * 1.001
    assert (table["se"] > 0).all()
    np.testing.assert_allclose(table["enbs_se"], 1000.0 * table["se"])
    assert checks.iloc[0][["evsi_within_evppi", "evppi_within_evpi", "evsi_non_negative",
                           "evsi_grows_with_n"]].all()
    np.testing.assert_allclose(table["enbs"], table["evsi_population"]
                               - (50.0 + 0.1 * 2 * table["per_arm"]))
    best = table.loc[table["enbs"].idxmax()]
    assert table["maximises_enbs"].sum() == 1 and best["maximises_enbs"]
    assert best["probability_optimal"] == table["probability_optimal"].max()
    assert table["probability_optimal"].sum() == pytest.approx(1.0)


def test_an_optimum_lost_in_the_noise_is_not_named():
    """A trial worth nothing (statistics that carry no information) has ENBS = -cost at every
    size: no size is named the optimum."""
    rng = np.random.default_rng(6)
    theta = rng.normal(-0.3, 1.0, 500)
    rows = [{"draw": d, "per_arm": n, "restricted_mean_difference_months": rng.normal(),
             "curative_share_difference": rng.normal()} for n in (4, 16) for d in range(500)]
    cost = np.stack([np.zeros_like(theta), -theta], axis=1)
    informed = sim.evppi(cost * -1, theta[:, None])
    table, _ = evsi_table(cost, np.zeros_like(cost), [1.0], pd.DataFrame(rows), 10.0, 50.0,
                          0.1, [informed], [informed])
    assert not table["maximises_enbs"].any()


@pytest.mark.parametrize("path", FILES)
def test_every_input_has_a_citation_a_price_year_a_distribution_and_an_interval(path):
    economics = load_economics(path)
    money = {prefix for prefix, _, is_money in TABLES.values() if is_money}
    assert len(economics.inputs) >= 29
    for name, item in economics.inputs.items():
        assert len(item.source) > 20 and item.evidence in ("published", "partly published",
                                                           "assumption"), name
        assert item.distribution in ("gamma", "beta", "fixed"), name
        assert item.low <= item.value <= item.high, name
        if item.distribution != "fixed":
            assert item.se > 0, name
        if item.evidence == "assumption":
            assert item.source.lower().startswith("assumption") or "assum" in item.source, name
        if name.split(".")[0] in money:
            assert item.price_year is not None, name
            if item.price_year != economics.price_year:
                assert item.conversion, name
    for name, item in economics.inputs.items():     # the draws follow the fitted distributions
        if item.distribution == "fixed":
            continue
        rng = np.random.default_rng(1)
        sample = np.array([item.sample(rng) for _ in range(4000)])
        assert abs(sample.mean() - item.value) < 4 * item.se / math.sqrt(4000) + 1e-12, name
        assert sample.std() == pytest.approx(item.se, rel=0.1), name


@pytest.fixture(scope="module")
def priced():
    comparison = load_comparison(ECONOMIC)
    params, _ = load_params()
    courses = base_courses(params, comparison.policies, comparison.economics, 3000, 3, "both",
                           "lifetime")
    return Priced(courses, {p.name: p.modality_names for p in comparison.policies},
                  comparison.economics)


def test_the_deterministic_analyses_are_the_base_case_priced_again(priced):
    economics = priced.economics
    tables = sensitivity(priced, "esmo")
    means = economics.means
    assumptions = {k for k, i in economics.inputs.items()
                   if i.evidence == "assumption" and not k.startswith("trial.")}
    assert assumptions <= set(tables.one_way["input"])           # every assumption is varied
    # a surveillance price enters linearly: its swing is the difference in discounted tests
    ct = list(priced.modalities["esmo"]).index("ct_cap")
    extra = (np.concatenate([c.tests[:, ct] for c in priced.courses["intensive"]]).mean()
             - np.concatenate([c.tests[:, ct] for c in priced.courses["esmo"]]).mean())
    row = tables.one_way[(tables.one_way["input"] == "test.ct_cap")
                         & (tables.one_way["wtp"] == economics.thresholds[0])].iloc[0]
    assert row["net_benefit_difference_high"] - row["net_benefit_difference_low"] == \
        pytest.approx(-extra * (row["high"] - row["low"]), rel=1e-9)
    # a two-way cell is the net benefit priced with both inputs set
    cell = tables.two_way.iloc[len(tables.two_way) // 2]
    net = priced.net(means | {cell["input_x"]: cell["x"], cell["input_y"]: cell["y"]})[0]
    assert cell["net_benefit_difference"] == pytest.approx(net[1] - net[0], rel=1e-9)
    # at a threshold value found, the decision is indifferent
    for row in tables.thresholds.dropna(subset=["threshold_value"]).itertuples():
        net = priced.net(means | {row.input: row.threshold_value})
        t = list(economics.thresholds).index(row.wtp)
        assert abs(net[t, 1] - net[t, 0]) < 1e-6 * abs(row.net_benefit_difference_base) + 1e-3
    base = tables.base.set_index("policy")
    for wtp, rows in tables.one_way.groupby("wtp"):
        assert rows["net_benefit_difference_base"].iloc[0] == pytest.approx(
            base.loc["intensive", f"net_benefit_difference_at_{wtp:.0f}"], rel=1e-9)


def test_the_lifetime_design_follows_everyone_to_death_or_age_100():
    result = sim.simulate_cohort(3000, seed=2, design="lifetime", primary="both")
    patients = result.patients
    limit = 12.0 * (100.0 - patients["age_years"])
    assert (patients["os_months"] <= limit + 1e-9).all()
    alive = ~patients["death"].astype(bool)
    np.testing.assert_allclose(patients.loc[alive, "os_months"], limit[alive], rtol=1e-12)
    assert alive.mean() < 0.05                    # almost everyone dies before 100


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    comparison = load_comparison(ECONOMIC)
    small = dataclasses.replace(
        comparison, cohort=comparison.cohort.model_copy(update={"patients": 400}),
        uncertainty=comparison.uncertainty.model_copy(update={"draws": 8}),
        sensitivity=comparison.sensitivity.model_copy(update={"patients": 2000}),
        trial=comparison.trial.model_copy(update={"per_arm": [50, 200]}))
    out = tmp_path_factory.mktemp("analyses") / "out"
    return out, sim.compare(small, out=out, workers=2)


def test_an_economic_run_writes_every_analysis_and_its_checks(small_run):
    out, result = small_run
    for name in ("structures.csv", "monte_carlo_error.csv", "one_way.csv", "two_way.csv",
                 "thresholds.csv", "evppi_ranking.csv", "evsi.csv", "evsi_checks.csv",
                 "inputs.csv", "tornado-intensive.png", "two-way-intensive.png", "evsi.png",
                 "expected-loss.png"):
        assert (out / name).stat().st_size > 50, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["horizon"] == "lifetime (to death or age 100)"
    assert {r["measure"] for r in manifest["monte_carlo_error"]} >= {"cost", "qalys"}
    assert len(manifest["evsi_checks"]) == len(value_points(load_economics(FILES[0]))) == 4
    assert set(result.evsi["per_arm"]) == {50, 200}
    assert set(result.decision.structures["structure"]) == {
        "base", "therapy_to_death", "lead_time_disease_free", "both", "ten_years",
        "therapy_at_symptoms", "untreated_free"}
    page = (out / "report.html").read_text()
    for heading in ("Structural scenarios", "Monte Carlo error", "Deterministic sensitivity",
                    "Value of information", "Inputs", "Published evaluations", "CHEERS 2022"):
        assert f">{heading}<" in page, heading


def test_the_monte_carlo_error_is_the_paired_patient_variance(small_run):
    out, result = small_run
    patients = pd.read_parquet(out / "patients")
    patients["cost"] = patients["cost_surveillance"] + patients["cost_treatment"]
    wide = patients.pivot_table(index=["draw", "patient_id"], columns="scenario_id",
                                values=["cost", "qalys"])
    difference = wide.xs("intensive", axis=1, level=1) - wide.xs("esmo", axis=1, level=1)
    by_draw = difference.groupby(level="draw")
    within = (by_draw["cost"].var() / by_draw["cost"].count()).mean()
    table = result.decision.monte_carlo.set_index("measure")
    assert table.loc["cost", "patient_noise_variance"] == pytest.approx(within, rel=1e-9)
    means = by_draw.mean()
    assert table.loc["qalys", "variance_over_draws"] == pytest.approx(means["qalys"].var(),
                                                                      rel=1e-9)
    t = result.decision.economics.filter(like="net_benefit_at_").columns[0]
    wtp = float(t.removeprefix("net_benefit_at_"))
    nmb = wtp * difference["qalys"] - difference["cost"]
    within = (nmb.groupby(level="draw").var() / 400).mean()
    assert table.loc[f"net_benefit_at_{wtp:.0f}", "patient_noise_variance"] == pytest.approx(
        within, rel=1e-9)


def test_expected_loss_is_least_for_the_best_policy_and_equals_the_evpi(small_run):
    _, result = small_run
    ceac = result.ceac
    value = result.evppi[result.evppi["group"] == "EVPI"].set_index("wtp")
    for wtp, rows in ceac.groupby("wtp"):
        best = rows.loc[rows["expected_net_benefit"].idxmax()]
        assert best["expected_loss"] == pytest.approx(rows["expected_loss"].min(), abs=1e-9)
        assert best["expected_loss"] == pytest.approx(value.loc[wtp, "evppi"], abs=1e-6)


def test_evsi_by_regression_agrees_with_a_two_level_simulation_on_the_simulator(tmp_path):
    """A small economic comparison with a proposed trial, run by the simulator: the EVSI of a
    trial of 300 patients an arm by regression on its two statistics against the two-level
    (importance-sampling) estimate, each draw's result weighed by its likelihood under every
    draw's parameters (the statistics' expectation from the trial of 5,000 an arm, their
    covariance from its patients), agreeing within 3 of their combined standard errors at every
    threshold, where the trial is clearly worth something at one at least."""
    path = tmp_path / "nested.toml"
    path.write_text(f'''name = "nested"
description = "the regression EVSI against a two-level simulation"
reference = "symptoms-only"
policies = ["{ROOT}/scenarios/symptoms-only.toml", "{ROOT}/scenarios/yearly.toml"]
economics = "{ROOT}/scenarios/economics/uk-nice.toml"
[cohort]
patients = 300
primary = "both"
years = "lifetime"
[uncertainty]
draws = 150
seed = 3
[sensitivity]
patients = 300
[trial]
policies = ["symptoms-only", "yearly"]
per_arm = [300, 5000]
follow_up_years = 5.0
''')
    result = sim.compare(path, workers=2)
    cost, qalys = priced_arrays(result.decision.by_draw.set_index(["scenario_id", "draw"]),
                                list(result.policies))
    _, log_likelihood = trial_likelihood(result.trials, 300)
    worth = 0
    for row in result.evsi[result.evsi["per_arm"] == 300].itertuples():
        nested = sim.studies.voi.evsi_importance(row.wtp * qalys - cost, log_likelihood)
        assert abs(row.evsi - nested.value) <= 3 * math.hypot(row.se, nested.se), (row, nested)
        worth += nested.value > 3 * nested.se
    assert worth >= 1


def test_patient_noise_above_five_percent_is_warned_with_the_cohort_that_would_do():
    """Noise share s at n patients: under 5% needs n s (1 - 0.05) / (0.05 (1 - s)); at exactly
    that size the share is 5% (variance N / n' against the parameters' P = N (1 - s) / s)."""
    from sim.studies.decision import noisy

    table = pd.DataFrame({"policy": ["yearly"] * 3, "measure": [
        "net_benefit_at_20000", "net_benefit_at_30000", "cost"], "patients_per_draw": 3000.0,
        "noise_share": [0.2, 0.04, 0.5]})
    warnings = noisy(table)
    assert len(warnings) == 1 and "20.0%" in warnings[0] and "net benefit at 20000" in warnings[0]
    needed = 3000 * 0.2 * 0.95 / (0.05 * 0.8)
    assert f"{needed:,.0f}" in warnings[0]
    noise = 1.0 / 3000
    parameters = noise * 0.8 / 0.2
    assert (noise * 3000 / needed) / (noise * 3000 / needed + parameters) == pytest.approx(0.05)
