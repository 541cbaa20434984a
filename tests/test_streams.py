"""The compiled Philox kernel (`sim.model.philox`) against numpy's own Philox: the same uniforms,
bit for bit, for any patients, widths, keys and streams; and the streams the same with and
without it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model import philox, streams
from sim.model.streams import WIDTH, Purpose

pytestmark = pytest.mark.skipif(not philox.AVAILABLE, reason="numba (the 'fast' extra) missing")


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
        got = philox.rows(key, ids, width)
        expected = np.array([_numpy_block(key, int(p), width) for p in ids])
        assert got.tobytes() == expected.tobytes()


def test_pairs_are_the_first_two_uniforms_of_each_streams_block():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**64, size=(5, 2), dtype=np.uint64)
    ids = np.array([9, 0, 123_456, 2])
    first, second = philox.pairs(keys, ids)
    for j, key in enumerate(keys):
        block = np.array([_numpy_block(key, int(p), 4) for p in ids])
        assert first[:, j].tobytes() == block[:, 0].tobytes()
        assert second[:, j].tobytes() == block[:, 1].tobytes()


def test_streams_are_the_same_with_and_without_the_kernel(monkeypatch):
    ids = np.array([4, 0, 9_999, 17, 250_000])
    compiled = (streams.uniforms(5, 2, Purpose.NATURAL_HISTORY, 100, 50, stream=(3,)),
                streams.uniforms_for(5, 2, Purpose.TREATMENT, ids, stream=(1,)),
                *streams.by_month(5, 2, ids, 2, np.array([0, 3, 12, 239])))
    monkeypatch.setattr(philox, "AVAILABLE", False)
    plain = (streams.uniforms(5, 2, Purpose.NATURAL_HISTORY, 100, 50, stream=(3,)),
             streams.uniforms_for(5, 2, Purpose.TREATMENT, ids, stream=(1,)),
             *streams.by_month(5, 2, ids, 2, np.array([0, 3, 12, 239])))
    assert [a.shape for a in compiled] == [(50, WIDTH[Purpose.NATURAL_HISTORY]), (5, 4), (5, 4),
                                           (5, 4)]
    for a, b in zip(compiled, plain):
        assert a.tobytes() == b.tobytes()
