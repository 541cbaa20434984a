"""Hazard-ratio trials analysed at several looks, or against a non-inferiority margin.

A replicate trial is a set of patients with an entry time, a time from entry to the event (inf
if none is simulated), a time to dropout and an arm. The analysis at calendar time L (months from
the start of accrual) sees the patients entered by L, each followed to the first of its event, its
dropout and L. The statistic at a look is the Cox Wald z of the experimental arm,
``z = (log HR - log margin) / se`` (margin 1 for superiority): negative when the experimental arm
does better than the margin.

Looks (`looks`: information fractions f_1 < ... < f_K = 1): the last look is the design's final
analysis (at accrual + follow-up, or at the design's number of events); look k < K is when the
trial reaches ``ceil(f_k D)`` events, D the mean number of events at the final analysis over the
replicates at that sample size (the planned maximum information), or the final analysis if it
comes first. Looks at event counts (`events`: e_1 < ... < e_K): look k is when the trial reaches
e_k events, or the design's end (accrual + follow-up) if that comes first, at fractions e_k / e_K.
The boundaries come from an alpha-spending function at the planned fractions
(`sim.studies.power.sequential`); a replicate stops at the first look whose statistic crosses:

- superiority (two-sided `alpha`): |z_k| >= b_k;
- non-inferiority (one-sided `alpha`, margin m > 1 on the hazard ratio): z_k <= -b_k, i.e. the
  upper confidence bound of the hazard ratio falls below the margin;
- equivalence (two one-sided tests, each at one-sided `alpha`, margins 1/m and m): both reject at
  the same look, ``(log HR - log m) / se <= -b_k`` and ``(log HR + log m) / se >= b_k``, i.e. the
  two-sided 1 - 2 alpha confidence interval of the hazard ratio lies within (1/m, m).

Reported per sample size: power (stopping for success at any look), the probability of stopping at
each look, the events and calendar month of each look (mean and 2.5-97.5 percentiles over the
replicates), the expected events and duration (at the look where the trial stops, else at the
last). The analytic comparator is Schoenfeld's normal approximation with the margin, with the
crossing probabilities of the same boundaries for a drift ``(log m - log HR) sqrt(D p (1 - p))``
(equivalence: the probability that the estimate falls within both margins' boundaries,
`sim.studies.power.sequential.equivalence_probabilities`; with one analysis, the two one-sided
tests' ``Phi(d - c - u) + Phi(d - c + u) - 1``, d = log m sqrt(I), u = log HR sqrt(I)).

Futility (`futility`, a spending function for the type II error 1 - target power; one-sided
designs): at look k < K a replicate also stops, for futility, when ``-z_k <= a_k``, the lower
boundaries spending beta under the drift the model's effect gives at that sample size
(`sim.studies.power.sequential.futility_boundaries`; non-binding: the efficacy boundaries are
those without futility, so the type I error holds whether or not a trial stops for futility).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ndtr

from sim.analysis import cox_univariate
from sim.studies.power.sequential import crossing_probabilities, spending_boundaries

__all__ = ["TrialData", "LookPlan", "analyse_looks", "look_columns", "analytic_sequential_power"]


@dataclass(frozen=True)
class LookPlan:
    """What the design asks of the analysis: the fractions, the spending function, the margin."""

    fractions: tuple[float, ...]
    spending: str
    gamma: float
    alpha: float
    margin: float            # 1.0 for superiority
    sided: int               # 2 for superiority, 1 for non-inferiority and equivalence
    futility: str | None = None   # beta-spending function (one-sided designs)
    beta: float = 0.2
    equivalence: bool = False     # two one-sided tests of the margins 1/margin and margin
    events: tuple[int, ...] | None = None   # the looks at these event counts (fractions: e / e_K)

    @cached_property
    def boundaries(self) -> np.ndarray:
        if len(self.fractions) == 1:
            from sim.studies.power.formulas import critical_value  # noqa: PLC0415
            return np.array([critical_value(self.alpha, self.sided)])
        return spending_boundaries(np.array(self.fractions), self.alpha, self.spending, self.gamma,
                                   sided=self.sided)


@dataclass(frozen=True)
class TrialData:
    """Replicates x patients: entry (months from the start), time from entry to the event (inf:
    none), time from entry to dropout, and arm (1 experimental); the final analysis's calendar
    month of each replicate is `final(n)`."""

    entry: np.ndarray
    event: np.ndarray
    dropout: np.ndarray
    arm: np.ndarray
    final: Callable[[int], np.ndarray]   # n -> (replicates,) calendar months of the final analysis


def futility_bounds(plan: LookPlan, drift: float) -> np.ndarray | None:
    """The lower (futility) boundaries of a plan for a drift, on the scale of -z; None without."""
    if plan.futility is None or len(plan.fractions) == 1:
        return None
    from sim.studies.power.sequential import futility_boundaries  # noqa: PLC0415
    return futility_boundaries(plan.boundaries, np.array(plan.fractions), drift, plan.beta,
                               plan.futility, plan.gamma)


def _drift(plan: LookPlan, hazard_ratio: float, events, share: float):
    shift = np.log(plan.margin) - np.log(hazard_ratio)
    if plan.sided == 2:
        shift = abs(shift)
    return shift * np.sqrt(np.asarray(events, float) * share * (1 - share))


def look_columns(looks: int, futility: bool = False) -> list[str]:
    """The per-look columns a power table gains (k = 1..looks)."""
    names = ["fraction", "boundary_z", "stop", *(["futility_z", "futility_stop"] if futility else []),
             "events", "months", "months_lower", "months_upper"]
    return [f"look{k}_{name}" for k in range(1, looks + 1) for name in names]


def _cut(data: TrialData, n: int, at: np.ndarray):
    """Durations, events and inclusion of the first n patients of every replicate at calendar
    months `at` (one per replicate)."""
    entry, event, dropout = data.entry[:, :n], data.event[:, :n], data.dropout[:, :n]
    window = at[:, None] - entry
    included = window >= 0
    limit = np.minimum(dropout, window)
    observed = (event <= limit) & included
    return np.minimum(event, limit), observed, included


def _estimates(data: TrialData, n: int, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cox log hazard ratio and its standard error, and the events, of every replicate cut at
    `at`."""
    time, observed, included = _cut(data, n, at)
    replicates = time.shape[0]
    rows = np.repeat(np.arange(replicates), n)[included.ravel()]
    table = cox_univariate(time.ravel()[included.ravel()], observed.ravel()[included.ravel()],
                           data.arm[:, :n].ravel()[included.ravel()].astype(float),
                           groups={"replicate": rows})
    coef, se = np.full(replicates, np.nan), np.full(replicates, np.nan)
    coef[table["replicate"].to_numpy()] = table["coef"].to_numpy()
    se[table["replicate"].to_numpy()] = table["se"].to_numpy()
    return coef, se, observed.sum(axis=1)


def _crossed(plan: LookPlan, coef: np.ndarray, se: np.ndarray, bound: float) -> np.ndarray:
    """Which replicates' estimates stop the trial for success at a look with boundary `bound`
    (none where the model could not be fitted: comparisons with nan are false)."""
    log_margin = np.log(plan.margin)
    with np.errstate(invalid="ignore"):
        if plan.equivalence:
            crossed = ((coef - log_margin) / se <= -bound) & ((coef + log_margin) / se >= bound)
        elif plan.sided == 2:
            crossed = np.abs(coef / se) >= bound
        else:
            crossed = (coef - log_margin) / se <= -bound
    return crossed


def analyse_looks(data: TrialData, plan: LookPlan, n: int, hazard_ratio: float = 1.0,
                  share: float = 0.5) -> dict:
    """Every replicate of size n analysed at its looks: `rejected` (stopped for success), and the
    per-look summaries (`stop`, `events`, `months` with its interval), `expected_events` and
    `expected_months`. With futility, its boundaries come from the drift of `hazard_ratio` at
    this size's expected events."""
    final = np.asarray(data.final(n), float)
    entry = data.entry[:, :n]
    calendar = np.where(data.event[:, :n] <= data.dropout[:, :n], entry + data.event[:, :n], np.inf)
    calendar = np.sort(calendar, axis=1)
    final_events = (calendar <= final[:, None]).sum(axis=1)
    planned = final_events.mean()
    bounds = plan.boundaries
    lower = futility_bounds(plan, float(_drift(plan, hazard_ratio, planned, share)))
    replicates = len(final)
    start = entry.min(axis=1)
    stopped = np.full(replicates, -1)
    futile = np.full(replicates, -1)
    months, events, z_values = [], [], []
    for k, fraction in enumerate(plan.fractions):
        if k == len(plan.fractions) - 1 and plan.events is None:
            at = final
        else:
            needed = (plan.events[k] if plan.events is not None
                      else int(np.ceil(fraction * planned - 1e-9)))
            reach = calendar[:, needed - 1] if 0 < needed <= n else np.full(replicates, np.inf)
            at = np.minimum(reach, final)
        coef, se, seen = _estimates(data, n, at)
        z = (coef - np.log(plan.margin)) / se
        months.append(at - start)
        events.append(seen)
        z_values.append(z)
        going = (stopped < 0) & (futile < 0)
        stopped[going & _crossed(plan, coef, se, bounds[k])] = k
        if lower is not None and k < len(plan.fractions) - 1:
            futile[going & (stopped < 0) & np.nan_to_num(-z <= lower[k], nan=False)] = k
    months, events = np.array(months), np.array(events)
    last = np.where(stopped >= 0, stopped, np.where(futile >= 0, futile, len(plan.fractions) - 1))
    rows = np.arange(replicates)
    out = {"rejected": stopped >= 0, "failed": np.isnan(z_values[-1]),
           "expected_events": float(events[last, rows].mean()),
           "expected_months": float(months[last, rows].mean()), "looks": []}
    for k, fraction in enumerate(plan.fractions):
        low, high = np.percentile(months[k], [2.5, 97.5])
        futility = ({"futility_z": float(lower[k]), "futility_stop": float((futile == k).mean())}
                    if lower is not None else {})
        out["looks"].append({"fraction": fraction, "boundary_z": float(bounds[k]),
                             "stop": float((stopped == k).mean()), **futility,
                             "events": float(events[k].mean()),
                             "months": float(months[k].mean()), "months_lower": float(low),
                             "months_upper": float(high)})
    return out


def analytic_sequential_power(events, hazard_ratio: float, plan: LookPlan,
                              share: float) -> np.ndarray:
    """Power of the looks for `events` at the final analysis (arrays welcome): the boundaries'
    crossing probabilities under the drift ``(log margin - log HR) sqrt(D p (1 - p))``, for
    superiority the two-sided one of ``|log HR|``."""
    if plan.equivalence:
        from sim.studies.power.sequential import equivalence_probabilities  # noqa: PLC0415
        root_information = np.sqrt(np.atleast_1d(np.asarray(events, float)) * share * (1 - share))
        return np.array([equivalence_probabilities(plan.boundaries, plan.fractions,
                                                   np.log(plan.margin) * r,
                                                   np.log(hazard_ratio) * r).sum()
                         for r in root_information])
    drift = np.atleast_1d(_drift(plan, hazard_ratio, events, share))
    if len(plan.fractions) == 1:
        from sim.studies.power.formulas import critical_value  # noqa: PLC0415
        c = critical_value(plan.alpha, plan.sided)
        return ndtr(drift - c) + (ndtr(-drift - c) if plan.sided == 2 else 0.0)
    bounds, t = plan.boundaries, np.array(plan.fractions)
    if plan.futility is not None:
        from sim.studies.power.sequential import exit_probabilities  # noqa: PLC0415
        return np.array([exit_probabilities(bounds, futility_bounds(plan, d), t, d)[0].sum()
                         for d in drift])
    return np.array([crossing_probabilities(bounds, t, drift=d, sided=plan.sided).sum()
                     for d in drift])
