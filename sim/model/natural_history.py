"""Natural history of recurrence: what the disease does, whatever the surveillance policy.

Onset. Per site s (pelvis for rectal primaries only, liver, lung, other) a bounded cumulative
hazard ``theta_s * HR_s(x) * [F(t) + q * G(t)]`` (the promotion-time cure model of Chen, Ibrahim &
Sinha, JASA 1999): F is a Weibull distribution function for the disease that grows soon after the
hepatectomy, G a later one for dormant disease that wakes years later (share q of the hazard), so
that some patients disease-free at 5 years still recur. Covariates act as hazard ratios and a
share ``exp(-theta_s HR_s(x) (1 + q))`` never recurs at s. The onset is the time the first site
reaches a detectable size; other sites are involved at onset with a probability each, or join
later (their own clock, or spread at a constant rate).

Tempo. One trait per patient, its tempo ``z`` (standard normal), makes disease slow, late and
limited together: the volume doubling time is ``Td = median * exp(sigma * z)`` (lognormal between
episodes; Finlay et al., Br J Surg 1988); the early clock's onset times are stretched by
``exp(gamma * sigma * z)`` (residual disease needs a number of doublings to reach the onset
diameter, so slow disease surfaces late: doubling times grow with the relapse-free interval, Surg
Today 2020, doi:10.1007/s00595-020-02135-y, and short ones go with early, multiple recurrences,
Tanaka et al., World J Surg 2004;28:263); disease that wakes on the dormant clock wakes slow (its
tempo is ``z + shift``); sites join an active episode at a rate per doubling, not per month
(`recurrence.spread_rate_per_month` is the rate at the median doubling time); the
time from symptoms to a cancer death scales with ``(Td / median) ** delta``; and the chance that
resectable disease is limited enough to be operated with curative intent rises with the tempo
(`sim.model.rules.curative_chance`). The tempo is the patient's: a re-recurrence after a curative
operation keeps the first episode's (plus the shift if it wakes on the dormant clock).

Growth. Every involved site grows from the onset diameter with the episode's volume doubling time,
so the episode's burden, the summed volume of its sites in units of one 10-mm lesion, is
``B(t) = B0 * sum_s 2 ** ((t - t_s) / Td)``
over the sites involved by t. The burden decides the rest:
- symptoms appear when log2 B reaches the episode's symptom level (normal between episodes);
- the disease is resectable while log2 B stays below the episode's resectability level (and while
  the sites allow, `sim.model.rules.sites_operable`);
- imaging finds a site, and a marker a producing recurrence, with a chance that rises with size
  (`sim.model.detection`); whether the recurrence produces CEA at all is a trait of the episode;
- untreated disease kills only after it has presented: death comes a Weibull time after the
  symptoms, scaled by the doubling time, its hazard multiplied once two or more sites are
  involved (survival depends on the number of sites, not their location, as in the study). So
  detection without curative treatment adds lead time, not life.

Everything here is vectorized over patients and relative to the episode's origin (the
hepatectomy, or the curative repeat operation that ended the previous episode), so episode k of
every patient is one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from sim.model.params import Params

__all__ = ["Episode", "site_thetas", "cancer_death_hazard_ratio", "draw_episode", "tempo_uniform",
           "SITES",
           "onset_log2_burden", "log2_burden", "time_to_burden", "REFERENCE_DIAMETER_MM"]

SITES = ("pelvis", "liver", "lung", "other")
REFERENCE_DIAMETER_MM = 10.0  # burden unit: the volume of one lesion of this diameter


class _Column:
    """Columns of one episode's 24 uniforms in the NATURAL_HISTORY stream."""

    LATENT = slice(0, 4)        # early onset clock per site
    CO_INVOLVED = slice(4, 8)
    SPREAD = slice(8, 12)
    SYMPTOM, RESECTABLE, CANCER_DEATH, DOUBLING = 12, 13, 14, 15
    LATE = slice(16, 20)        # dormant (late) onset clock per site
    PRODUCER = 20               # the recurrence produces CEA
    WIDTH = 24


@dataclass(frozen=True)
class Episode:
    """One recurrence episode per patient, in months from the episode's origin (inf: never)."""

    onset: np.ndarray          # (n,) first site detectable
    involved: np.ndarray       # (n, 4) when each site becomes involved
    symptom: np.ndarray        # (n,) the burden causes symptoms, which lead to diagnosis
    resectable_until: np.ndarray  # (n,) after this the burden is too large for curative surgery
    cancer_death: np.ndarray   # (n,) death from this episode if it is never cured
    doubling_months: np.ndarray  # (n,) volume doubling time of the episode's lesions
    producer: np.ndarray       # (n,) bool: the recurrence raises CEA
    tempo: np.ndarray          # (n,) standard normal trait: slow, late and limited when high


def _product(cohort: dict[str, np.ndarray], ratios: dict[str, float]) -> np.ndarray:
    """Product of hazard ratios over the covariates a patient has."""
    result = np.ones(len(cohort["patient_id"]))
    for name, ratio in ratios.items():
        result *= np.where(cohort[name], ratio, 1.0)
    return result


def _indicators(cohort: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        **cohort,
        "rfa": cohort["hepatic_treatment"] != "resection",
        "n2": cohort["n_stage"] == "N2",
        "apr": cohort["primary_operation"] == "APR",
        "colon_primary": cohort["primary_site"] == "colon",
    }


def site_thetas(cohort: dict[str, np.ndarray], params: Params) -> np.ndarray:
    """(n, 4) total early recurrence hazard per site for the first episode: theta_s * HR_s(x)."""
    r = params.recurrence
    x = _indicators(cohort)
    common = _product(x, vars(r.hazard_ratio_all_sites))
    rectal = cohort["primary_site"] == "rectum"
    pelvis = np.where(rectal, r.theta_pelvis, 0.0) * _product(x, vars(r.hazard_ratio_pelvis))
    liver = r.theta_liver * _product(x, vars(r.hazard_ratio_liver))
    lung = np.full(len(common), r.theta_lung)
    other = np.full(len(common), r.theta_other)
    return np.column_stack([pelvis, liver, lung, other]) * common[:, None]


def cancer_death_hazard_ratio(cohort: dict[str, np.ndarray], params: Params) -> np.ndarray:
    """(n,) hazard ratio of cancer death from the patient's covariates (not the site count)."""
    ratios = vars(params.cancer_death.hazard_ratio).copy()
    ratios.pop("multiple_sites")
    return _product(_indicators(cohort), ratios)


def _promotion_time(u: np.ndarray, thetas: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """First arrival of a Poisson process with cumulative intensity theta * Weibull CDF(t):
    inf when the Exp(1) exposure exceeds theta (the site is cured of this clock)."""
    exposure = -np.log1p(-u)
    arrives = exposure < np.broadcast_to(thetas, exposure.shape)
    latent = np.full(exposure.shape, np.inf)
    with np.errstate(divide="ignore"):   # (only the sites that arrive: most never do)
        fraction = exposure[arrives] / np.broadcast_to(thetas, exposure.shape)[arrives]
        latent[arrives] = scale * (-np.log1p(-fraction)) ** (1.0 / shape)
    return latent


def tempo_uniform(u: np.ndarray) -> np.ndarray:
    """The uniform that sets an episode's tempo, from its 24 uniforms (n, 24)."""
    return u[:, _Column.DOUBLING]


def onset_log2_burden(params: Params) -> float:
    """log2 of one site's burden at its involvement (a lesion of the onset diameter)."""
    return 3.0 * np.log2(params.growth.onset_diameter_mm / REFERENCE_DIAMETER_MM)


def log2_burden(times: np.ndarray, involved: np.ndarray, doubling: np.ndarray,
                params: Params) -> np.ndarray:
    """log2 B at `times` (n, m) for episodes with sites `involved` (n, 4) and doubling times (n,):
    -inf before the first site is involved. Never decreases with time."""
    age = times[:, :, None] - involved[:, None, :]                       # (n, m, 4)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        volume = np.where(age >= 0, np.exp2(np.minimum(age / doubling[:, None, None], 1000.0)), 0.0)
        return onset_log2_burden(params) + np.log2(volume.sum(axis=2))


def time_to_burden(level: np.ndarray, involved: np.ndarray, doubling: np.ndarray,
                   params: Params) -> np.ndarray:
    """First time log2 B reaches `level` (n,): B grows exponentially between the times sites
    join and jumps up when one joins, so the answer is on the first piece that reaches it."""
    return _time_to(level, _pieces(involved, doubling), doubling, params)


def _pieces(involved: np.ndarray, doubling: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the times sites join, sorted; log2 of the burden's multiple of one site's on each
    piece), which every level of `time_to_burden` reads."""
    order = np.sort(involved, axis=1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        offset = np.where(np.isfinite(order), (order - order[:, :1]) / doubling[:, None], np.inf)
        return order, np.log2(np.cumsum(np.exp2(-offset), axis=1))        # log2 S_k, k = 1..4


def _time_to(level: np.ndarray, pieces: tuple[np.ndarray, np.ndarray], doubling: np.ndarray,
             params: Params) -> np.ndarray:
    order, log2_sum = pieces
    first = order[:, :1]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        candidate = first + doubling[:, None] * (level[:, None] - onset_log2_burden(params)
                                                 - log2_sum)
    candidate = np.maximum(candidate, order)
    after = np.concatenate([order[:, 1:], np.full((len(order), 1), np.inf)], axis=1)
    reached = candidate < after
    piece = reached.argmax(axis=1)
    rows = np.arange(len(order))
    return np.where(np.isfinite(first[:, 0]), candidate[rows, piece], np.inf)


def draw_episode(u: np.ndarray, thetas: np.ndarray, death_ratio: np.ndarray,
                 params: Params, tempo_u: np.ndarray | None = None) -> Episode:
    """Episode from its 24 uniforms per patient (`u`, shape (n, 24)) and the site hazards.
    `tempo_u`: the uniform of the patient's tempo when it is not this episode's own: a
    re-recurrence keeps the tempo of the patient's first episode (the biology of the disease it
    follows; `tempo_uniform` gives it), else a curative operation on slow disease would trade it
    for a new draw."""
    r, g, d = params.recurrence, params.growth, params.cancer_death
    tempo = ndtri(u[:, _Column.DOUBLING] if tempo_u is None else tempo_u)
    stretch = np.exp(g.onset_doubling_exponent * g.doubling_time_sigma_log * tempo)
    early = _promotion_time(u[:, _Column.LATENT], thetas, r.onset_weibull_shape,
                            r.onset_weibull_scale_months) * stretch[:, None]
    late = _promotion_time(u[:, _Column.LATE], thetas * r.late_share, r.late_weibull_shape,
                           r.late_weibull_scale_months)
    latent = np.minimum(early, late)
    onset = latent.min(axis=1)
    index = latent.argmin(axis=1)
    rows = np.arange(len(onset))
    dormant = np.isfinite(onset) & (late[rows, index] < early[rows, index])
    tempo = tempo + np.where(dormant, r.late_tempo_shift, 0.0)      # dormancy wakes slow
    relative_doubling = np.exp(g.doubling_time_sigma_log * tempo)   # Td / median Td
    doubling = g.doubling_time_median_months * relative_doubling

    eligible = thetas > 0
    co_share = np.array([r.co_involvement_pelvis, r.co_involvement_liver,
                         r.co_involvement_lung, r.co_involvement_other])
    at_onset = eligible & (u[:, _Column.CO_INVOLVED] < co_share)
    at_onset[rows, index] = True
    with np.errstate(divide="ignore"):
        spread = onset[:, None] - (np.log1p(-u[:, _Column.SPREAD]) * relative_doubling[:, None]
                                   / r.spread_rate_per_month)
    later = np.where(eligible, np.minimum(latent, spread), np.inf)
    involved = np.where(at_onset, onset[:, None], later)
    involved[~np.isfinite(onset)] = np.inf

    symptom_level = g.symptom_log2_burden_mean + g.symptom_log2_burden_sd * ndtri(
        u[:, _Column.SYMPTOM])
    resectable_level = g.resectable_log2_burden_mean + g.resectable_log2_burden_sd * ndtri(
        u[:, _Column.RESECTABLE])
    pieces = _pieces(involved, doubling)             # the same for both levels
    symptom = _time_to(symptom_level, pieces, doubling, params)
    resectable_until = _time_to(resectable_level, pieces, doubling, params)

    # Cancer death, from the symptoms: H(v) = ratio * [H0(min(v, v2)) + m * (H0(v) - H0(v2))+]
    # with H0(v) = (v / (scale * (Td / median Td) ** exponent)) ** shape and v2 the time from the
    # symptoms to
    # the involvement of a second site (0 if two are involved already).
    scale = d.weibull_scale_months * relative_doubling ** d.doubling_exponent
    need = -np.log1p(-u[:, _Column.CANCER_DEATH]) / death_ratio
    with np.errstate(invalid="ignore"):
        v2 = np.maximum(pieces[0][:, 1] - symptom, 0.0)
        h_at_v2 = (np.where(np.isfinite(v2), v2, np.inf) / scale) ** d.weibull_shape
        single = need <= h_at_v2
        h_total = np.where(single, need, h_at_v2 + (need - h_at_v2) / d.hazard_ratio.multiple_sites)
        cancer_death = symptom + scale * h_total ** (1.0 / d.weibull_shape)
    cancer_death = np.where(np.isfinite(symptom), cancer_death, np.inf)
    producer = u[:, _Column.PRODUCER] < params.detection.marker_producing_share
    return Episode(onset, involved, symptom, resectable_until, cancer_death, doubling, producer,
                   tempo)
