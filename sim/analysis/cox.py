"""Cox proportional-hazards model with one covariate, Efron's method for ties, fitted for any number
of groups at once: each Newton iteration is one vectorized pass over all rows of all groups.

As lifelines' ``CoxPHFitter``, the covariate is standardized within each group (mean, sample standard
deviation) for the iterations and the coefficient and standard error are reported on the original
scale. Iterations run until the Newton step is below 1e-9 (relative), and that last step is taken, so
the coefficient is the maximum of the partial likelihood to rounding; lifelines' default stopping
rule stops earlier (its coefficients are then 1e-8 to 1e-6 away, relatively).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtri

from ._blocks import sorted_time_blocks
from ._input import as_covariate, as_durations, as_event_observed, as_grouping
from ._segments import segment_cumsum
from .kaplan_meier import group_columns

__all__ = ["cox_univariate"]

_STEP_TOLERANCE = 1e-9
_FLAT_INFORMATION = 1e-10


def cox_univariate(durations, event_observed, x, groups=None, *, alpha: float = 0.05,
                   max_iterations: int = 50) -> pd.DataFrame:
    """Univariate Cox model of every group, Efron ties, Wald inference.

    Parameters
    ----------
    durations, event_observed, groups : as in :func:`kaplan_meier`.
    x : array-like of float
        The covariate.
    alpha : float
        The interval is a ``1 - alpha`` interval.
    max_iterations : int
        Newton iterations allowed; groups not converged by then get NaN.

    Returns
    -------
    DataFrame with the group column(s), ``coef`` (log hazard ratio per unit of ``x``), ``hr``
    (``exp(coef)``), ``se`` (of ``coef``, from the observed information), ``lower`` and ``upper`` (the
    interval of ``hr``: ``exp(coef -+ z se)``), ``p_value`` (Wald chi-square, 1 df). NaN where ``x`` is
    constant within the group, the group has no event, or the partial likelihood has no finite maximum
    (the events separate the covariate values: the iterations do not converge, or stop where the
    likelihood is flat), where lifelines warns and reports a large coefficient with a huge error.
    """
    time = as_durations(durations)
    n = time.shape[0]
    observed = as_event_observed(event_observed, n)
    covariate = as_covariate(x, n)
    grouping = as_grouping(groups, n)
    n_groups, codes = grouping.n_groups, grouping.codes

    rows_per_group = np.bincount(codes, minlength=n_groups)
    mean = np.bincount(codes, covariate, n_groups) / rows_per_group
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(np.bincount(codes, (covariate - mean[codes]) ** 2, n_groups) / (rows_per_group - 1))
    has_events = np.bincount(codes, observed, n_groups) > 0
    valid = has_events & (sd > 0) & np.isfinite(sd)
    standardized = np.where(valid[codes], (covariate - mean[codes]) / np.where(valid, sd, 1.0)[codes], 0.0)

    data = _efron_data(time, observed, standardized, codes, n_groups, rows_per_group)
    beta, converged = _newton(data, valid, max_iterations)
    _, _, information = _efron(beta, data)

    # a flat partial likelihood (information ~ 0 on the standardized scale) is one whose maximum is at
    # infinity: the events separate the covariate values, and the iterations stopped on rounding
    ok = valid & converged & (information > _FLAT_INFORMATION)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(ok, beta / sd, np.nan)
        se = np.where(ok, np.sqrt(1.0 / information / (sd * sd)), np.nan)
    z = ndtri(1 - alpha / 2)
    columns = group_columns(grouping, np.arange(n_groups))
    with np.errstate(over="ignore", invalid="ignore"):
        columns.update(coef=coef, hr=np.exp(coef), se=se, lower=np.exp(coef - z * se),
                       upper=np.exp(coef + z * se), p_value=chdtrc(1, (coef / se) ** 2))
    return pd.DataFrame(columns, copy=False)


@dataclass(frozen=True)
class _EfronData:
    """Rows sorted by group and time, and every event row with its place in its tied set."""

    z: np.ndarray  # standardized covariate of the sorted rows
    row_group: np.ndarray
    rows_per_group: np.ndarray
    death_rows: np.ndarray  # sorted rows with an event
    death_group: np.ndarray
    death_risk_start: np.ndarray  # first sorted row of the risk set of each event row (its time's block)
    tie_starts: np.ndarray  # where each tied set of events starts within death_rows
    tie_of_death: np.ndarray  # tied set of each event row
    tie_fraction: np.ndarray  # l / d for the l-th (from 0) of the d events tied at a time
    n_groups: int


def _efron_data(time, observed, standardized, codes, n_groups, rows_per_group) -> _EfronData:
    blocks = sorted_time_blocks(time, codes, n_groups)
    order = blocks.order
    sorted_observed = observed[order]
    deaths_per_block = blocks.count(sorted_observed)
    with_deaths = np.flatnonzero(deaths_per_block > 0)
    death_rows = np.flatnonzero(sorted_observed)
    tie_sizes = deaths_per_block[with_deaths]
    tie_starts = np.zeros(with_deaths.shape[0], dtype=np.intp)
    np.cumsum(tie_sizes[:-1], out=tie_starts[1:])
    tie_of_death = np.repeat(np.arange(with_deaths.shape[0]), tie_sizes)
    rank_in_tie = np.arange(death_rows.shape[0]) - tie_starts[tie_of_death]
    return _EfronData(
        z=standardized[order],
        row_group=codes[order],
        rows_per_group=rows_per_group,
        death_rows=death_rows,
        death_group=codes[order][death_rows],
        death_risk_start=blocks.starts[with_deaths][tie_of_death],
        tie_starts=tie_starts,
        tie_of_death=tie_of_death,
        tie_fraction=rank_in_tie / tie_sizes[tie_of_death],
        n_groups=n_groups,
    )


def _efron(beta: np.ndarray, data: _EfronData):
    """Efron partial log-likelihood, score and information of every group at ``beta``."""
    with np.errstate(all="ignore"):  # a diverging coefficient (separation) overflows; it ends as NaN
        return _efron_sums(beta, data)


def _efron_sums(beta: np.ndarray, data: _EfronData):
    z = data.z
    phi = np.exp(beta[data.row_group] * z)
    phi_z = phi * z
    phi_zz = phi_z * z
    risk0, risk1, risk2 = (segment_cumsum(v, data.rows_per_group, reverse=True)[data.death_risk_start]
                           for v in (phi, phi_z, phi_zz))
    dead = data.death_rows
    tie0, tie1, tie2 = (np.add.reduceat(v[dead], data.tie_starts)[data.tie_of_death]
                        for v in (phi, phi_z, phi_zz))
    f = data.tie_fraction
    inverse = 1.0 / (risk0 - f * tie0)
    mean_z = (risk1 - f * tie1) * inverse
    mean_zz = risk2 * inverse - tie2 * (f * inverse)
    z_dead = z[dead]
    groups = data.n_groups
    loglik = np.bincount(data.death_group, beta[data.death_group] * z_dead + np.log(inverse), groups)
    score = np.bincount(data.death_group, z_dead - mean_z, groups)
    information = np.bincount(data.death_group, mean_zz - mean_z * mean_z, groups)
    return loglik, score, information


def _newton(data: _EfronData, valid: np.ndarray, max_iterations: int):
    """Newton–Raphson of all groups together, halving a step where the likelihood went down."""
    beta = np.zeros(data.n_groups)
    best_beta, best_loglik = beta.copy(), np.full(data.n_groups, -np.inf)
    active, converged = valid.copy(), np.zeros(data.n_groups, dtype=bool)
    for _ in range(max_iterations):
        loglik, score, information = _efron(beta, data)
        # went down by more than rounding: the step overshot
        worse = active & ~(loglik >= best_loglik - 1e-11 * (1.0 + np.abs(best_loglik)))
        improved = active & ~worse
        beta[worse] = (beta[worse] + best_beta[worse]) / 2
        best_beta[improved], best_loglik[improved] = beta[improved], loglik[improved]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(improved, score / information, 0.0)
        beta += step
        done = improved & (np.abs(step) <= _STEP_TOLERANCE * np.maximum(1.0, np.abs(beta)))
        converged |= done
        active &= ~done & np.isfinite(beta)
        if not active.any():
            break
    return beta, converged
