"""Group-sequential boundaries against published values: Jennison and Turnbull's tables, and
rpact's own unit tests (tests/testthat/test-f_design_group_sequential.R), and a Monte Carlo
check of the recursive integration."""

from __future__ import annotations

import numpy as np
import pytest

from sim.studies.power.sequential import (classical_boundaries, crossing_probabilities, spending,
                                          spending_boundaries)


def test_obrien_fleming_five_looks_is_jennison_and_turnbulls_table():
    """Jennison and Turnbull (2000), table 2.3: K = 5, two-sided alpha 0.05, C = 2.040; the
    z-values 2.040 sqrt(5/k) = 4.562, 3.226, 2.634, 2.281, 2.040."""
    np.testing.assert_array_equal(classical_boundaries(5, 0.05, "obrien-fleming").round(3),
                                  [4.562, 3.226, 2.634, 2.281, 2.040])


def test_pocock_five_looks_is_jennison_and_turnbulls_table():
    """Jennison and Turnbull (2000), table 2.1: K = 5, two-sided alpha 0.05, C = 2.413."""
    np.testing.assert_array_equal(classical_boundaries(5, 0.05, "pocock").round(3), [2.413] * 5)


def test_rpacts_default_obrien_fleming_design():
    """rpact's getDesignInverseNormal() (kMax 3, one-sided alpha 0.025, O'Brien-Fleming):
    criticalValues 3.4710914, 2.4544323, 2.0040356 (rpact's unit tests)."""
    np.testing.assert_allclose(classical_boundaries(3, 0.025, "obrien-fleming", sided=1),
                               [3.4710914, 2.4544323, 2.0040356], atol=1e-6)


def test_rpacts_hwang_shih_decani_spending_design():
    """rpact, kMax 3, informationRates (0.2, 0.4, 1), one-sided alpha 0.03, typeOfDesign asHSD,
    gammaA 0: alphaSpent 0.006, 0.012, 0.03 and criticalValues 2.5121443, 2.4228747, 2.0280392
    (rpact's unit tests)."""
    t = [0.2, 0.4, 1.0]
    np.testing.assert_allclose(spending("hsd", t, 0.03, gamma=0), [0.006, 0.012, 0.03])
    np.testing.assert_allclose(spending_boundaries(t, 0.03, "hsd", gamma=0, sided=1),
                               [2.5121443, 2.4228747, 2.0280392], atol=1e-6)


@pytest.mark.parametrize("kind", ["obrien-fleming", "pocock", "hsd"])
def test_spending_boundaries_spend_exactly_alpha(kind):
    t = np.array([0.25, 0.5, 0.8, 1.0])
    bounds = spending_boundaries(t, 0.05, kind)
    np.testing.assert_allclose(np.cumsum(crossing_probabilities(bounds, t)),
                               spending(kind, t, 0.05), atol=1e-9)


@pytest.mark.parametrize("drift", [0.0, 2.0])
def test_crossing_probabilities_match_simulated_brownian_paths(drift):
    """Z_k = S(t_k) / sqrt(t_k) of a Brownian motion with drift, 400,000 paths: the share first
    crossing each look is within 4 standard errors of the integration."""
    t = np.arange(1, 6) / 5
    bounds = classical_boundaries(5, 0.05, "obrien-fleming")
    rng = np.random.default_rng(8)
    steps = rng.normal(drift * 0.2, np.sqrt(0.2), size=(400_000, 5))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    crossed = np.abs(z) >= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    simulated = np.array([(first == k).mean() for k in range(5)])
    expected = crossing_probabilities(bounds, t, drift=drift)
    error = np.sqrt(expected * (1 - expected) / len(first))
    assert np.all(np.abs(simulated - expected) <= 4 * error + 1e-6), (simulated, expected)


def test_futility_boundaries_spend_beta_look_by_look_as_a_monte_carlo_says():
    # a one-sided three-look design (O'Brien-Fleming-type alpha 0.025) with futility spending
    # beta 0.2 of the same type under drift 2.8 (about 80% power): each look's exit below is the
    # beta spent there, and the exits agree with simulated paths of the Brownian motion
    from sim.studies.power.sequential import (exit_probabilities, futility_boundaries, spending,
                                              spending_boundaries)

    t = np.array([1 / 3, 2 / 3, 1.0])
    upper = spending_boundaries(t, 0.025, "obrien-fleming", sided=1)
    lower = futility_boundaries(upper, t, 2.8, 0.2, "obrien-fleming")
    above, below = exit_probabilities(upper, lower, t, 2.8)
    spent = np.diff(np.concatenate([[0.0], spending("obrien-fleming", t, 0.2)]))
    np.testing.assert_allclose(below[:2], spent[:2], atol=1e-8)
    assert lower[-1] == upper[-1] and (lower <= upper).all()
    np.testing.assert_allclose(above.sum() + below.sum(), 1.0, atol=1e-6)
    rng = np.random.default_rng(4)
    paths = 400_000
    increments = rng.standard_normal((paths, 3)) * np.sqrt(np.diff(np.concatenate([[0], t])))
    score = np.cumsum(increments + 2.8 * np.diff(np.concatenate([[0], t])), axis=1)
    z = score / np.sqrt(t)
    alive = np.ones(paths, bool)
    for k in range(3):
        up, down = alive & (z[:, k] >= upper[k]), alive & (z[:, k] <= lower[k])
        se = np.sqrt(above[k] * (1 - above[k]) / paths) + np.sqrt(below[k] * (1 - below[k]) / paths)
        assert abs(up.mean() - above[k]) < 4 * se + 1e-4
        assert abs(down.mean() - below[k]) < 4 * se + 1e-4
        alive &= ~(up | down)


def test_equivalence_stops_where_simulated_brownian_paths_say():
    # two one-sided tests at each of three looks (O'Brien-Fleming-type, one-sided 0.05 each),
    # margin log(m) sqrt(I_K) = 4: the probability of declaring equivalence at each look, at the
    # margin (drift 4: the type I error) and at no difference (drift 0: the power), against
    # simulated paths of the score's Brownian motion
    from sim.studies.power.sequential import equivalence_probabilities, spending_boundaries

    t = np.array([1 / 3, 2 / 3, 1.0])
    bounds = spending_boundaries(t, 0.05, "obrien-fleming", sided=1)
    rng = np.random.default_rng(8)
    paths = 400_000
    steps = np.diff(np.concatenate([[0.0], t]))
    noise = np.cumsum(rng.standard_normal((paths, 3)) * np.sqrt(steps), axis=1)
    for drift in (4.0, 0.0, -1.5):
        expected = equivalence_probabilities(bounds, t, 4.0, drift)
        u = (noise + drift * t) / np.sqrt(t)          # the standardized estimate at each look
        inside = np.abs(u) <= 4.0 * np.sqrt(t) - bounds
        first = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
        for k in range(3):
            simulated = (first == k).mean()
            se = np.sqrt(max(expected[k] * (1 - expected[k]), 1e-12) / paths)
            assert abs(simulated - expected[k]) < 4 * se + 1e-4, (drift, k, simulated, expected[k])
    assert equivalence_probabilities(bounds, t, 4.0, 4.0).sum() <= 0.05


def test_equivalence_with_one_analysis_is_the_two_one_sided_tests_formula():
    # |U| <= d - c with U ~ N(u, 1): Phi(d - c - u) + Phi(d - c + u) - 1
    from scipy.stats import norm

    from sim.studies.power.sequential import equivalence_probabilities

    c = norm.ppf(0.95)
    for d, u in ((4.0, 0.0), (3.0, 1.0), (4.0, 4.0), (1.0, 0.0)):
        expected = max(norm.cdf(d - c - u) + norm.cdf(d - c + u) - 1.0, 0.0)
        assert equivalence_probabilities([c], [1.0], d, u)[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("hypothesis, difference", [("non_inferiority", -1.0), ("non_inferiority", 0.5),
                                                    ("equivalence", 0.0), ("equivalence", 1.2)])
def test_a_margin_tests_power_is_what_normal_estimates_give(hypothesis, difference):
    # the power formula of a difference against a margin (non-inferiority; the two one-sided tests
    # of equivalence) against normal estimates drawn around the true difference
    from sim.studies.power.formulas import margin_p_value, margin_power

    se, margin, alpha, draws = 0.8, 2.0, 0.05, 400_000
    estimates = np.random.default_rng(3).normal(difference, se, draws)
    simulated = (margin_p_value(estimates, se, margin, hypothesis) < alpha).mean()
    expected = float(margin_power(difference, se, margin, hypothesis, alpha))
    assert abs(simulated - expected) < 4 * np.sqrt(expected * (1 - expected) / draws) + 1e-4
    # at the margin, the chance of the claim is alpha (non-inferiority) or at most alpha
    at_margin = float(margin_power(-margin, se, margin, hypothesis, alpha))
    assert at_margin == pytest.approx(alpha) if hypothesis == "non_inferiority" else at_margin <= alpha
