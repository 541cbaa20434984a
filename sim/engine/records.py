"""What the schedulers record, and the chunk's columns made from it.

Both schedulers (`sim.engine.simpy_scheduler`, `sim.engine.direct`) record a chunk's run in one
`EngineRecord`: the event rows between each hepatectomy and its end, the end of every patient
(death or censoring), the first recurrence's symptom time, and the visits attended in each
episode (`VisitSpans`). `chunk_result` turns a record into the columns the output layer reads
(`ChunkResult`): events sorted by patient, time and the order in which a patient's ties happen,
and visits, examinations, work-ups and surveillance cost per patient, tallied with matrix
products (no per-visit work in the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from sim.model import kernels
from sim.model.economics import discount_factor
from sim.model.policy import Policy

__all__ = ["Event", "Detail", "EVENTS", "DETAILS", "ROW", "FIRSTS", "VisitSpans", "EngineRecord",
           "ChunkResult", "chunk_result"]


class Event(IntEnum):
    """Event codes of the engine; ties in time keep this order."""

    HEPATECTOMY = 0
    ONSET = 1
    DETECTION = 2
    PROGRESSION = 3
    REOPERATION = 4
    SYSTEMIC_THERAPY = 5
    DEATH = 6
    CENSORED = 7


class Detail(IntEnum):
    """Detail codes: the hepatic treatment, the kind of reoperation, the cause of death or
    censoring, and the onset's 'latent' (not observed by anyone at the time)."""

    NONE = 0
    RESECTION = 1
    RESECTION_RFA = 2
    RFA = 3
    CURATIVE = 4
    OTHER = 5
    PERIOPERATIVE = 6
    OPERATIVE = 7
    CANCER = 8
    BACKGROUND = 9
    STUDY_CLOSE = 10
    HORIZON = 11
    LOST_TO_FOLLOW_UP = 12
    LATENT = 13


EVENTS = tuple(event.name.lower() for event in Event)
"""Event names of the tables, by code."""
DETAILS = tuple("" if detail is Detail.NONE else detail.name.lower() for detail in Detail)
"""Detail names of the tables, by code."""

ROW = np.dtype([("row", np.int64), ("time_months", np.float64), ("event", np.int8),
                ("sites_mask", np.int8), ("modality", np.int64), ("detail", np.int8)])
"""One event: the patient's row in the chunk, time, event and detail codes, the sites (bits of
`sim.model.rules.SITE_BITS`) and the visit number of a detection (-1: none)."""


@dataclass(frozen=True)
class VisitSpans:
    """The visits counted in one episode draw: for patients `patients` (chunk rows, each at most
    once: a patient has one span per episode), the first `counted` visits of the schedule from
    the episode's origin `origins`, of which those attended (`attended`, rows `rows` of the
    episode's matrix) are tallied, and those with a false positive (`workups`) also worked up."""

    attended: np.ndarray     # (episode patients, visits) attended
    workups: np.ndarray      # (episode patients, visits) false positive
    patients: np.ndarray
    rows: np.ndarray
    counted: np.ndarray
    origins: np.ndarray


FIRSTS = ("onset_months", "detection_months", "curative_months")
"""What a run without event rows keeps of each patient's course (besides its end): the time of
its first onset, detection and curative reoperation (NaN: none)."""


@dataclass
class EngineRecord:
    """A scheduler's record of a chunk's run.

    `rows`: event rows between the hepatectomies and the ends (`ROW`: a structured array, or
    a dict of its fields as columns); `order`: each row's place
    in its patient's order, which settles ties in time (None: the rows are in that order
    already, as a SimPy run emits them); `end_*`: each patient's death or censoring;
    `spans`: visits counted, per episode draw in the order the draws were first used;
    `rows` None: no rows were recorded, and `firsts` holds the times of `FIRSTS`."""

    rows: np.ndarray
    order: np.ndarray | None
    end_time: np.ndarray
    end_event: np.ndarray
    end_detail: np.ndarray
    first_symptom_months: np.ndarray
    spans: list[VisitSpans]
    department: dict | None = None
    firsts: dict[str, np.ndarray] | None = None


@dataclass
class ChunkResult:
    """Columns out of the engine: per patient (`patients`), per event (`events`; None when the
    run recorded no rows: then `patients` also holds the patients' ends and `FIRSTS`), and the
    department's waits and utilisation when the policy has a capacity."""

    patients: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    department: dict | None = None


def chunk_result(record: EngineRecord, hepatic: np.ndarray, policy: Policy,
                 discount_rate: float | None) -> ChunkResult:
    """The chunk's columns from what its run recorded; `hepatic`: each patient's hepatic
    treatment (a `Detail` code), the detail of its hepatectomy row."""
    patients = _visit_tally(record.spans, policy, len(hepatic), discount_rate)
    patients["first_symptom_months"] = np.asarray(record.first_symptom_months, float)
    if record.rows is None:            # no rows: the ends and the firsts instead
        patients |= {"end_months": record.end_time, "end_event": record.end_event,
                     **{f"first_{name}": record.firsts[name] for name in FIRSTS}}
        return ChunkResult(patients, None, record.department)
    return ChunkResult(patients, _all_rows(record, hepatic), record.department)


def _all_rows(record: EngineRecord, hepatic: np.ndarray) -> dict[str, np.ndarray]:
    """Every event row, as columns (`ROW`'s fields), each patient's in order: the hepatectomy
    first, then the recorded rows by time, ties kept in the order the patient had them, then
    the death or censoring (no row comes after it). Only the recorded rows are sorted; the
    first and last rows are put in their places around them."""
    n = len(hepatic)
    middle = record.rows
    if kernels.AVAILABLE:
        order = kernels.patient_order(middle["row"], middle["time_months"], record.order, n)
    else:
        order = _patient_order(middle["row"], middle["time_months"], record.order)
    patient = middle["row"][order]
    counts = np.bincount(patient, minlength=n)
    first = np.cumsum(counts) - counts + 2 * np.arange(n)     # each patient's first place
    last = first + counts + 1                                 # and its last
    recorded = len(middle["row"])
    at = np.arange(recorded) + 2 * patient + 1                # the recorded rows' places
    ends = {"row": (np.arange(n), np.arange(n)), "time_months": (0.0, record.end_time),
            "event": (Event.HEPATECTOMY, record.end_event), "sites_mask": (0, 0),
            "modality": (-1, -1), "detail": (hepatic, record.end_detail)}
    columns = {}
    for name in ROW.names:
        column = np.empty(recorded + 2 * n, ROW[name])
        column[at] = middle[name][order]
        column[first], column[last] = ends[name]
        columns[name] = column
    return columns


def _patient_order(row: np.ndarray, time: np.ndarray, tie: np.ndarray | None) -> np.ndarray:
    """The order of recorded rows by (patient row, time, tie), ties kept in their order (None:
    the rows' own order). A scheduler records each patient's rows nearly in that order, so the
    rows are sorted by patient only (a stable integer sort), and only the patients whose rows
    are then out of order in (time, tie) are sorted again, alone: the same order as a full
    lexicographic sort, at a fraction of its cost."""
    order = np.argsort(row, kind="stable")
    patient, when = row[order], time[order]
    rank = order if tie is None else tie[order]
    same = patient[1:] == patient[:-1]
    wrong = same & ((when[1:] < when[:-1]) | ((when[1:] == when[:-1]) & (rank[1:] < rank[:-1])))
    if wrong.any():
        redo = np.isin(patient, np.unique(patient[1:][wrong]))
        place = np.flatnonzero(redo)
        part = order[place]
        part_tie = part if tie is None else tie[part]
        order[place] = part[np.lexsort((part, part_tie, time[part], row[part]))]
    return order


def _add(total: np.ndarray, patient: np.ndarray, values) -> None:
    """`np.add.at(total, patient, values)` for a span, where a patient appears once: the same
    additions, as one buffered fancy-index add (np.add.at is unbuffered and slow)."""
    total[patient] += values


def _visit_tally(spans: list[VisitSpans], policy: Policy, n: int,
                 discount_rate: float | None = None) -> dict[str, np.ndarray]:
    """Visits, imaging examinations, work-ups and surveillance cost per patient, from the visits
    counted in each episode (vectorized per episode draw). With a `discount_rate` (a year,
    continuous), also each patient's examinations by modality and work-ups weighted by
    (1 + rate) ** -(years at the scheduled visit): `discounted_tests` (patients x modalities),
    `discounted_workups` and `discounted_visits`, from which an economic evaluation prices them."""
    scans, imaging, workups = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    exams = (policy.uses[policy.imaging].sum(axis=0) if len(policy.imaging)
             else np.zeros(policy.n_visits))
    cost = np.zeros(n)
    discounted = np.zeros((n, len(policy.modality_names))) if discount_rate is not None else None
    discounted_workups = np.zeros(n) if discount_rate is not None else None
    discounted_visits = np.zeros(n) if discount_rate is not None else None
    for span in spans:
        patient, row = span.patients, span.rows
        before = np.arange(policy.n_visits)[None, :] < span.counted[:, None]
        counted = span.attended[row] & before
        visits = counted.astype(float)
        _add(scans, patient, np.count_nonzero(counted, axis=1))
        # a product of whole numbers below 2**53 is exact in floating point
        _add(imaging, patient, (visits @ exams.astype(float)).astype(np.int64))
        false_positive = span.workups[row] & counted
        false = np.count_nonzero(false_positive, axis=1)
        _add(workups, patient, false)
        spent = visits @ (policy.uses.T.astype(float) @ policy.modality_cost)
        _add(cost, patient, spent + policy.workup_cost * false)
        if discount_rate is not None:
            months = span.origins[:, None] + policy.visit_months[None, :]
            factor = discount_factor(months / 12.0, discount_rate)
            _add(discounted, patient, (counted * factor) @ policy.uses.T.astype(float))
            _add(discounted_workups, patient, (false_positive * factor).sum(axis=1))
            _add(discounted_visits, patient, (counted * factor).sum(axis=1))
    tally = {"n_scans": scans, "n_imaging": imaging, "n_workups": workups,
             "surveillance_cost": cost}
    if discount_rate is not None:
        tally |= {"discounted_tests": discounted, "discounted_workups": discounted_workups,
                  "discounted_visits": discounted_visits}
    return tally
