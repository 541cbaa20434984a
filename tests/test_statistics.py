"""Statistical checks against analytic references, fixed seeds, tolerances in standard errors."""

from __future__ import annotations

import math

import numpy as np

from sim.model.cohort import sample_cohort
from sim.model.detection import detect
from sim.model.lifetable import annual_hazards, background_death_months
from sim.model.natural_history import Episode, draw_episode
from sim.model.policy import Policy

Z = 4.0  # tolerance in standard errors for checks that must not fail by chance


def _share_ok(observed: np.ndarray, expected: float) -> bool:
    n = len(observed)
    se = math.sqrt(expected * (1 - expected) / n)
    return abs(observed.mean() - expected) <= Z * se + 1e-12


def test_cohort_reproduces_the_study_shares(params):
    c = params.cohort
    x = sample_cohort(params, "rectum", seed=3, replicate=0, first_patient=0, n_patients=40_000)
    sync = x["presentation"] == "synchronous"
    rfa = x["hepatic_treatment"] != "resection"
    checks = [
        (sync, c.synchronous_share),
        (x["chemoradiation"][sync], c.chemoradiation_share_synchronous),
        (x["chemoradiation"][~sync], c.chemoradiation_share_metachronous),
        (x["preop_chemotherapy"][sync], c.preop_chemo_share_synchronous),
        (x["major_hepatectomy"][~sync], c.major_share_metachronous),
        (rfa[x["less_than_hemihepatectomy"]], c.rfa_share_less_than_hemi),
        (x["primary_operation"] == "LAR", c.lar_share),
        (x["era_pre1994"], c.pre1994_share),
        (x["margin_positive"], c.margin_positive_share),
        (np.isin(x["t_stage"], ["T3", "T4"]), c.t3_t4_share),
        (x["n_stage"] != "N0", c.node_positive_share),
        (x["periop_complication"], params.perioperative.complication_prob),
        (x["periop_death_draw"], params.perioperative.death_90d_prob),
    ]
    for observed, expected in checks:
        assert _share_ok(observed, expected), (observed.mean(), expected)
    # overall chemoradiation = the study's 59.6% (84 of 141), from the conditional shares
    assert _share_ok(x["chemoradiation"], 0.596)
    # median length of stay 7 days, as reported
    assert np.median(x["length_of_stay_days"]) == 7
    colon = sample_cohort(params, "colon", 3, 0, 0, 2000)
    assert not colon["chemoradiation"].any() and set(colon["primary_operation"]) == {"colectomy"}


def test_onset_follows_the_promotion_time_cure_model(params):
    """P(onset <= t) = E_z 1 - exp(-Theta [F(t / s(z)) + q G(t)]), F and G the early and late
    Weibull distribution functions, q the late share, s(z) = exp(gamma sigma z) the stretch of
    the early clock by the episode's tempo z ~ N(0, 1) (Gauss-Hermite over z)."""
    r, g = params.recurrence, params.growth
    n = 200_000
    rng = np.random.default_rng(8)
    thetas = np.tile([0.1, 0.4, 0.2, 0.1], (n, 1))
    episode = draw_episode(rng.random((n, 24)), thetas, np.ones(n), params)
    total = thetas[0].sum()
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    stretch = np.exp(g.onset_doubling_exponent * g.doubling_time_sigma_log * nodes)
    for t in (6.0, 12.0, 24.0, 60.0, 120.0, 1e6):
        early = 1 - np.exp(-(t / stretch / r.onset_weibull_scale_months) ** r.onset_weibull_shape)
        late = 1 - math.exp(-(t / r.late_weibull_scale_months) ** r.late_weibull_shape)
        expected = float(weights @ (1 - np.exp(-total * (early + r.late_share * late))))
        assert _share_ok(episode.onset <= t, expected), t
    # the site that opens the episode is s with probability proportional to theta_s
    opened = episode.involved[np.isfinite(episode.onset)] == episode.onset[np.isfinite(episode.onset), None]
    assert np.all(opened.any(axis=1))


def test_detection_is_geometric_over_visits(params):
    """A 5-mm liver lesion that does not grow, present from month 0.5, adherence 1: each visit
    finds it with p = 1 - (1 - s) ** ((5 / 10) ** k) * (1 - m) ** B0 (imaging by size, the
    marker by burden for a producing recurrence), so detection is geometric over visits."""
    n = 100_000
    visits = np.arange(3.0, 61.0, 3.0)
    sens = np.zeros((len(visits), 4))
    sens[:, 1] = 0.6
    policy = Policy("t", "", 1.0, visits, sens, np.full(len(visits), 0.25), ("x",) * len(visits), {})
    rng = np.random.default_rng(2)
    involved = np.full((n, 4), np.inf)
    involved[:, 1] = 0.5
    still = Episode(np.full(n, 0.5), involved, np.full(n, 1e3), np.full(n, 1e3), np.full(n, np.inf),
                    np.full(n, 1e12), np.ones(n, bool), np.zeros(n))
    time, visit = detect(still, np.ones((n, len(visits)), bool), rng.exponential(size=n), policy,
                         params)
    d0, k = params.growth.onset_diameter_mm, params.detection.size_exponent
    p = 1 - 0.4 ** ((d0 / 10) ** k) * 0.75 ** ((d0 / 10) ** 3)
    for j in range(4):
        assert _share_ok(visit == j, (1 - p) ** j * p), j
    assert np.all(time[visit >= 0] == visits[visit[visit >= 0]])


def test_background_death_within_a_year_is_qx():
    n = 100_000
    rng = np.random.default_rng(5)
    months = background_death_months(np.full(n, 70.0), np.ones(n, bool), np.full(n, 2000),
                                      rng.exponential(size=n))
    qx = 1 - math.exp(-annual_hazards()[1, 2000 - 1980, 70])
    assert _share_ok(months <= 12, qx)
