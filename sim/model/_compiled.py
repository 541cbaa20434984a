"""The compiled kernels (numba), imported only through `sim.model.kernels` and only when numba is
installed (the optional 'fast' extra). Each computes what a numpy function of the model computes;
`sim.model.kernels` says which, and the tests compare them.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Philox4x64-10 (Salmon et al., SC 2011; numpy's `philox.h`)
_M0, _M1 = 0xD2E7470EE14C6C93, 0xCA5A826395121157    # round multipliers
_W0, _W1 = 0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B    # key increments (Weyl)
_TO_DOUBLE = 1.0 / 9007199254740992.0                # 2**-53: numpy's `random()` of a word


@intrinsic
def _mulhilo(typingctx, a, b):
    """(high, low) 64-bit halves of the 128-bit product of two uint64: one LLVM multiplication."""
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
def philox_rows(key0, key1, ids, width, out):
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


# Detection (`sim.model.detection`)
@njit(cache=True, nogil=True, inline="always")
def _hazard(time, visit, involved, doubling, producer, site_rate, marker_rate, exponent,
            log2_onset):
    """Miss hazard of one visit: `sim.model.detection.visit_hazard` of one pair."""
    d3 = 3.0 * doubling
    imaging = 0.0
    burden = 0.0
    for s in range(4):
        age = time - involved[s]
        if age >= 0:
            log2_size = log2_onset + min(age / d3, 300.0)
            imaging += site_rate[visit, s] * np.exp2(exponent * log2_size)
            burden += np.exp2(3.0 * log2_size)
    marker = marker_rate[visit] * burden if producer and burden > 0 else 0.0
    return imaging + marker


@njit(cache=True, nogil=True)
def visit_hazards(times, visits, involved, doubling, producer, site_rate, marker_rate, exponent,
                  log2_onset, out):
    for i in range(len(times)):
        out[i] = _hazard(times[i], visits[i], involved[i], doubling[i], producer[i], site_rate,
                         marker_rate, exponent, log2_onset)


@njit(cache=True, nogil=True)
def detect(visits, onset, symptom, involved, doubling, producer, attended, exponential,
           site_rate, marker_rate, exponent, log2_onset, time, visit):
    for i in range(len(onset)):
        time[i] = symptom[i]
        visit[i] = -1
        can = False
        for j in range(len(visits)):
            if attended[i, j] and onset[i] <= visits[j] < symptom[i]:
                can = True
                break
        if not can:
            continue
        total = 0.0          # the running sum of the miss hazards, visit by visit
        for j in range(len(visits)):
            if attended[i, j] and onset[i] <= visits[j] < symptom[i]:
                total += _hazard(visits[j], j, involved[i], doubling[i], producer[i], site_rate,
                                 marker_rate, exponent, log2_onset)
            if total >= exponential[i]:
                time[i] = visits[j]
                visit[i] = j
                break


# Background deaths (`sim.model.lifetable`)
@njit(cache=True, nogil=True)
def background_death_months(hazards, age0, sex, calendar_year, exponential, first_year,
                            last_year, max_age, window_years, months):
    for i in range(len(exponential)):
        need = exponential[i]
        spent = 0.0                      # cumulative hazard of the windows already passed
        for first in range(0, max_age + 1, window_years):
            partial = 0.0                # the window's own running sum
            before = spent
            found = False
            for ahead in range(first, min(first + window_years, max_age + 1)):
                age = min(age0[i] + ahead, max_age)
                year = min(max(calendar_year[i] + ahead, first_year), last_year) - first_year
                rate = hazards[sex[i], year, age]
                partial += rate
                cumulative = spent + partial
                if cumulative >= need:
                    fraction = (need - before) / rate if np.isfinite(rate) else 0.0
                    months[i] = 12.0 * (ahead + fraction)
                    found = True
                    break
                before = cumulative
            if found:
                break
            spent = spent + partial


# Event rows (`sim.engine.records`)
@njit(cache=True, nogil=True)
def patient_order(row, time, tie, n):
    """The order of rows by (patient row, time, tie, position): a counting sort by patient,
    then each patient's few rows sorted by insertion (stable)."""
    starts = np.zeros(n + 1, np.int64)
    for r in row:
        starts[r + 1] += 1
    for p in range(n):
        starts[p + 1] += starts[p]
    order = np.empty(len(row), np.int64)
    fill = starts[:-1].copy()
    for i in range(len(row)):
        order[fill[row[i]]] = i
        fill[row[i]] += 1
    for p in range(n):
        for x in range(starts[p] + 1, starts[p + 1]):
            i = order[x]
            y = x - 1
            while y >= starts[p]:
                j = order[y]
                if time[j] > time[i] or (time[j] == time[i] and tie[j] > tie[i]):
                    order[y + 1] = j
                    y -= 1
                else:
                    break
            order[y + 1] = i
    return order


# numpy's SeedSequence (`numpy.random.bit_generator`): the Philox keys of streams
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _MASK = 0xCA01F9DD, 0x4973F715, 0xFFFFFFFF


@njit(cache=True, nogil=True, inline="always")
def _hashmix(value, hash_const):
    """(the mixed word, the next hash constant): 32-bit words held in uint64."""
    value = (value ^ hash_const) & np.uint64(_MASK)
    hash_const = (hash_const * np.uint64(_MULT_A)) & np.uint64(_MASK)
    value = (value * hash_const) & np.uint64(_MASK)
    return value ^ (value >> np.uint64(16)), hash_const


@njit(cache=True, nogil=True, inline="always")
def _mix(x, y):
    result = (np.uint64(_MIX_L) * x - np.uint64(_MIX_R) * y) & np.uint64(_MASK)
    return result ^ (result >> np.uint64(16))


@njit(cache=True, nogil=True)
def seed_keys(entropy, starts, out):
    """Row m of `out`: `SeedSequence` of the entropy words ``entropy[starts[m]:starts[m+1]]``
    (already assembled: run entropy padded to the pool size, then the spawn key), its
    ``generate_state(2, uint64)``."""
    pool = np.zeros(4, np.uint64)
    for m in range(len(starts) - 1):
        words = entropy[starts[m]:starts[m + 1]]
        hash_const = np.uint64(_INIT_A)
        for i in range(4):
            value = words[i] if i < len(words) else np.uint64(0)
            pool[i], hash_const = _hashmix(value, hash_const)
        for source in range(4):
            for target in range(4):
                if source != target:
                    value, hash_const = _hashmix(pool[source], hash_const)
                    pool[target] = _mix(pool[target], value)
        for source in range(4, len(words)):
            for target in range(4):
                value, hash_const = _hashmix(words[source], hash_const)
                pool[target] = _mix(pool[target], value)
        hash_b = np.uint64(_INIT_B)
        state = np.zeros(4, np.uint64)
        for i in range(4):
            value = (pool[i] ^ hash_b) & np.uint64(_MASK)
            hash_b = (hash_b * np.uint64(_MULT_B)) & np.uint64(_MASK)
            value = (value * hash_b) & np.uint64(_MASK)
            state[i] = value ^ (value >> np.uint64(16))
        out[m, 0] = state[0] | (state[1] << np.uint64(32))
        out[m, 1] = state[2] | (state[3] << np.uint64(32))


# Sites of an episode (`sim.engine.draws`)
@njit(cache=True, nogil=True)
def sites_by(involved, time, bits, out):
    for i in range(len(time)):
        mask = 0
        for s in range(involved.shape[1]):
            if involved[i, s] <= time[i]:
                mask += bits[s]
        out[i] = mask


@njit(cache=True, nogil=True)
def philox_pairs_below(keys, ids, first_below, second_below, first, second):
    """The first two uniforms of each patient's block (width 4: one block, at counter id + 1) in
    each stream of `keys`, compared as they are drawn: ``first[i, j]`` is whether the first is
    below `first_below`, ``second[i, j]`` whether the second is below ``second_below[j]``."""
    for i in range(len(ids)):
        counter = np.uint64(ids[i]) + np.uint64(1)
        for j in range(len(keys)):
            c0, c1, _, _ = _block(keys[j, 0], keys[j, 1], counter)
            first[i, j] = _double(c0) < first_below
            second[i, j] = _double(c1) < second_below[j]
