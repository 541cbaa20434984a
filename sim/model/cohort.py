"""Baseline covariates and the perioperative course, sampled jointly as the study reports them.

Vectorized over a chunk of patients: each covariate is an inverse-CDF transform of one column of
the patient's COHORT stream, so a patient's covariates depend only on (seed, replicate,
patient_id). Conditional shares are used where the paper gives them: presentation changes
chemoradiation, preoperative chemotherapy and major hepatectomy; the extent of resection changes
RFA. Colon primaries share the rectal mix (the study: 'similar with regard to most
clinicopathological factors') except for the rectum-only treatments.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from scipy.special import ndtr, ndtri

from sim.model.lifetable import background_death_months
from sim.model.params import Params
from sim.model.streams import Purpose, uniforms

__all__ = ["sample_cohort", "PRIMARY_CHOICES"]

PRIMARY_CHOICES = ("rectum", "colon", "both")
_ERA_BREAK = dt.date(1994, 1, 1)
_EPOCH = np.datetime64("1970-01-01", "D")


class _Column:
    """Column numbers of the COHORT stream: one uniform each, fixed forever (replay)."""

    PRIMARY, AGE, SEX, ERA, DATE, T_STAGE, N_STAGE, CEA = range(8)
    PRESENTATION, SIMULTANEOUS, CHEMORADIATION, RESPONSE, PREOP_CHEMO, OPERATION = range(8, 14)
    MAJOR, RFA, RFA_ONLY, ANATOMIC, MARGIN, SIZE = range(14, 20)
    COMPLICATION, STAY, PERIOP_DEATH, PERIOP_DEATH_TIME, BACKGROUND, LOST, ENTRY = range(20, 27)


def _dates(u_era: np.ndarray, u_date: np.ndarray, params: Params) -> np.ndarray:
    """Hepatectomy dates: the era by its share, then uniform within the era."""
    c = params.cohort
    start, stop = (np.datetime64(d, "D") for d in (c.accrual_start, c.accrual_end))
    split = np.datetime64(_ERA_BREAK, "D")
    early = u_era < c.pre1994_share
    low = np.where(early, start, split).astype("datetime64[D]").astype(np.int64)
    high = np.where(early, split, stop + 1).astype("datetime64[D]").astype(np.int64)
    days = low + np.floor(u_date * (high - low)).astype(np.int64)
    return days.astype("datetime64[D]")


def sample_cohort(params: Params, primary: str, seed: int, replicate: int, first_patient: int,
                  n_patients: int) -> dict[str, np.ndarray]:
    """Covariates, perioperative course and background death time of a chunk of patients."""
    c, p = params.cohort, params.perioperative
    u = uniforms(seed, replicate, Purpose.COHORT, first_patient, n_patients)
    col = _Column
    n = n_patients
    if primary == "both":
        rectal = u[:, col.PRIMARY] < c.rectal_share
    else:
        rectal = np.full(n, primary == "rectum")

    z_low = (c.age_min_years - c.age_mean_years) / c.age_sd_years
    z_high = (c.age_max_years - c.age_mean_years) / c.age_sd_years
    lo, hi = ndtr(z_low), ndtr(z_high)
    age = c.age_mean_years + c.age_sd_years * ndtri(lo + u[:, col.AGE] * (hi - lo))
    male = u[:, col.SEX] < c.male_share
    dates = _dates(u[:, col.ERA], u[:, col.DATE], params)
    year = dates.astype("datetime64[Y]").astype(int) + 1970

    t34 = c.t3_t4_share
    t_cut = np.array([(1 - t34) * c.t1_share_of_t1_t2, 1 - t34, 1 - t34 * c.t4_share_of_t3_t4])
    t_stage = np.array(["T1", "T2", "T3", "T4"])[np.searchsorted(t_cut, u[:, col.T_STAGE], "right")]
    n_cut = np.array([1 - c.node_positive_share, 1 - c.n2_share])
    n_stage = np.array(["N0", "N1", "N2"])[np.searchsorted(n_cut, u[:, col.N_STAGE], "right")]
    cea = u[:, col.CEA] < c.cea_gt_200_share

    synchronous = u[:, col.PRESENTATION] < c.synchronous_share
    simultaneous = synchronous & (u[:, col.SIMULTANEOUS] < c.simultaneous_share_of_synchronous)
    crt_share = np.where(synchronous, c.chemoradiation_share_synchronous,
                         c.chemoradiation_share_metachronous)
    chemoradiation = rectal & (u[:, col.CHEMORADIATION] < crt_share)
    response = chemoradiation & (u[:, col.RESPONSE] < c.complete_response_share_of_chemoradiation)
    preop_share = np.where(synchronous, c.preop_chemo_share_synchronous,
                           c.preop_chemo_share_metachronous)
    preop_chemo = u[:, col.PREOP_CHEMO] < preop_share
    u_op = u[:, col.OPERATION]
    rectal_operation = np.where(u_op < c.lar_share, "LAR",
                                np.where(u_op < c.lar_share + c.apr_share, "APR", "other"))
    operation = np.where(rectal, rectal_operation, "colectomy")

    major_share = np.where(synchronous, c.major_share_synchronous, c.major_share_metachronous)
    major = u[:, col.MAJOR] < major_share
    rfa_share = np.where(major, c.rfa_share_hemi_or_more, c.rfa_share_less_than_hemi)
    rfa = u[:, col.RFA] < rfa_share
    rfa_only = rfa & (u[:, col.RFA_ONLY] < c.rfa_only_share_of_rfa)
    treatment = np.where(rfa_only, "rfa", np.where(rfa, "resection_rfa", "resection"))
    anatomic = ~rfa_only & (u[:, col.ANATOMIC] < c.anatomic_share)
    margin = u[:, col.MARGIN] < c.margin_positive_share
    size = u[:, col.SIZE] < c.tumor_gt_5cm_share

    complication = u[:, col.COMPLICATION] < p.complication_prob
    stay_median = p.los_median_days_uncomplicated * np.where(complication,
                                                             p.los_complication_multiplier, 1.0)
    stay = np.maximum(1, np.rint(stay_median * np.exp(p.los_sigma_log * ndtri(u[:, col.STAY]))))
    periop_death = u[:, col.PERIOP_DEATH] < p.death_90d_prob
    periop_death_months = 3.0 * u[:, col.PERIOP_DEATH_TIME]
    background = background_death_months(age, male, year, -np.log1p(-u[:, col.BACKGROUND]))
    rate = params.study.loss_to_follow_up_rate_per_month
    with np.errstate(divide="ignore"):
        lost = -np.log1p(-u[:, col.LOST]) / rate if rate > 0 else np.full(n, np.inf)

    return {
        "patient_id": np.arange(first_patient, first_patient + n, dtype=np.int64),
        "primary_site": np.where(rectal, "rectum", "colon"),
        "age_years": np.round(age, 2),
        "sex": np.where(male, "male", "female"),
        "hepatectomy_date": dates,
        "era_pre1994": dates < np.datetime64(_ERA_BREAK, "D"),
        "t_stage": t_stage,
        "n_stage": n_stage,
        "cea_gt_200": cea,
        "presentation": np.where(synchronous, "synchronous", "metachronous"),
        "simultaneous_resection": simultaneous,
        "primary_operation": operation,
        "chemoradiation": chemoradiation,
        "complete_pathological_response": response,
        "preop_chemotherapy": preop_chemo,
        "hepatic_treatment": treatment,
        "major_hepatectomy": major,
        "less_than_hemihepatectomy": ~major,
        "anatomic_resection": anatomic,
        "margin_positive": margin,
        "tumor_gt_5cm": size,
        "periop_complication": complication,
        "length_of_stay_days": stay.astype(np.int64),
        "periop_death_draw": periop_death,
        "periop_death_draw_months": periop_death_months,
        "background_death_months": background,
        "lost_to_follow_up_months": lost,
        "entry_fraction": u[:, col.ENTRY],  # place in the accrual period (departments only)
    }
