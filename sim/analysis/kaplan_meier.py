"""Kaplan–Meier estimate of the survival function of any number of groups in one pass.

Same estimate, Greenwood variance and log-log interval as lifelines' ``KaplanMeierFitter``, computed
with the same floating-point operations in the same order, so a group's curve equals lifelines'
curve for that group's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ._blocks import TimeBlocks, sorted_time_blocks, time_blocks
from ._input import Grouping, as_durations, as_entry, as_event_observed, as_grouping
from ._segments import segment_cumsum

__all__ = ["kaplan_meier", "product_limit", "log_log_bounds", "group_columns"]


def kaplan_meier(durations, event_observed, groups=None, entry=None, *, alpha: float = 0.05) -> pd.DataFrame:
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
    ``time``), ``events``, ``censored``, ``survival`` (the estimate just after ``time``), ``se`` (Greenwood
    standard error of ``survival``: ``survival * sqrt(sum d / (n (n - d)))``), ``lower`` and ``upper``
    (log-log interval, lifelines' ``confidence_interval_``). Rows are sorted by group, then time.
    """
    time = as_durations(durations)
    n = time.shape[0]
    observed = as_event_observed(event_observed, n)
    grouping = as_grouping(groups, n)
    if entry is None:
        blocks = sorted_time_blocks(time, grouping.codes, grouping.n_groups)
    else:
        blocks = _blocks_with_entry(time, as_entry(entry, time), grouping)
    events = blocks.count(observed[blocks.order])
    survival, variance = product_limit(blocks.at_risk, events, blocks.blocks_per_group)
    lower, upper = log_log_bounds(survival, variance, alpha)
    columns = group_columns(grouping, blocks.group)
    columns.update(
        time=blocks.time,
        at_risk=blocks.at_risk.astype(np.int64),
        events=events,
        censored=blocks.removed.astype(np.int64) - events,
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
    which everyone at risk dies adds 0 to the variance, and a time with nobody at risk (possible with
    delayed entry) leaves both unchanged.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_factor = np.log(at_risk - events) - np.log(at_risk)
        greenwood = events / (at_risk * (at_risk - events))
    log_factor[at_risk <= 0] = 0.0
    greenwood[at_risk <= events] = 0.0
    survival = np.exp(segment_cumsum(log_factor, blocks_per_group))
    return survival, segment_cumsum(greenwood, blocks_per_group)


def log_log_bounds(survival: np.ndarray, variance_of_log: np.ndarray, alpha: float):
    """lifelines' exponential Greenwood ("log-log") interval; 1 where undefined (survival 1)."""
    z = ndtri(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.log(survival)
        lower = np.exp(-np.exp(np.log(-v) - z * np.sqrt(variance_of_log) / v))
        upper = np.exp(-np.exp(np.log(-v) + z * np.sqrt(variance_of_log) / v))
    lower[np.isnan(lower)] = 1.0
    upper[np.isnan(upper)] = 1.0
    return lower, upper


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
    blocks = time_blocks(order, time, codes, grouping.n_groups)
    at_risk = in_risk_set[is_exit][blocks.starts]
    return TimeBlocks(order, blocks.starts, blocks.ends, blocks.group, blocks.time, at_risk, blocks.blocks_per_group)
