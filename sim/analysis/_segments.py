"""Operations on rows stored as consecutive segments (one segment per group), without a Python
loop over the segments.

A segment's rows are contiguous; segments follow each other in group order. Sorting within
segments and cumulative sums within segments lay the segments out as the rows of a padded 2-D
array and work along its second axis: each segment is then sorted and summed exactly as if it
were alone (the same floating-point additions in the same order), which a cumulative sum over the
whole array followed by subtracting offsets would not give. Segments of very unequal lengths are
padded per class of length (powers of two) so the padding never more than doubles the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = [
    "segment_starts",
    "segment_ids",
    "concatenated_ranges",
    "sort_within_groups",
    "sort_values_within_groups",
    "segment_cumsum",
]


def segment_starts(counts: np.ndarray) -> np.ndarray:
    """Index of the first row of each segment."""
    starts = np.zeros(len(counts), dtype=np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def segment_ids(counts: np.ndarray) -> np.ndarray:
    """Segment number of every row."""
    return np.repeat(np.arange(len(counts), dtype=np.intp), counts)


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + l) for s, l in zip(starts, lengths)])`` without the loop."""
    total = int(lengths.sum())
    shift = np.repeat(starts - segment_starts(lengths), lengths)
    return shift + np.arange(total, dtype=np.intp)


def _blocks(counts: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """Sets of segments (by number) padded together, with the padded width of each set."""
    n_rows, longest = int(counts.sum()), int(counts.max())
    if len(counts) * longest <= 2 * n_rows + 1024:
        yield np.arange(len(counts), dtype=np.intp), longest
        return
    size_class = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.intp)
    for cls in np.unique(size_class):  # at most ~64 classes of length, never one per group
        members = np.flatnonzero(size_class == cls)
        yield members, int(counts[members].max())


def _apply_padded(values: np.ndarray, counts: np.ndarray, fill, along_rows: Callable) -> np.ndarray:
    """Lay segments out as the rows of padded 2-D arrays, apply ``along_rows``, read back the rows."""
    if counts.min() == counts.max():  # equal lengths: the rows are a reshape, no padding
        return along_rows(values.reshape(counts.shape[0], -1)).reshape(-1)
    starts = segment_starts(counts)
    out = None
    for members, width in _blocks(counts):
        lengths = counts[members]
        rows = concatenated_ranges(starts[members], lengths) if len(members) < len(counts) else None
        grid = np.full((len(members), width), fill, dtype=values.dtype)
        inside = np.arange(width) < lengths[:, None]
        grid[inside] = values if rows is None else values[rows]
        result = along_rows(grid)
        if rows is None:
            return result[inside]
        if out is None:
            out = np.empty(values.shape[0], dtype=result.dtype)
        out[rows] = result[inside]
    return out


def sort_within_groups(time: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Permutation ordering rows by group code, then by time within each group (ties in any order)."""
    if n_groups == 1:
        return np.argsort(time)
    by_group = _order_of_codes(codes, n_groups)
    counts = np.bincount(codes, minlength=n_groups)
    counts = counts[counts > 0]
    grouped = time if by_group is None else time[by_group]
    local = _apply_padded(grouped, counts, np.inf, lambda grid: np.argsort(grid, axis=1))
    order = np.repeat(segment_starts(counts), counts) + local
    return order if by_group is None else by_group[order]


def sort_values_within_groups(values: np.ndarray, codes: np.ndarray, n_groups: int, fill) -> np.ndarray:
    """``values`` sorted by group code, then by value; ``fill`` must sort after every value."""
    if n_groups == 1:
        return np.sort(values)
    by_group = _order_of_codes(codes, n_groups)
    counts = np.bincount(codes, minlength=n_groups)
    grouped = values if by_group is None else values[by_group]
    return _apply_padded(grouped, counts[counts > 0], fill, lambda grid: np.sort(grid, axis=1))


def _order_of_codes(codes: np.ndarray, n_groups: int) -> np.ndarray | None:
    """Stable permutation grouping the rows by code; None if they are grouped already (as the
    simulation's output, sorted by scenario and replicate, is)."""
    if codes.shape[0] < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return None
    small = codes.astype(np.uint16) if n_groups <= 1 << 16 else codes  # numpy radix-sorts 16-bit keys
    return np.argsort(small, kind="stable")


def segment_cumsum(values: np.ndarray, counts: np.ndarray, reverse: bool = False,
                   overwrite: bool = False) -> np.ndarray:
    """Cumulative sum restarting at each segment (from the end of each segment if ``reverse``);
    ``overwrite`` lets it reuse ``values`` for the result."""
    if values.shape[0] == 0:
        return values.copy()
    if len(counts) == 1:
        if reverse:
            return np.cumsum(values[::-1])[::-1]
        return np.cumsum(values, out=values if overwrite else None)
    if reverse:
        return _apply_padded(values, counts, 0, lambda grid: np.cumsum(grid[:, ::-1], axis=1)[:, ::-1])
    return _apply_padded(values, counts, 0, lambda grid: np.cumsum(grid, axis=1))
