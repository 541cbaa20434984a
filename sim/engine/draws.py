"""The randomness of a chunk, drawn in bulk before either scheduler runs.

Everything a patient will do is a function of its keyed streams (`sim.model.streams`): its
natural history, the test accuracy and treatment uniforms of each episode, and each visit
month's attendance and false positive. `draw_chunk` makes them for a chunk of patients: the
first episode of every patient, and episode k + 1 of the patients whose episode k will end in a
curative operation (the rules of `sim.model.rules`, applied to the whole chunk), up to the
last episode the streams provide for. A patient who needs an episode not drawn in bulk (a
capacity delayed its operation) gets it drawn alone (`ChunkDraws.episode`), with the same values
it would have had in bulk: a stream's uniforms are a function of the patient, not of who else is
drawn. So the result of a patient does not depend on the chunk it runs in, nor on the scheduler.
`draw_chunks` draws several policies on the same cohort, episode by episode for all of them.

`SharedDraws` holds what every policy run on the same chunk draws alike (common random numbers),
so that a comparison draws it once for all its policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from sim.engine.records import Detail
from sim.model import kernels, rules
from sim.model.detection import (attendance, attendance_below, detect, false_positives,
                                  positive_below)
from sim.model.natural_history import (Episode, cancer_death_hazard_ratio, draw_episode,
                                      site_thetas, tempo_uniform)
from sim.model.params import Params
from sim.model.policy import Policy
from sim.model.streams import (MAX_EPISODES, Purpose, below_by_month, by_month, uniforms,
                               uniforms_for)

__all__ = ["SharedDraws", "EpisodeDraws", "ChunkDraws", "draw_chunk", "draw_chunks",
           "detail_codes"]


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
        self.first: tuple | None = None   # (uniforms by purpose, Episode, its policy-free
        #                                   arrays) of episode 0
        self.blocks: dict[tuple, np.ndarray] = {}   # (purpose, stream) -> the chunk's uniforms
        self.cohort: dict[str, np.ndarray] = {}     # the cohort's policy-free arrays
        # episode k >= 1: (which chunk rows are made, their natural history by field)
        self.later: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    def check(self, params: Params, seed: int, replicate: int, ids: np.ndarray) -> None:
        contiguous = len(ids) > 0 and int(ids[-1]) - int(ids[0]) + 1 == len(ids)
        key = (id(params), seed, replicate, int(ids[0]) if contiguous else None, len(ids))
        if self.key is None:
            self.key = key
        elif self.key != key:
            raise ValueError("SharedDraws: one per (parameter set, seed, replicate, chunk)")

    def natural_history(self, k: int, rows: np.ndarray, make) -> Episode:
        """Episode k's (k >= 1) natural history of chunk rows `rows`: a function of the patient
        only, so each row is made once (`make(rows)`) for every policy that reaches it, and kept
        at its row of chunk-sized arrays; a row's values do not depend on the rows made with
        it."""
        if k not in self.later:
            self.later[k] = (np.zeros(self.key[4], bool), {})
        made, arrays = self.later[k]
        missing = rows[~made[rows]]
        if len(missing):
            new = make(missing)
            for f in fields(Episode):
                values = getattr(new, f.name)
                if f.name not in arrays:
                    arrays[f.name] = np.empty((len(made), *values.shape[1:]), values.dtype)
                arrays[f.name][missing] = values
            made[missing] = True
        return Episode(*(arrays[f.name][rows] for f in fields(Episode)))

    def uniforms(self, purpose: Purpose, stream: tuple, ids: np.ndarray) -> np.ndarray:
        """`uniforms_for(seed, replicate, purpose, ids, stream)`, cut from the chunk's block."""
        _, seed, replicate, first, count = self.key
        ids = np.asarray(ids, np.int64)
        whole = len(ids) == count and ids[0] == first and (np.diff(ids) == 1).all()
        if first is None or (kernels.AVAILABLE and not whole):
            # patients that are not a contiguous range, or some of the chunk when each patient's
            # blocks can be computed alone (`sim.model.kernels`): drawn as they come
            return uniforms_for(seed, replicate, purpose, ids, stream=stream)
        block = self.blocks.get((purpose, stream))
        if block is None:
            block = uniforms(seed, replicate, purpose, first, count, stream=stream)
            block.flags.writeable = False      # handed out whole, below: read only
            self.blocks[(purpose, stream)] = block
        if whole:
            return block                       # every patient of the chunk, in order
        return block[ids - first]


@dataclass(frozen=True)
class EpisodeDraws:
    """Episode k of some of a chunk's patients, pre-drawn: one row per patient, times in months
    from the episode's origin (the hepatectomy, or the curative operation that ended episode
    k - 1; inf: never). `found` and `visit` are the detection under the policy without a
    capacity; with one, the SimPy scheduler finds the disease visit by visit from `disease`."""

    patients: np.ndarray        # the chunk rows that have this draw, ascending
    disease: Episode            # the natural history (`sim.model.natural_history`)
    onset_sites: np.ndarray     # site bits involved at onset
    found: np.ndarray           # detection time
    found_sites: np.ndarray     # site bits involved at detection
    visit: np.ndarray           # visit number of the detection (-1: at symptoms)
    exponential: np.ndarray     # the episode's Exp(1) detection variate (TEST_ACCURACY)
    treatment: np.ndarray       # (n, 4) TREATMENT uniforms: see the properties
    attended: np.ndarray        # (n, visits) visits attended
    workups: np.ndarray         # (n, visits) false positives (visits before onset only)

    @property
    def u_curative(self) -> np.ndarray:
        return self.treatment[:, 0]

    @property
    def u_other(self) -> np.ndarray:
        return self.treatment[:, 1]

    @property
    def u_operative_death(self) -> np.ndarray:
        return self.treatment[:, 2]

    @property
    def u_operative_time(self) -> np.ndarray:
        return self.treatment[:, 3]


@dataclass
class ChunkDraws:
    """A chunk's patients as both schedulers start from them: their ends if nothing in the
    disease comes first, their hepatic treatment, and their episodes drawn in bulk
    (`episodes[k]`); `episode` draws one that was not."""

    params: Params
    policy: Policy
    seed: int
    replicate: int
    shared: SharedDraws | None
    ids: np.ndarray
    thetas: np.ndarray               # (n, 4) first-episode site hazards
    death_ratio: np.ndarray          # (n,) cancer death hazard ratio
    censor_months: np.ndarray
    censor_detail: np.ndarray        # `Detail` codes
    background_months: np.ndarray    # death from other causes
    periop_months: np.ndarray        # the hepatectomy's operative death (inf: none)
    hepatic: np.ndarray              # `Detail` code of the hepatic treatment
    entry_months: np.ndarray         # hepatectomy in the department's time (capacity only)
    episodes: dict[int, EpisodeDraws] = field(default_factory=dict)
    tempo_u: np.ndarray | None = None  # (n,) the patients' tempo uniforms, from episode 0

    @property
    def n(self) -> int:
        return len(self.ids)

    def episode(self, rows: np.ndarray | None, k: int) -> EpisodeDraws:
        """Episode k of the chunk rows `rows` (None: every patient)."""
        ids = self.ids if rows is None else np.atleast_1d(self.ids[rows])
        first = k == 0 and rows is None          # episode 0 of every patient: policy-free
        shared, params, policy = self.shared, self.params, self.policy
        if first and shared is not None and shared.first is not None:
            draws, disease, free = shared.first
        else:
            draws = {purpose: self._uniforms(purpose, (k,), ids)
                     for purpose in (Purpose.TEST_ACCURACY, Purpose.TREATMENT)}
            if k > 0 and shared is not None:     # made once for every policy that needs it
                disease = shared.natural_history(k, np.atleast_1d(rows),
                                                 lambda made: self.natural_history_of(made, k))
            else:
                draws[Purpose.NATURAL_HISTORY], disease = self._natural_history(rows, k)
            free = _policy_free(draws, disease)
            if first and shared is not None:
                shared.first = (draws, disease, free)
        if first:
            self.tempo_u = tempo_uniform(draws[Purpose.NATURAL_HISTORY])
        if kernels.AVAILABLE:    # drawn and compared in one pass (`sim.model.kernels`)
            attended, positive = below_by_month(self.seed, self.replicate, ids, k,
                                                policy.visit_month_index,
                                                attendance_below(policy), positive_below(policy))
            positive &= attended             # = false_positives(its uniforms, attended, policy)
        else:
            u_attend, u_false = self._by_month(ids, k)
            attended = attendance(u_attend, policy)
            positive = None
        if (policy.specificity < 1).any():
            workups = (positive if positive is not None
                       else false_positives(u_false, attended, policy))
            workups &= policy.visit_months[None, :] < disease.onset[:, None]
        else:
            workups = np.zeros_like(attended)
        exponential, onset_sites = free
        found, visit = detect(disease, attended, exponential, policy, params)
        return EpisodeDraws(
            patients=np.arange(self.n) if rows is None else np.atleast_1d(rows),
            disease=disease, onset_sites=onset_sites, found=found,
            found_sites=_sites_by(disease, found), visit=visit, exponential=exponential,
            treatment=draws[Purpose.TREATMENT], attended=attended, workups=workups)

    def _natural_history(self, rows: np.ndarray | None, k: int) -> tuple[np.ndarray, Episode]:
        """(the NATURAL_HISTORY uniforms, the natural history) of episode k of chunk rows `rows`
        (None: every patient)."""
        ids = self.ids if rows is None else np.atleast_1d(self.ids[rows])
        u = self._uniforms(Purpose.NATURAL_HISTORY, (k,), ids)
        multiplier = 1.0 if k == 0 else self.params.recurrence.rerecurrence_theta_multiplier
        thetas = self.thetas if rows is None else self.thetas[rows]
        ratio = self.death_ratio if rows is None else self.death_ratio[rows]
        # a later episode keeps the patient's tempo (episode 0 is drawn first, for all)
        return u, draw_episode(u, np.atleast_2d(thetas) * multiplier, np.atleast_1d(ratio),
                               self.params, None if k == 0 else self.tempo_u[rows])

    def natural_history_of(self, rows: np.ndarray, k: int) -> Episode:
        """The natural history of episode k >= 1 of chunk rows `rows` (a function of the
        patients, whatever the policy)."""
        return self._natural_history(rows, k)[1]

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


def _sites_by(disease: Episode, time: np.ndarray) -> np.ndarray:
    """The site bits (`sim.model.rules.SITE_BITS`) involved by `time` in each episode."""
    if kernels.AVAILABLE:
        return kernels.sites_by(disease.involved, time, rules.SITE_BITS)
    return ((disease.involved <= time[:, None]) * np.array(rules.SITE_BITS)).sum(axis=1)


def _policy_free(draws: dict, disease: Episode) -> tuple[np.ndarray, np.ndarray]:
    """(the episode's Exp(1) detection variates, its sites at onset): the same under every
    policy."""
    return -np.log1p(-draws[Purpose.TEST_ACCURACY][:, 0]), _sites_by(disease, disease.onset)


def detail_codes(names: np.ndarray) -> np.ndarray:
    """The `Detail` codes (int8) of an array of detail names ("resection", "horizon", ...): each
    distinct name looked up once."""
    distinct, where = np.unique(np.asarray(names).astype(str), return_inverse=True)
    codes = np.array([Detail[name.upper()] for name in distinct.tolist()], np.int8)
    return codes[where.reshape(-1)] if len(distinct) else np.zeros(0, np.int8)


def draw_chunk(params: Params, policy: Policy, cohort: dict[str, np.ndarray],
               censor_months: np.ndarray, censor_detail: np.ndarray, seed: int, replicate: int,
               shared: SharedDraws | None = None) -> ChunkDraws:
    """A chunk's draws: its covariates' hazards, its ends, and every episode that the rules
    (`sim.model.rules`) say a patient will reach without a capacity, drawn in bulk."""
    return draw_chunks(params, [policy], cohort, censor_months, censor_detail, seed, replicate,
                       shared)[0]


def draw_chunks(params: Params, policies: list[Policy], cohort: dict[str, np.ndarray],
                censor_months: np.ndarray, censor_detail: np.ndarray, seed: int, replicate: int,
                shared: SharedDraws | None = None) -> list[ChunkDraws]:
    """`draw_chunk` of each policy on the same cohort, episode by episode for all of them: a
    later episode's natural history, the patient's whatever the policy, is then made once for
    the patients any policy needs it for (with `shared`); each chunk is what `draw_chunk`
    gives."""
    ids = cohort["patient_id"]
    if shared is not None:
        shared.check(params, seed, replicate, ids)
    arrays = shared.cohort if shared is not None else {}
    if not arrays:      # policy-free: made once for every policy run on the cohort
        arrays.update(
            thetas=site_thetas(cohort, params),
            death_ratio=cancer_death_hazard_ratio(cohort, params),
            censor_detail=detail_codes(censor_detail),
            periop_months=np.where(cohort["periop_death_draw"],
                                   cohort["periop_death_draw_months"], np.inf),
            hepatic=detail_codes(cohort["hepatic_treatment"]))
    chunks = [ChunkDraws(
        params, policy, seed, replicate, shared, ids,
        thetas=arrays["thetas"], death_ratio=arrays["death_ratio"],
        censor_months=censor_months, censor_detail=arrays["censor_detail"],
        background_months=cohort["background_death_months"],
        periop_months=arrays["periop_months"], hepatic=arrays["hepatic"],
        entry_months=cohort["entry_months"] if policy.has_capacity else np.zeros(len(ids)))
        for policy in policies]
    treatment = params.treatment
    stop, _ = rules.follow_up_stop(censor_months, cohort["background_death_months"])
    in_follow_up = ~rules.perioperative_death(arrays["periop_months"], stop)
    going = [(None, np.zeros(len(ids))) for _ in chunks]    # (rows of episode k, origins)
    for k in range(MAX_EPISODES):
        wanted = [rows for rows, _ in going if rows is not None and len(rows)]
        if k > 0 and shared is not None and len(wanted) > 1:   # made once, for all of them
            shared.natural_history(k, np.unique(np.concatenate(wanted)),
                                   lambda made: chunks[0].natural_history_of(made, k))
        after = []
        for chunk, (rows, origin) in zip(chunks, going):
            if rows is not None and not len(rows):            # this policy's chunk is done
                after.append((rows, origin))
                continue
            episode = chunk.episode(rows, k)
            chunk.episodes[k] = episode
            index = episode.patients
            detected = origin + episode.found
            finish, _ = rules.episode_end(stop[index], origin + episode.disease.cancer_death)
            operate = in_follow_up[index] & rules.curative_surgery(
                detected, finish, origin + episode.disease.resectable_until,
                episode.found_sites, episode.u_curative, episode.disease.tempo, k, treatment)
            after.append((index[operate], rules.surgery_time(detected, treatment)[operate]))
        going = after
        if not any(len(rows) for rows, _ in going):
            break
    return chunks
