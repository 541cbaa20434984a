"""The SimPy engine: one process per patient, one `simpy.Environment` per chunk of patients.

The engine turns a chunk's cohort (covariates and pre-drawn natural history) into events. A
process waits only where the patient's state can change (perioperative death, recurrence onset,
detection, repeat surgery, death, end of follow-up); scans that find nothing are counted from the
schedule, not simulated. Everything a patient will do is drawn in bulk before the run from the
patient's keyed streams (`sim.streams`), so the result of a patient does not depend on the chunk
it runs in. The engine writes no files and computes no statistics: it returns columns.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

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
DETAILS = ("", "resection", "resection_rfa", "rfa", "curative", "other", "operative", "cancer",
           "background", "study_close", "horizon", "lost_to_follow_up", "latent")
_DETAIL = {name: code for code, name in enumerate(DETAILS)}
_SITE_BITS = (1, 2, 4, 8)
_RESECTABLE_SITES = 1 | 2 | 4  # pelvis, liver, lung: 'other' was never operated with intent to cure
_EPISODE_U = 16


@dataclass
class ChunkResult:
    """Columns out of the engine: per patient (`patients`) and per event (`events`)."""

    patients: dict[str, np.ndarray]
    events: dict[str, np.ndarray]


def _sites_mask(involved_row, time) -> int:
    mask = 0
    for s in range(4):
        if involved_row[s] <= time:
            mask |= _SITE_BITS[s]
    return mask


class _Chunk:
    """State of one chunk's run; `patient` is the SimPy process of patient row i."""

    def __init__(self, params: Params, policy: Policy, cohort: dict, censor: np.ndarray,
                 censor_detail: np.ndarray, seed: int, replicate: int):
        n = len(cohort["patient_id"])
        first = int(cohort["patient_id"][0]) if n else 0
        self.params, self.policy, self.cohort = params, policy, cohort
        self.censor = censor
        self.censor_detail = np.zeros(n, np.int8)
        for name in np.unique(censor_detail):
            self.censor_detail[censor_detail == name] = _DETAIL[str(name)]
        self.thetas = site_thetas(cohort, params)
        self.death_ratio = cancer_death_hazard_ratio(cohort, params)
        self.u_history = uniforms(seed, replicate, Purpose.NATURAL_HISTORY, first, n)
        self.u_accuracy = uniforms(seed, replicate, Purpose.TEST_ACCURACY, first, n)
        self.u_treatment = uniforms(seed, replicate, Purpose.TREATMENT, first, n)
        self.visit_width = 4 * ((policy.n_visits + 3) // 4) or 4
        self.u_adherence = uniforms(seed, replicate, Purpose.ADHERENCE, first, n,
                                    width=MAX_EPISODES * self.visit_width)
        self.visits = policy.visit_months.tolist()
        self.first_episode = self._episode(slice(None), 0)
        self.env = simpy.Environment()
        nan = np.full(n, np.nan)
        self.out = {
            "os_months": nan.copy(), "death": np.zeros(n, bool), "death_cause": np.zeros(n, np.int8),
            "periop_death": np.zeros(n, bool), "recurrence_months": nan.copy(),
            "recurrence_onset_months": nan.copy(), "first_recurrence_mask": np.zeros(n, np.int8),
            "site_months": np.full((n, 4), np.nan), "sites_mask": np.zeros(n, np.int8),
            "curative_reoperation_months": nan.copy(), "any_reoperation_months": nan.copy(),
            "curative_reoperation_mask": np.zeros(n, np.int8),
            "n_scans": np.zeros(n, np.int64), "n_episodes": np.zeros(n, np.int64),
        }
        self.rows: tuple[list, ...] = ([], [], [], [], [], [])

    def _episode(self, rows, k: int):
        """Episode k (natural history and detection) for the patient rows given, as arrays."""
        history = self.u_history[rows, k * _EPISODE_U:(k + 1) * _EPISODE_U]
        multiplier = 1.0 if k == 0 else self.params.recurrence.rerecurrence_theta_multiplier
        episode = draw_episode(np.atleast_2d(history), np.atleast_2d(self.thetas[rows]) * multiplier,
                               np.atleast_1d(self.death_ratio[rows]), self.params)
        attended = attendance(np.atleast_2d(self.u_adherence[rows, k * self.visit_width:]),
                              self.policy)
        exponential = -np.log1p(-np.atleast_1d(self.u_accuracy[rows, 4 * k]))
        found, visit = detect(episode.onset, episode.involved, episode.symptom, attended,
                              exponential, self.policy)
        cumulative = np.zeros((len(found), self.policy.n_visits + 1), np.int64)
        cumulative[:, 1:] = np.cumsum(attended, axis=1)
        return episode, found, visit, cumulative

    def _emit(self, i, time, event, sites=0, modality=-1, detail=0):
        rows = self.rows
        rows[0].append(i)
        rows[1].append(time)
        rows[2].append(event)
        rows[3].append(sites)
        rows[4].append(modality)
        rows[5].append(detail)

    def _scans(self, cumulative_row, relative_time: float) -> int:
        """Attended visits strictly before `relative_time` (months from the episode's origin)."""
        return int(cumulative_row[bisect_left(self.visits, relative_time)])

    def _end(self, i, time: float, cause: str | None):
        out = self.out
        out["os_months"][i] = time
        if cause is None:
            self._emit(i, time, _CENSORED, detail=int(self.censor_detail[i]))
            return
        out["death"][i] = True
        out["death_cause"][i] = _DETAIL[cause]
        self._emit(i, time, _DEATH, detail=_DETAIL[cause])

    def _detected(self, i, time, mask, event, modality):
        out = self.out
        site_months = out["site_months"]
        for s in range(4):
            if mask & _SITE_BITS[s] and np.isnan(site_months[i, s]):
                site_months[i, s] = time
        out["sites_mask"][i] |= mask
        self._emit(i, time, event, mask, modality)

    def patient(self, i: int):
        env, out, params = self.env, self.out, self.params
        cohort, treatment = self.cohort, params.treatment
        end, background = float(self.censor[i]), float(cohort["background_death_months"][i])
        stop = min(end, background)
        stop_cause = None if end <= background else "background"
        self._emit(i, 0.0, _HEPATECTOMY, detail=_DETAIL[str(cohort["hepatic_treatment"][i])])
        if cohort["periop_death_draw"][i] and cohort["periop_death_draw_months"][i] < stop:
            yield env.timeout(float(cohort["periop_death_draw_months"][i]))
            out["periop_death"][i] = True
            self._end(i, env.now, "operative")
            return
        origin, k = 0.0, 0
        episode, found, visit, cumulative = self.first_episode
        row = i
        u_treat = self.u_treatment[i]
        while True:
            out["n_episodes"][i] = k + 1
            onset = origin + float(episode.onset[row])
            if onset >= stop:
                out["n_scans"][i] += self._scans(cumulative[row], stop - origin)
                yield env.timeout(stop - env.now)
                self._end(i, stop, stop_cause)
                return
            involved = episode.involved[row]
            yield env.timeout(onset - env.now)
            self._emit(i, onset, _ONSET, _sites_mask(involved, onset), detail=_DETAIL["latent"])
            detected = origin + float(found[row])
            cancer_death = origin + float(episode.cancer_death[row])
            finish = min(stop, cancer_death)
            finish_cause = stop_cause if stop <= cancer_death else "cancer"
            if detected >= finish:
                out["n_scans"][i] += self._scans(cumulative[row], finish - origin)
                yield env.timeout(finish - env.now)
                self._end(i, finish, finish_cause)
                return
            yield env.timeout(detected - env.now)
            at_visit = int(visit[row])
            if at_visit >= 0:
                out["n_scans"][i] += int(cumulative[row][at_visit]) + 1
            else:
                out["n_scans"][i] += self._scans(cumulative[row], detected - origin)
            mask = _sites_mask(involved, detected)
            if np.isnan(out["recurrence_months"][i]):
                out["recurrence_months"][i] = detected
                out["recurrence_onset_months"][i] = onset
                out["first_recurrence_mask"][i] = mask
            self._detected(i, detected, mask, _DETECTION, at_visit)
            resectable = (detected <= origin + float(episode.resectable_until[row])
                          and not mask & ~_RESECTABLE_SITES
                          and bin(mask).count("1") <= treatment.curative_max_sites
                          and k + 1 < MAX_EPISODES)
            surgery = detected + treatment.surgery_delay_months
            if resectable and u_treat[4 * k] < treatment.curative_prob_if_resectable and surgery < finish:
                yield env.timeout(surgery - env.now)
                self._emit(i, surgery, _REOPERATION, mask, detail=_DETAIL["curative"])
                if np.isnan(out["curative_reoperation_months"][i]):
                    out["curative_reoperation_months"][i] = surgery
                    out["curative_reoperation_mask"][i] = mask
                if np.isnan(out["any_reoperation_months"][i]):
                    out["any_reoperation_months"][i] = surgery
                if u_treat[4 * k + 2] < treatment.repeat_operative_death_prob:
                    death = surgery + 3.0 * u_treat[4 * k + 3]
                    if death < stop:
                        yield env.timeout(death - env.now)
                        self._end(i, death, "operative")
                        return
                origin, k = surgery, k + 1
                episode, found, visit, cumulative = self._episode(slice(i, i + 1), k)
                row = 0
                continue
            if u_treat[4 * k + 1] < treatment.other_procedure_prob and surgery < finish:
                self._emit(i, surgery, _REOPERATION, mask, detail=_DETAIL["other"])
                if np.isnan(out["any_reoperation_months"][i]):
                    out["any_reoperation_months"][i] = surgery
            else:
                self._emit(i, detected, _SYSTEMIC)
            self._progression(i, involved, detected, finish)
            yield env.timeout(finish - env.now)
            self._end(i, finish, finish_cause)
            return

    def _progression(self, i, involved, detected, finish):
        """Sites that join after detection are found at the next restaging."""
        interval = self.params.treatment.restaging_interval_months
        found = []
        for s in range(4):
            joined = float(involved[s])
            if detected < joined < finish:
                when = detected + interval * np.ceil((joined - detected) / interval)
                if when < finish:
                    found.append((when, s))
        for when, s in sorted(found):
            self._detected(i, when, _SITE_BITS[s], _PROGRESSION, -1)


def simulate_chunk(params: Params, policy: Policy, cohort: dict[str, np.ndarray],
                   censor_months: np.ndarray, censor_detail: np.ndarray, seed: int,
                   replicate: int) -> ChunkResult:
    """Run one chunk of patients through the engine; returns per-patient and per-event columns."""
    chunk = _Chunk(params, policy, cohort, censor_months, censor_detail, seed, replicate)
    for i in range(len(cohort["patient_id"])):
        chunk.env.process(chunk.patient(i))
    chunk.env.run()
    rows = chunk.rows
    times = np.asarray(rows[1], float)
    order = np.lexsort((np.arange(len(times)), times, np.asarray(rows[0])))
    events = {
        "row": np.asarray(rows[0], np.int64)[order],
        "time_months": times[order],
        "event": np.asarray(rows[2], np.int8)[order],
        "sites_mask": np.asarray(rows[3], np.int8)[order],
        "modality": np.asarray(rows[4], np.int64)[order],
        "detail": np.asarray(rows[5], np.int8)[order],
    }
    return ChunkResult(chunk.out, events)
