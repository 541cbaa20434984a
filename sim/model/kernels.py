"""Compiled kernels (numba) for the hot loops of the model, when numba is installed.

numba is an optional dependency (``pip install 'crlm-sim[fast]'``; it brings llvmlite, about 170
MB): `AVAILABLE` says whether it is installed, and it is imported on first use only, so a command
that simulates nothing never pays for it. Each kernel computes what a numpy function of the model
computes, and that function calls it when it can:

- `philox_rows`, `philox_pairs_below`: numpy's Philox4x64-10 (Salmon et al., "Parallel random
  numbers: as easy as 1, 2, 3", SC 2011; numpy's ``philox.h``), with random access by counter.
  numpy reaches a counter only by making a generator and advancing it (about 10 microseconds),
  so it draws whole chunks; here each patient's blocks come from their counters, so a chunk's
  later episodes (a few hundred patients of ten thousand) cost their own blocks only. Bit for
  bit numpy's uniforms (`sim.model.streams`); the visits' pairs are compared with their
  thresholds as they are drawn.
- `seed_keys`: numpy's `SeedSequence(seed, spawn_key=...).generate_state(2, uint64)`, the
  Philox key of a stream, for many streams in one call (a `SeedSequence` costs about 15
  microseconds, and a unit keys some two hundred streams); the same keys.
- `background_death_months`: the inversion of the life table's cumulative hazard
  (`sim.model.lifetable`), patient by patient instead of over (patients x 40 years) arrays, with
  the same additions in the same order: bit for bit the numpy result.
- `detect`, `visit_hazard`: detection at surveillance visits (`sim.model.detection`), visit by
  visit and only until the disease is found, instead of the miss hazards of every visit that
  could find it. The hazards use the C library's ``exp2`` where numpy uses its SIMD ``exp2``;
  the two differ in the last bit for a few per cent of arguments, so a detection could differ
  only where the running sum of hazards equals the patient's Exp(1) variate to the last bit (a
  chance of about 1e-16 a visit). Both schedulers call the same function (the SimPy scheduler
  through `visit_hazard`), so they agree bit for bit either way.

- `sites_by`: the bits of an episode's sites involved by a time (`sim.engine.draws`), in one
  pass instead of four numpy passes over (patients x sites) arrays; the same integers.
- `patient_order`: the order of a chunk's event rows by patient, time and tie
  (`sim.engine.records`): a counting sort by patient and an insertion sort of each patient's few
  rows, instead of numpy's sorts; the same permutation.

`tests/test_kernels.py` compares each kernel with its numpy twin.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import numpy as np

__all__ = ["AVAILABLE", "philox_rows", "background_death_months", "detect",
           "visit_hazard", "patient_order", "seed_keys", "sites_by", "philox_pairs_below"]

AVAILABLE = importlib.util.find_spec("numba") is not None
"""Whether numba is installed; the model's functions use the kernels when it is."""


@cache
def _compiled():
    from sim.model import _compiled  # noqa: PLC0415  (imports numba: about 0.2 s)

    return _compiled


def philox_rows(key: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """(len(ids), width) uniforms: row i is the block of patient ``ids[i]`` in the stream of
    Philox key `key` (two uint64), as numpy's Philox with that key, advanced to the patient's
    block (``ids[i] * width / 4`` counters), draws it."""
    out = np.empty((len(ids), width))
    key = np.asarray(key, np.uint64)
    _compiled().philox_rows(key[0], key[1], np.ascontiguousarray(ids, np.int64), width, out)
    return out


def philox_pairs_below(keys: np.ndarray, ids: np.ndarray, first_below: float,
                       second_below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two uniforms of each patient's block in each of several streams of width 4 (the
    VISIT streams, one per month), compared as they are drawn: two boolean (len(ids),
    len(keys)) arrays, whether each first uniform is below `first_below` and each second below
    ``second_below[j]`` (a visit attended, a false positive: `sim.model.detection`)."""
    keys = np.ascontiguousarray(keys, np.uint64).reshape(-1, 2)
    first = np.empty((len(ids), len(keys)), np.bool_)
    second = np.empty((len(ids), len(keys)), np.bool_)
    _compiled().philox_pairs_below(keys, np.ascontiguousarray(ids, np.int64), float(first_below),
                                   np.ascontiguousarray(second_below, float), first, second)
    return first, second


def background_death_months(hazards: np.ndarray, age0: np.ndarray, sex: np.ndarray,
                            calendar_year: np.ndarray, exponential: np.ndarray, first_year: int,
                            last_year: int, max_age: int, window_years: int) -> np.ndarray:
    """`sim.model.lifetable.background_death_months`, patient by patient."""
    months = np.full(len(exponential), np.inf)
    _compiled().background_death_months(
        np.ascontiguousarray(hazards, float), np.ascontiguousarray(age0, np.int64),
        np.ascontiguousarray(sex, np.int64), np.ascontiguousarray(calendar_year, np.int64),
        np.ascontiguousarray(exponential, float), first_year, last_year, max_age, window_years,
        months)
    return months


def _rates(site_sensitivity: np.ndarray, patient_sensitivity: np.ndarray):
    """The miss-hazard rates of one examination per visit of a schedule (numpy's log1p, as the
    numpy path computes them)."""
    with np.errstate(divide="ignore"):
        return (np.ascontiguousarray(-np.log1p(-site_sensitivity), float),
                np.ascontiguousarray(-np.log1p(-patient_sensitivity), float))


def visit_hazard(times, visits, involved, doubling, producer, site_sensitivity,
                 patient_sensitivity, exponent: float, log2_onset: float) -> np.ndarray:
    """`sim.model.detection.visit_hazard`, pair by pair."""
    site_rate, marker_rate = _rates(site_sensitivity, patient_sensitivity)
    out = np.empty(len(times))
    _compiled().visit_hazards(
        np.ascontiguousarray(times, float), np.ascontiguousarray(visits, np.int64),
        np.ascontiguousarray(involved, float).reshape(-1, 4),
        np.ascontiguousarray(doubling, float), np.ascontiguousarray(producer, np.bool_),
        site_rate, marker_rate, float(exponent), float(log2_onset), out)
    return out


def detect(visit_months, onset, symptom, involved, doubling, producer, attended, exponential,
           site_sensitivity, patient_sensitivity, exponent: float,
           log2_onset: float) -> tuple[np.ndarray, np.ndarray]:
    """`sim.model.detection.detect`, patient by patient, each only until its disease is found."""
    site_rate, marker_rate = _rates(site_sensitivity, patient_sensitivity)
    n = len(onset)
    time, visit = np.empty(n), np.empty(n, np.int64)
    _compiled().detect(
        np.ascontiguousarray(visit_months, float), np.ascontiguousarray(onset, float),
        np.ascontiguousarray(symptom, float), np.ascontiguousarray(involved, float),
        np.ascontiguousarray(doubling, float), np.ascontiguousarray(producer, np.bool_),
        np.ascontiguousarray(attended, np.bool_), np.ascontiguousarray(exponential, float),
        site_rate, marker_rate, float(exponent), float(log2_onset), time, visit)
    return time, visit


def patient_order(row: np.ndarray, time: np.ndarray, tie: np.ndarray | None,
                  n: int) -> np.ndarray:
    """The order of event rows by (patient `row` in 0..n-1, `time`, `tie`, position; None:
    ties by position), as `sim.engine.records` sorts them with numpy."""
    row = np.ascontiguousarray(row, np.int64)
    tie = np.arange(len(row)) if tie is None else np.ascontiguousarray(tie, np.int64)
    return _compiled().patient_order(row, np.ascontiguousarray(time, float), tie, n)


def _words(value: int) -> list[int]:
    """A non-negative integer as numpy's SeedSequence takes it: 32-bit words, low first."""
    words = []
    while True:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
        if not value:
            return words


def seed_keys(seed: int, spawn_keys: list[tuple[int, ...]]) -> np.ndarray:
    """(len(spawn_keys), 2) uint64: row m is
    ``SeedSequence(seed, spawn_key=spawn_keys[m]).generate_state(2, np.uint64)``, for a
    non-negative integer seed and spawn keys of non-negative integers."""
    if seed < 0 or any(part < 0 for key in spawn_keys for part in key):
        raise ValueError("seed_keys: the seed and spawn keys must be non-negative integers")
    run = _words(int(seed))
    run += [0] * (4 - len(run))             # padded to the pool size (a spawn key follows)
    rows = [run + [word for part in key for word in _words(int(part))] for key in spawn_keys]
    starts = np.cumsum([0] + [len(row) for row in rows])
    out = np.empty((len(rows), 2), np.uint64)
    _compiled().seed_keys(np.array([w for row in rows for w in row], np.uint64), starts, out)
    return out


def sites_by(involved: np.ndarray, time: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    """Per row, the sum of ``bits[s]`` over the sites s with ``involved[i, s] <= time[i]``
    (int64), as ``((involved <= time[:, None]) * bits).sum(axis=1)``."""
    out = np.empty(len(time), np.int64)
    _compiled().sites_by(np.ascontiguousarray(involved, float), np.ascontiguousarray(time, float),
                         np.asarray(bits, np.int64), out)
    return out
