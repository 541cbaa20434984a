"""Read a Kaplan–Meier or cumulative-incidence table: values at given times, median survival with
its interval, restricted mean survival time with its standard error; every curve of the table at
once.

A table is what :func:`kaplan_meier` or :func:`cumulative_incidence` returns: the columns before
``time`` identify a curve (group columns, and ``cause``), rows are sorted by curve, then time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ._input import to_numpy
from ._segments import segment_cumsum, segment_ids

__all__ = ["survival_at", "cumulative_incidence_at", "median_survival", "rmst"]


def survival_at(km_table: pd.DataFrame, times) -> pd.DataFrame:
    """Kaplan–Meier estimate at ``times`` for every curve (a step function, as lifelines' ``predict``).

    Returns the curve columns, ``time``, ``at_risk`` (rows with duration >= time: exact without delayed
    entry), ``survival``, ``se``, ``lower``, ``upper``; before a curve's first time the survival is 1
    with se 0; after its last time the last value is carried forward. Rows: curve, then ``times``.
    """
    return _step_values(km_table, times, {"survival": 1.0, "se": 0.0, "lower": 1.0, "upper": 1.0})


def cumulative_incidence_at(incidence_table: pd.DataFrame, times) -> pd.DataFrame:
    """Cumulative incidence at ``times`` for every group and cause, as :func:`survival_at`."""
    fill = {"cumulative_incidence": 0.0, "se": 0.0, "lower": 0.0, "upper": 0.0}
    return _step_values(incidence_table, times, fill)


def median_survival(km_table: pd.DataFrame) -> pd.DataFrame:
    """Median survival time of every curve with its interval.

    As lifelines' ``median_survival_times``: the first time at which the estimate is at or below 0.5
    (compared exactly, in floating point), ``inf`` if it never is; ``lower`` and ``upper`` are the same
    for the ``lower`` and ``upper`` bounds of the pointwise interval (Brookmeyer–Crowley style, as
    ``median_survival_times(kmf.confidence_interval_)``).
    """
    keys, starts, _ = _curves(km_table)
    columns = _curve_labels(km_table, keys, starts)
    time = km_table["time"].to_numpy(dtype=float)
    for out, column in (("median", "survival"), ("lower", "lower"), ("upper", "upper")):
        reached = km_table[column].to_numpy(dtype=float) <= 0.5
        first = np.minimum.reduceat(np.where(reached, np.arange(time.shape[0]), time.shape[0]), starts)
        columns[out] = np.where(first < time.shape[0], time[np.minimum(first, time.shape[0] - 1)], np.inf)
    return pd.DataFrame(columns, copy=False)


def rmst(km_table: pd.DataFrame, horizon: float, *, alpha: float = 0.05) -> pd.DataFrame:
    """Restricted mean survival time, the area under each Kaplan–Meier curve from 0 to ``horizon``.

    Returns the curve columns, ``rmst``, ``se`` (standard error of the estimate: ``sqrt(sum A_i^2 d_i /
    (n_i (n_i - d_i)))`` over event times ``t_i <= horizon`` with ``A_i`` the area from ``t_i`` to the
    horizon, Klein & Moeschberger 4.5, as R's ``print.survfit(rmean=)``), ``lower``, ``upper`` (normal
    interval) and ``restricted_time_variance``: the variance of ``min(T, horizon)`` under the estimated
    curve, which is what lifelines' ``restricted_mean_survival_time(kmf, t, return_variance=True)``
    returns (not the variance of the estimate).
    """
    horizon = float(horizon)
    if not horizon >= 0 or np.isinf(horizon):
        raise ValueError(f"The 'horizon' argument must be finite and non-negative; got {horizon!r}.")
    keys, starts, counts = _curves(km_table)
    time = km_table["time"].to_numpy(dtype=float)
    survival = km_table["survival"].to_numpy(dtype=float)
    at_risk = km_table["at_risk"].to_numpy(dtype=np.int64)
    events = km_table["events"].to_numpy(dtype=np.int64)
    next_time = np.append(time[1:], np.inf)
    next_time[starts[1:] - 1] = np.inf  # last row of each curve
    begin, end = np.minimum(time, horizon), np.minimum(next_time, horizon)
    area = survival * (end - begin)  # each step's area up to the horizon
    moment = survival * (end * end - begin * begin) / 2  # and its integral of t S(t)
    first_time = np.minimum(time[starts], horizon)  # S = 1 before a curve's first time
    mean = first_time + np.add.reduceat(area, starts)
    second = first_time * first_time / 2 + np.add.reduceat(moment, starts)
    area_after = segment_cumsum(area, counts, reverse=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = events / (at_risk * (at_risk - events))
    greenwood[(at_risk <= events) | (time > horizon)] = 0.0
    se = np.sqrt(np.add.reduceat(area_after * area_after * greenwood, starts))
    z = ndtri(1 - alpha / 2)
    columns = _curve_labels(km_table, keys, starts)
    columns.update(rmst=mean, se=se, lower=mean - z * se, upper=mean + z * se,
                   restricted_time_variance=2 * second - mean * mean)
    return pd.DataFrame(columns, copy=False)


def _curves(table: pd.DataFrame):
    """Curve columns, first row and number of rows of each curve."""
    if "time" not in table.columns or table.shape[0] == 0:
        raise ValueError("The table argument must be a non-empty table from kaplan_meier or "
                         "cumulative_incidence.")
    keys = list(table.columns[: table.columns.get_loc("time")])
    time = table["time"].to_numpy(dtype=float)
    new = np.empty(time.shape[0], dtype=bool)
    new[0] = True
    np.less_equal(time[1:], time[:-1], out=new[1:])
    for key in keys:
        values = table[key].to_numpy()
        new[1:] |= values[1:] != values[:-1]
    starts = np.flatnonzero(new)
    return keys, starts, np.diff(np.append(starts, time.shape[0]))


def _curve_labels(table: pd.DataFrame, keys: list, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {key: table[key].to_numpy()[rows] for key in keys}


def _step_values(table: pd.DataFrame, times, fill: dict[str, float]) -> pd.DataFrame:
    keys, starts, counts = _curves(table)
    query = to_numpy(times if np.ndim(times) else [times], "times").astype(float)
    time = table["time"].to_numpy(dtype=float)
    n_rows, n_curves, m = time.shape[0], starts.shape[0], query.shape[0]
    curve = segment_ids(counts)
    # one integer key (curve, rank of time) orders rows and queries together
    ranks = np.unique(np.concatenate([time, query]), return_inverse=True)[1].reshape(-1)
    width = int(ranks.max()) + 1
    row_key = curve * width + ranks[:n_rows]
    query_curve = np.repeat(np.arange(n_curves), m)
    query_key = query_curve * width + np.tile(ranks[n_rows:], n_curves)
    last = np.searchsorted(row_key, query_key, side="right") - 1  # last row with time <= query
    found = (last >= 0) & (curve[np.maximum(last, 0)] == query_curve)
    after = np.searchsorted(row_key, query_key, side="left")  # first row with time >= query
    ahead = (after < n_rows) & (curve[np.minimum(after, n_rows - 1)] == query_curve)
    columns = _curve_labels(table, keys, np.repeat(starts, m))
    columns["time"] = np.tile(query, n_curves)
    columns["at_risk"] = np.where(ahead, table["at_risk"].to_numpy()[np.minimum(after, n_rows - 1)], 0)
    for name, before_first in fill.items():
        values = table[name].to_numpy(dtype=float)
        columns[name] = np.where(found, values[np.maximum(last, 0)], before_first)
    return pd.DataFrame(columns, copy=False)
