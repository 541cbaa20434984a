"""Detection of a recurrence episode: at a surveillance visit, or at symptoms.

Each examination's chance of finding disease rises with its size. A policy gives a modality's
sensitivity ``s`` for a lesion of the reference diameter (10 mm); a site whose lesion has diameter
``d`` is found with ``1 - (1 - s) ** ((d / 10) ** k)``, k the size exponent, so the miss hazard
``-log(1 - p)`` grows as ``d ** k`` (k = 2: as the lesion's cross-section). A marker (CEA) finds
only a recurrence that produces it (a trait of the episode, `sim.natural_history`), with
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

from sim.natural_history import REFERENCE_DIAMETER_MM, Episode, log2_burden
from sim.params import Params
from sim.policy import Policy

__all__ = ["detect", "attendance", "false_positives", "visit_hazard", "sensitivity_at"]


def attendance(u: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) which scheduled visits a patient attends, from VISIT uniforms (n, m)."""
    return u < policy.adherence


def false_positives(u: np.ndarray, attended: np.ndarray, policy: Policy) -> np.ndarray:
    """(n, m) attended visits whose result is positive without disease: each modality tests
    negative with its specificity; VISIT uniforms (n, m), another column."""
    return attended & (u < 1.0 - policy.specificity[None, :])


def sensitivity_at(reference: np.ndarray | float, diameter_mm: np.ndarray | float,
                   exponent: float) -> np.ndarray:
    """Chance that one examination finds a lesion of `diameter_mm`, given its sensitivity at the
    reference diameter: never falls as the lesion grows."""
    scale = (np.asarray(diameter_mm, float) / REFERENCE_DIAMETER_MM) ** exponent
    with np.errstate(divide="ignore"):
        return -np.expm1(scale * np.log1p(-np.asarray(reference, float)))


def visit_hazard(times: np.ndarray, visits: np.ndarray, involved: np.ndarray,
                 doubling: np.ndarray, producer: np.ndarray, policy: Policy,
                 params: Params) -> np.ndarray:
    """(n, m) miss hazards ``-log(1 - p)`` of the examinations of visits `visits` (indices into
    the policy's schedule, (m,)) held at `times` (n, m) months from the episode's origin."""
    g, k = params.growth, params.detection.size_exponent
    with np.errstate(divide="ignore"):
        site_rate = -np.log1p(-policy.site_sensitivity[visits])              # (m, 4)
        marker_rate = -np.log1p(-policy.patient_sensitivity[visits])         # (m,)
    age = times[:, :, None] - involved[:, None, :]                           # (n, m, 4)
    growth = np.minimum(age / (3.0 * doubling[:, None, None]), 300.0)       # log2 of d / d0
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.where(age >= 0, np.exp2(k * (np.log2(g.onset_diameter_mm / REFERENCE_DIAMETER_MM)
                                                 + growth)), 0.0)
        imaging = np.where(size > 0, site_rate[None] * size, 0.0).sum(axis=2)
        burden = np.exp2(log2_burden(times, involved, doubling, params))
        marker = np.where(producer[:, None], marker_rate[None, :] * burden, 0.0)
    return imaging + np.where(np.isfinite(marker), marker, np.inf)


def detect(episode: Episode, attended: np.ndarray, exponential: np.ndarray, policy: Policy,
           params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Time of detection (from the episode's origin) and the visit number (-1: symptoms)."""
    visits, onset, symptom = policy.visit_months, episode.onset, episode.symptom
    if len(visits) == 0:
        return symptom.copy(), np.full(len(onset), -1)
    present = (visits[None, :] >= onset[:, None]) & (visits[None, :] < symptom[:, None]) & attended
    hazard = np.zeros(present.shape)
    rows = np.flatnonzero(present.any(axis=1))
    if len(rows):
        times = np.broadcast_to(visits, (len(rows), len(visits)))
        hazard[rows] = np.where(present[rows], visit_hazard(
            times, np.arange(len(visits)), episode.involved[rows], episode.doubling_months[rows],
            episode.producer[rows], policy, params), 0.0)
    found = np.cumsum(hazard, axis=1) >= exponential[:, None]
    any_found = found.any(axis=1)
    visit = np.where(any_found, found.argmax(axis=1), -1)
    time = np.where(any_found, visits[np.maximum(visit, 0)], symptom)
    return time, visit
