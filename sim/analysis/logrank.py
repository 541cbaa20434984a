"""k-sample log-rank test, optionally stratified, for any number of groups (trials) in one pass.

The statistic is ``Z' V^+ Z`` over all arms but the last one present in the group, with ``Z`` the
observed minus expected events of each arm and ``V`` their hypergeometric covariance, both summed
over the distinct event times and over strata; as lifelines' ``multivariate_logrank_test`` (which
``logrank_test`` calls), to which an unstratified group is identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import chdtrc

from ._blocks import sorted_time_blocks
from ._input import as_durations, as_event_observed, as_grouping, factorize
from .kaplan_meier import group_columns

__all__ = ["logrank"]


def logrank(durations, event_observed, arm, groups=None, strata=None) -> pd.DataFrame:
    """Log-rank test of equal hazards across the arms of every group.

    Parameters
    ----------
    durations, event_observed : as in :func:`kaplan_meier`.
    arm : array-like
        Arm (treatment) label of every row; any number of arms.
    groups : as in :func:`kaplan_meier`; one test per group.
    strata : array-like, optional
        Stratum label of every row: observed minus expected and the covariance are computed within
        each stratum and summed over strata before the statistic is formed.

    Returns
    -------
    DataFrame with the group column(s), ``statistic`` (chi-square), ``df`` (arms present in the group
    minus 1) and ``p_value``; NaN statistic and p-value where fewer than two arms are present.
    """
    time = as_durations(durations)
    n = time.shape[0]
    observed = as_event_observed(event_observed, n)
    arm_code, arm_labels = factorize(arm, "arm", n)
    grouping = as_grouping(groups, n)
    n_arms, n_groups = arm_labels.shape[0], grouping.n_groups
    if strata is None:
        cell, n_cells, group_of_cell = grouping.codes, n_groups, np.arange(n_groups)
    else:
        stratum, stratum_labels = factorize(strata, "strata", n)
        cell, present = factorize(grouping.codes * stratum_labels.shape[0] + stratum, "strata", n)
        n_cells, group_of_cell = present.shape[0], present // stratum_labels.shape[0]

    if strata is None and n_arms == 2:
        dense = _two_arms_side_by_side(time, observed, arm_code, grouping)
        if dense is not None:
            return _table(grouping, *dense, arm_code)

    blocks = sorted_time_blocks(time, cell, n_cells)
    deaths_per_block = blocks.count(observed[blocks.order])
    with_deaths = np.flatnonzero(deaths_per_block)  # only times with an event contribute
    deaths = deaths_per_block[with_deaths].astype(float)
    at_risk = blocks.at_risk[with_deaths].astype(float)
    block_cell = blocks.group[with_deaths]
    block_group = group_of_cell[block_cell]
    # hypergeometric weight of each time; a time with one at risk adds nothing (lifelines: factor 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (at_risk - deaths) / (at_risk - 1)
    spread[~np.isfinite(spread)] = 1.0
    factor = spread * deaths / at_risk**2

    sorted_arm = arm_code[blocks.order]
    cell_end = np.cumsum(np.bincount(cell, minlength=n_cells))[block_cell]
    block_start = blocks.starts[with_deaths]
    modelled_arms = 1 if n_arms == 2 else n_arms  # of two arms, the second is the total minus the first
    arm_at_risk = np.empty((modelled_arms, with_deaths.shape[0]))
    for j in range(modelled_arms):  # a loop over arms (a handful), never over groups
        before = np.zeros(n + 1)
        np.cumsum(sorted_arm == j, out=before[1:])
        arm_at_risk[j] = before[cell_end] - before[block_start]
    group_and_arm = grouping.codes * n_arms + arm_code
    observed_per_arm = np.bincount(group_and_arm, observed, n_groups * n_arms)
    expected_per_arm = np.stack([np.bincount(block_group, a * (deaths / at_risk), n_groups)
                                 for a in arm_at_risk])
    excess = observed_per_arm.reshape(n_groups, n_arms).T[:modelled_arms] - expected_per_arm

    arms_present = np.bincount(group_and_arm, minlength=n_groups * n_arms).reshape(n_groups, n_arms) > 0
    n_present = arms_present.sum(axis=1)
    if n_arms == 2:
        covariance = factor * arm_at_risk[0] * (at_risk - arm_at_risk[0])
        variance = np.bincount(block_group, covariance, n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = np.where(variance > 0, excess[0] ** 2 / variance, 0.0)
    else:
        statistic = _quadratic_form(excess, arm_at_risk, at_risk, factor, block_group, arms_present)
    return _table(grouping, statistic, n_present)


def _table(grouping, statistic: np.ndarray, n_present: np.ndarray,
           arm_code: np.ndarray | None = None) -> pd.DataFrame:
    n_groups = grouping.n_groups
    if arm_code is not None:   # (the dense path counts the arms present here)
        group_and_arm = grouping.codes * 2 + arm_code
        n_present = (np.bincount(group_and_arm, minlength=n_groups * 2).reshape(n_groups, 2) > 0).sum(axis=1)
    statistic = np.where(n_present >= 2, statistic, np.nan)
    dof = n_present - 1
    columns = group_columns(grouping, np.arange(n_groups))
    p_value = np.where(dof >= 1, chdtrc(np.maximum(dof, 1), statistic), np.nan)
    columns.update(statistic=statistic, df=dof, p_value=p_value)
    return pd.DataFrame(columns, copy=False)


def _two_arms_side_by_side(time, observed, arm_code, grouping):
    """The two-arm test of groups of equal size stored one after another (the replicate trials
    of a power calculation), as a (groups x patients) array sorted along its rows: cumulative
    sums along a row instead of gathers and scatters. The same floating-point operations, in
    the same order, as the general path (a time without an event adds an exact zero), so the
    same statistic to the last bit. None (use the general path) when a group has tied times or
    the groups are not stored so."""
    n, n_groups = time.shape[0], grouping.n_groups
    if n_groups < 2 or n % n_groups:
        return None
    m = n // n_groups
    codes = grouping.codes
    groups = np.arange(n_groups)
    if not (np.all(codes[::m] == groups) and np.all(codes[m - 1::m] == groups)
            and np.all(codes[1:] >= codes[:-1])):
        return None
    order = np.argsort(time.reshape(n_groups, m), axis=1)
    times = np.take_along_axis(time.reshape(n_groups, m), order, axis=1)
    if np.any(times[:, 1:] == times[:, :-1]):
        return None
    deaths = np.take_along_axis(observed.reshape(n_groups, m), order, axis=1).astype(float)
    first = np.take_along_axis((arm_code == 0).reshape(n_groups, m), order, axis=1)
    at_risk = np.arange(m, 0, -1, dtype=float)
    arm_at_risk = np.cumsum(first[:, ::-1], axis=1)[:, ::-1].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (at_risk - deaths) / (at_risk - 1)
    spread[~np.isfinite(spread)] = 1.0
    factor = spread * deaths / at_risk**2
    expected = np.cumsum(arm_at_risk * (deaths / at_risk), axis=1)[:, -1]
    variance = np.cumsum(factor * arm_at_risk * (at_risk - arm_at_risk), axis=1)[:, -1]
    observed_first = np.bincount(codes, observed & (arm_code == 0), n_groups)
    excess = observed_first - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(variance > 0, excess ** 2 / variance, 0.0)
    return statistic, None


def _quadratic_form(excess, arm_at_risk, at_risk, factor, block_group, arms_present):
    """Z' V^+ Z per group over the arms present except the last, with batched pseudo-inverses."""
    n_arms, n_groups = excess.shape
    covariance = np.empty((n_groups, n_arms, n_arms))
    for j in range(n_arms):
        for k in range(j, n_arms):
            product = factor * arm_at_risk[j] * ((at_risk if j == k else 0) - arm_at_risk[k])
            covariance[:, j, k] = covariance[:, k, j] = np.bincount(block_group, product, n_groups)
    last_present = n_arms - 1 - np.argmax(arms_present[:, ::-1], axis=1)
    keep = arms_present.copy()
    keep[np.arange(n_groups), last_present] = False
    # arms left out get an identity row and column (scaled so the pseudo-inverse's cutoff is unchanged)
    # and a zero in Z: the form then equals the form over the arms kept
    pair = keep[:, :, None] & keep[:, None, :]
    scale = np.maximum(np.abs(np.diagonal(covariance, axis1=1, axis2=2)).max(axis=1), 1e-300)
    covariance = np.where(pair, covariance, 0.0)
    group_index, arm_index = np.nonzero(~keep)
    covariance[group_index, arm_index, arm_index] = scale[group_index]
    z = np.where(keep, excess.T, 0.0)
    return np.einsum("gi,gij,gj->g", z, np.linalg.pinv(covariance), z)
