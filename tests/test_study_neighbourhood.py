"""A paper-design rectal cohort under the default parameters lands near the study's figures.

Reference: the published figures; spread: a study of the paper's size (141 patients), estimated
from the simulated cohort split into pseudo-studies. lifelines is the independent estimator.
(The full check is `crlm-sim validate`; calibration tightens it.)
"""

from __future__ import annotations

import lifelines  # the independent reference (test extra)
import numpy as np
import pytest
from conftest import simulate

FIGURES = [  # (column, event, months, reported)
    ("os_months", "death", 12, 0.956), ("os_months", "death", 36, 0.624),
    ("os_months", "death", 60, 0.364), ("dfs_months", "dfs_event", 12, 0.684),
    ("dfs_months", "dfs_event", 36, 0.345), ("dfs_months", "dfs_event", 60, 0.329),
]


def _km(frame, duration, event, t):
    fit = lifelines.KaplanMeierFitter().fit(frame[duration], frame[event])
    return float(fit.survival_function_at_times([t]).iloc[0])


@pytest.fixture(scope="module")
def cohort(params, policy):
    return simulate(params, policy, n=141 * 40, seed=424242, design="paper")[0].to_pandas()


@pytest.mark.parametrize("duration, event, months, reported", FIGURES)
def test_survival_figure_within_study_spread(cohort, duration, event, months, reported):
    whole = _km(cohort, duration, event, months)
    per = [_km(cohort[cohort.patient_id % 40 == k], duration, event, months) for k in range(40)]
    assert abs(whole - reported) <= 1.96 * np.std(per, ddof=1)


def test_crude_figures_within_study_spread(cohort):
    for value, reported, n in [
        (cohort["recurrence"].mean(), 80 / 141, 141),
        (cohort.loc[cohort.recurrence, "curative_reoperation_months"].notna().mean(), 23 / 80, 80),
        (cohort["pelvis_recurrence_months"].notna().mean(), 23 / 141, 141),
    ]:
        assert abs(value - reported) <= 1.96 * np.sqrt(reported * (1 - reported) / n)
    median = np.median(cohort["os_months"])
    spread = np.std([np.median(cohort.os_months[cohort.patient_id % 40 == k]) for k in range(40)], ddof=1)
    assert abs(median - 30.7) <= 1.96 * spread
