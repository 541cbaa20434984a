"""The tempo trait (`sim.model.natural_history`): one standard-normal trait per episode makes
disease slow, late and limited. Each mechanism against its closed form."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit, ndtri

from sim import with_values
from sim.model import rules
from sim.model.natural_history import draw_episode

_DOUBLING, _LATENT, _LATE, _SPREAD, _CO = 15, slice(0, 4), slice(16, 20), slice(8, 12), slice(4, 8)
_NEVER = 1.0 - 1e-12   # a uniform whose exposure exceeds any theta here: that clock never fires


def _uniforms(n, seed):
    return np.random.default_rng(seed).random((n, 24))


def test_early_onset_is_stretched_by_the_doubling_time_to_the_power_gamma(params):
    """Early-clock onsets scale with (Td / median Td) ** gamma, whatever else is drawn."""
    n = 2000
    u = _uniforms(n, 1)
    u[:, _LATE] = _NEVER
    thetas = np.tile([0.0, 3.0, 0.0, 0.0], (n, 1))
    flat = with_values(params, {"growth.onset_doubling_exponent": 0.0})
    steep = with_values(params, {"growth.onset_doubling_exponent": 1.0})
    a, b = draw_episode(u, thetas, np.ones(n), flat), draw_episode(u, thetas, np.ones(n), steep)
    fired = np.isfinite(a.onset)
    assert fired.sum() > 1500
    sigma = params.growth.doubling_time_sigma_log
    expected = a.onset[fired] * np.exp(sigma * ndtri(u[fired, _DOUBLING]))
    np.testing.assert_allclose(b.onset[fired], expected, rtol=1e-12)
    np.testing.assert_allclose(b.doubling_months[fired] / params.growth.doubling_time_median_months,
                               np.exp(sigma * ndtri(u[fired, _DOUBLING])), rtol=1e-12)


def test_disease_that_wakes_on_the_late_clock_is_slower_by_the_shift(params):
    """An episode opened by the dormant clock has tempo z + shift: Td = median exp(sigma (z +
    shift)); an early one keeps z. The late clock itself is not stretched."""
    n = 2000
    u = _uniforms(n, 2)
    u[:, _LATENT] = _NEVER                      # only the late clock can fire
    thetas = np.tile([0.0, 3.0, 0.0, 0.0], (n, 1))
    shifted = with_values(params, {"recurrence.late_tempo_shift": 1.5})
    e = draw_episode(u, thetas, np.ones(n), shifted)
    fired = np.isfinite(e.onset)
    assert fired.sum() > 1000
    g = params.growth
    z = ndtri(u[fired, _DOUBLING])
    np.testing.assert_allclose(e.tempo[fired], z + 1.5, rtol=1e-12)
    np.testing.assert_allclose(e.doubling_months[fired],
                               g.doubling_time_median_months * np.exp(g.doubling_time_sigma_log
                                                                      * (z + 1.5)), rtol=1e-12)
    flat = draw_episode(u, thetas, np.ones(n),
                        with_values(shifted, {"growth.onset_doubling_exponent": 0.0}))
    np.testing.assert_array_equal(e.onset, flat.onset)


def test_sites_join_at_a_rate_per_doubling(params):
    """With no co-involvement and one site's clock only, another site joins an active episode
    after an exponential time of mean (Td / median Td) / rate: the spread draw's exact value."""
    n = 2000
    u = _uniforms(n, 3)
    u[:, _LATE] = _NEVER
    u[:, _CO] = _NEVER
    u[:, 2] = _NEVER                            # the lung's own clock never fires
    thetas = np.tile([0.0, 3.0, 1e-9, 0.0], (n, 1))
    p = with_values(params, {"recurrence.co_involvement_lung": 0.0})
    e = draw_episode(u, thetas, np.ones(n), p)
    fired = np.isfinite(e.onset)
    relative = e.doubling_months[fired] / params.growth.doubling_time_median_months
    expected = (e.onset[fired] - np.log1p(-u[fired, 10]) * relative
                / params.recurrence.spread_rate_per_month)
    np.testing.assert_allclose(e.involved[fired, 2], expected, rtol=1e-12)


def test_curative_chance_is_logistic_in_tempo(params):
    """logit P(curative | resectable) = logit p + beta z, worked values."""
    t = with_values(params, {"treatment.curative_prob_if_resectable": 0.36,
                             "treatment.curative_log_odds_per_tempo_sd": 0.8}).treatment
    z = np.array([-2.0, 0.0, 1.0, 2.5])
    np.testing.assert_allclose(rules.curative_chance(z, t), expit(logit(0.36) + 0.8 * z),
                               rtol=1e-12)
    assert abs(rules.curative_chance(0.0, t) - 0.36) < 1e-15
    flat = with_values(params, {"treatment.curative_log_odds_per_tempo_sd": 0.0}).treatment
    assert (rules.curative_chance(z, flat) == params.treatment.curative_prob_if_resectable).all()


def test_death_after_symptoms_scales_with_the_doubling_time_to_the_power_delta(params):
    """One site, never a second: cancer death - symptoms = scale (Td / median) ** delta *
    (E / ratio) ** (1 / shape), E the Exp(1) of the death draw."""
    n = 1000
    u = _uniforms(n, 4)
    u[:, _LATE] = _NEVER
    u[:, _CO] = _NEVER
    thetas = np.tile([0.0, 3.0, 0.0, 0.0], (n, 1))
    d = params.cancer_death
    for delta in (0.0, 0.5, 1.0):
        p = with_values(params, {"cancer_death.doubling_exponent": delta,
                                 "recurrence.spread_rate_per_month": 1e-12})
        e = draw_episode(u, thetas, np.full(n, 2.0), p)
        ok = np.isfinite(e.symptom)
        relative = e.doubling_months[ok] / params.growth.doubling_time_median_months
        expected = (d.weibull_scale_months * relative ** delta
                    * (-np.log1p(-u[ok, 14]) / 2.0) ** (1 / d.weibull_shape))
        np.testing.assert_allclose(e.cancer_death[ok] - e.symptom[ok], expected, rtol=1e-9)


def test_a_re_recurrence_keeps_the_patients_tempo(params, policy):
    """Episode 1 (after a curative operation) has the tempo of the patient's first draw, z or
    z + shift when the dormant clock opens it, never a draw of its own."""
    from sim.engine.draws import draw_chunk
    from sim.execution.runner import CohortSpec, prepare_cohort
    from sim.model.streams import Purpose, uniforms_for

    spec = CohortSpec(3000, 11, "horizon", "both", 10.0)
    cohort, months, why, _ = prepare_cohort(spec, params, 0, 3000, 0.0)
    chunk = draw_chunk(params, policy, cohort, months, why, 11, 0)
    second = chunk.episodes[1]
    assert len(second.patients) > 100
    ids = chunk.ids[second.patients]
    z = ndtri(uniforms_for(11, 0, Purpose.NATURAL_HISTORY, ids, stream=(0,))[:, _DOUBLING])
    own = ndtri(uniforms_for(11, 0, Purpose.NATURAL_HISTORY, ids, stream=(1,))[:, _DOUBLING])
    shift = params.recurrence.late_tempo_shift
    tempo = second.disease.tempo
    assert np.all(np.isclose(tempo, z) | np.isclose(tempo, z + shift))
    assert not np.any(np.isclose(tempo, own))
