"""Detection of a recurrence episode: at a surveillance visit, or at symptoms.

Each examination's chance of finding disease rises with its size. A policy gives a modality's
sensitivity ``s`` for a lesion of the reference diameter (10 mm); a site whose lesion has diameter
``d`` is found with ``1 - (1 - s) ** ((d / 10) ** k)``, k the size exponent, so the miss hazard
``-log(1 - p)`` grows as ``d ** k`` (k = 2: as the lesion's cross-section). A marker (CEA) finds
only a recurrence that produces it (a trait of the episode, `sim.model.natural_history`), with
``1 - (1 - s) ** B``, B the episode's burden in volumes of one 10-mm lesion (the marker's level
rises with the tumour's volume). So repeated tests of one recurrence are not independent: a
small lesion missed once is likely missed again, and a non-producing recurrence is never found by
the marker.

A visit attended while disease is present adds the hazards of its examinations; the episode is
found at the first attended visit where the running sum passes the episode's one Exp(1) variate
from the TEST_ACCURACY stream. A visit's hazard depends only on its time and the disease, so a
patient scanned more often is never found later (common random numbers across policies).

Attendance and false positives are drawn per visit *month* (the VISIT stream of each episode and
month), not per visit number: a visit at month 12 is attended or missed alike under every policy
that schedules one.
"""

from __future__ import annotations

import numpy as np

from sim.model import kernels
from sim.model.natural_history import REFERENCE_DIAMETER_MM, Episode
from sim.model.params import Params
from sim.model.policy import Policy

__all__ = ["detect", "attendance", "false_positives", "attendance_below", "positive_below",
           "visit_hazard", "sensitivity_at"]


def attendance_below(policy: Policy) -> float:
    """A visit is attended when its VISIT uniform is below this: the policy's adherence."""
    return policy.adherence


def positive_below(policy: Policy) -> np.ndarray:
    """A visit's result is positive without disease when its other VISIT uniform is below this
    (per visit): each modality tests negative with its specificity."""
    return 1.0 - policy.specificity


def attendance(u: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) which scheduled visits a patient attends, from VISIT uniforms (n, m)."""
    return u < attendance_below(policy)


def false_positives(u: np.ndarray, attended: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) attended visits whose result is positive without disease; VISIT uniforms (n, m),
    another column."""
    return attended & (u < positive_below(policy)[None, :])


def sensitivity_at(reference: np.ndarray | float, diameter_mm: np.ndarray | float,
                   exponent: float) -> np.ndarray:
    """Chance that one examination finds a lesion of `diameter_mm`, given its sensitivity at the
    reference diameter: never falls as the lesion grows."""
    scale = (np.asarray(diameter_mm, float) / REFERENCE_DIAMETER_MM) ** exponent
    with np.errstate(divide="ignore"):
        return -np.expm1(scale * np.log1p(-np.asarray(reference, float)))


def _log2_onset(params: Params) -> float:
    """log2 of the onset diameter over the reference diameter."""
    return np.log2(params.growth.onset_diameter_mm / REFERENCE_DIAMETER_MM)


def visit_hazard(times: np.ndarray, visits: np.ndarray, involved: np.ndarray,
                 doubling: np.ndarray, producer: np.ndarray, policy: Policy,
                 params: Params) -> np.ndarray:
    """Miss hazards ``-log(1 - p)`` of (episode, visit) pairs: the examinations of visit
    `visits[i]` of the policy's schedule, held `times[i]` months from the origin of an episode
    with sites `involved[i]` (4,), doubling time `doubling[i]` and CEA production `producer[i]`."""
    k = params.detection.size_exponent
    if kernels.AVAILABLE:
        return kernels.visit_hazard(times, visits, involved, doubling, producer,
                                    policy.site_sensitivity, policy.patient_sensitivity, k,
                                    _log2_onset(params))
    with np.errstate(divide="ignore"):   # per visit of the schedule, then per pair
        site_rate = (-np.log1p(-policy.site_sensitivity))[visits]             # (K, 4)
        marker_rate = (-np.log1p(-policy.patient_sensitivity))[visits]        # (K,)
    age = times[:, None] - involved                                           # (K, 4)
    present = age >= 0
    # log2 of each lesion's diameter over the reference: it starts at the onset diameter and
    # doubles every 3 volume doublings (capped far beyond any burden reached before symptoms)
    log2_size = (_log2_onset(params)
                 + np.minimum(np.where(present, age, 0.0) / (3.0 * doubling[:, None]), 300.0))
    imaging = np.where(present, site_rate * np.exp2(k * log2_size), 0.0).sum(axis=1)
    burden = np.where(present, np.exp2(3.0 * log2_size), 0.0).sum(axis=1)   # volumes of 10 mm
    with np.errstate(invalid="ignore"):   # a sure marker (rate inf) of no disease is no finding
        marker = np.where(producer & (burden > 0), marker_rate * burden, 0.0)
    return imaging + marker


def detect(episode: Episode, attended: np.ndarray, exponential: np.ndarray, policy: Policy,
           params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Time of detection (from the episode's origin) and the visit number (-1: symptoms)."""
    visits, onset, symptom = policy.visit_months, episode.onset, episode.symptom
    if len(visits) == 0:
        return symptom.copy(), np.full(len(onset), -1)
    if kernels.AVAILABLE:      # visit by visit, each patient only until found
        return kernels.detect(visits, onset, symptom, episode.involved, episode.doubling_months,
                              episode.producer, attended, exponential, policy.site_sensitivity,
                              policy.patient_sensitivity, params.detection.size_exponent,
                              _log2_onset(params))
    present = (visits[None, :] >= onset[:, None]) & (visits[None, :] < symptom[:, None]) & attended
    time, visit = symptom.copy(), np.full(len(onset), -1)
    can = np.flatnonzero(present.any(axis=1))    # only the patients a visit can find
    present = present[can]
    hazard = np.zeros(present.shape)
    rows, columns = np.nonzero(present)   # only the visits that can find the disease
    patients = can[rows]
    hazard[rows, columns] = visit_hazard(visits[columns], columns, episode.involved[patients],
                                         episode.doubling_months[patients],
                                         episode.producer[patients], policy, params)
    found = np.cumsum(hazard, axis=1) >= exponential[can, None]
    any_found = found.any(axis=1)
    first = found.argmax(axis=1)[any_found]
    visit[can[any_found]] = first
    time[can[any_found]] = visits[first]
    return time, visit
