"""Study designs: who is followed for how long.

- ``paper``: the study's design. Hepatectomies spread over April 1984 - December 2005 (the cohort
  sampler draws the dates), everyone censored at one closing date (parameter
  ``study.close_date``) or when lost to follow-up (``study.loss_to_follow_up_rate_per_month``,
  fitted, with the other targets, to bring the median of ``os_months`` of the rectal patients,
  dead or alive, to the study's reported median follow-up of 30.7 months: the calibration's
  reading of a figure whose estimator the study does not state). The median follow-up the
  project prints is the reverse Kaplan–Meier median (``sim.output.tally``).
- ``horizon``: everyone followed ``years`` from the hepatectomy, censored only by the horizon.
- ``lifetime``: everyone followed to death or to age ``LIFETIME_AGE`` (an economic evaluation's
  lifetime horizon; ``years`` is not used).
"""

from __future__ import annotations

import numpy as np

from sim.errors import InputError
from sim.model.params import Params

__all__ = ["DESIGNS", "censoring", "DAYS_PER_MONTH", "LIFETIME_AGE"]

DESIGNS = ("paper", "horizon", "lifetime")
LIFETIME_AGE = 100.0
DAYS_PER_MONTH = 365.25 / 12


def censoring(design: str, cohort: dict[str, np.ndarray], params: Params,
              years: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Months from the hepatectomy to censoring, and why (names of `sim.engine.records.DETAILS`)."""
    n = len(cohort["patient_id"])
    if design == "paper":
        close = np.datetime64(params.study.close_date, "D")
        to_close = (close - cohort["hepatectomy_date"]).astype(np.int64) / DAYS_PER_MONTH
        lost = cohort["lost_to_follow_up_months"]
        months = np.minimum(to_close, lost)
        return months, np.where(lost < to_close, "lost_to_follow_up", "study_close")
    if design == "horizon":
        if not years > 0:
            raise InputError(f"--years: must be a positive number of years (got {years})")
        return np.full(n, 12.0 * years), np.full(n, "horizon")
    if design == "lifetime":
        return 12.0 * np.maximum(LIFETIME_AGE - cohort["age_years"], 0.0), np.full(n, "horizon")
    raise InputError(f"--design: must be one of {', '.join(DESIGNS)} (got {design!r})")
