"""The value of information on plain inputs (`sim.evpi`, `sim.evppi`, `sim.evsi`) against voi's
own values on its worked example and against closed forms on linear-normal models: the values,
their standard errors (coverage over independent samples) and the nesting of groups."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from conftest import ROOT
from sim.studies import voi

CHEMO = ROOT / "tests" / "data" / "voi-chemo"


@pytest.fixture(scope="module")
def chemo():
    return (pd.read_csv(CHEMO / "chemo_nb.csv.gz"), pd.read_csv(CHEMO / "chemo_pars.csv.gz"))


def test_evpi_is_voi_s_on_its_worked_example(chemo):
    net, _ = chemo
    value = sim.evpi(net)
    assert value.value == pytest.approx(368.6051, rel=1e-6)
    assert 0 < value.se < 0.05 * value.value


@pytest.mark.parametrize("pars, reference", [
    (["p_side_effects_t2"], 262.1109),                              # voi: GAM
    (["p_side_effects_t2", "logor_side_effects"], 333.4516),        # voi: GAM, tensor product
])
def test_evppi_is_voi_s_within_one_percent(chemo, pars, reference):
    net, inputs = chemo
    value = sim.evppi(net, inputs, pars)
    assert value.value == pytest.approx(reference, rel=0.01)
    assert value.method == "gam" and value.r2 > 0.3
    assert value.value <= sim.evpi(net).value


def test_evsi_of_the_binary_trial_is_voi_s_within_two_standard_errors(chemo):
    """A two-arm trial of 100 patients an arm, each arm's count of side effects binomial with the
    draw's probabilities; voi's regression (GAM) gives 242.1268."""
    net, inputs = chemo

    def trial(parameters):
        rng = np.random.default_rng(2024)
        return np.column_stack([rng.binomial(100, parameters["p_side_effects_t1"]),
                                rng.binomial(100, parameters["p_side_effects_t2"])])

    value = sim.evsi(net, inputs, trial)
    assert abs(value.value - 242.1268) < max(2 * value.se, 0.02 * 242.1268), value
    assert value.value <= sim.evppi(net, inputs, ["p_side_effects_t1", "p_side_effects_t2"])


def _linear_normal(seed: int, draws: int = 1500, mu: float = -0.2, noise: float = 0.5):
    """Option 2's net benefit mu + a + 0.7 b + 0.5 c + patient noise (option 1: 0), a, b, c
    standard normal."""
    rng = np.random.default_rng(seed)
    inputs = pd.DataFrame(rng.normal(size=(draws, 3)), columns=["a", "b", "c"])
    signal = mu + inputs["a"] + 0.7 * inputs["b"] + 0.5 * inputs["c"]
    net = pd.DataFrame({"one": 0.0, "two": signal + rng.normal(0, noise, draws)})
    return net, inputs


def _gain(mu: float, sd: float) -> float:
    """E[max(0, X)] - max(0, mu) for X ~ N(mu, sd^2)."""
    return sd * stats.norm.pdf(mu / sd) + mu * stats.norm.cdf(mu / sd) - max(mu, 0.0)


@pytest.mark.parametrize("pars, sd", [(["a"], 1.0), (["a", "b"], math.hypot(1.0, 0.7)),
                                      (["a", "b", "c"], math.sqrt(1 + 0.49 + 0.25))])
def test_evppi_of_a_linear_normal_model_is_its_closed_form_within_its_standard_error(pars, sd):
    """EVPPI of a group = E[max(0, mu + the group's part)] - max(0, mu), the group's part normal
    with the variance it carries; over 12 independent samples the estimates lie within 2 of their
    standard errors of the closed form in at least 9 (about 95% expected), and their mean
    within 3 standard errors of the mean."""
    truth = _gain(-0.2, sd)
    estimates = [sim.evppi(*_linear_normal(seed), pars, method="gam") for seed in range(12)]
    covered = sum(abs(e.value - truth) < 2 * e.se for e in estimates)
    assert covered >= 9, [(e.value, e.se) for e in estimates]
    mean = np.mean([e.value for e in estimates])
    assert abs(mean - truth) < 3 * np.mean([e.se for e in estimates]) / math.sqrt(12)


def test_nested_groups_are_ordered_within_two_standard_errors_and_patient_noise_is_removed():
    """EVPPI(a) <= EVPPI(a, b) <= EVPPI(a, b, c) <= EVPI of the draws, which holds the patient
    noise: the regression on every parameter recovers the parameters' EVPI."""
    net, inputs = _linear_normal(3, noise=1.0)
    values = [sim.evppi(net, inputs, p) for p in (["a"], ["a", "b"], ["a", "b", "c"])]
    perfect = sim.evpi(net)
    chain = [*values, perfect]
    for inner, outer in zip(chain, chain[1:]):
        assert inner.value <= outer.value + 2 * math.hypot(inner.se, outer.se)
    parameters_only = _gain(-0.2, math.sqrt(1.74))
    with_noise = _gain(-0.2, math.sqrt(1.74 + 1.0))
    assert abs(values[-1].value - parameters_only) < 3 * values[-1].se
    assert abs(perfect.value - with_noise) < 3 * perfect.se
    assert perfect.value - values[-1].value > 2 * math.hypot(perfect.se, values[-1].se)


def test_a_gaussian_process_is_chosen_where_the_parameters_interact():
    """Net benefit a x b + 0.3 (option 1: 0) with a third parameter that does not matter: an
    additive model cannot see a x b, the Gaussian process can; the EVPPI of (a, b, c) is
    E[max(0, ab + 0.3)] - 0.3, computed here from 2 million exact draws."""
    rng = np.random.default_rng(8)
    inputs = pd.DataFrame(rng.normal(size=(800, 3)), columns=["a", "b", "c"])
    net = pd.DataFrame({"one": 0.0, "two": inputs["a"] * inputs["b"] + 0.3
                        + rng.normal(0, 0.3, 800)})
    exact = rng.normal(size=(2, 2_000_000))
    truth = np.maximum(exact[0] * exact[1] + 0.3, 0).mean() - 0.3
    value = sim.evppi(net, inputs)
    assert value.method == "gp" and value.r2 > 0.8
    assert abs(value.value - truth) < 3 * value.se, (value, truth)
    additive = sim.evppi(net, inputs, method="gam")
    assert additive.r2 < 0.2 and additive.value < truth - 3 * additive.se


def test_evsi_of_a_normal_mean_is_the_preposterior_closed_form_and_grows_with_n():
    """Option 2's net benefit theta ~ N(-0.3, 1); a study of n observes the mean of n draws of
    N(theta, 4^2): EVSI = s phi(mu/s) + mu Phi(mu/s) - max(0, mu), s the sd of the posterior
    mean; each within 3 of its standard errors, and rising with n."""
    rng = np.random.default_rng(21)
    theta = rng.normal(-0.3, 1.0, 3000)
    net = pd.DataFrame({"one": 0.0, "two": theta})
    noise = rng.normal(size=3000)
    values = []
    for n in (4, 16, 64):
        estimate = sim.evsi(net, None, theta + 4.0 / math.sqrt(n) * noise)
        s = 1.0 / math.sqrt(1.0 + 16.0 / n)
        assert abs(estimate.value - _gain(-0.3, s)) < 3 * estimate.se, (n, estimate)
        values.append(estimate.value)
    assert values[0] < values[1] < values[2] <= sim.evppi(net, theta[:, None]).value * 1.01


def test_the_curve_over_willingness_to_pay_is_the_net_benefit_s_evppi_at_each():
    """Fitting costs and QALYs once each gives, at every willingness to pay, the EVPPI of the
    net benefit fitted directly (the same linear smoother, so within a small tolerance)."""
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(1000, 2))
    cost = np.column_stack([np.zeros(1000), 100 + 40 * inputs[:, 0] + rng.normal(0, 20, 1000)])
    qalys = np.column_stack([np.zeros(1000), 0.01 + 0.004 * inputs[:, 1]
                             + rng.normal(0, 0.002, 1000)])
    wtp = [5_000.0, 10_000.0, 20_000.0]
    curve = voi.evppi_curve(cost, qalys, wtp, inputs, method="gam")
    for w, value in zip(wtp, curve):
        direct = sim.evppi(w * qalys - cost, inputs, method="gam")
        assert value.value == pytest.approx(direct.value, rel=0.05, abs=0.5)
        assert value.se == pytest.approx(direct.se, rel=0.5)


@pytest.mark.parametrize("call, message", [
    (lambda: sim.evppi(np.zeros((10, 2)), np.zeros((9, 1))), "inputs: 9 draws"),
    (lambda: sim.evppi(np.zeros((10, 2)), pd.DataFrame({"a": range(10)}), "b"),
     "pars: 'b' is not a column"),
    (lambda: sim.evpi(np.zeros((10, 1))), "net_benefit: at least two options"),
    (lambda: sim.evppi(np.zeros((10, 2)), np.zeros((10, 1)), method="bart"), "method:"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_importance_sampling_evsi_is_the_preposterior_closed_form():
    """The two-level (importance-sampling) estimator on the normal-mean study: each draw's study
    mean's likelihood given every draw's theta is N(theta, 16 / n); within 3 standard errors of
    the closed form, and within 3 combined standard errors of the regression estimate."""
    rng = np.random.default_rng(22)
    theta = rng.normal(-0.3, 1.0, 2000)
    net = np.stack([np.zeros_like(theta), theta], axis=1)
    n = 16
    observed = theta + 4.0 / math.sqrt(n) * rng.normal(size=2000)
    log_likelihood = -0.5 * (observed[:, None] - theta[None, :]) ** 2 / (16.0 / n)
    value = voi.evsi_importance(net, log_likelihood)
    truth = _gain(-0.3, 1.0 / math.sqrt(1.0 + 16.0 / n))
    assert abs(value.value - truth) < 3 * value.se, (value, truth)
    regression = sim.evsi(net, None, observed)
    assert abs(value.value - regression.value) < 3 * math.hypot(value.se, regression.se)
