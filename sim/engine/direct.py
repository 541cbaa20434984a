"""The direct path: the SimPy processes' rules applied to every patient of a chunk at once.

Without a capacity, patients never wait for one another: a patient's process only ever waits
for its own next decision (detection, repeat surgery), and every draw it uses is made in bulk
before the run (`_Chunk._draw_episodes`). Its events are then a function of its own draws, and
can be computed episode by episode with numpy instead of one SimPy process per patient. This
module does exactly that, and gives the SimPy engine's output to the byte (the same rows in the
same order, the same visit spans, the same floating-point operations); `tests/test_direct.py`
checks it on every scenario file, design and primary site. The SimPy engine stays the engine of
record: it runs every policy with a capacity, and `engine="simpy"` forces it for any other.

`_State.episode` follows `_Chunk.patient` (and `_surveil`, `_progression`) step by step; a change
there must be made here too (the test fails otherwise).
"""

from __future__ import annotations

import numpy as np

from sim.engine import patients as engine
from sim.model.streams import MAX_EPISODES

__all__ = ["run_direct"]

# Emission order of a patient's rows within an episode (ties in time keep it, as in `patient`)
_STEP_ONSET, _STEP_DETECTION, _STEP_TREATMENT, _STEP_PROGRESSION = 0, 1, 2, 3
_STEPS = _STEP_PROGRESSION + 4   # progression rows take one step per site


def run_direct(chunk: "engine._Chunk") -> None:
    """Fill `chunk.rows` (one structured array, with `chunk.rows_order`: each row's place in
    its patient's order), `chunk.end` (arrays of time, event and detail), `chunk.first_symptom`
    and the visit spans (`chunk.groups`, per episode in order) as the SimPy run would."""
    n = len(chunk.hepatic)
    censor, censor_detail = chunk.censor_months, chunk.censor_detail
    background, periop = np.asarray(chunk.background, float), np.asarray(chunk.periop, float)
    # stop: the censoring or background death that ends follow-up if nothing else does
    censored = censor <= background
    stop = np.where(censored, censor, background)
    stop_event = np.where(censored, engine._CENSORED, engine._DEATH).astype(np.int8)
    stop_detail = np.where(censored, censor_detail, engine._BACKGROUND).astype(np.int8)
    end_time = np.full(n, np.nan)
    end_event = np.zeros(n, np.int8)
    end_detail = np.zeros(n, np.int8)

    dead = periop < stop               # a perioperative death ends the patient at once
    end_time[dead], end_event[dead], end_detail[dead] = periop[dead], engine._DEATH, engine._PERIOPERATIVE

    state = _State(chunk, stop, stop_event, stop_detail, end_time, end_event, end_detail)
    active, origin = np.flatnonzero(~dead), np.zeros(int((~dead).sum()))
    for k in range(MAX_EPISODES):
        if not len(active):
            break
        index, a = chunk.bulk.get(k, (np.zeros(0, np.int64), None))
        at = np.searchsorted(index, active)          # this episode's draws (index is sorted)
        drawn = ((at < len(index)) & (index[np.minimum(at, len(index) - 1)] == active)
                 if len(index) else np.zeros(len(active), bool))
        parts = [(a, active[drawn], at[drawn], origin[drawn])] if drawn.any() else []
        # a patient whose episode was not drawn in bulk gets it drawn alone, as in `_episode_of`
        parts += [(chunk._episode(np.array([p]), k)[1], np.array([p]), np.zeros(1, np.int64),
                   origin[j:j + 1]) for j, p in zip(np.flatnonzero(~drawn), active[~drawn])]
        going = [state.episode(k, *part) for part in parts]
        active = np.concatenate([g[0] for g in going])
        origin = np.concatenate([g[1] for g in going])
        order = np.argsort(active, kind="stable")
        active, origin = active[order], origin[order]

    middle = np.concatenate(state.pieces) if state.pieces else np.zeros(0, _KEYED)
    chunk.rows = np.zeros(len(middle), engine._ROW)
    for name in engine._ROW.names:
        chunk.rows[name] = middle[name]
    chunk.rows_order = middle["step"]      # a patient's rows in the order its process emits them
    chunk.end = (end_time, end_event, end_detail)
    chunk.first_symptom = state.first_symptom
    chunk.groups = state.groups


class _State:
    """What the episodes of a chunk add up to: event rows, ends, first symptoms, visit spans."""

    def __init__(self, chunk, stop, stop_event, stop_detail, end_time, end_event, end_detail):
        self.chunk, self.treatment = chunk, chunk.params.treatment
        self.stop, self.stop_event, self.stop_detail = stop, stop_event, stop_detail
        self.end_time, self.end_event, self.end_detail = end_time, end_event, end_detail
        self.visits = np.asarray(chunk.visits, float)
        self.first_symptom = np.full(len(stop), np.nan)
        self.allowed = np.array([not m & ~engine._RESECTABLE_SITES
                                 and engine._N_SITES[m] <= self.treatment.curative_max_sites
                                 for m in range(16)])
        self.pieces: list[np.ndarray] = []
        self.groups: list[tuple] = []

    def end(self, i, when, what, why) -> None:
        self.end_time[i], self.end_event[i], self.end_detail[i] = when, what, why

    def episode(self, k: int, a: dict, i: np.ndarray, at: np.ndarray, o: np.ndarray):
        """Episode k of patient rows `i` (rows `at` of the episode's draws `a`, origins `o`), as
        the loop of `_Chunk.patient` runs it; returns the patients who go on to episode k + 1
        after a curative operation, and that operation's time (their next origin)."""
        treatment, pieces = self.treatment, self.pieces
        s = self.stop[i]
        onset = o + a["onset"][at]
        cancer_death = o + a["cancer_death"][at]
        by_stop = s <= cancer_death
        finish = np.where(by_stop, s, cancer_death)
        finish_event = np.where(by_stop, self.stop_event[i], engine._DEATH).astype(np.int8)
        finish_detail = np.where(by_stop, self.stop_detail[i], engine._CANCER).astype(np.int8)

        seen = onset < s          # the onset is recorded when it comes before the stop
        pieces.append(_rows(i[seen], onset[seen], engine._ONSET, a["onset_sites"][at][seen], -1,
                            engine._LATENT, k, _STEP_ONSET))

        # _surveil without capacity: detection at the drawn time, or nothing before the finish
        detected = o + a["found"][at]
        missed = detected >= finish
        at_visit = a["visit"][at]
        upto = np.where(missed, np.searchsorted(self.visits, finish - o, side="left"),
                        np.where(at_visit >= 0, at_visit + 1,
                                 np.searchsorted(self.visits, detected - o, side="left")))
        self.groups.append((a["attended"], a["workups"], i, at, upto, o))
        self.end(i[missed], finish[missed], finish_event[missed], finish_detail[missed])

        go = ~missed
        i, at, o, s = i[go], at[go], o[go], s[go]
        detected, finish = detected[go], finish[go]
        finish_event, finish_detail = finish_event[go], finish_detail[go]
        mask = a["found_sites"][at]
        pieces.append(_rows(i, detected, engine._DETECTION, mask, at_visit[go], 0, k,
                            _STEP_DETECTION))
        unset = np.isnan(self.first_symptom[i])
        self.first_symptom[i[unset]] = (o + a["symptom"][at])[unset]

        u = a["treatment"][at]
        surgery = detected + treatment.surgery_delay_months
        curative = ((surgery < finish) & (k + 1 < MAX_EPISODES)
                    & (detected <= o + a["resectable_until"][at]) & self.allowed[mask]
                    & (u[:, 0] < treatment.curative_prob_if_resectable))
        pieces.append(_rows(i[curative], surgery[curative], engine._REOPERATION, mask[curative],
                            -1, engine._CURATIVE, k, _STEP_TREATMENT))
        death = surgery + 3.0 * u[:, 3]
        dies = curative & (u[:, 2] < treatment.repeat_operative_death_prob) & (death < s)
        self.end(i[dies], death[dies], engine._DEATH, engine._OPERATIVE)

        rest = ~curative
        other = rest & (surgery < finish) & (u[:, 1] < treatment.other_procedure_prob)
        systemic = rest & ~other
        pieces.append(_rows(i[other], surgery[other], engine._REOPERATION, mask[other], -1,
                            engine._OTHER, k, _STEP_TREATMENT))
        pieces.append(_rows(i[systemic], detected[systemic], engine._SYSTEMIC, 0, -1, 0, k,
                            _STEP_TREATMENT))
        # _progression: sites that join after detection, found at the next restaging
        interval = treatment.restaging_interval_months
        involved = a["involved"][at]
        for site in range(4):
            joined = o + involved[:, site]
            with np.errstate(invalid="ignore"):
                when = detected + interval * np.ceil((joined - detected) / interval)
            found = rest & (detected < joined) & (joined < finish) & (when < finish)
            pieces.append(_rows(i[found], when[found], engine._PROGRESSION,
                                engine._SITE_BITS[site], -1, 0, k, _STEP_PROGRESSION + site))
        self.end(i[rest], finish[rest], finish_event[rest], finish_detail[rest])
        again = curative & ~dies
        return i[again], surgery[again]


_KEYED = np.dtype(engine._ROW.descr + [("step", np.int64)])


def _rows(i, time, event, sites, modality, detail, k: int, step: int) -> np.ndarray:
    """Event rows of patient rows `i` at `time`, keyed by their place in the patient's order."""
    rows = np.zeros(len(i), _KEYED)
    rows["row"], rows["time_months"], rows["event"] = i, time, event
    rows["sites_mask"], rows["modality"], rows["detail"] = sites, modality, detail
    rows["step"] = k * _STEPS + step
    return rows


def _end(time, event, detail, i, when, what, why) -> None:
    time[i], event[i], detail[i] = when, what, why

