"""Detection of a recurrence episode: at a surveillance visit, or at symptoms.

A visit attended while disease is present finds it with probability
``p = 1 - (1 - marker) * prod over involved sites of (1 - imaging sensitivity at that site)``.
Visits are independent given the disease, so the episode is found at the first attended visit
where the running sum of ``-log(1 - p)`` passes the episode's one Exp(1) variate from the
TEST_ACCURACY stream: the same distribution as a coin per visit, with one draw, and a patient
scanned more often is never found later (common random numbers across policies).

Attendance and false positives are drawn per visit *month* (the VISIT stream of each episode and
month), not per visit number: a visit at month 12 is attended or missed alike
under every policy that schedules one, so a policy whose visits include another's finds every
recurrence at least as early.
"""

from __future__ import annotations

import numpy as np

from sim.policy import Policy

__all__ = ["detect", "attendance", "false_positives"]


def attendance(u: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) which scheduled visits a patient attends, from VISIT uniforms (n, m)."""
    return u < policy.adherence


def false_positives(u: np.ndarray, attended: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) attended visits whose result is positive without disease: each modality tests
    negative with its specificity; VISIT uniforms (n, m), another column."""
    return attended & (u < 1.0 - policy.specificity[None, :])


def detect(onset: np.ndarray, involved: np.ndarray, symptom: np.ndarray, attended: np.ndarray,
           exponential: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Time of detection (from the episode's origin) and the visit number (-1: symptoms)."""
    visits = policy.visit_months
    if len(visits) == 0:
        return symptom.copy(), np.full(len(onset), -1)
    present = (visits[None, :] >= onset[:, None]) & (visits[None, :] < symptom[:, None]) & attended
    site_in = involved[:, None, :] <= visits[None, :, None]                  # (n, m, 4)
    miss = np.prod(np.where(site_in, 1.0 - policy.site_sensitivity[None], 1.0), axis=2)
    miss = miss * (1.0 - policy.patient_sensitivity[None, :])
    with np.errstate(divide="ignore"):
        hazard = np.where(present, -np.log(miss), 0.0)
    found = np.cumsum(hazard, axis=1) >= exponential[:, None]
    any_found = found.any(axis=1)
    visit = np.where(any_found, found.argmax(axis=1), -1)
    time = np.where(any_found, visits[np.maximum(visit, 0)], symptom)
    return time, visit
