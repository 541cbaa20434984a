"""The model's rules are written once (`sim.model.rules`) and both schedulers follow them.

A rule changed in one place (here by monkeypatching it) changes what both schedulers record, and
they still agree byte for byte; the rules themselves are checked against cases worked by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from sim.model import rules
from sim.model.params import with_values
from sim.model.policy import load_policy
from test_direct import _both

INTENSIVE = ROOT / "scenarios" / "intensive.toml"


def _curative_sites(params, policy, n, seed):
    """Site masks of the curative repeat operations the SimPy scheduler records."""
    from sim.execution.runner import CohortSpec, simulate_priced

    spec = CohortSpec(n, seed, "horizon", "rectum", 10.0)
    _, events, _, _ = simulate_priced(spec, params, policy, 0, n, 0.0, None)
    frame = events.to_pandas()
    return frame.loc[(frame.event == "reoperation") & (frame.detail == "curative")]


def _all_sites_operable(sites_mask, treatment):
    """A changed resectability rule: any sites, 'other' included, up to four of them."""
    return np.ones(np.shape(sites_mask), bool)


def test_a_changed_sites_rule_is_followed_by_both_schedulers(params, monkeypatch):
    policy = load_policy(INTENSIVE)
    before = _both(params, policy, 1500, 21, "horizon", "rectum", rate=0.03)
    assert before[0] == before[1]
    monkeypatch.setattr(rules, "sites_operable", _all_sites_operable)
    after = _both(params, policy, 1500, 21, "horizon", "rectum", rate=0.03)
    assert after[0] == after[1], "the schedulers differ under the changed rule"
    assert after[0] != before[0], "the changed rule changed nothing"
    operated = _curative_sites(params, policy, 1500, 21)
    # 'other' sites, never operated with curative intent under the packaged rule, now are
    assert operated.site.str.contains("other").any()
    monkeypatch.undo()
    assert not _curative_sites(params, policy, 1500, 21).site.str.contains("other").any()


def _operable_earlier(months: float):
    """A changed resectability threshold: the burden must stay resectable `months` longer."""
    def operable(decided_months, surgery_months, finish, resectable_until_months):
        return (surgery_months < finish) & (decided_months + months <= resectable_until_months)
    return operable


@pytest.mark.parametrize("name", ["intensive.toml", "baseline.toml", "cea-only.toml"])
def test_a_changed_resectability_threshold_is_followed_by_both_schedulers(params, monkeypatch,
                                                                          name):
    policy = load_policy(ROOT / "scenarios" / name)
    before = _both(params, policy, 1200, 5, "paper", "both")
    monkeypatch.setattr(rules, "operable", _operable_earlier(2.0))
    after = _both(params, policy, 1200, 5, "paper", "both")
    assert after[0] == after[1], "the schedulers differ under the changed rule"
    assert after[0] != before[0]
    fewer = len(_curative_sites(params, policy, 1200, 5))
    monkeypatch.undo()
    assert fewer < len(_curative_sites(params, policy, 1200, 5))


def test_a_changed_rule_reaches_the_capacity_recheck(params, monkeypatch):
    # under a capacity only the SimPy scheduler runs; the delayed operation is re-checked with
    # the same rule (`rules.operable`), so a stricter rule cures fewer delayed patients
    policy = load_policy(ROOT / "scenarios" / "baseline-capacity.toml")
    base = _curative_sites(params, policy, 1500, 9)
    monkeypatch.setattr(rules, "operable", _operable_earlier(6.0))
    assert len(_curative_sites(params, policy, 1500, 9)) < len(base)


def test_sites_operable_counts_resectable_sites_only(params):
    treatment = with_values(params, {"treatment.curative_max_sites": 2.0}).treatment
    masks = np.array([0b0001, 0b0010, 0b0011, 0b0111, 0b1000, 0b1010, 0b0110])
    expected = [True, True, True, False, False, False, True]
    assert rules.sites_operable(masks, treatment).tolist() == expected


def test_restaging_finds_a_joining_site_at_the_next_restaging(params):
    treatment = params.treatment
    interval = treatment.restaging_interval_months
    detected, finish = np.array([10.0, 10.0, 10.0, 10.0]), np.array([100.0, 100.0, 100.0, 12.0])
    joined = np.array([10.0 + 0.5 * interval, 10.0 + interval, 5.0, 11.0])
    when, found = rules.restaging_time(detected, joined, finish, treatment)
    assert when[:2].tolist() == [10.0 + interval, 10.0 + interval]
    # a site present before detection is not a progression; nor one found after follow-up
    assert found.tolist() == [True, True, False, 10.0 + interval < 12.0]


def test_follow_up_and_episode_ends_break_ties_as_documented():
    stop, censored = rules.follow_up_stop(np.array([5.0, 5.0, 7.0]), np.array([5.0, 6.0, 6.0]))
    assert stop.tolist() == [5.0, 5.0, 6.0] and censored.tolist() == [True, True, False]
    finish, by_stop = rules.episode_end(np.array([4.0, 4.0]), np.array([4.0, 3.0]))
    assert finish.tolist() == [4.0, 3.0] and by_stop.tolist() == [True, False]


def test_curative_surgery_needs_every_condition(params):
    treatment = with_values(params, {"treatment.curative_prob_if_resectable": 0.5,
                                     "treatment.curative_log_odds_per_tempo_sd": 1.0}).treatment
    delay = treatment.surgery_delay_months
    # the chance at tempo z is 1 / (1 + exp(-z)) here: 0.5 at z = 0, 0.269 at z = -1
    case = pd.DataFrame({
        "detected": [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        "finish": [50.0, 10.0 + delay / 2, 50.0, 50.0, 50.0, 50.0, 50.0],
        "until": [20.0, 20.0, 9.0, 20.0, 20.0, 20.0, 20.0],
        "mask": [2, 2, 2, 8, 2, 2, 2],
        "u": [0.1, 0.1, 0.1, 0.1, 0.9, 0.3, 0.3],
        "tempo": [0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0],
    })
    got = rules.curative_surgery(case.detected.to_numpy(), case.finish.to_numpy(),
                                 case.until.to_numpy(), case["mask"].to_numpy(),
                                 case.u.to_numpy(), case.tempo.to_numpy(), 0, treatment)
    assert got.tolist() == [True, False, False, False, False, False, True]
    from sim.model.streams import MAX_EPISODES
    last = rules.curative_surgery(10.0, 50.0, 20.0, 2, 0.1, 0.0, MAX_EPISODES - 1, treatment)
    assert not last   # the streams provide for no episode after the last
