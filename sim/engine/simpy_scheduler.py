"""The SimPy scheduler: one process per patient, one `simpy.Environment` per chunk of patients.

A process waits (a SimPy event) only where a decision is taken on what has happened so far:
detection of a recurrence, and repeat surgery. What follows from a decision with nothing left to
decide (the onset of the next episode, the death or end of follow-up that no later decision can
change) is recorded at its time without a wait; scans that find nothing are counted from the
schedule, not simulated. Every draw a patient uses was made before the run (`sim.engine.draws`)
and every decision is a rule of `sim.model.rules`, called on the patient's scalars: the
scheduler decides when, the rules decide what.

With a capacity in the policy, the chunk is one department (`sim.engine.capacity`): patients
enter at their accrual time, every attended visit and every work-up takes an imaging slot and
every curative operation an operating slot, and waits delay detection and surgery (a delayed
operation may no longer be curative). Times in the record stay relative to each patient's
hepatectomy, so a capacity that never binds gives exactly the record of no capacity.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import simpy

from sim.engine.capacity import Department
from sim.engine.draws import ChunkDraws, EpisodeDraws
from sim.engine.records import ROW, Detail, EngineRecord, Event, VisitSpans
from sim.model import rules
from sim.model.detection import visit_hazard

__all__ = ["run_simpy"]

# codes as plain ints: the event loop emits them many times
_ONSET, _DETECTION, _PROGRESSION, _REOPERATION, _SYSTEMIC, _DEATH, _CENSORED = (
    int(e) for e in (Event.ONSET, Event.DETECTION, Event.PROGRESSION, Event.REOPERATION,
                     Event.SYSTEMIC_THERAPY, Event.DEATH, Event.CENSORED))
_CURATIVE, _OTHER, _PERIOPERATIVE, _OPERATIVE, _CANCER, _BACKGROUND, _LATENT = (
    int(d) for d in (Detail.CURATIVE, Detail.OTHER, Detail.PERIOPERATIVE, Detail.OPERATIVE,
                     Detail.CANCER, Detail.BACKGROUND, Detail.LATENT))


@dataclass(frozen=True)
class _Lists:
    """An `EpisodeDraws` as Python lists (fast scalar access in the processes); `position` maps
    a chunk row to its row in the draws (None: the identity)."""

    draws: EpisodeDraws
    position: dict | None
    onset: list
    onset_sites: list
    involved: list
    found: list
    found_sites: list
    visit: list
    symptom: list
    cancer_death: list
    resectable_until: list
    exponential: list
    u_curative: list            # the TREATMENT uniforms, by the rule that uses each
    u_other: list
    u_operative_death: list
    u_operative_time: list
    tempo: list

    @classmethod
    def of(cls, draws: EpisodeDraws, whole_chunk: bool) -> _Lists:
        d = draws.disease
        position = None if whole_chunk else dict(zip(draws.patients.tolist(),
                                                     range(len(draws.patients))))
        return cls(draws, position, d.onset.tolist(), draws.onset_sites.tolist(),
                   d.involved.tolist(), draws.found.tolist(), draws.found_sites.tolist(),
                   draws.visit.tolist(), d.symptom.tolist(), d.cancer_death.tolist(),
                   d.resectable_until.tolist(), draws.exponential.tolist(),
                   draws.u_curative.tolist(), draws.u_other.tolist(),
                   draws.u_operative_death.tolist(), draws.u_operative_time.tolist(),
                   d.tempo.tolist())


def run_simpy(chunk: ChunkDraws) -> EngineRecord:
    """Run one SimPy process per patient of the chunk; returns what they recorded."""
    # The run allocates many short-lived objects and few cycles; the cyclic garbage collector
    # would walk the growing event list again and again (much of a SimPy process's cost), so it
    # is paused for the chunk and the cycles are left to the next collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        run = _Run(chunk)
        for i in range(chunk.n):
            run.env.process(run.patient(i))
        run.env.run()
    finally:
        if collecting:
            gc.enable()
    n = chunk.n
    time, event, detail = (np.array(column) for column in zip(*run.end)) if n else ([], [], [])
    return EngineRecord(np.fromiter(run.rows, dtype=ROW, count=len(run.rows)), None,
                        time, event, detail, np.asarray(run.first_symptom, float),
                        _spans_by_episode(run.spans),
                        run.department.report() if run.department else None)


def _delay(env: simpy.Environment, when: float) -> float:
    """Time until `when` (never negative: rounding, or a patient held up past it)."""
    return max(0.0, when - env.now)


def _sites_at(involved, time: float) -> int:
    """Site bits involved at `time` (months from the episode's origin)."""
    mask = 0
    for s, bit in enumerate(rules.SITE_BITS):
        if involved[s] <= time:
            mask |= bit
    return mask


class _Run:
    """State of one chunk's run; `patient` is the SimPy process of patient row i.

    A process only emits event rows (and counts attended visits): the per-patient columns
    (first recurrence, sites, repeat surgery, survival) are derived from the rows afterwards,
    vectorized (`sim.output.tables`), which keeps bookkeeping out of the event loop."""

    def __init__(self, chunk: ChunkDraws):
        n = chunk.n
        self.chunk, self.params, self.policy = chunk, chunk.params, chunk.policy
        self.visits = chunk.policy.visit_months.tolist()
        self.censor = list(zip(chunk.censor_months.tolist(), chunk.censor_detail.tolist()))
        self.background = chunk.background_months.tolist()
        self.periop = chunk.periop_months.tolist()
        self.entry = chunk.entry_months.tolist()
        self.lists = {k: _Lists.of(draws, k == 0) for k, draws in chunk.episodes.items()}
        self.env = simpy.Environment()
        self.department = None
        if chunk.policy.has_capacity:
            self.department = Department(self.env, chunk.policy.imaging_slots_per_week,
                                         chunk.policy.operating_slots_per_week)
        self.first_symptom = [math.nan] * n
        self.spans: list[tuple] = []   # (patient row, episode, its row there, visits counted,
        #                                  the episode's origin in months from the hepatectomy)
        self.rows: list[tuple] = []    # events between the hepatectomy and the end, as they come
        self.end: list[tuple | None] = [None] * n  # (time, event, detail) of death or censoring

    def _episode_of(self, i: int, k: int) -> tuple[_Lists, int]:
        """Episode k of patient row i, and the patient's row in it."""
        episode = self.lists.get(k)
        if episode is not None:
            if episode.position is None:
                return episode, i
            if i in episode.position:
                return episode, episode.position[i]
        return _Lists.of(self.chunk.episode(np.array([i]), k), False), 0

    def _count(self, i, row, episode, relative_time: float, origin: float) -> None:
        """Count the attended visits strictly before `relative_time` (from the episode's origin)
        for the vectorized tally after the run (scans, work-ups, cost by modality)."""
        self.spans.append((i, episode, row, bisect_left(self.visits, relative_time), origin))

    def _surveil(self, i, episode, row, origin, finish):
        """Wait until the episode is detected, or until `finish` if it is not; returns the
        detection time (months from the hepatectomy) and the visit number (-1: symptoms)."""
        if self.department is None:
            detected = origin + episode.found[row]
            if not rules.detected_in_time(detected, finish):
                self._count(i, row, episode, finish - origin, origin)
                return math.inf, -1
            yield self.env.timeout(_delay(self.env, self.entry[i] + detected))
            at_visit = episode.visit[row]
            if at_visit >= 0:
                self.spans.append((i, episode, row, at_visit + 1, origin))
            else:
                self._count(i, row, episode, detected - origin, origin)
            return detected, at_visit
        return (yield from self._surveil_with_capacity(i, episode, row, origin, finish))

    def _surveil_with_capacity(self, i, episode, row, origin, finish):
        """Visit by visit: each attended visit waits for an imaging slot, and a recurrence is
        found with the chance of the disease present at the time of the scan."""
        env, entry = self.env, self.entry[i]
        onset, symptom = origin + episode.onset[row], origin + episode.symptom[row]
        needed, total = episode.exponential[row], 0.0
        attended, workups = episode.draws.attended[row], episode.draws.workups[row]
        disease = episode.draws.disease
        for j, month in enumerate(self.visits):
            scheduled = origin + month
            if scheduled >= min(finish, symptom):
                break
            if not attended[j]:
                continue
            if entry + scheduled > env.now:
                yield env.timeout(_delay(env, entry + scheduled))
            yield from self.department.scan()
            now = env.now - entry
            if now >= min(finish, symptom):
                break
            if workups[j] and now < onset:
                yield from self.department.scan()     # the work-up of a false positive
            if now < onset:
                continue
            total += float(visit_hazard(
                np.array([now - origin]), np.array([j]), disease.involved[row:row + 1],
                disease.doubling_months[row:row + 1], disease.producer[row:row + 1],
                self.policy, self.params)[0])
            if total >= needed:
                self.spans.append((i, episode, row, j + 1, origin))
                return now, j
        if symptom < finish:
            if entry + symptom > env.now:
                yield env.timeout(_delay(env, entry + symptom))
            self._count(i, row, episode, symptom - origin, origin)
            return symptom, -1
        self._count(i, row, episode, finish - origin, origin)
        return math.inf, -1

    def patient(self, i: int):
        env, emit, treatment = self.env, self.rows.append, self.params.treatment
        end, censor_detail = self.censor[i]
        stop, censored = rules.follow_up_stop(end, self.background[i])
        stop_event, stop_detail = (_CENSORED, censor_detail) if censored else (_DEATH, _BACKGROUND)
        entry = self.entry[i]
        if entry:
            yield env.timeout(entry)  # the patient's hepatectomy, in the department's time
        if rules.perioperative_death(self.periop[i], stop):
            self.end[i] = (self.periop[i], _DEATH, _PERIOPERATIVE)
            return
        origin, k = 0.0, 0
        episode, row = self._episode_of(i, 0)
        while True:
            onset = origin + episode.onset[row]
            finish, by_stop = rules.episode_end(stop, origin + episode.cancer_death[row])
            finish_event, finish_detail = ((stop_event, stop_detail) if by_stop
                                           else (_DEATH, _CANCER))
            if rules.onset_recorded(onset, stop):
                # The onset is recorded, not waited for: nothing the patient does changes at it.
                emit((i, onset, _ONSET, episode.onset_sites[row], -1, _LATENT))
            detected, at_visit = yield from self._surveil(i, episode, row, origin, finish)
            if detected >= finish:
                self.end[i] = (finish, finish_event, finish_detail)
                return
            involved = episode.involved[row]
            mask = (episode.found_sites[row] if self.department is None
                    else _sites_at(involved, detected - origin))
            emit((i, detected, _DETECTION, mask, at_visit, 0))
            if math.isnan(self.first_symptom[i]):
                self.first_symptom[i] = origin + episode.symptom[row]
            surgery = rules.surgery_time(detected, treatment)
            resectable_until = origin + episode.resectable_until[row]
            if rules.curative_surgery(detected, finish, resectable_until, mask,
                                      episode.u_curative[row], episode.tempo[row], k,
                                      treatment):
                if self.department is not None:
                    # a patient held up in the scan queue past detection is operated on no earlier
                    surgery = max(surgery, env.now - entry)
                yield env.timeout(_delay(env, entry + surgery))
                if self.department is not None:
                    yield from self.department.operate()
                    surgery = env.now - entry
                    decided = surgery - treatment.surgery_delay_months
                    if not rules.operable(decided, surgery, finish, resectable_until):
                        emit((i, min(surgery, finish), _SYSTEMIC, 0, -1, 0))  # too late to cure
                        self._progression(i, involved, origin, detected, finish)
                        self.end[i] = (finish, finish_event, finish_detail)
                        return
                emit((i, surgery, _REOPERATION, mask, -1, _CURATIVE))
                if rules.operative_death(episode.u_operative_death[row], treatment):
                    death = rules.operative_death_time(surgery, episode.u_operative_time[row])
                    if death < stop:
                        self.end[i] = (death, _DEATH, _OPERATIVE)
                        return
                origin, k = surgery, k + 1
                episode, row = self._episode_of(i, k)
                continue
            if rules.other_procedure(surgery, finish, episode.u_other[row], treatment):
                emit((i, surgery, _REOPERATION, mask, -1, _OTHER))
            else:
                emit((i, detected, _SYSTEMIC, 0, -1, 0))
            self._progression(i, involved, origin, detected, finish)
            self.end[i] = (finish, finish_event, finish_detail)
            return

    def _progression(self, i, involved, origin, detected, finish):
        """Sites that join after detection are found at the next restaging."""
        treatment, found = self.params.treatment, []
        for s, bit in enumerate(rules.SITE_BITS):
            when, seen = rules.restaging_time(detected, origin + involved[s], finish, treatment)
            if seen:
                found.append((float(when), bit))
        for when, bit in sorted(found):
            self.rows.append((i, when, _PROGRESSION, bit, -1, 0))


def _spans_by_episode(spans: list[tuple]) -> list[VisitSpans]:
    """The spans the processes recorded, grouped by episode draw (in order of first appearance),
    each group in patient order (the matrix products of the tally may round a row differently
    at another place in the matrix, and the direct scheduler gives them in this order)."""
    by_episode: dict[int, list] = {}
    for span in spans:
        by_episode.setdefault(id(span[1]), []).append(span)
    out = []
    for group in by_episode.values():
        group = sorted(group, key=lambda g: g[0])
        draws = group[0][1].draws
        out.append(VisitSpans(draws.attended, draws.workups,
                              *(np.array([g[j] for g in group]) for j in (0, 2, 3, 4))))
    return out
