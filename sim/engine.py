"""The SimPy engine: one process per patient, one `simpy.Environment` per chunk of patients.

The engine turns a chunk's cohort (covariates and pre-drawn natural history) into events. A
process waits (a SimPy event) only where a decision is taken on what has happened so far:
detection of a recurrence, and repeat surgery. What follows from a decision with nothing left to
decide (the onset of the next episode is drawn, the death or end of follow-up that no later
decision can change) is recorded at its time without a wait; scans that find nothing are counted
from the schedule, not simulated. With a capacity in the policy (a later issue), the waits are
where patients queue. Everything a patient will do is drawn in bulk before the run from the
patient's keyed streams (`sim.streams`), so the result of a patient does not depend on the chunk
it runs in. The engine writes no files and computes no statistics: it returns columns.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import simpy

from sim.detection import attendance, detect
from sim.natural_history import SITES, Episode, cancer_death_hazard_ratio, draw_episode, site_thetas
from sim.params import Params
from sim.policy import Policy
from sim.streams import MAX_EPISODES, WIDTH, Purpose, uniforms

__all__ = ["simulate_chunk", "EVENTS", "DETAILS", "ChunkResult"]

# Event vocabulary (codes in the engine, names in the tables). Ties in time keep this order.
EVENTS = ("hepatectomy", "onset", "detection", "progression", "reoperation",
          "systemic_therapy", "death", "censored")
(_HEPATECTOMY, _ONSET, _DETECTION, _PROGRESSION, _REOPERATION, _SYSTEMIC, _DEATH,
 _CENSORED) = range(len(EVENTS))
DETAILS = ("", "resection", "resection_rfa", "rfa", "curative", "other", "perioperative",
           "operative", "cancer", "background", "study_close", "horizon", "lost_to_follow_up",
           "latent")
_DETAIL = {name: code for code, name in enumerate(DETAILS)}
(_CURATIVE, _OTHER, _PERIOPERATIVE, _OPERATIVE, _CANCER, _BACKGROUND) = (
    _DETAIL[name] for name in ("curative", "other", "perioperative", "operative", "cancer",
                               "background"))
_LATENT = _DETAIL["latent"]
_SITE_BITS = (1, 2, 4, 8)
_N_SITES = [bin(mask).count("1") for mask in range(16)]
_RESECTABLE_SITES = 1 | 2 | 4  # pelvis, liver, lung: 'other' was never operated with intent to cure
_EPISODE_U = 16
_ROW = np.dtype([("row", np.int64), ("time_months", np.float64), ("event", np.int8),
                 ("sites_mask", np.int8), ("modality", np.int64), ("detail", np.int8)])


class _EpisodeRows(NamedTuple):
    """One episode's draws for a set of patients, as Python lists (fast scalar access).

    `position` maps a patient row of the chunk to its index here (None: the identity)."""

    position: dict | None
    onset: list
    onset_sites: list      # site bits involved at onset
    involved: list
    found: list
    found_sites: list      # site bits involved at detection
    visit: list
    cancer_death: list
    resectable_until: list
    cumulative: np.ndarray  # attended visits before visit j, (n, m + 1)


@dataclass
class ChunkResult:
    """Columns out of the engine: per patient (`patients`) and per event (`events`)."""

    patients: dict[str, np.ndarray]
    events: dict[str, np.ndarray]


class _Chunk:
    """State of one chunk's run; `patient` is the SimPy process of patient row i.

    A process only emits event rows (and counts attended visits): the per-patient columns
    (first recurrence, sites, repeat surgery, survival) are derived from the rows afterwards,
    vectorized (`sim.tables`), which keeps bookkeeping out of the event loop.
    """

    def __init__(self, params: Params, policy: Policy, cohort: dict, censor: np.ndarray,
                 censor_detail: np.ndarray, seed: int, replicate: int):
        n = len(cohort["patient_id"])
        first = int(cohort["patient_id"][0]) if n else 0
        self.params, self.policy = params, policy
        self.thetas = site_thetas(cohort, params)
        self.death_ratio = cancer_death_hazard_ratio(cohort, params)
        self.u_history = uniforms(seed, replicate, Purpose.NATURAL_HISTORY, first, n)
        self.u_accuracy = uniforms(seed, replicate, Purpose.TEST_ACCURACY, first, n)
        u_treatment = uniforms(seed, replicate, Purpose.TREATMENT, first, n)
        self.u_treatment = u_treatment.tolist()
        self.visit_width = 4 * ((policy.n_visits + 3) // 4) or 4
        self.u_adherence = uniforms(seed, replicate, Purpose.ADHERENCE, first, n,
                                    width=MAX_EPISODES * self.visit_width)
        self.visits = policy.visit_months.tolist()
        code = {name: _DETAIL[str(name)] for name in np.unique(censor_detail)}
        self.censor = list(zip(censor.tolist(), [code[name] for name in censor_detail.tolist()]))
        background = cohort["background_death_months"]
        self.background = background.tolist()
        periop = np.where(cohort["periop_death_draw"], cohort["periop_death_draw_months"], np.inf)
        self.periop = periop.tolist()
        self.hepatic = [_DETAIL[name] for name in cohort["hepatic_treatment"].tolist()]
        self.episodes = self._draw_episodes(np.minimum(censor, background), periop, u_treatment)
        self.env = simpy.Environment()
        self.n_scans = [0] * n
        self.rows: list[tuple] = []

    def _episode(self, rows: np.ndarray | slice, k: int) -> tuple[_EpisodeRows, dict]:
        """Episode k (natural history and detection) of the patient rows given."""
        history = np.atleast_2d(self.u_history[rows, k * _EPISODE_U:(k + 1) * _EPISODE_U])
        multiplier = 1.0 if k == 0 else self.params.recurrence.rerecurrence_theta_multiplier
        episode = draw_episode(history, np.atleast_2d(self.thetas[rows]) * multiplier,
                               np.atleast_1d(self.death_ratio[rows]), self.params)
        attended = attendance(np.atleast_2d(self.u_adherence[rows, k * self.visit_width:]),
                              self.policy)
        exponential = -np.log1p(-np.atleast_1d(self.u_accuracy[rows, 4 * k]))
        found, visit = detect(episode.onset, episode.involved, episode.symptom, attended,
                              exponential, self.policy)
        cumulative = np.zeros((len(found), self.policy.n_visits + 1), np.int64)
        cumulative[:, 1:] = np.cumsum(attended, axis=1)
        bits = np.array(_SITE_BITS)
        onset_sites = ((episode.involved <= episode.onset[:, None]) * bits).sum(axis=1)
        found_sites = ((episode.involved <= found[:, None]) * bits).sum(axis=1)
        position = None if isinstance(rows, slice) else dict(zip(rows.tolist(), range(len(rows))))
        lists = _EpisodeRows(position, episode.onset.tolist(), onset_sites.tolist(),
                             episode.involved.tolist(), found.tolist(), found_sites.tolist(),
                             visit.tolist(), episode.cancer_death.tolist(),
                             episode.resectable_until.tolist(), cumulative)
        arrays = {"onset": episode.onset, "found": found, "found_sites": found_sites,
                  "cancer_death": episode.cancer_death,
                  "resectable_until": episode.resectable_until}
        return lists, arrays

    def _draw_episodes(self, stop: np.ndarray, periop: np.ndarray,
                       u_treatment: np.ndarray) -> dict[int, _EpisodeRows]:
        """Episodes drawn in bulk before the run: episode 0 for every patient, episode k + 1 for
        the patients whose episode k will end in curative surgery (the rule of `patient`,
        vectorized). A patient who needs an episode not drawn here gets it drawn alone."""
        treatment = self.params.treatment
        episodes = {}
        rows, origin = slice(None), np.zeros(len(stop))
        allowed = np.array([not m & ~_RESECTABLE_SITES and _N_SITES[m] <= treatment.curative_max_sites
                            for m in range(16)])
        for k in range(MAX_EPISODES - 1):
            episodes[k], a = self._episode(rows, k)
            index = np.arange(len(stop))[rows]
            detected = origin + a["found"]
            finish = np.minimum(stop[index], origin + a["cancer_death"])
            surgery = detected + treatment.surgery_delay_months
            operate = ((periop[index] >= stop[index]) & (surgery < finish)
                       & (detected <= origin + a["resectable_until"]) & allowed[a["found_sites"]]
                       & (u_treatment[index, 4 * k] < treatment.curative_prob_if_resectable))
            rows, origin = index[operate], surgery[operate]
            if not len(rows):
                break
        return episodes

    def _episode_of(self, i: int, k: int) -> tuple[_EpisodeRows, int]:
        """Episode k of patient row i, and the patient's index in it."""
        episode = self.episodes.get(k)
        if episode is not None:
            if episode.position is None:
                return episode, i
            if i in episode.position:
                return episode, episode.position[i]
        return self._episode(np.array([i]), k)[0], 0

    def _scans(self, episode: "_EpisodeRows", row: int, relative_time: float) -> int:
        """Attended visits strictly before `relative_time` (months from the episode's origin)."""
        return int(episode.cumulative[row, bisect_left(self.visits, relative_time)])

    def patient(self, i: int):
        env, emit, treatment = self.env, self.rows.append, self.params.treatment
        end, censor_detail = self.censor[i]
        background = self.background[i]
        stop, stop_detail = (end, censor_detail) if end <= background else (background, _BACKGROUND)
        stop_event = _CENSORED if end <= background else _DEATH
        emit((i, 0.0, _HEPATECTOMY, 0, -1, self.hepatic[i]))
        if self.periop[i] < stop:  # (a generator that never yields: the process ends at once)
            emit((i, self.periop[i], _DEATH, 0, -1, _PERIOPERATIVE))
            return
        origin, k = 0.0, 0
        episode, row = self._episode_of(i, 0)
        u_treat = self.u_treatment[i]
        while True:
            onset = origin + episode.onset[row]
            if onset >= stop:
                self.n_scans[i] += self._scans(episode, row, stop - origin)
                emit((i, stop, stop_event, 0, -1, stop_detail))
                return
            involved = episode.involved[row]
            # The onset is recorded, not waited for: nothing the patient does changes at it.
            emit((i, onset, _ONSET, episode.onset_sites[row], -1, _LATENT))
            detected = origin + episode.found[row]
            cancer_death = origin + episode.cancer_death[row]
            if stop <= cancer_death:
                finish, finish_event, finish_detail = stop, stop_event, stop_detail
            else:
                finish, finish_event, finish_detail = cancer_death, _DEATH, _CANCER
            if detected >= finish:
                self.n_scans[i] += self._scans(episode, row, finish - origin)
                emit((i, finish, finish_event, 0, -1, finish_detail))
                return
            yield env.timeout(detected - env.now)
            at_visit = episode.visit[row]
            if at_visit >= 0:
                self.n_scans[i] += int(episode.cumulative[row, at_visit]) + 1
            else:
                self.n_scans[i] += self._scans(episode, row, detected - origin)
            mask = episode.found_sites[row]
            emit((i, detected, _DETECTION, mask, at_visit, 0))
            surgery = detected + treatment.surgery_delay_months
            if (surgery < finish and k + 1 < MAX_EPISODES
                    and detected <= origin + episode.resectable_until[row]
                    and not mask & ~_RESECTABLE_SITES
                    and _N_SITES[mask] <= treatment.curative_max_sites
                    and u_treat[4 * k] < treatment.curative_prob_if_resectable):
                yield env.timeout(surgery - env.now)
                emit((i, surgery, _REOPERATION, mask, -1, _CURATIVE))
                if u_treat[4 * k + 2] < treatment.repeat_operative_death_prob:
                    death = surgery + 3.0 * u_treat[4 * k + 3]
                    if death < stop:
                        emit((i, death, _DEATH, 0, -1, _OPERATIVE))
                        return
                origin, k = surgery, k + 1
                episode, row = self._episode_of(i, k)
                continue
            if surgery < finish and u_treat[4 * k + 1] < treatment.other_procedure_prob:
                emit((i, surgery, _REOPERATION, mask, -1, _OTHER))
            else:
                emit((i, detected, _SYSTEMIC, 0, -1, 0))
            self._progression(i, involved, detected, finish)
            emit((i, finish, finish_event, 0, -1, finish_detail))
            return

    def _progression(self, i, involved, detected, finish):
        """Sites that join after detection are found at the next restaging."""
        interval = self.params.treatment.restaging_interval_months
        found = []
        for s in range(4):
            joined = involved[s]
            if detected < joined < finish:
                when = detected + interval * math.ceil((joined - detected) / interval)
                if when < finish:
                    found.append((when, s))
        for when, s in sorted(found):
            self.rows.append((i, when, _PROGRESSION, _SITE_BITS[s], -1, 0))


def simulate_chunk(params: Params, policy: Policy, cohort: dict[str, np.ndarray],
                   censor_months: np.ndarray, censor_detail: np.ndarray, seed: int,
                   replicate: int) -> ChunkResult:
    """Run one chunk of patients through the engine; returns per-patient and per-event columns."""
    # The run allocates many short-lived objects and few cycles; the cyclic garbage collector
    # would walk the growing event list again and again (much of a SimPy process's cost), so it
    # is paused for the chunk and the cycles are left to the next collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        chunk = _Chunk(params, policy, cohort, censor_months, censor_detail, seed, replicate)
        for i in range(len(cohort["patient_id"])):
            chunk.env.process(chunk.patient(i))
        chunk.env.run()
    finally:
        if collecting:
            gc.enable()
    rows = np.fromiter(chunk.rows, dtype=_ROW, count=len(chunk.rows))
    order = np.lexsort((np.arange(len(rows)), rows["time_months"], rows["row"]))
    rows = rows[order]
    events = {name: rows[name] for name in _ROW.names}
    return ChunkResult({"n_scans": np.asarray(chunk.n_scans, np.int64)}, events)
