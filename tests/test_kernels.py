"""The compiled Philox kernel (`sim.model.kernels`) against numpy's own Philox: the same uniforms,
bit for bit, for any patients, widths, keys and streams; and the streams the same with and
without it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model import kernels, streams
from sim.model.streams import WIDTH, Purpose

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba (the 'fast' extra) missing")


def _numpy_block(key: np.ndarray, patient: int, width: int) -> np.ndarray:
    """Patient `patient`'s block of a width-`width` stream, as numpy's Philox draws it."""
    bit_generator = np.random.Philox(key=key)
    bit_generator.advance(patient * width // 4)
    return np.random.Generator(bit_generator).random(width)


@pytest.mark.parametrize("width", [4, 24, 32])
def test_rows_are_numpys_philox_bit_for_bit(width):
    rng = np.random.default_rng(width)
    for _ in range(5):
        key = rng.integers(0, 2**64, size=2, dtype=np.uint64)
        ids = rng.integers(0, 2**40, size=7)          # far counters, in no order
        ids[0] = 0
        got = kernels.philox_rows(key, ids, width)
        expected = np.array([_numpy_block(key, int(p), width) for p in ids])
        assert got.tobytes() == expected.tobytes()


def test_visit_pairs_are_the_first_two_uniforms_of_each_streams_block_compared():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**64, size=(5, 2), dtype=np.uint64)
    ids = np.array([9, 0, 123_456, 2])
    below = np.array([0.0, 0.3, 0.5, 0.7, 1.0])
    first, second = kernels.philox_pairs_below(keys, ids, 0.6, below)
    for j, key in enumerate(keys):
        block = np.array([_numpy_block(key, int(p), 4) for p in ids])
        assert np.array_equal(first[:, j], block[:, 0] < 0.6)
        assert np.array_equal(second[:, j], block[:, 1] < below[j])
    assert first.any() and not first.all()


def test_streams_are_the_same_with_and_without_the_kernel(monkeypatch):
    ids = np.array([4, 0, 9_999, 17, 250_000])
    compiled = (streams.uniforms(5, 2, Purpose.NATURAL_HISTORY, 100, 50, stream=(3,)),
                streams.uniforms_for(5, 2, Purpose.TREATMENT, ids, stream=(1,)),
                *streams.by_month(5, 2, ids, 2, np.array([0, 3, 12, 239])))
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    plain = (streams.uniforms(5, 2, Purpose.NATURAL_HISTORY, 100, 50, stream=(3,)),
             streams.uniforms_for(5, 2, Purpose.TREATMENT, ids, stream=(1,)),
             *streams.by_month(5, 2, ids, 2, np.array([0, 3, 12, 239])))
    assert [a.shape for a in compiled] == [(50, WIDTH[Purpose.NATURAL_HISTORY]), (5, 4), (5, 4),
                                           (5, 4)]
    for a, b in zip(compiled, plain):
        assert a.tobytes() == b.tobytes()


def test_background_deaths_are_the_numpy_inversion_bit_for_bit(monkeypatch):
    from sim.model.lifetable import background_death_months

    rng = np.random.default_rng(11)
    n = 20_000
    age, male = rng.uniform(18, 99, n), rng.random(n) < 0.5
    year = rng.integers(1975, 2020, n)           # before, in and after the table's years
    exponential = rng.exponential(size=n) * rng.choice([0.01, 1.0, 30.0], n)
    compiled = background_death_months(age, male, year, exponential)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    plain = background_death_months(age, male, year, exponential)
    assert compiled.tobytes() == plain.tobytes()
    assert np.isinf(compiled).any() and np.isfinite(compiled).mean() > 0.9   # both ends seen


def _first_episodes(n: int, seed: int):
    from sim.model.cohort import sample_cohort
    from sim.model.natural_history import draw_episode, site_thetas, cancer_death_hazard_ratio
    from sim.model.params import load_params

    params = load_params()[0]
    cohort = sample_cohort(params, "both", seed, 0, 0, n)
    u = streams.uniforms(seed, 0, Purpose.NATURAL_HISTORY, 0, n, stream=(0,))
    episode = draw_episode(u, site_thetas(cohort, params),
                           cancer_death_hazard_ratio(cohort, params), params)
    return params, episode


@pytest.mark.parametrize("name", ["baseline", "intensive", "cea-only", "yearly"])
def test_detection_kernel_finds_what_the_numpy_detection_finds(monkeypatch, name):
    """The same visit (or symptoms) and time for every patient; the miss hazards equal to the
    last bits (the C library's exp2 against numpy's SIMD one)."""
    from sim.model.detection import detect, visit_hazard
    from sim.model.policy import load_policy
    from sim._paths import packaged_scenarios

    params, episode = _first_episodes(20_000, 4)
    policy = load_policy(packaged_scenarios() / f"{name}.toml")
    rng = np.random.default_rng(5)
    attended = rng.random((20_000, policy.n_visits)) < 0.9
    exponential = rng.exponential(size=20_000)
    rows, visits = np.nonzero(attended & (policy.visit_months[None, :]
                                          >= episode.onset[:, None]))
    args = (policy.visit_months[visits], visits, episode.involved[rows],
            episode.doubling_months[rows], episode.producer[rows], policy, params)
    compiled = detect(episode, attended, exponential, policy, params), visit_hazard(*args)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    plain = detect(episode, attended, exponential, policy, params), visit_hazard(*args)
    assert compiled[0][0].tobytes() == plain[0][0].tobytes()          # times
    assert compiled[0][1].tobytes() == plain[0][1].tobytes()          # visits
    assert (compiled[0][1] >= 0).mean() > 0.05                        # some found at a visit
    np.testing.assert_allclose(compiled[1], plain[1], rtol=1e-13, atol=0)
    assert len(compiled[1]) > 1000


@pytest.mark.parametrize("with_tie", [True, False])
def test_event_row_order_is_the_numpy_order(with_tie):
    from sim.engine.records import _patient_order

    rng = np.random.default_rng(2)
    m, n = 50_000, 5_000
    row = rng.integers(0, n, m)
    time = rng.choice([0.0, 3.0, 6.0, 12.5, np.inf], m) + rng.integers(0, 3, m)  # many ties
    tie = rng.integers(0, 40, m) if with_tie else None
    expected = _patient_order(row, time, tie)
    got = kernels.patient_order(row, time, tie, n)
    assert np.array_equal(got, expected)
    keys = np.lexsort((np.arange(m), np.arange(m) if tie is None else tie, time, row))
    assert np.array_equal(got, keys)              # and lexicographic order itself


def test_stream_keys_are_numpys_seed_sequence_bit_for_bit():
    rng = np.random.default_rng(6)
    spawn = [tuple(int(x) for x in rng.integers(0, 2**40, rng.integers(1, 6)))
             for _ in range(200)] + [(0,), (1_000_003, 3, 7, 239)]
    for seed in (0, 1, 2**31, 2**32 + 7, 2**70 + 3):
        expected = [np.random.SeedSequence(seed, spawn_key=key).generate_state(2, np.uint64)
                    for key in spawn]
        assert kernels.seed_keys(seed, spawn).tobytes() == np.array(expected).tobytes()
    with pytest.raises(ValueError, match="non-negative"):
        kernels.seed_keys(-1, [(0,)])


def test_stream_keys_survive_the_cache_being_emptied(monkeypatch):
    # the cache of keys is emptied when it grows large; a call that finds some keys made and
    # others not gets them all (a run of a thousand draws fills it many times)
    monkeypatch.setattr(streams, "_KEYS", {})
    months = np.arange(0, 240, 2)
    below = np.full(len(months), 0.5)
    for replicate in range(150):         # each time all the months made but one
        streams.below_by_month(1, replicate, np.arange(3), 0, months[:-1], 0.5, below[:-1])
        attend, _ = streams.below_by_month(1, replicate, np.arange(3), 0, months, 0.5, below)
        assert attend.shape == (3, 120)
    assert 0 < len(streams._KEYS) <= 16384 + 120


def test_sites_by_a_time_are_the_numpy_masks():
    rng = np.random.default_rng(8)
    involved = np.where(rng.random((5000, 4)) < 0.4, np.inf, rng.exponential(20.0, (5000, 4)))
    time = np.where(rng.random(5000) < 0.1, np.inf, rng.exponential(20.0, 5000))
    bits = (1, 2, 4, 8)
    expected = ((involved <= time[:, None]) * np.array(bits)).sum(axis=1)
    got = kernels.sites_by(involved, time, bits)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert len(np.unique(got)) == 16


def test_visits_compared_as_drawn_are_the_numpy_comparisons(monkeypatch):
    ids = np.array([4, 0, 9_999, 17, 250_000])
    months = np.array([0, 3, 12, 60, 239])
    below = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    first, second = streams.by_month(7, 3, ids, 1, months)
    got = streams.below_by_month(7, 3, ids, 1, months, 0.8, below)
    assert np.array_equal(got[0], first < 0.8)
    assert np.array_equal(got[1], second < below[None, :])
    assert got[0].dtype == bool and got[0].any() and not got[0].all()
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    plain = streams.below_by_month(7, 3, ids, 1, months, 0.8, below)
    assert all(np.array_equal(a, b) for a, b in zip(got, plain))
