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
                            exponential: np.ndarray) -> np.ndarray:
    """Months from the operation to other-cause death, by inversion of the cumulative hazard.

    ``exponential`` holds one Exp(1) variate per patient. Vectorized over patients: one row of
    yearly hazards per patient, a cumulative sum, and the year in which it passes the variate.
    """
    hazards = annual_hazards()
    age0 = np.floor(age_years).astype(int)
    years_ahead = np.arange(MAX_AGE + 1)
    age = np.minimum(age0[:, None] + years_ahead, MAX_AGE)
    year = np.minimum(calendar_year[:, None] + years_ahead, LAST_YEAR) - FIRST_YEAR
    year = np.maximum(year, 0)
    rate = hazards[male.astype(int)[:, None], year, age]
    cumulative = np.cumsum(rate, axis=1)
    k = np.argmax(cumulative >= exponential[:, None], axis=1)  # the year of death
    before = np.where(k > 0, cumulative[np.arange(len(k)), k - 1], 0.0)
    rate_k = rate[np.arange(len(k)), k]
    fraction = np.where(np.isfinite(rate_k), (exponential - before) / rate_k, 0.0)
    return 12.0 * (k + fraction)
