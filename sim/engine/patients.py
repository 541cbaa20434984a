"""The SimPy engine: one process per patient, one `simpy.Environment` per chunk of patients.

The engine turns a chunk's cohort (covariates and pre-drawn natural history) into events. A
process waits (a SimPy event) only where a decision is taken on what has happened so far:
detection of a recurrence, and repeat surgery. What follows from a decision with nothing left to
decide (the onset of the next episode is drawn, the death or end of follow-up that no later
decision can change) is recorded at its time without a wait; scans that find nothing are counted
from the schedule, not simulated. Everything a patient will do is drawn in bulk before the run
from the patient's keyed streams (`sim.model.streams`), so the result of a patient does not depend on
the chunk it runs in. The engine writes no files and computes no statistics: it returns columns.

With a capacity in the policy, the chunk is one department (`sim.engine.capacity`): patients enter at
their accrual time, every attended visit and every work-up takes an imaging slot and every
curative operation an operating slot, and waits delay detection and surgery (a delayed operation
may no longer be curative). Times in the output stay relative to each patient's hepatectomy, so a
capacity that never binds gives exactly the output of no capacity.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import simpy

from sim.engine.capacity import Department
from sim.model.detection import attendance, detect, false_positives, visit_hazard
from sim.model.natural_history import cancer_death_hazard_ratio, draw_episode, site_thetas
from sim.model.params import Params
from sim.model.policy import Policy
from sim.model.streams import MAX_EPISODES, Purpose, by_month, uniforms, uniforms_for

__all__ = ["simulate_chunk", "SharedDraws", "EVENTS", "DETAILS", "ChunkResult", "ENGINES"]

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
    symptom: list
    exponential: list      # the episode's Exp(1) detection variate
    disease: object        # the episode's `Episode` arrays (burden at a scan, with capacity)
    treatment: list        # 4 uniforms: curative surgery, other procedure, operative death, its time
    attended: np.ndarray    # (n, m) visits attended
    workups: np.ndarray     # (n, m) false positives (visits before onset only)


@dataclass
class ChunkResult:
    """Columns out of the engine: per patient (`patients`), per event (`events`), and the
    department's waits and utilisation when the policy has a capacity."""

    patients: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    department: dict | None = None


def _delay(env: simpy.Environment, when: float) -> float:
    """Time until `when` (never negative: rounding, or a patient held up past it)."""
    return max(0.0, when - env.now)


def _sites_at(involved, time: float) -> int:
    """Site bits involved at `time` (months from the episode's origin)."""
    mask = 0
    for s in range(4):
        if involved[s] <= time:
            mask |= _SITE_BITS[s]
    return mask


class SharedDraws:
    """What every policy run on one chunk's cohort draws alike (common random numbers): the first
    episode's natural history, and the uniforms of every stream the chunk's patients use (each
    episode's natural history, test accuracy and treatment, each visit month's attendance and
    false positive). Give one to `simulate_chunk` for every policy run on the same cohort,
    parameters, seed and replicate (a comparison's unit does): each is then drawn once instead
    of once per policy, and every output is the same as without it (a stream's uniforms are a
    function of the patient, not of who else is drawn: `sim.model.streams`)."""

    def __init__(self):
        self.key: tuple | None = None     # (params, seed, replicate, first patient, patients)
        self.first: tuple | None = None   # (uniforms by purpose, Episode) of episode 0
        self.blocks: dict[tuple, np.ndarray] = {}   # (purpose, stream) -> the chunk's uniforms

    def check(self, params: Params, seed: int, replicate: int, ids: np.ndarray) -> None:
        contiguous = len(ids) > 0 and int(ids[-1]) - int(ids[0]) + 1 == len(ids)
        key = (id(params), seed, replicate, int(ids[0]) if contiguous else None, len(ids))
        if self.key is None:
            self.key = key
        elif self.key != key:
            raise ValueError("SharedDraws: one per (parameter set, seed, replicate, chunk)")

    def uniforms(self, purpose: Purpose, stream: tuple, ids: np.ndarray) -> np.ndarray:
        """`uniforms_for(seed, replicate, purpose, ids, stream)`, cut from the chunk's block."""
        _, seed, replicate, first, count = self.key
        if first is None:      # patients that are not a contiguous range: drawn as they come
            return uniforms_for(seed, replicate, purpose, ids, stream=stream)
        block = self.blocks.get((purpose, stream))
        if block is None:
            block = uniforms(seed, replicate, purpose, first, count, stream=stream)
            self.blocks[(purpose, stream)] = block
        return block[np.asarray(ids, np.int64) - first]


class _Chunk:
    """State of one chunk's run; `patient` is the SimPy process of patient row i.

    A process only emits event rows (and counts attended visits): the per-patient columns
    (first recurrence, sites, repeat surgery, survival) are derived from the rows afterwards,
    vectorized (`sim.output.tables`), which keeps bookkeeping out of the event loop. `lists`:
    keep each episode's draws as Python lists too (fast scalar access for the processes; the
    direct path needs only the arrays).
    """

    def __init__(self, params: Params, policy: Policy, cohort: dict, censor: np.ndarray,
                 censor_detail: np.ndarray, seed: int, replicate: int,
                 shared: SharedDraws | None = None, lists: bool = True):
        n = len(cohort["patient_id"])
        self.ids = cohort["patient_id"]
        self.seed, self.replicate = seed, replicate
        self.params, self.policy = params, policy
        self.shared, self.lists = shared, lists
        if shared is not None:
            shared.check(params, seed, replicate, self.ids)
        self.thetas = site_thetas(cohort, params)
        self.death_ratio = cancer_death_hazard_ratio(cohort, params)
        self.visits = policy.visit_months.tolist()
        self.any_false_positive = bool((policy.specificity < 1).any())
        code = {name: _DETAIL[str(name)] for name in np.unique(censor_detail)}
        self.censor_months = censor
        self.censor_detail = np.array([code[name] for name in censor_detail.tolist()], np.int8)
        self.censor = list(zip(censor.tolist(), self.censor_detail.tolist())) if lists else None
        background = cohort["background_death_months"]
        self.background = background.tolist() if lists else background
        periop = np.where(cohort["periop_death_draw"], cohort["periop_death_draw_months"], np.inf)
        self.periop = periop.tolist() if lists else periop
        self.hepatic = [_DETAIL[name] for name in cohort["hepatic_treatment"].tolist()]
        self.episodes = self._draw_episodes(np.minimum(censor, background), periop)
        self.env = simpy.Environment()
        self.department = None
        self.entry = [0.0] * n
        if policy.has_capacity:
            self.department = Department(self.env, policy.imaging_slots_per_week,
                                         policy.operating_slots_per_week)
            self.entry = cohort["entry_months"].tolist()
        self.first_symptom = [math.nan] * n
        self.spans: list[tuple] = []   # (patient row, episode, its row there, visits counted,
        #                                  the episode's origin in months from the hepatectomy)
        self.rows: list[tuple] = []    # events between the hepatectomy and the end, as they come
        self.end: list[tuple | None] = [None] * n  # (time, event, detail) of death or censoring

    def _episode(self, rows: np.ndarray | slice, k: int) -> tuple[_EpisodeRows | None, dict]:
        """Episode k (natural history and detection) of the patient rows given."""
        ids = np.atleast_1d(self.ids[rows])
        first = k == 0 and isinstance(rows, slice)   # episode 0 of every patient: policy-free
        if first and self.shared is not None and self.shared.first is not None:
            draws, episode = self.shared.first
        else:
            draws = {purpose: self._uniforms(purpose, (k,), ids)
                     for purpose in (Purpose.NATURAL_HISTORY, Purpose.TEST_ACCURACY,
                                     Purpose.TREATMENT)}
            multiplier = 1.0 if k == 0 else self.params.recurrence.rerecurrence_theta_multiplier
            episode = draw_episode(draws[Purpose.NATURAL_HISTORY],
                                   np.atleast_2d(self.thetas[rows]) * multiplier,
                                   np.atleast_1d(self.death_ratio[rows]), self.params)
            if first and self.shared is not None:
                self.shared.first = (draws, episode)
        u_attend, u_false = self._by_month(ids, k)
        attended = attendance(u_attend, self.policy)
        if self.any_false_positive:
            workups = false_positives(u_false, attended, self.policy)
            workups &= self.policy.visit_months[None, :] < episode.onset[:, None]
        else:
            workups = np.zeros_like(attended)
        exponential = -np.log1p(-draws[Purpose.TEST_ACCURACY][:, 0])
        found, visit = detect(episode, attended, exponential, self.policy, self.params)
        bits = np.array(_SITE_BITS)
        onset_sites = ((episode.involved <= episode.onset[:, None]) * bits).sum(axis=1)
        found_sites = ((episode.involved <= found[:, None]) * bits).sum(axis=1)
        lists = None
        if self.lists:
            position = (None if isinstance(rows, slice)
                        else dict(zip(rows.tolist(), range(len(rows)))))
            lists = _EpisodeRows(position, episode.onset.tolist(), onset_sites.tolist(),
                                 episode.involved.tolist(), found.tolist(), found_sites.tolist(),
                                 visit.tolist(), episode.cancer_death.tolist(),
                                 episode.resectable_until.tolist(), episode.symptom.tolist(),
                                 exponential.tolist(), episode, draws[Purpose.TREATMENT].tolist(),
                                 attended, workups)
        arrays = {"onset": episode.onset, "found": found, "found_sites": found_sites,
                  "onset_sites": onset_sites, "visit": visit, "symptom": episode.symptom,
                  "involved": episode.involved, "treatment": draws[Purpose.TREATMENT],
                  "cancer_death": episode.cancer_death,
                  "resectable_until": episode.resectable_until,
                  "attended": attended, "workups": workups}
        return lists, arrays

    def _uniforms(self, purpose: Purpose, stream: tuple, ids: np.ndarray) -> np.ndarray:
        if self.shared is None:
            return uniforms_for(self.seed, self.replicate, purpose, ids, stream=stream)
        return self.shared.uniforms(purpose, stream, ids)

    def _by_month(self, ids: np.ndarray, k: int):
        """`by_month` of the policy's visit months (each month's block drawn once when shared)."""
        months = self.policy.visit_month_index
        if self.shared is None:
            return by_month(self.seed, self.replicate, ids, k, months)
        attend = np.empty((len(ids), len(months)))
        false = np.empty_like(attend)
        for j, month in enumerate(np.asarray(months).tolist()):
            block = self.shared.uniforms(Purpose.VISIT, (k, month), ids)
            attend[:, j], false[:, j] = block[:, 0], block[:, 1]
        return attend, false

    def _draw_episodes(self, stop: np.ndarray, periop: np.ndarray) -> dict[int, _EpisodeRows]:
        """Episodes drawn in bulk before the run: episode 0 for every patient, episode k + 1 for
        the patients whose episode k will end in curative surgery (the rule of `patient`,
        vectorized). A patient who needs an episode not drawn here gets it drawn alone. The arrays
        of each episode, with the patient rows that have it, are kept in `bulk` (for
        `sim.engine.direct`)."""
        treatment = self.params.treatment
        episodes = {}
        self.bulk: dict[int, tuple[np.ndarray, dict]] = {}
        rows, origin = slice(None), np.zeros(len(stop))
        allowed = np.array([not m & ~_RESECTABLE_SITES and _N_SITES[m] <= treatment.curative_max_sites
                            for m in range(16)])
        for k in range(MAX_EPISODES - 1):
            episodes[k], a = self._episode(rows, k)
            index = np.arange(len(stop))[rows]
            self.bulk[k] = (index, a)
            detected = origin + a["found"]
            finish = np.minimum(stop[index], origin + a["cancer_death"])
            surgery = detected + treatment.surgery_delay_months
            operate = ((periop[index] >= stop[index]) & (surgery < finish)
                       & (detected <= origin + a["resectable_until"]) & allowed[a["found_sites"]]
                       & (a["treatment"][:, 0] < treatment.curative_prob_if_resectable))
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

    def _count(self, i, row, episode, relative_time: float, origin: float) -> None:
        """Count the attended visits strictly before `relative_time` (from the episode's origin)
        for the vectorized tally after the run (scans, work-ups, cost by modality)."""
        self.spans.append((i, episode, row, bisect_left(self.visits, relative_time), origin))

    def _surveil(self, i, episode, row, origin, finish):
        """Wait until the episode is detected, or until `finish` if it is not; returns the
        detection time (months from the hepatectomy) and the visit number (-1: symptoms)."""
        if self.department is None:
            detected = origin + episode.found[row]
            if detected >= finish:
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
        attended, workups = episode.attended[row], episode.workups[row]
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
            disease = episode.disease
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
        background = self.background[i]
        stop, stop_detail = (end, censor_detail) if end <= background else (background, _BACKGROUND)
        stop_event = _CENSORED if end <= background else _DEATH
        entry = self.entry[i]
        if entry:
            yield env.timeout(entry)  # the patient's hepatectomy, in the department's time
        if self.periop[i] < stop:
            self.end[i] = (self.periop[i], _DEATH, _PERIOPERATIVE)
            return
        origin, k = 0.0, 0
        episode, row = self._episode_of(i, 0)
        while True:
            onset = origin + episode.onset[row]
            cancer_death = origin + episode.cancer_death[row]
            if stop <= cancer_death:
                finish, finish_event, finish_detail = stop, stop_event, stop_detail
            else:
                finish, finish_event, finish_detail = cancer_death, _DEATH, _CANCER
            if onset < stop:
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
            surgery = detected + treatment.surgery_delay_months
            if (surgery < finish and k + 1 < MAX_EPISODES
                    and detected <= origin + episode.resectable_until[row]
                    and not mask & ~_RESECTABLE_SITES
                    and _N_SITES[mask] <= treatment.curative_max_sites
                    and episode.treatment[row][0] < treatment.curative_prob_if_resectable):
                if self.department is not None:
                    # a patient held up in the scan queue past detection is operated on no earlier
                    surgery = max(surgery, env.now - entry)
                yield env.timeout(_delay(env, entry + surgery))
                if self.department is not None:
                    yield from self.department.operate()
                    surgery = env.now - entry
                    if (surgery - treatment.surgery_delay_months > origin + episode.resectable_until[row]
                            or surgery >= finish):
                        emit((i, min(surgery, finish), _SYSTEMIC, 0, -1, 0))  # too late to cure
                        self._progression(i, involved, origin, detected, finish)
                        self.end[i] = (finish, finish_event, finish_detail)
                        return
                emit((i, surgery, _REOPERATION, mask, -1, _CURATIVE))
                u_treat = episode.treatment[row]
                if u_treat[2] < treatment.repeat_operative_death_prob:
                    death = surgery + 3.0 * u_treat[3]
                    if death < stop:
                        self.end[i] = (death, _DEATH, _OPERATIVE)
                        return
                origin, k = surgery, k + 1
                episode, row = self._episode_of(i, k)
                continue
            if surgery < finish and episode.treatment[row][1] < treatment.other_procedure_prob:
                emit((i, surgery, _REOPERATION, mask, -1, _OTHER))
            else:
                emit((i, detected, _SYSTEMIC, 0, -1, 0))
            self._progression(i, involved, origin, detected, finish)
            self.end[i] = (finish, finish_event, finish_detail)
            return

    def _progression(self, i, involved, origin, detected, finish):
        """Sites that join after detection are found at the next restaging."""
        interval = self.params.treatment.restaging_interval_months
        found = []
        for s in range(4):
            joined = origin + involved[s]
            if detected < joined < finish:
                when = detected + interval * math.ceil((joined - detected) / interval)
                if when < finish:
                    found.append((when, s))
        for when, s in sorted(found):
            self.rows.append((i, when, _PROGRESSION, _SITE_BITS[s], -1, 0))


ENGINES = ("auto", "simpy", "direct")


def simulate_chunk(params: Params, policy: Policy, cohort: dict[str, np.ndarray],
                   censor_months: np.ndarray, censor_detail: np.ndarray, seed: int,
                   replicate: int, discount_rate: float | None = None,
                   engine: str = "auto", shared: SharedDraws | None = None) -> ChunkResult:
    """Run one chunk of patients through the engine; returns per-patient and per-event columns
    (with `discount_rate`, also the discounted examinations an economic evaluation prices).

    `engine`: "simpy" runs one SimPy process per patient; "direct" applies the same rules to
    all patients at once (`sim.engine.direct`; byte for byte the same output, for a policy
    without capacity only); "auto" takes the direct path whenever the policy allows it.
    `shared`: draws common to the policies run on this cohort (`SharedDraws`)."""
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)} (got {engine!r})")
    if engine == "direct" and policy.has_capacity:
        raise ValueError("engine: the direct path cannot run a policy with a capacity")
    if engine != "simpy" and not policy.has_capacity:
        from sim.engine.direct import run_direct  # noqa: PLC0415 (direct imports this module)

        chunk = _Chunk(params, policy, cohort, censor_months, censor_detail, seed, replicate,
                       shared, lists=False)
        run_direct(chunk)
        return _result(chunk, policy, len(cohort["patient_id"]), chunk.groups, discount_rate)
    # The run allocates many short-lived objects and few cycles; the cyclic garbage collector
    # would walk the growing event list again and again (much of a SimPy process's cost), so it
    # is paused for the chunk and the cycles are left to the next collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        chunk = _Chunk(params, policy, cohort, censor_months, censor_detail, seed, replicate,
                       shared)
        for i in range(len(cohort["patient_id"])):
            chunk.env.process(chunk.patient(i))
        chunk.env.run()
    finally:
        if collecting:
            gc.enable()
    return _result(chunk, policy, len(cohort["patient_id"]), _spans_by_episode(chunk.spans),
                   discount_rate)


def _result(chunk: _Chunk, policy: Policy, n: int, groups: list[tuple],
            discount_rate: float | None) -> ChunkResult:
    """The chunk's columns from what its run recorded."""
    rows, tie = _all_rows(chunk)
    order = np.lexsort((tie, rows["time_months"], rows["row"]))
    rows = rows[order]
    events = {name: rows[name] for name in _ROW.names}
    patients = _visit_tally(groups, policy, n, discount_rate)
    patients["first_symptom_months"] = np.asarray(chunk.first_symptom, float)
    department = chunk.department.report() if chunk.department else None
    return ChunkResult(patients, events, department)


def _all_rows(chunk: _Chunk) -> tuple[np.ndarray, np.ndarray]:
    """Every event row, and the order that settles a patient's ties in time: the hepatectomy
    first, then what the process emitted in its order, then the death or censoring. The direct
    path gives its rows with that order as a key (`chunk.rows_order`) and its ends as arrays."""
    n = len(chunk.hepatic)
    first = np.zeros(n, dtype=_ROW)
    first["row"] = np.arange(n)
    first["event"] = _HEPATECTOMY
    first["modality"] = -1
    first["detail"] = chunk.hepatic
    direct = isinstance(chunk.rows, np.ndarray)
    middle = chunk.rows if direct else np.fromiter(chunk.rows, dtype=_ROW, count=len(chunk.rows))
    last = np.zeros(n, dtype=_ROW)
    last["row"] = np.arange(n)
    if direct:
        time, event, detail = chunk.end
    else:
        time, event, detail = (np.array(column) for column in zip(*chunk.end)) if n else ([], [], [])
    last["time_months"], last["event"], last["detail"] = time, event, detail
    last["modality"] = -1
    rows = np.concatenate([first, middle, last])
    if not direct:
        return rows, np.arange(len(rows))
    tie = np.concatenate([np.full(n, -1, np.int64), chunk.rows_order,
                          np.full(n, np.iinfo(np.int64).max, np.int64)])
    return rows, tie


def _spans_by_episode(spans: list[tuple]) -> list[tuple]:
    """The spans the processes recorded, grouped by episode draw (in order of first appearance):
    (visits attended, work-ups, patient rows, rows in the episode, visits counted, origins) for
    `_visit_tally`."""
    by_episode: dict[int, list] = {}
    for span in spans:
        by_episode.setdefault(id(span[1]), []).append(span)
    # each group in patient order: the matrix products of `_visit_tally` may round a row
    # differently at another place in the matrix, and the direct path gives them in this order
    return [(group[0][1].attended, group[0][1].workups,
             *(np.array([g[j] for g in sorted(group, key=lambda g: g[0])]) for j in (0, 2, 3, 4)))
            for group in by_episode.values()]


def _visit_tally(groups: list[tuple], policy: Policy, n: int,
                 discount_rate: float | None = None) -> dict[str, np.ndarray]:
    """Visits, imaging examinations, work-ups and surveillance cost per patient, from the visits
    counted in each episode (`_spans_by_episode`; vectorized per episode: no per-visit work in
    the event loop). With a `discount_rate` (a year, continuous), also each patient's
    examinations by modality and work-ups weighted by exp(-rate * years at the scheduled visit):
    `discounted_tests` (patients x modalities) and `discounted_workups`, from which an economic
    evaluation prices them."""
    scans, imaging, workups = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    exams = policy.uses[policy.imaging].sum(axis=0) if len(policy.imaging) else np.zeros(policy.n_visits)
    cost = np.zeros(n)
    discounted = np.zeros((n, len(policy.modality_names))) if discount_rate is not None else None
    discounted_workups = np.zeros(n) if discount_rate is not None else None
    for attended, workup, patient, row, upto, origin in groups:
        counted = attended[row] & (np.arange(policy.n_visits)[None, :] < upto[:, None])
        np.add.at(scans, patient, counted.sum(axis=1))
        np.add.at(imaging, patient, counted.astype(np.int64) @ exams.astype(np.int64))
        false_positive = workup[row] & counted
        false = false_positive.sum(axis=1)
        np.add.at(workups, patient, false)
        spent = counted.astype(float) @ (policy.uses.T.astype(float) @ policy.modality_cost)
        np.add.at(cost, patient, spent + policy.workup_cost * false)
        if discount_rate is not None:
            factor = np.exp(-discount_rate * (origin[:, None] + policy.visit_months[None, :]) / 12.0)
            np.add.at(discounted, patient, (counted * factor) @ policy.uses.T.astype(float))
            np.add.at(discounted_workups, patient, (false_positive * factor).sum(axis=1))
    tally = {"n_scans": scans, "n_imaging": imaging, "n_workups": workups, "surveillance_cost": cost}
    if discount_rate is not None:
        tally |= {"discounted_tests": discounted, "discounted_workups": discounted_workups}
    return tally
