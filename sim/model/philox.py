"""numpy's Philox4x64-10, compiled, with random access by counter: the uniforms of any rows of a
stream without drawing the rows between them.

`sim.model.streams` gives patient ``p`` the counters ``p * width / 4 + 1 .. (p + 1) * width / 4``
of its stream (numpy's Philox adds one to its counter before it draws a block of four 64-bit
words). numpy can only reach a counter by making a generator and advancing it, about 10
microseconds, so it draws whole chunks: a chunk's later episodes (a few hundred patients of ten
thousand) cost as much as its first. Here each block is computed from its counter (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011; numpy's `philox.h`): the 64 x 64 -> 128
bit products of a round are one LLVM multiplication, and a word becomes a double as numpy's
`random()` makes it, ``(word >> 11) * 2**-53``. The uniforms are numpy's bit for bit
(`tests/test_streams.py` compares them on random rows, widths and keys).

numba is an optional dependency (`pip install 'crlm-sim[fast]'`): `AVAILABLE` says whether it is
installed; without it, `sim.model.streams` draws whole blocks with numpy's Philox.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AVAILABLE", "rows", "pairs"]

try:
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic
except ImportError:                       # the optional extra is not installed
    AVAILABLE = False
else:
    AVAILABLE = True

if AVAILABLE:
    _M0, _M1 = 0xD2E7470EE14C6C93, 0xCA5A826395121157    # round multipliers
    _W0, _W1 = 0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B    # key increments (Weyl)
    _TO_DOUBLE = 1.0 / 9007199254740992.0                # 2**-53

    @intrinsic
    def _mulhilo(typingctx, a, b):
        """(high, low) 64-bit halves of the 128-bit product of two uint64."""
        signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

        def codegen(context, builder, sig, args):
            wide = ir.IntType(128)
            product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
            low = builder.trunc(product, ir.IntType(64))
            high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
            return context.make_tuple(builder, sig.return_type, [high, low])

        return signature, codegen

    @njit(cache=True, nogil=True, inline="always")
    def _block(key0, key1, counter):
        """The four words of Philox4x64-10 at `counter` (below 2**64) under key (key0, key1)."""
        m0, m1 = np.uint64(_M0), np.uint64(_M1)
        c0, c1, c2, c3 = counter, np.uint64(0), np.uint64(0), np.uint64(0)
        k0, k1 = key0, key1
        for r in range(10):
            if r:
                k0 += np.uint64(_W0)
                k1 += np.uint64(_W1)
            hi0, lo0 = _mulhilo(m0, c0)
            hi1, lo1 = _mulhilo(m1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        return c0, c1, c2, c3

    @njit(cache=True, nogil=True, inline="always")
    def _double(word):
        return np.float64(word >> np.uint64(11)) * _TO_DOUBLE

    @njit(cache=True, nogil=True)
    def _rows(key0, key1, ids, width, out):
        blocks = width // 4
        for i in range(len(ids)):
            base = np.uint64(ids[i]) * np.uint64(blocks)
            for b in range(blocks):
                # numpy increments its counter, then draws
                c0, c1, c2, c3 = _block(key0, key1, base + np.uint64(b + 1))
                out[i, 4 * b] = _double(c0)
                out[i, 4 * b + 1] = _double(c1)
                out[i, 4 * b + 2] = _double(c2)
                out[i, 4 * b + 3] = _double(c3)

    @njit(cache=True, nogil=True)
    def _pairs(keys, ids, first, second):
        for i in range(len(ids)):
            counter = np.uint64(ids[i]) + np.uint64(1)      # width 4: one block per patient
            for j in range(len(keys)):
                c0, c1, _, _ = _block(keys[j, 0], keys[j, 1], counter)
                first[i, j] = _double(c0)
                second[i, j] = _double(c1)


def rows(key: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """(len(ids), width) uniforms: row i is the block of patient ``ids[i]`` in the stream of
    Philox key `key` (two uint64), exactly as numpy's Philox with that key, advanced to the
    patient's block, draws it. Requires numba (`AVAILABLE`)."""
    out = np.empty((len(ids), width))
    key = np.asarray(key, np.uint64)
    _rows(key[0], key[1], np.ascontiguousarray(ids, np.int64), width, out)
    return out


def pairs(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two uniforms of each patient's block in each of several streams of width 4 (the
    VISIT streams, one per month): two (len(ids), len(keys)) arrays, column j from the stream
    of key ``keys[j]``. Requires numba (`AVAILABLE`)."""
    keys = np.ascontiguousarray(keys, np.uint64).reshape(-1, 2)
    first, second = np.empty((len(ids), len(keys))), np.empty((len(ids), len(keys)))
    _pairs(keys, np.ascontiguousarray(ids, np.int64), first, second)
    return first, second
