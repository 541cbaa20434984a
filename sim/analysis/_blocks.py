"""Rows sorted by (group, time), cut into blocks of equal group and time: the distinct times of
every group, with the numbers removed and at risk at each, all groups in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._segments import sort_within_groups

__all__ = ["TimeBlocks", "time_blocks", "sorted_time_blocks"]


@dataclass(frozen=True)
class TimeBlocks:
    """One entry per distinct (group, time); rows refer to the sorted order ``order``."""

    order: np.ndarray  # permutation of the input rows: sorted by group, then time
    starts: np.ndarray  # first sorted row of each block
    ends: np.ndarray  # one past the last sorted row of each block
    group: np.ndarray  # group code of each block (non-decreasing)
    time: np.ndarray  # the distinct time of each block
    at_risk: np.ndarray  # rows of the group with time >= the block's time
    blocks_per_group: np.ndarray  # number of blocks of each group, in group order

    @property
    def removed(self) -> np.ndarray:
        return self.ends - self.starts

    def count(self, flag_sorted: np.ndarray) -> np.ndarray:
        """Number of rows in each block where ``flag_sorted`` (in sorted order) is true."""
        cumulative = np.zeros(flag_sorted.shape[0] + 1, dtype=np.int64)
        np.cumsum(flag_sorted, out=cumulative[1:])
        return cumulative[self.ends] - cumulative[self.starts]

    def group_of_rows(self) -> np.ndarray:
        """Block number of every sorted row."""
        return np.repeat(np.arange(self.starts.shape[0], dtype=np.intp), self.removed)


def time_blocks(order: np.ndarray, time: np.ndarray, codes: np.ndarray, n_groups: int) -> TimeBlocks:
    """Blocks of rows already ordered by ``order`` (group, then time)."""
    time_sorted, codes_sorted = time[order], codes[order]
    n = time_sorted.shape[0]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(time_sorted[1:], time_sorted[:-1], out=new[1:])
    if n_groups > 1:
        new[1:] |= codes_sorted[1:] != codes_sorted[:-1]
    starts = np.flatnonzero(new)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = n
    group = codes_sorted[starts]
    if n_groups == 1:
        group_end = np.full(starts.shape[0], n, dtype=np.intp)
        blocks_per_group = np.array([starts.shape[0]])
    else:
        group_end = np.cumsum(np.bincount(codes, minlength=n_groups))[group]
        blocks_per_group = np.bincount(group, minlength=n_groups)
    return TimeBlocks(order, starts, ends, group, time_sorted[starts], group_end - starts, blocks_per_group)


def sorted_time_blocks(time: np.ndarray, codes: np.ndarray, n_groups: int) -> TimeBlocks:
    """Sort rows by (group, time) and cut them into blocks."""
    return time_blocks(sort_within_groups(time, codes, n_groups), time, codes, n_groups)
