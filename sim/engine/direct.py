"""The direct scheduler: the model's rules applied to every patient of a chunk at once.

Without a capacity, patients never wait for one another: a patient's course only ever waits for
its own next decision (detection, repeat surgery), and every draw it uses is made before the run
(`sim.engine.draws`). Its events are then a function of its own draws, and are computed episode
by episode with numpy instead of one SimPy process per patient. The decisions are the rules of
`sim.model.rules`, the same functions the SimPy scheduler calls on one patient at a time, so the
two record the same rows in the same order with the same floating-point operations;
`tests/test_direct.py` checks it byte for byte on every scenario file, design and primary site.
The SimPy scheduler stays the engine of record: it runs every policy with a capacity.
"""

from __future__ import annotations

import numpy as np

from sim.engine.draws import ChunkDraws, EpisodeDraws
from sim.engine.records import FIRSTS, ROW, Detail, EngineRecord, Event, VisitSpans
from sim.model import rules
from sim.model.streams import MAX_EPISODES

__all__ = ["run_direct"]

# A patient's rows within an episode keep this order when tied in time (as a SimPy process
# emits them); progression rows take one step per site.
_STEP_ONSET, _STEP_DETECTION, _STEP_TREATMENT, _STEP_PROGRESSION = 0, 1, 2, 3
_STEPS = _STEP_PROGRESSION + len(rules.SITE_BITS)


def run_direct(chunk: ChunkDraws, rows: bool = True) -> EngineRecord:
    """Record the chunk's run as the SimPy scheduler would, episode by episode for all patients.
    `rows` False: no event rows, only each patient's end and its first onset, detection and
    curative reoperation (`EngineRecord.firsts`), for a caller that needs no more."""
    n = chunk.n
    stop, censored = rules.follow_up_stop(chunk.censor_months, chunk.background_months)
    state = _State(chunk, stop, np.where(censored, Event.CENSORED, Event.DEATH).astype(np.int8),
                   np.where(censored, chunk.censor_detail, Detail.BACKGROUND).astype(np.int8),
                   rows)
    dead = rules.perioperative_death(chunk.periop_months, stop)   # ends the patient at once
    state.end(dead, chunk.periop_months[dead], Event.DEATH, Detail.PERIOPERATIVE)

    active, origin = np.flatnonzero(~dead), np.zeros(int((~dead).sum()))
    for k in range(MAX_EPISODES):
        if not len(active):
            break
        going = [state.episode(k, *part) for part in _parts(chunk, k, active, origin)]
        active = np.concatenate([g[0] for g in going])
        origin = np.concatenate([g[1] for g in going])
        order = np.argsort(active, kind="stable")
        active, origin = active[order], origin[order]

    recorded, step = state.columns() if rows else (None, None)
    return EngineRecord(recorded, step, state.end_time, state.end_event, state.end_detail,
                        state.first_symptom, state.spans, firsts=state.firsts)


def _parts(chunk: ChunkDraws, k: int, active: np.ndarray, origin: np.ndarray) -> list[tuple]:
    """(draws, patient rows, their rows in the draws, origins) of episode k for the `active`
    patients: those drawn in bulk, then each one not drawn in bulk, drawn alone."""
    drawn_in_bulk = chunk.episodes.get(k)
    index = drawn_in_bulk.patients if drawn_in_bulk is not None else np.zeros(0, np.int64)
    at = np.searchsorted(index, active)          # index is sorted
    drawn = ((at < len(index)) & (index[np.minimum(at, len(index) - 1)] == active)
             if len(index) else np.zeros(len(active), bool))
    parts = [(drawn_in_bulk, active[drawn], at[drawn], origin[drawn])] if drawn.any() else []
    parts += [(chunk.episode(np.array([p]), k), np.array([p]), np.zeros(1, np.int64),
               origin[j:j + 1]) for j, p in zip(np.flatnonzero(~drawn), active[~drawn])]
    return parts


class _State:
    """What the episodes of a chunk add up to: event rows, ends, first symptoms, visit spans."""

    def __init__(self, chunk: ChunkDraws, stop, stop_event, stop_detail, rows: bool = True):
        self.treatment = chunk.params.treatment
        self.stop, self.stop_event, self.stop_detail = stop, stop_event, stop_detail
        self.visits = np.asarray(chunk.policy.visit_months, float)
        self.end_time = np.full(chunk.n, np.nan)
        self.end_event = np.zeros(chunk.n, np.int8)
        self.end_detail = np.zeros(chunk.n, np.int8)
        self.first_symptom = np.full(chunk.n, np.nan)
        self.pieces: list[tuple] = []    # (rows, then the values of `ROW`'s fields, step)
        self.rows = rows                 # else only the firsts are kept
        self.firsts = None if rows else {name: np.full(chunk.n, np.nan) for name in FIRSTS}
        self.spans: list[VisitSpans] = []

    def end(self, i, when, what, why) -> None:
        self.end_time[i], self.end_event[i], self.end_detail[i] = when, what, why

    def record(self, i, time, event, sites, modality, detail, k: int, step: int) -> None:
        """Event rows of patient rows `i` at `time`, keyed by their place in the patient's order
        (`step`); a field is an array of one value per row, or one value for all. Called only
        when the run records rows."""
        if len(i):
            self.pieces.append((i, time, event, sites, modality, detail, k * _STEPS + step))

    def first(self, name: str, k: int, i, time) -> None:
        """Keep the time of a patient's first row of a kind (`FIRSTS`): the first episode's, as
        a later episode follows a curative operation, which follows its detection."""
        if self.firsts is not None and k == 0:
            self.firsts[name][i] = time

    def columns(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The rows recorded, in the order recorded: `ROW`'s fields as columns, and the steps."""
        sizes = [len(piece[0]) for piece in self.pieces]
        columns = {}
        for j, (name, kind) in enumerate([*((name, ROW[name]) for name in ROW.names),
                                          ("step", np.dtype(np.int64))]):
            values = [piece[j] for piece in self.pieces]
            arrays = [isinstance(value, np.ndarray) for value in values]
            if not any(arrays):                                   # one value a piece
                columns[name] = np.repeat(np.array(values, kind), sizes)
            else:
                columns[name] = np.concatenate([
                    value if array else np.full(size, value, kind)
                    for value, size, array in zip(values, sizes, arrays)]).astype(kind, copy=False)
        step = columns.pop("step")
        return columns, step

    def episode(self, k: int, a: EpisodeDraws, i: np.ndarray, at: np.ndarray, o: np.ndarray):
        """Episode k of patient rows `i` (rows `at` of the episode's draws `a`, origins `o`);
        returns the patients who go on to episode k + 1 after a curative operation, and that
        operation's time (their next origin)."""
        treatment = self.treatment
        s = self.stop[i]
        onset = o + a.disease.onset[at]
        finish, by_stop = rules.episode_end(s, o + a.disease.cancer_death[at])
        finish_event = np.where(by_stop, self.stop_event[i], Event.DEATH).astype(np.int8)
        finish_detail = np.where(by_stop, self.stop_detail[i], Detail.CANCER).astype(np.int8)

        seen = rules.onset_recorded(onset, s)
        if self.rows:
            self.record(i[seen], onset[seen], Event.ONSET, a.onset_sites[at][seen], -1,
                        Detail.LATENT, k, _STEP_ONSET)
        self.first("onset_months", k, i[seen], onset[seen])

        # detection at the drawn time, or nothing before the finish
        detected = o + a.found[at]
        go = rules.detected_in_time(detected, finish)
        at_visit = a.visit[at]
        # visits counted: up to the finish if not detected, through the visit that found it,
        # or up to the detection at symptoms (each looked up only where it is needed)
        counted = at_visit + 1
        by_finish, by_symptoms = ~go, go & (at_visit < 0)
        counted[by_finish] = np.searchsorted(self.visits, (finish - o)[by_finish], side="left")
        counted[by_symptoms] = np.searchsorted(self.visits, (detected - o)[by_symptoms],
                                               side="left")
        self.spans.append(VisitSpans(a.attended, a.workups, i, at, counted, o))
        missed = ~go
        self.end(i[missed], finish[missed], finish_event[missed], finish_detail[missed])

        i, at, o, s = i[go], at[go], o[go], s[go]
        detected, finish = detected[go], finish[go]
        finish_event, finish_detail = finish_event[go], finish_detail[go]
        mask = a.found_sites[at]
        if self.rows:
            self.record(i, detected, Event.DETECTION, mask, at_visit[go], 0, k, _STEP_DETECTION)
        self.first("detection_months", k, i, detected)
        unset = np.isnan(self.first_symptom[i])
        self.first_symptom[i[unset]] = (o + a.disease.symptom[at])[unset]

        surgery = rules.surgery_time(detected, treatment)
        curative = rules.curative_surgery(detected, finish, o + a.disease.resectable_until[at],
                                          mask, a.u_curative[at], a.disease.tempo[at], k,
                                          treatment)
        if self.rows:
            self.record(i[curative], surgery[curative], Event.REOPERATION, mask[curative], -1,
                        Detail.CURATIVE, k, _STEP_TREATMENT)
        self.first("curative_months", k, i[curative], surgery[curative])
        death = rules.operative_death_time(surgery, a.u_operative_time[at])
        dies = curative & rules.operative_death(a.u_operative_death[at], treatment) & (death < s)
        self.end(i[dies], death[dies], Event.DEATH, Detail.OPERATIVE)

        rest = ~curative
        if self.rows:     # (what else is done, and the progression, are rows only)
            self._treated(k, a, i, at, o, detected, finish, surgery, mask, rest)
        self.end(i[rest], finish[rest], finish_event[rest], finish_detail[rest])
        again = curative & ~dies
        return i[again], surgery[again]

    def _treated(self, k, a, i, at, o, detected, finish, surgery, mask, rest) -> None:
        """The rows of the detected recurrences not operated with curative intent (`rest`):
        another procedure or systemic therapy, then the sites that join after the detection,
        found at the next restaging."""
        treatment = self.treatment
        other = rest & rules.other_procedure(surgery, finish, a.u_other[at], treatment)
        systemic = rest & ~other
        self.record(i[other], surgery[other], Event.REOPERATION, mask[other], -1, Detail.OTHER,
                    k, _STEP_TREATMENT)
        self.record(i[systemic], detected[systemic], Event.SYSTEMIC_THERAPY, 0, -1, 0, k,
                    _STEP_TREATMENT)
        involved = a.disease.involved[at]
        for site, bit in enumerate(rules.SITE_BITS):
            when, found = rules.restaging_time(detected, o + involved[:, site], finish, treatment)
            found &= rest
            self.record(i[found], when[found], Event.PROGRESSION, bit, -1, 0, k,
                        _STEP_PROGRESSION + site)
