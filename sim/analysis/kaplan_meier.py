"""Kaplan–Meier estimate of the survival function of any number of groups in one pass.

Same estimate, Greenwood variance and log-log interval as lifelines' ``KaplanMeierFitter``, computed
with the same floating-point operations in the same order, so a group's curve equals lifelines'
curve for that group's rows. The one sort is of a single integer key per row that packs the time
with the event flag.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ._blocks import TimeBlocks, time_blocks
from ._input import Grouping, as_durations, as_entry, as_event_observed, as_grouping
from ._segments import segment_cumsum, sort_values_within_groups

__all__ = ["kaplan_meier", "product_limit", "log_log_bounds", "group_columns"]


def kaplan_meier(durations, event_observed, groups=None, entry=None, *,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan–Meier table: one row per group and distinct time of ``durations``.

    Parameters
    ----------
    durations : array-like of float
        Time to the event or to censoring; non-negative.
    event_observed : array-like of bool or 0/1
        True where the event was observed, False where the time is censored.
    groups : None, array-like, list or tuple of array-likes, dict or DataFrame of array-likes
        Group labels of every row. One array gives a column ``group``; a list or tuple of arrays gives
        ``group_0``, ``group_1``, ...; a dict or DataFrame gives one column per key. Groups are listed
        in sorted order of their labels (the first array varying slowest).
    entry : array-like of float, optional
        Left truncation (delayed entry), as lifelines' ``entry``: a row is at risk at times after its
        entry, and rows entering at their group's earliest entry time are at risk from that time on.
    alpha : float
        The interval is a ``1 - alpha`` interval.

    Returns
    -------
    DataFrame with the group column(s), ``time``, ``at_risk`` (rows still under observation at
    ``time``), ``events``, ``censored``, ``survival`` (the estimate just after ``time``), ``se``
    (Greenwood standard error of ``survival``: ``survival * sqrt(sum d / (n (n - d)))``), ``lower`` and
    ``upper`` (log-log interval, lifelines' ``confidence_interval_``). Rows are sorted by group, then
    time.
    """
    time = as_durations(durations)
    n = time.shape[0]
    observed = as_event_observed(event_observed, n)
    grouping = as_grouping(groups, n)
    if entry is None:
        time_sorted, observed_sorted = _sort_packed(time, observed, grouping)
        blocks = time_blocks(time_sorted, grouping.sizes())
    else:
        blocks = _blocks_with_entry(time, as_entry(entry, time), grouping)
        observed_sorted = observed[blocks.order]
    events = blocks.count(observed_sorted)
    survival, variance = product_limit(blocks.at_risk, events, blocks.blocks_per_group)
    lower, upper = log_log_bounds(survival, variance, alpha)
    columns = group_columns(grouping, blocks.group)
    columns.update(
        time=blocks.time,
        at_risk=blocks.at_risk.astype(np.int64, copy=False),
        events=events,
        censored=blocks.removed - events,
        survival=survival,
        se=survival * np.sqrt(variance),
        lower=lower,
        upper=upper,
    )
    return pd.DataFrame(columns, copy=False)


def group_columns(grouping: Grouping, group_of_row: np.ndarray) -> dict[str, np.ndarray]:
    """Label columns for output rows that belong to the given groups."""
    return {name: labels[group_of_row] for name, labels in grouping.labels.items()}


def product_limit(at_risk: np.ndarray, events: np.ndarray, blocks_per_group: np.ndarray):
    """Survival and Greenwood variance of log-survival at each block, restarting at each group.

    As lifelines: ``exp(cumsum(log(n - d) - log(n)))`` and ``cumsum(d / (n (n - d)))`` where a time at
    which everyone at risk dies adds 0 to the variance, and a time with nobody at risk or with more
    events than rows at risk (possible with delayed entry: a row entering at its event time is not at
    risk then) leaves both unchanged.
    """
    # In-place steps below spare fresh megabyte-sized arrays (page faults cost as much as the
    # arithmetic); each expression keeps lifelines' order of operations.
    n, d = at_risk.astype(float), events.astype(float)  # exact: counts are far below 2**53
    remaining = n - d
    with np.errstate(divide="ignore", invalid="ignore"):
        log_factor = np.log(remaining)
        log_factor -= np.log(n)
        greenwood = np.multiply(n, remaining, out=n)
        np.divide(d, greenwood, out=greenwood)
    log_factor[(at_risk <= 0) | (at_risk < events)] = 0.0
    greenwood[at_risk <= events] = 0.0
    survival = segment_cumsum(log_factor, blocks_per_group, overwrite=True)
    np.exp(survival, out=survival)
    return survival, segment_cumsum(greenwood, blocks_per_group, overwrite=True)


def log_log_bounds(survival: np.ndarray, variance_of_log: np.ndarray, alpha: float):
    """lifelines' exponential Greenwood ("log-log") interval of survival ``S`` given the variance ``V``
    of ``log S``: ``exp(-exp(log(-log S) -+ z sqrt(V) / log S))``, 1 where undefined (``S`` = 1)."""
    z = ndtri(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.log(survival)
        spread = np.sqrt(variance_of_log)
        spread *= z
        spread /= v
        centre = np.log(np.negative(v, out=v), out=v)
        lower, upper = centre - spread, np.add(centre, spread, out=centre)
        for bound in (lower, upper):
            np.exp(bound, out=bound)
            np.negative(bound, out=bound)
            np.exp(bound, out=bound)
            bound[np.isnan(bound)] = 1.0
    return lower, upper


def _sort_packed(time: np.ndarray, observed: np.ndarray, grouping: Grouping):
    """Times and event flags sorted by group, then time, with one sort of a single uint64 key.

    The bits of a non-negative float64 read as an unsigned integer increase with its value and leave
    the top (sign) bit free: shifted left by one they make room for the event flag. Sorting the keys
    (no index array, no gathers) is markedly faster than ``argsort`` followed by two gathers.
    """
    shift = np.uint64(1)
    key = np.ascontiguousarray(time).view(np.uint64) << shift
    key |= observed.view(np.uint8)
    if grouping.n_groups == 1:
        key.sort()
    else:
        key = sort_values_within_groups(key, grouping.codes, grouping.n_groups, np.iinfo(np.uint64).max)
    observed_sorted = (key & shift).astype(bool)
    key >>= shift
    return key.view(np.float64), observed_sorted


def _blocks_with_entry(time: np.ndarray, entry: np.ndarray, grouping: Grouping) -> TimeBlocks:
    """Blocks whose numbers at risk count delayed entries: one sort of exits and entries together.

    At equal times the order is: entries at the group's earliest entry time, exits, later entries;
    so a row is at risk at its exit time, and after (not at) a late entry time.
    """
    n, codes = time.shape[0], grouping.codes
    first_entry = np.full(grouping.n_groups, np.inf)
    np.minimum.at(first_entry, codes, entry)
    entry_kind = np.where(entry == first_entry[codes], 0, 2)
    kind = np.concatenate([np.ones(n, dtype=np.int8), entry_kind.astype(np.int8)])
    merged = np.lexsort((kind, np.concatenate([time, entry]), np.concatenate([codes, codes])))
    is_exit = kind[merged] == 1
    # entries minus exits before each record; each group holds as many entries as exits, so the
    # counts of earlier groups cancel and no per-group offset is needed
    in_risk_set = np.cumsum(np.where(is_exit, -1, 1)) + is_exit
    order = merged[is_exit]  # exit rows, sorted by group, then time
    blocks = time_blocks(time[order], grouping.sizes(), order)
    at_risk = in_risk_set[is_exit][blocks.starts]
    return replace(blocks, at_risk=at_risk)
