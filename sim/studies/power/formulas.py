"""Analytic power and sample size of the two-group comparison of survival (and of two proportions).

- Schoenfeld (Biometrika 1981; Biometrics 1983): the log-rank statistic is approximately normal
  with mean ``log(HR) sqrt(D p (1 - p))`` for ``D`` events and a share ``p`` of patients in the
  experimental group; ``D = (z_{1-a/2} + z_{1-b})^2 / (p (1 - p) log(HR)^2)`` events give power
  ``1 - b``. A continuous covariate of variance ``s^2`` replaces ``p (1 - p)`` (Hsieh & Lavori,
  Control Clin Trials 2000).
- Freedman (Stat Med 1982): mean ``sqrt(D k) |HR - 1| / (k HR + 1)`` with ``k`` experimental
  patients per control patient; lifelines' ``power_under_cph`` and R's powerSurvEpi compute it.
- A difference against a margin (restricted mean survival, a share), larger better: non-inferiority
  rejects ``true difference <= -margin`` when ``(estimate + margin) / se >= z_{1-a}`` (power
  ``Phi((difference + margin) / se - z_{1-a})``); equivalence, the two one-sided tests of
  ``-margin`` and ``margin`` (power ``Phi((margin - d) / se - z) + Phi((margin + d) / se - z) - 1``
  for the true difference d, at least 0; Schuirmann, J Pharmacokinet Biopharm 1987).
- Events from patients: ``D = n P(event)``; under exponential survival with uniform accrual over
  ``accrual_months``, analysis ``follow_up_months`` after the last entry and exponential dropout,
  ``P(event)`` has a closed form (:func:`event_probability_exponential`).

The powers here count both tails of a two-sided test (the far tail is negligible unless the effect
is tiny, and with it the power at ``HR = 1`` is ``alpha`` exactly), where lifelines and most
tables keep the near tail only.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = [
    "critical_value",
    "normal_power",
    "schoenfeld_power",
    "schoenfeld_events",
    "freedman_power",
    "freedman_events",
    "two_proportion_power",
    "margin_p_value",
    "margin_power",
    "event_probability_exponential",
    "sample_size",
]


def critical_value(alpha: float, sides: int = 2) -> float:
    """``z_{1 - alpha / sides}``: the normal quantile a test statistic must exceed."""
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' argument must be in (0, 1); got {alpha!r}.")
    if sides not in (1, 2):
        raise ValueError(f"The 'sides' argument must be 1 or 2; got {sides!r}.")
    return float(ndtri(1 - alpha / sides))


def normal_power(drift, alpha: float = 0.05, sides: int = 2):
    """Power of a test whose statistic is normal with mean ``drift`` and variance 1 (both tails
    of a two-sided test; one-sided tests reject for positive drift)."""
    z = critical_value(alpha, sides)
    drift = np.abs(np.asarray(drift, dtype=float)) if sides == 2 else np.asarray(drift, dtype=float)
    power = ndtr(drift - z)
    return power + ndtr(-drift - z) if sides == 2 else power


def _share(allocation: float) -> float:
    if not 0 < allocation < 1:
        raise ValueError("The 'allocation' argument (share of the experimental group) must be in (0, 1); "
                         f"got {allocation!r}.")
    return float(allocation)


def _hazard_ratio(hazard_ratio):
    hr = np.asarray(hazard_ratio, dtype=float)
    if np.any(~(hr > 0)):
        raise ValueError(f"The 'hazard_ratio' argument must be positive; got {hazard_ratio!r}.")
    return hr


def schoenfeld_power(events, hazard_ratio, alpha: float = 0.05, allocation: float = 0.5,
                     sides: int = 2, variance: float | None = None):
    """Power of the log-rank (or Cox score) test with ``events`` events (Schoenfeld).

    ``allocation`` is the share of patients in the experimental (exposed) group; for a continuous
    covariate give its ``variance`` instead, and ``hazard_ratio`` per unit of it.
    """
    spread = _share(allocation) * (1 - allocation) if variance is None else float(variance)
    log_hr = np.log(_hazard_ratio(hazard_ratio))
    return normal_power(log_hr * np.sqrt(np.asarray(events, dtype=float) * spread), alpha, sides)


def schoenfeld_events(hazard_ratio, power: float = 0.8, alpha: float = 0.05, allocation: float = 0.5,
                      sides: int = 2, variance: float | None = None):
    """Events needed for ``power`` (Schoenfeld; not rounded, the near tail only as in the paper)."""
    spread = _share(allocation) * (1 - allocation) if variance is None else float(variance)
    z = critical_value(alpha, sides) + ndtri(power)
    with np.errstate(divide="ignore"):  # no effect: infinitely many events
        return z * z / (spread * np.log(_hazard_ratio(hazard_ratio)) ** 2)


def _freedman_drift(events, hazard_ratio, allocation):
    k = _share(allocation) / (1 - allocation)
    hr = _hazard_ratio(hazard_ratio)
    return np.sqrt(np.asarray(events, dtype=float) * k) * np.abs(hr - 1) / (k * hr + 1)


def freedman_power(events, hazard_ratio, alpha: float = 0.05, allocation: float = 0.5, sides: int = 2):
    """Power of the log-rank test with ``events`` events (Freedman 1982)."""
    return normal_power(_freedman_drift(events, hazard_ratio, allocation), alpha, sides)


def freedman_events(hazard_ratio, power: float = 0.8, alpha: float = 0.05, allocation: float = 0.5,
                    sides: int = 2):
    """Events needed for ``power`` (Freedman; not rounded): ``m`` of lifelines and powerSurvEpi."""
    z = critical_value(alpha, sides) + ndtri(power)
    with np.errstate(divide="ignore"):
        return z * z / _freedman_drift(1.0, hazard_ratio, allocation) ** 2


def two_proportion_power(p_experimental, p_control, n, alpha: float = 0.05, allocation: float = 0.5,
                         sides: int = 2):
    """Power of the pooled two-proportion z test (chi-square without continuity correction) with
    ``n`` patients in all, a share ``allocation`` of them experimental (normal approximation)."""
    share = _share(allocation)
    n = np.asarray(n, dtype=float)
    n_e, n_c = n * share, n * (1 - share)
    p_e, p_c = float(p_experimental), float(p_control)
    pooled = share * p_e + (1 - share) * p_c
    null_sd = np.sqrt(pooled * (1 - pooled) * (1 / n_e + 1 / n_c))
    sd = np.sqrt(p_e * (1 - p_e) / n_e + p_c * (1 - p_c) / n_c)
    z = critical_value(alpha, sides)
    difference = abs(p_e - p_c) if sides == 2 else p_e - p_c
    with np.errstate(divide="ignore", invalid="ignore"):
        power = ndtr((difference - z * null_sd) / sd)
        if sides == 2:
            power = power + ndtr((-difference - z * null_sd) / sd)
    # both shares 0 or 1: no spread, the test rejects exactly when they differ
    return np.where(sd > 0, power, float(difference > 0))


def event_probability_exponential(control_rate_per_month: float, hazard_ratio: float,
                                  allocation: float = 0.5, accrual_months: float = 0.0,
                                  follow_up_months: float | None = None,
                                  dropout_rate_per_month: float = 0.0) -> float:
    """Probability that a patient's event is observed, under exponential survival.

    Entry is uniform over ``accrual_months``, the analysis is ``follow_up_months`` after the last
    entry (so follow-up is uniform on ``[F, F + A]``), dropout is exponential; without
    ``follow_up_months`` everyone is followed until the event or dropout.
    """
    share = _share(allocation)
    probability = 0.0
    for weight, rate in ((share, control_rate_per_month * hazard_ratio), (1 - share, control_rate_per_month)):
        total = rate + dropout_rate_per_month
        if follow_up_months is None:
            observed = 1.0
        elif accrual_months > 0:
            observed = 1 - (np.exp(-total * follow_up_months)
                            - np.exp(-total * (follow_up_months + accrual_months))) / (total * accrual_months)
        else:
            observed = 1 - np.exp(-total * follow_up_months)
        probability += weight * rate / total * observed
    return float(probability)


def sample_size(events, event_probability):
    """Patients needed to observe ``events`` events when each patient has ``event_probability``."""
    if not 0 < event_probability <= 1:
        raise ValueError(f"The 'event_probability' argument must be in (0, 1]; got {event_probability!r}.")
    return np.asarray(events, dtype=float) / event_probability


def margin_p_value(estimate, se, margin: float, hypothesis: str):
    """p-value of a difference `estimate` (larger better) with standard error `se` against a
    `margin` > 0: non-inferiority, the one-sided test of ``true <= -margin``; equivalence, the
    larger p-value of the two one-sided tests of ``-margin`` and ``margin``."""
    estimate, se = np.asarray(estimate, float), np.asarray(se, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = ndtr(-(estimate + margin) / se)
        if hypothesis == "non_inferiority":
            return lower
        return np.maximum(lower, ndtr(-(margin - estimate) / se))


def margin_power(difference: float, se, margin: float, hypothesis: str, alpha: float):
    """Power of `margin_p_value`'s test at level `alpha` for the true `difference` and the
    standard error `se` of its estimate (normal approximation)."""
    se = np.asarray(se, float)
    c = critical_value(alpha, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if hypothesis == "non_inferiority":
            return ndtr((difference + margin) / se - c)
        both = ndtr((margin - difference) / se - c) + ndtr((margin + difference) / se - c) - 1.0
    return np.maximum(both, 0.0)
