"""Background (other-cause) mortality from the US period life table shipped with the package.

Source: US Social Security Administration, Office of the Chief Actuary, period life tables
1980-2017 by sex and single year of age (``data/us_period_life_table_qx.csv``). A patient operated
on in calendar year Y at age A faces ``qx(min(Y + k, 2017), sex, A + k)`` in year k of follow-up,
as a constant hazard ``-log(1 - qx)`` within each year.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from sim.model import kernels

__all__ = ["annual_hazards", "background_death_months", "FIRST_YEAR", "LAST_YEAR"]

FIRST_YEAR, LAST_YEAR, MAX_AGE = 1980, 2017, 119
SEXES = ("female", "male")


@lru_cache(maxsize=1)
def annual_hazards() -> np.ndarray:
    """Hazard per year, indexed ``[sex (0 female, 1 male), year - 1980, age]``."""
    path = resources.files("sim") / "data" / "us_period_life_table_qx.csv"
    with path.open("r") as handle:
        rows = np.genfromtxt(handle, delimiter=",", skip_header=1, dtype=None, encoding="utf-8",
                             names=("year", "sex", "age", "qx"))
    table = np.full((2, LAST_YEAR - FIRST_YEAR + 1, MAX_AGE + 1), np.nan)
    sex = (rows["sex"] == "male").astype(int)
    table[sex, rows["year"] - FIRST_YEAR, rows["age"]] = rows["qx"]
    if np.isnan(table).any():
        raise RuntimeError("the packaged life table has gaps")
    with np.errstate(divide="ignore"):
        return -np.log1p(-table)


def background_death_months(age_years: np.ndarray, male: np.ndarray, calendar_year: np.ndarray,
                            exponential: np.ndarray, window_years: int = 40) -> np.ndarray:
    """Months from the operation to other-cause death, by inversion of the cumulative hazard.

    ``exponential`` holds one Exp(1) variate per patient. Vectorized over patients: rows of yearly
    hazards, a cumulative sum, and the year in which it passes the variate; taken `window_years`
    at a time, for the patients still alive at the end of the previous window (few after 40).
    """
    hazards = annual_hazards()
    n = len(exponential)
    age0 = np.floor(age_years).astype(int)
    sex = male.astype(int)
    if kernels.AVAILABLE:    # the same sums, patient by patient (`sim.model.kernels`)
        return kernels.background_death_months(hazards, age0, sex, calendar_year, exponential,
                                               FIRST_YEAR, LAST_YEAR, MAX_AGE, window_years)
    months = np.full(n, np.inf)   # (a variate beyond 120 years of hazards: never)
    rows = np.arange(n)
    spent = np.zeros(n)  # cumulative hazard of the years already passed
    for first in range(0, MAX_AGE + 1, window_years):
        ahead = np.arange(first, min(first + window_years, MAX_AGE + 1))
        age = np.minimum(age0[rows, None] + ahead, MAX_AGE)
        year = np.clip(calendar_year[rows, None] + ahead, FIRST_YEAR, LAST_YEAR) - FIRST_YEAR
        rate = hazards[sex[rows, None], year, age]
        cumulative = spent[rows, None] + np.cumsum(rate, axis=1)
        need = exponential[rows]
        crossed = cumulative >= need[:, None]
        done = crossed.any(axis=1)
        k = np.argmax(crossed[done], axis=1)
        index = np.flatnonzero(done)
        before = np.where(k > 0, cumulative[index, np.maximum(k - 1, 0)], spent[rows[done]])
        rate_k = rate[index, k]
        fraction = np.where(np.isfinite(rate_k), (need[done] - before) / rate_k, 0.0)
        months[rows[done]] = 12.0 * (ahead[k] + fraction)
        spent[rows[~done]] = cumulative[~done, -1]
        rows = rows[~done]
        if not len(rows):
            break
    return months
