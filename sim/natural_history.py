"""Natural history of recurrence: what the disease does, whatever the surveillance policy.

Per site s (pelvis for rectal primaries only, liver, lung, other) a bounded cumulative hazard
``theta_s * HR_s(x) * F(t)``, F a Weibull distribution function (the promotion-time cure model of
Chen, Ibrahim & Sinha, JASA 1999): covariates act as hazard ratios and a share
``exp(-theta_s HR_s(x))`` never recurs at s. The first site to become detectable opens a
recurrence episode (the structure of Rose et al., BMC Med Inform Decis Mak 2014): other sites are
involved at onset with a probability each, or join later (their own clock, or spread at a constant
rate); the episode causes symptoms after a lognormal delay and stays resectable for a lognormal
window. Cancer death follows a Weibull time from onset whose hazard is multiplied once two or
more sites are involved (survival depends on the number of sites, not their location).

Everything here is vectorized over patients and relative to the episode's origin (the
hepatectomy, or the curative repeat operation that ended the previous episode), so episode k of
every patient is one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from sim.params import Params

__all__ = ["Episode", "site_thetas", "cancer_death_hazard_ratio", "draw_episode", "SITES"]

SITES = ("pelvis", "liver", "lung", "other")


class _Column:
    """Columns of one episode's 16 uniforms in the NATURAL_HISTORY stream."""

    LATENT = slice(0, 4)
    CO_INVOLVED = slice(4, 8)
    SPREAD = slice(8, 12)
    SYMPTOM, RESECTABLE, CANCER_DEATH = 12, 13, 14
    WIDTH = 16


@dataclass(frozen=True)
class Episode:
    """One recurrence episode per patient, in months from the episode's origin (inf: never)."""

    onset: np.ndarray          # (n,) first site detectable
    involved: np.ndarray       # (n, 4) when each site becomes involved
    symptom: np.ndarray        # (n,) symptoms lead to diagnosis
    resectable_until: np.ndarray  # (n,) after this, no curative repeat surgery
    cancer_death: np.ndarray   # (n,) death from this episode if it is never cured


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
    """(n, 4) total recurrence hazard per site for the first episode: theta_s * HR_s(x)."""
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


def _weibull_inverse(cumulative: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """Time at which the Weibull cumulative hazard (t / scale) ** shape reaches `cumulative`."""
    return scale * cumulative ** (1.0 / shape)


def draw_episode(u: np.ndarray, thetas: np.ndarray, death_ratio: np.ndarray,
                 params: Params) -> Episode:
    """Episode from its 16 uniforms per patient (`u`, shape (n, 16)) and the site hazards."""
    r, d = params.recurrence, params.cancer_death
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = -np.log1p(-u[:, _Column.LATENT])               # Exp(1) per site
        fraction = np.where(exposure < thetas, exposure / thetas, np.nan)
        latent = r.onset_weibull_scale_months * (-np.log1p(-fraction)) ** (1.0 / r.onset_weibull_shape)
    latent = np.where(np.isnan(latent), np.inf, latent)
    onset = latent.min(axis=1)
    index = latent.argmin(axis=1)
    rows = np.arange(len(onset))

    eligible = thetas > 0
    co_share = np.array([r.co_involvement_pelvis, r.co_involvement_liver,
                         r.co_involvement_lung, r.co_involvement_other])
    at_onset = eligible & (u[:, _Column.CO_INVOLVED] < co_share)
    at_onset[rows, index] = True
    with np.errstate(divide="ignore"):
        spread = onset[:, None] - np.log1p(-u[:, _Column.SPREAD]) / r.spread_rate_per_month
    later = np.where(eligible, np.minimum(latent, spread), np.inf)
    involved = np.where(at_onset, onset[:, None], later)
    involved[~np.isfinite(onset)] = np.inf

    symptom = onset + r.symptom_delay_median_months * np.exp(
        r.symptom_delay_sigma_log * ndtri(u[:, _Column.SYMPTOM]))
    resectable_until = onset + r.resectable_median_months * np.exp(
        r.resectable_sigma_log * ndtri(u[:, _Column.RESECTABLE]))

    # Cancer death: H(t) = ratio * [H0(min(t, t2) - onset) + m * (H0(t - onset) - H0(t2 - onset))+]
    # with H0(v) = (v / scale) ** shape and t2 the time a second site is involved.
    need = -np.log1p(-u[:, _Column.CANCER_DEATH]) / death_ratio
    with np.errstate(invalid="ignore"):
        t2 = np.sort(involved, axis=1)[:, 1] - onset
    with np.errstate(invalid="ignore"):
        h_at_t2 = (np.where(np.isfinite(t2), t2, np.inf) / d.weibull_scale_months) ** d.weibull_shape
        single = need <= h_at_t2
        h_total = np.where(single, need,
                           h_at_t2 + (need - h_at_t2) / d.hazard_ratio.multiple_sites)
    cancer_death = onset + _weibull_inverse(h_total, d.weibull_shape, d.weibull_scale_months)
    return Episode(onset, involved, symptom, resectable_until, cancer_death)
