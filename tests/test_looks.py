"""Interim looks and non-inferiority in the exponential design: the simulated type I error is the
nominal alpha within its Monte Carlo interval, the simulated power of a non-inferiority design is
Schoenfeld's with the margin, and a group-sequential design's power and stopping are those of its
boundaries' crossing probabilities (recursive integration, `sim.studies.power.sequential`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from conftest import ROOT
from sim.errors import InputError
from sim.studies.power import (event_probability_exponential, load_design, power_curve,
                               simulate_replicates, wilson_interval)
from sim.studies.power.sequential import crossing_probabilities, spending_boundaries

EXPONENTIAL = ROOT / "scenarios" / "power" / "exponential.toml"
LEVEL = 0.9973     # three standard errors


def _design(**changes):
    return load_design(EXPONENTIAL).model_copy(update=changes)


def _row(design, replicates, seed=7):
    return power_curve(simulate_replicates(design, replicates, seed)).table.iloc[0]


def _holds(row, value):
    lower, upper = wilson_interval(round(row["power"] * row["replicates"]), row["replicates"], LEVEL)
    return lower <= value <= upper


def test_five_look_obrien_fleming_design_keeps_its_type_one_error():
    design = _design(hazard_ratio=1.0, looks=[0.2, 0.4, 0.6, 0.8, 1.0], sample_sizes=[200])
    row = _row(design, 3000)
    assert _holds(row, 0.05), row.to_dict()
    boundaries = spending_boundaries(np.array([0.2, 0.4, 0.6, 0.8, 1.0]), 0.05, "obrien-fleming")
    np.testing.assert_allclose([row[f"look{k}_boundary_z"] for k in range(1, 6)], boundaries)
    # each look's stopping probability is the alpha spent there (the boundaries' purpose)
    spent = crossing_probabilities(boundaries, [0.2, 0.4, 0.6, 0.8, 1.0])
    for k in range(5):
        stop = row[f"look{k + 1}_stop"]
        se = np.sqrt(spent[k] * (1 - spent[k]) / 3000)
        assert abs(stop - spent[k]) < 3.5 * se + 1e-3, (k, stop, spent[k])
    assert row["look1_events"] < row["look3_events"] < row["look5_events"]
    assert row["look1_months"] < row["look3_months"] < row["look5_months"]
    assert abs(row["look3_events"] / row["look5_events"] - 0.6) < 0.02


def test_noninferiority_at_the_margin_has_the_one_sided_alpha():
    design = _design(hazard_ratio=1.3, hypothesis="non_inferiority", margin=1.3, alpha=0.025,
                     sample_sizes=[400])
    row = _row(design, 4000)
    assert _holds(row, 0.025), row.to_dict()
    assert row["analytic_power"] == pytest.approx(0.025, abs=1e-9)


def test_noninferiority_power_is_schoenfelds_with_the_margin():
    # true hazard ratio 1, margin 1.3, one-sided 2.5%: power = Phi(log(1.3) sqrt(D / 4) - z)
    design = _design(hazard_ratio=1.0, hypothesis="non_inferiority", margin=1.3, alpha=0.025,
                     sample_sizes=[500, 700])
    table = power_curve(simulate_replicates(design, 2000, 11)).table
    for _, row in table.iterrows():
        expected = ndtr(np.log(1.3) * np.sqrt(row["events"] / 4) - ndtri(0.975))
        assert row["schoenfeld_power"] == pytest.approx(expected, rel=0.02)
        assert _holds(row, row["schoenfeld_power"]), row.to_dict()


def test_sequential_power_is_the_crossing_probability_under_the_drift():
    looks = [1 / 3, 2 / 3, 1.0]
    design = _design(hazard_ratio=0.7, looks=looks, spending="pocock", sample_sizes=[420])
    row = _row(design, 3000, seed=3)
    boundaries = spending_boundaries(np.array(looks), 0.05, "pocock")
    events = 420 * event_probability_exponential(np.log(2) / 12, 0.7, 0.5, 24.0, 12.0)
    drift = abs(np.log(0.7)) * np.sqrt(events / 4)
    expected = crossing_probabilities(boundaries, looks, drift=drift)
    assert row["analytic_power"] == pytest.approx(expected.sum(), rel=1e-6)
    assert _holds(row, expected.sum()), row.to_dict()
    assert row["expected_events"] < row["events"]          # early stops save events
    assert row["expected_months"] < row["look3_months"]


@pytest.mark.parametrize("changes, message", [
    (dict(hypothesis="non_inferiority"), r"margin: is needed for a non-inferiority design"),
    (dict(margin=1.2), r'margin: is only for hypothesis = "non_inferiority" or "equivalence"'),
    (dict(hypothesis="equivalence"), r"margin: is needed for a equivalence design"),
    (dict(look_events=[100, 50]), r"look_events: must be increasing event counts"),
    (dict(look_events=[100, 200], looks=[0.5, 1.0]), r"look_events: give either looks"),
    (dict(looks=[0.5, 0.9]), r"looks: must be increasing information fractions ending at 1.0"),
    (dict(looks=[0.6, 0.5, 1.0]), r"looks: must be increasing"),
])
def test_bad_sequential_design(tmp_path, changes, message):
    text = EXPONENTIAL.read_text()
    for key, value in changes.items():
        text += f"\n{key} = {value!r}".replace("'", '"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"^bad.toml: " + message):
        load_design(path)


def test_a_trial_with_looks_refuses_endpoints_without_a_hazard_ratio(tmp_path):
    text = (ROOT / "scenarios" / "power" / "trial.toml").read_text()
    text = text.replace('control = "../yearly.toml"', f'control = "{ROOT / "scenarios" / "yearly.toml"}"')
    text = text.replace('experimental = "../baseline.toml"',
                        f'experimental = "{ROOT / "scenarios" / "baseline.toml"}"')
    path = tmp_path / "trial.toml"
    path.write_text(text + "\nlooks = [0.5, 1.0]\n")
    with pytest.raises(InputError, match=r"endpoints: interim looks are for the hazard-ratio "
                                         r"endpoints os and dfs; remove rmst, reresection"):
        load_design(path)
    path.write_text(text + '\nhypothesis = "non_inferiority"\nmargin = 1.2\nrmst_margin_months = 1.0\n')
    with pytest.raises(InputError, match=r"reresection_margin: is needed for the reresection "
                                         r"endpoint of a non-inferiority design"):
        load_design(path)


def test_noninferiority_with_futility_stops_as_its_boundaries_say():
    design = _design(hazard_ratio=1.0, hypothesis="non_inferiority", margin=1.3, alpha=0.025,
                     looks=[0.5, 1.0], futility="obrien-fleming", sample_sizes=[600])
    row = _row(design, 3000, seed=5)
    assert _holds(row, row["analytic_power"]), row.to_dict()
    assert row["look1_futility_z"] < row["look1_boundary_z"]
    assert row["look2_futility_z"] == row["look2_boundary_z"]
    # the simulated futility stop at the interim is the beta spent there, under the model's effect
    from sim.studies.power.sequential import exit_probabilities
    drift = np.log(1.3) * np.sqrt(row["events"] / 4)
    _, below = exit_probabilities([row["look1_boundary_z"], row["look2_boundary_z"]],
                                  [row["look1_futility_z"], row["look2_futility_z"]], [0.5, 1.0], drift)
    se = np.sqrt(below[0] * (1 - below[0]) / 3000)
    assert abs(row["look1_futility_stop"] - below[0]) < 3.5 * se + 0.01


def test_equivalence_at_the_margin_has_at_most_the_one_sided_alpha_and_its_power_is_the_formulas():
    # two one-sided tests of the margins 1/1.3 and 1.3, each at 5%: at a true hazard ratio of
    # 1.3 the trial declares equivalence with probability about alpha (the analytic value, a
    # little below), and at 1 with Phi(d - c - u) + Phi(d - c + u) - 1
    at_margin = _design(hazard_ratio=1.3, hypothesis="equivalence", margin=1.3, sample_sizes=[600])
    row = _row(at_margin, 4000)
    assert row["analytic_power"] <= 0.05
    assert _holds(row, row["analytic_power"]), row.to_dict()
    design = _design(hazard_ratio=1.0, hypothesis="equivalence", margin=1.3, sample_sizes=[500, 800])
    table = power_curve(simulate_replicates(design, 2000, 12)).table
    c = ndtri(0.95)
    for _, row in table.iterrows():
        d = np.log(1.3) * np.sqrt(row["events"] / 4)
        expected = ndtr(d - c) + ndtr(d - c) - 1
        assert row["schoenfeld_power"] == pytest.approx(expected, rel=0.02)
        assert row["analytic_power"] == pytest.approx(row["schoenfeld_power"], rel=1e-9)
        assert _holds(row, expected), row.to_dict()


def test_equivalence_with_looks_stops_as_its_boundaries_say():
    looks = [0.5, 1.0]
    design = _design(hazard_ratio=1.0, hypothesis="equivalence", margin=1.3, looks=looks,
                     sample_sizes=[900])
    row = _row(design, 3000, seed=9)
    assert _holds(row, row["analytic_power"]), row.to_dict()
    from sim.studies.power.sequential import equivalence_probabilities
    root = np.sqrt(row["events"] / 4)
    stops = equivalence_probabilities(spending_boundaries(np.array(looks), 0.05, "obrien-fleming",
                                                          sided=1), looks, np.log(1.3) * root, 0.0)
    for k in range(2):
        se = np.sqrt(stops[k] * (1 - stops[k]) / 3000)
        assert abs(row[f"look{k + 1}_stop"] - stops[k]) < 3.5 * se + 0.01, (k, row.to_dict())


def test_looks_at_event_counts_are_held_at_those_counts_with_the_fractions_boundaries():
    # an exponential trial analysed at 100, 200 and 300 events (everyone followed to the event):
    # each look sees exactly its count, the boundaries are those of 1/3, 2/3, 1, and at hazard
    # ratio 1 the type I error is the nominal alpha
    everyone = dict(accrual_months=0.0, follow_up_months=None, look_events=[100, 200, 300],
                    sample_sizes=[400])
    design = _design(hazard_ratio=1.0, **everyone)
    row = _row(design, 3000, seed=6)
    for k, count in enumerate((100, 200, 300), start=1):
        assert row[f"look{k}_events"] == count
        assert row[f"look{k}_fraction"] == pytest.approx(count / 300)
    np.testing.assert_allclose([row[f"look{k}_boundary_z"] for k in (1, 2, 3)],
                               spending_boundaries(np.array([1, 2, 3]) / 3, 0.05, "obrien-fleming"))
    assert _holds(row, 0.05), row.to_dict()
    effect = _design(hazard_ratio=0.7, **everyone)
    row = _row(effect, 2000, seed=6)
    drift = abs(np.log(0.7)) * np.sqrt(300 / 4)
    boundaries = spending_boundaries(np.array([1, 2, 3]) / 3, 0.05, "obrien-fleming")
    assert row["analytic_power"] == pytest.approx(
        crossing_probabilities(boundaries, np.array([1, 2, 3]) / 3, drift=drift).sum(), rel=1e-9)
    assert _holds(row, row["analytic_power"]), row.to_dict()


@pytest.mark.parametrize("hypothesis, rmst_margin, reresection_margin", [
    ("non_inferiority", 0.5, 0.03), ("equivalence", 1.5, 0.09)])
def test_a_trials_margins_on_restricted_mean_and_reresection_give_the_formulas_power(
        hypothesis, rmst_margin, reresection_margin):
    # baseline against yearly follow-up: the difference in restricted mean survival and in the
    # share re-resected, against a margin; the simulated power is the normal approximation's
    # (the margin tests of `formulas.margin_power`, at the pooled differences)
    design = load_design(ROOT / "scenarios" / "power" / "trial.toml").model_copy(update=dict(
        hypothesis=hypothesis, margin=1.2, rmst_margin_months=rmst_margin,
        reresection_margin=reresection_margin, alpha=0.025, sample_sizes=[500],
        endpoints=["rmst", "reresection"]))
    curve = power_curve(simulate_replicates(design, 400, 3))
    suffix = hypothesis.replace("non_inferiority", "noninferiority")
    assert list(curve.table["test"]) == [f"rmst_difference_{suffix}", f"two_proportions_{suffix}"]
    for _, row in curve.table.iterrows():
        assert 0.1 < row["analytic_power"] < 0.9, row.to_dict()     # a test that can fail
        assert _holds(row, row["analytic_power"]), row.to_dict()
