"""Random streams addressed by key, never by the order in which they are asked for.

A stream is a Philox counter-based generator keyed by ``SeedSequence(seed, spawn_key=(replicate,
purpose))``; patient ``p`` owns the block of ``width`` uniforms that starts at position
``p * width`` of that stream, reached with ``advance`` (random access, no draws skipped one by
one). So a patient's draws are a pure function of (seed, replicate, patient_id, purpose): they do
not depend on chunking, worker count, scheduling order or on the other purposes. Every variate
the model uses is an inverse-CDF transform of these uniforms, so one uniform is one draw and a
draw can be replayed by hand (tests/test_replay.py).

Creating one numpy generator per patient costs about 10 microseconds, as much as a whole
simulated patient; one generator per (chunk, purpose) positioned by counter costs nothing per
patient. With the optional compiled kernel (`sim.model.kernels`, numba) a patient's block is
computed from its counter, bit for bit numpy's, so any set of patients is drawn at the cost of its
own blocks (10 nanoseconds per block of four).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from sim.model import kernels

__all__ = ["Purpose", "WIDTH", "MAX_EPISODES", "VISIT_MONTHS", "uniforms", "uniforms_for",
           "by_month", "below_by_month"]

MAX_EPISODES = 8  # recurrence episodes per patient: the first and up to 7 after curative surgery
VISIT_MONTHS = 240  # visits are keyed by their month (0..239) within an episode: 20 years


class Purpose(IntEnum):
    """One stream per purpose: a patient's disease is the same under every policy."""

    COHORT = 0            # baseline covariates, perioperative course, background death
    NATURAL_HISTORY = 1   # recurrence onset, sites, growth, symptoms, resectability, death, CEA
    TEST_ACCURACY = 2     # detection at surveillance visits
    VISIT = 3             # a visit's attendance and false positive: a stream per (episode, month)
    TREATMENT = 4         # choice of repeat surgery, operative death


# Uniforms per patient; multiples of 4 so that a patient's block starts on a Philox counter.
WIDTH = {
    Purpose.COHORT: 32,
    Purpose.NATURAL_HISTORY: 24,  # one stream per episode (``stream=(k,)``)
    Purpose.TEST_ACCURACY: 4,     # one stream per episode
    Purpose.TREATMENT: 4,         # one stream per episode
    Purpose.VISIT: 4,             # one stream per (episode, month): attendance, false positive
}


_KEYS: dict[tuple, np.ndarray] = {}
"""The Philox keys made so far, by (seed, replicate, purpose, stream) (emptied when large)."""


def _keys(seed: int, replicate: int, purpose: int, streams: list) -> list[np.ndarray]:
    """The Philox key of each stream: ``SeedSequence(seed, spawn_key=(replicate, purpose,
    *stream)).generate_state(2, uint64)`` (stream None: no more), those not made yet made in
    one call of the compiled kernel when there is one (`sim.model.kernels.seed_keys`)."""
    if len(_KEYS) > 16384:
        _KEYS.clear()
    names = [(seed, replicate, int(purpose), stream) for stream in streams]
    missing = list(dict.fromkeys(name for name in names if name not in _KEYS))
    if missing:
        spawn = [(replicate, int(purpose), *(stream or ())) for *_, stream in missing]
        made = (kernels.seed_keys(seed, spawn) if kernels.AVAILABLE else
                [np.random.SeedSequence(seed, spawn_key=key).generate_state(2, np.uint64)
                 for key in spawn])
        _KEYS.update(zip(missing, made))
    return [_KEYS[name] for name in names]


def _key(seed: int, replicate: int, purpose: int, stream: tuple | None) -> np.ndarray:
    return _keys(seed, replicate, purpose, [stream])[0]


def uniforms(seed: int, replicate: int, purpose: int, first_patient: int, n_patients: int,
             width: int | None = None, column: int = 0, n_columns: int | None = None,
             stream: tuple | None = None) -> np.ndarray:
    """Uniforms on [0, 1) for patients ``first_patient .. first_patient + n_patients - 1``.

    Returns an array ``(n_patients, n_columns)``: columns ``column .. column + n_columns - 1`` of
    each patient's block of ``width`` (default: `WIDTH[purpose]`). Purposes with a stream per
    (episode, visit month) name it as ``stream``.
    """
    width = WIDTH[Purpose(purpose)] if width is None else width
    if width % 4:
        raise ValueError(f"stream width must be a multiple of 4; got {width}")
    n_columns = width - column if n_columns is None else n_columns
    if kernels.AVAILABLE:
        block = kernels.philox_rows(_key(seed, replicate, int(purpose), stream),
                            np.arange(first_patient, first_patient + n_patients), width)
        return block[:, column:column + n_columns]
    bit_generator = np.random.Philox(key=_key(seed, replicate, int(purpose), stream))
    bit_generator.advance(first_patient * width // 4)
    block = np.random.Generator(bit_generator).random((n_patients, width))
    return block[:, column:column + n_columns]


def uniforms_for(seed: int, replicate: int, purpose: int, patient_ids: np.ndarray,
                 stream: tuple | None = None) -> np.ndarray:
    """As `uniforms`, for any set of patients (rows in the order of `patient_ids`): one block
    when the ids are contiguous, else patient by patient (for the few who reach late episodes)."""
    patient_ids = np.asarray(patient_ids, dtype=np.int64)
    if len(patient_ids) == 0:
        return np.zeros((0, WIDTH[Purpose(purpose)]))
    if kernels.AVAILABLE:     # each patient's own blocks, from their counters
        return kernels.philox_rows(_key(seed, replicate, int(purpose), stream), patient_ids,
                                   WIDTH[Purpose(purpose)])
    first, last = int(patient_ids.min()), int(patient_ids.max())
    # a block of the whole range costs about as much as 64 patients drawn one by one
    if last - first + 1 <= 64 * len(patient_ids):
        block = uniforms(seed, replicate, purpose, first, last - first + 1, stream=stream)
        return block[patient_ids - first]
    # one generator walks up the sorted ids, jumping (advance) from one patient's block to the next
    width = WIDTH[Purpose(purpose)]
    bit_generator = np.random.Philox(key=_key(seed, replicate, int(purpose), stream))
    generator = np.random.Generator(bit_generator)
    order = np.argsort(patient_ids, kind="stable")
    out = np.empty((len(patient_ids), width))
    position = 0
    for index in order.tolist():
        target = int(patient_ids[index]) * width // 4
        if target != position:
            bit_generator.advance(target - position)
        out[index] = generator.random(width)
        position = target + width // 4
    return out


def by_month(seed: int, replicate: int, patient_ids: np.ndarray, episode: int,
             months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (patients, visits) arrays of uniforms, for attendance and for a false positive, from
    the VISIT stream of (episode, month): a visit month gets the same draws under every policy
    that has it."""
    attend = np.empty((len(patient_ids), len(months)))
    false = np.empty_like(attend)
    for j, month in enumerate(np.asarray(months).tolist()):
        block = uniforms_for(seed, replicate, Purpose.VISIT, patient_ids, stream=(episode, month))
        attend[:, j], false[:, j] = block[:, 0], block[:, 1]
    return attend, false


def below_by_month(seed: int, replicate: int, patient_ids: np.ndarray, episode: int,
                   months: np.ndarray, first_below: float,
                   second_below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`by_month`'s two uniforms compared with thresholds: whether each first is below
    `first_below`, each second below ``second_below[j]`` (the compiled kernel compares them
    as it draws them, without the uniforms' arrays)."""
    if kernels.AVAILABLE:
        keys = _keys(seed, replicate, int(Purpose.VISIT),
                     [(episode, month) for month in np.asarray(months).tolist()])
        return kernels.philox_pairs_below(np.array(keys, np.uint64).reshape(-1, 2), patient_ids,
                                          first_below, second_below)
    first, second = by_month(seed, replicate, patient_ids, episode, months)
    return first < first_below, second < np.asarray(second_below)[None, :]
