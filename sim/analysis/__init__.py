"""Vectorized survival analysis: Kaplan–Meier, Aalen–Johansen, log-rank and univariate Cox.

Every function takes one-dimensional numpy arrays, pandas Series or Arrow columns, and an optional
``groups`` argument (one array, a list or tuple of arrays, or a dict or DataFrame of named arrays:
scenario, replicate, stratum, ...). All groups are analysed in one pass: one sort by group and time,
then cumulative and segmented sums; there is no Python loop over groups. Results are tidy pandas
DataFrames with one column per group key, agreeing with lifelines group by group.

The module knows nothing of the simulation engine: it takes arrays and returns tables.
"""

from .cox import cox_univariate
from .incidence import cumulative_incidence
from .kaplan_meier import kaplan_meier
from .logrank import logrank
from .readouts import cumulative_incidence_at, median_survival, rmst, survival_at

__all__ = [
    "kaplan_meier",
    "survival_at",
    "median_survival",
    "rmst",
    "cumulative_incidence",
    "cumulative_incidence_at",
    "logrank",
    "cox_univariate",
]
