"""Aalen–Johansen cumulative incidence of competing causes, for any number of groups in one pass.

Estimate, variance (Greenwood-type delta method, Collett p. 411) and log-log interval as lifelines'
``AalenJohansenFitter``, except that tied times of different causes are used as they are: the
estimate handles ties exactly, so nothing is jittered, and the causes add up to one minus the
overall Kaplan–Meier estimate at every time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ._blocks import sorted_time_blocks
from ._input import as_durations, as_event_type, as_grouping, factorize
from ._segments import segment_cumsum, segment_starts
from .kaplan_meier import group_columns, product_limit

__all__ = ["cumulative_incidence"]


def cumulative_incidence(durations, event_type, groups=None, *, alpha: float = 0.05) -> pd.DataFrame:
    """Cumulative incidence of each cause, one row per group, cause and distinct time.

    Parameters
    ----------
    durations : array-like of float
        Time to the first event of any cause, or to censoring; non-negative.
    event_type : array-like of int
        0 where the time is censored, 1..K for the cause of the event.
    groups : as in :func:`kaplan_meier`.
    alpha : float
        The interval is a ``1 - alpha`` interval.

    Returns
    -------
    DataFrame with the group column(s), ``cause`` (every cause present in the data, in every group),
    ``time``, ``at_risk``, ``events`` (of this cause), ``cumulative_incidence`` (just after ``time``),
    ``se`` (square root of lifelines' ``variance_``), ``lower``, ``upper`` (lifelines' log-log
    interval; equal to the estimate where the variance is 0). Rows sorted by group, cause, time.

    Where everyone at risk has an event, lifelines' variance becomes NaN (an infinite weight times a
    zero difference); here that term is 0, as in the Greenwood variance of the Kaplan–Meier estimate.
    Events at time 0 count here; lifelines' estimate ignores them.
    """
    time = as_durations(durations)
    n = time.shape[0]
    cause_of_row = as_event_type(event_type, n)
    grouping = as_grouping(groups, n)
    blocks = sorted_time_blocks(time, grouping.codes, grouping.n_groups)
    code, labels = factorize(cause_of_row, "event_type", n)
    censoring = int(labels[0] == 0)
    causes = labels[censoring:]
    n_blocks, n_causes = blocks.starts.shape[0], causes.shape[0]

    with_event = cause_of_row[blocks.order] > 0
    events_all = blocks.count(with_event)
    cell = (code[blocks.order][with_event] - censoring) * n_blocks + blocks.block_of_rows()[with_event]
    events = np.bincount(cell, minlength=n_causes * n_blocks).reshape(n_causes, n_blocks)

    survival, _ = product_limit(blocks.at_risk, events_all, blocks.blocks_per_group)
    lagged = np.empty_like(survival)  # overall survival just before each time
    lagged[1:] = survival[:-1]
    lagged[np.cumsum(blocks.blocks_per_group) - blocks.blocks_per_group] = 1.0

    n_at_risk = blocks.at_risk.astype(float)
    curves = np.tile(blocks.blocks_per_group, n_causes)  # one segment per (cause, group)

    def cumulate(values: np.ndarray) -> np.ndarray:
        return segment_cumsum(values.reshape(-1), curves).reshape(n_causes, n_blocks)

    incidence = cumulate(events / n_at_risk * lagged)
    variance = _variance(incidence, events, events_all, n_at_risk, lagged, cumulate)
    lower, upper = _bounds(incidence, variance, alpha)

    columns = group_columns(grouping, np.tile(blocks.group, n_causes))
    columns.update(
        cause=np.repeat(causes, n_blocks),
        time=np.tile(blocks.time, n_causes),
        at_risk=np.tile(blocks.at_risk.astype(np.int64), n_causes),
        events=events.reshape(-1),
        cumulative_incidence=incidence.reshape(-1),
        se=np.sqrt(variance).reshape(-1),
        lower=lower.reshape(-1),
        upper=upper.reshape(-1),
    )
    table = pd.DataFrame(columns, copy=False)
    if grouping.n_groups == 1 or n_causes < 2:
        return table
    return table.take(_group_major(blocks.blocks_per_group, n_causes)).reset_index(drop=True)


def _group_major(blocks_per_group: np.ndarray, n_causes: int) -> np.ndarray:
    """Rows of the (cause, group, time) grid in (group, cause, time) order, without a sort."""
    start = np.repeat(segment_starts(blocks_per_group), blocks_per_group)  # first block of each block's group
    size = np.repeat(blocks_per_group, blocks_per_group)
    n_blocks = start.shape[0]
    destination = n_causes * start + np.arange(n_causes)[:, None] * size + (np.arange(n_blocks) - start)
    order = np.empty(n_causes * n_blocks, dtype=np.intp)
    order[destination.reshape(-1)] = np.arange(n_causes * n_blocks)
    return order


def _variance(incidence, events, events_all, n_at_risk, lagged, cumulate):
    """Var F_j(t) = sum (F_j(t) - F_j(t_i))^2 d_i / (n_i (n_i - d_i))
                   + sum S(t_i-)^2 d_ji (n_i - d_ji) / n_i^3
                   - 2 sum (F_j(t) - F_j(t_i)) S(t_i-) d_ji / n_i^2,
    over times t_i <= t, with the squares expanded (and summed in the order) as lifelines does."""
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = events_all / n_at_risk / (n_at_risk - events_all)
    weight[n_at_risk <= events_all] = 0.0
    quadratic = cumulate(np.broadcast_to(weight, incidence.shape).copy())
    linear = cumulate(-(2 * weight * incidence))
    constant = cumulate(weight * incidence**2)
    second = cumulate(lagged**2 * events * (n_at_risk - events) / n_at_risk**3)
    cross = lagged * events / n_at_risk**2
    cross_linear, cross_constant = cumulate(cross), cumulate(-(cross * incidence))
    first = constant + linear * incidence + quadratic * incidence**2
    variance = first + second - 2 * (cross_constant + cross_linear * incidence)
    return np.maximum(variance, 0.0)  # the expanded sums can round a zero variance to -1e-17


def _bounds(incidence, variance, alpha):
    z = ndtri(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        transformed = np.log(-np.log(incidence))
        se_transformed = np.sqrt(variance) / (incidence * np.absolute(np.log(incidence)))
        lower = np.exp(-np.exp(transformed + z * se_transformed))
        upper = np.exp(-np.exp(transformed - z * se_transformed))
    degenerate = ~(variance > 0) | (incidence <= 0) | (incidence >= 1)
    lower[degenerate] = incidence[degenerate]
    upper[degenerate] = incidence[degenerate]
    return lower, upper
