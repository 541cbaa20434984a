"""Rows sorted by (group, time), cut into blocks of equal group and time: the distinct times of
every group, with the numbers removed and at risk at each, all groups in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._segments import sort_within_groups

__all__ = ["TimeBlocks", "time_blocks", "sorted_time_blocks"]


@dataclass(frozen=True)
class TimeBlocks:
    """One entry per distinct (group, time) of rows sorted by group, then time."""

    order: np.ndarray | None  # permutation of the input rows into the sorted order, if one was made
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
        if self.starts.shape[0] == flag_sorted.shape[0]:  # no ties: one row per block
            return flag_sorted.astype(np.int64)
        cumulative = np.zeros(flag_sorted.shape[0] + 1, dtype=np.int64)
        np.cumsum(flag_sorted, out=cumulative[1:])
        return cumulative[self.ends] - cumulative[self.starts]

    def block_of_rows(self) -> np.ndarray:
        """Block number of every sorted row."""
        return np.repeat(np.arange(self.starts.shape[0], dtype=np.intp), self.removed)


def time_blocks(time_sorted: np.ndarray, rows_per_group: np.ndarray,
                order: np.ndarray | None = None) -> TimeBlocks:
    """Blocks of rows sorted by group code, then time; ``rows_per_group`` counts each group's rows."""
    n, n_groups = time_sorted.shape[0], rows_per_group.shape[0]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(time_sorted[1:], time_sorted[:-1], out=new[1:])
    if n_groups > 1:
        group_ends = np.cumsum(rows_per_group)
        new[group_ends[:-1]] = True
    starts = np.flatnonzero(new)
    if starts.shape[0] == n:  # no ties
        ends, distinct_time = starts + 1, time_sorted
    else:
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = n
        distinct_time = time_sorted[starts]
    if n_groups == 1:
        group = np.zeros(starts.shape[0], dtype=np.intp)
        at_risk = n - starts
        blocks_per_group = np.array([starts.shape[0]])
    else:
        blocks_per_group = np.diff(np.concatenate([[0], np.searchsorted(starts, group_ends)]))
        group = np.repeat(np.arange(n_groups, dtype=np.intp), blocks_per_group)
        at_risk = group_ends[group] - starts
    return TimeBlocks(order, starts, ends, group, distinct_time, at_risk, blocks_per_group)


def sorted_time_blocks(time: np.ndarray, codes: np.ndarray, n_groups: int) -> TimeBlocks:
    """Sort rows by (group, time) and cut them into blocks; every group must have a row."""
    order = sort_within_groups(time, codes, n_groups)
    return time_blocks(time[order], np.bincount(codes, minlength=n_groups), order)
