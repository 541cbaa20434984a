"""sim.analysis against lifelines (and a bare numpy sort) timed in the same run.

Run: python -m pytest benchmarks/bench_analysis.py --benchmark-only -s
Inputs are built outside the timed calls. Each benchmark stores its ratios in ``extra_info`` and
prints them; nothing is asserted on time. References that would take minutes (lifelines looping
over thousands of groups) are timed on a subset of the groups and scaled to the whole.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from sim.analysis import cox_univariate, kaplan_meier, logrank
from conftest import best_seconds

SEED = 20260106


def report(benchmark, name: str, **figures) -> None:
    benchmark.extra_info.update({key: round(value, 4) for key, value in figures.items()})
    print(f"\n{name}: " + ", ".join(f"{key} {value:.4g}" for key, value in figures.items()))


def survival_times(rng, n: int, hazard_ratio=None, arm=None):
    """Exponential event times (months), uniform censoring: about 30% censored, no ties."""
    scale = 40.0 if arm is None else np.where(arm == 1, 40.0 / hazard_ratio, 40.0)
    event, censor = rng.exponential(scale, n), rng.uniform(0.0, 150.0, n)
    return np.minimum(event, censor), event <= censor


@pytest.fixture(scope="module")
def million():
    return survival_times(np.random.default_rng(SEED), 1_000_000)


def test_kaplan_meier_million_rows(benchmark, million):
    durations, observed = million
    benchmark.pedantic(kaplan_meier, args=(durations, observed), rounds=5, iterations=1, warmup_rounds=1)
    ours = benchmark.stats["min"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_seconds = best_seconds(lambda: KaplanMeierFitter().fit(durations, observed), 3)
    argsort_seconds = best_seconds(lambda: np.argsort(durations), 5)
    report(benchmark, "Kaplan-Meier, 10^6 rows", ours_seconds=ours, lifelines_seconds=lifelines_seconds,
           argsort_seconds=argsort_seconds, speedup_vs_lifelines=lifelines_seconds / ours,
           ratio_to_argsort=ours / argsort_seconds)


def test_kaplan_meier_thousand_groups(benchmark, million):
    durations, observed = million
    groups = np.repeat(np.arange(1000), 1000)
    benchmark.pedantic(kaplan_meier, args=(durations, observed), kwargs={"groups": groups}, rounds=5,
                       iterations=1, warmup_rounds=1)
    ours = benchmark.stats["min"]
    blocks = durations.reshape(1000, 1000), observed.reshape(1000, 1000)

    def lifelines_loop():
        for t, e in zip(*blocks, strict=True):
            KaplanMeierFitter().fit(t, e)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_seconds = best_seconds(lifelines_loop, 1)
    report(benchmark, "Kaplan-Meier, 1,000 groups of 1,000 rows", ours_seconds=ours,
           lifelines_loop_seconds=lifelines_seconds, speedup_vs_lifelines=lifelines_seconds / ours)


@pytest.fixture(scope="module")
def trials():
    rng = np.random.default_rng(SEED + 1)
    n_trials, size = 10_000, 400
    arm = rng.integers(0, 2, n_trials * size)
    durations, observed = survival_times(rng, n_trials * size, hazard_ratio=0.8, arm=arm)
    return durations, observed, arm, np.repeat(np.arange(n_trials), size), n_trials


def test_logrank_ten_thousand_trials(benchmark, trials):
    durations, observed, arm, trial, n_trials = trials
    benchmark.pedantic(logrank, args=(durations, observed, arm), kwargs={"groups": trial}, rounds=3,
                       iterations=1, warmup_rounds=1)
    ours = benchmark.stats["min"]
    subset = 200
    pieces = [(durations[trial == r], observed[trial == r], arm[trial == r]) for r in range(subset)]

    def lifelines_loop():
        for t, e, a in pieces:
            logrank_test(t[a == 0], t[a == 1], e[a == 0], e[a == 1])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_seconds = best_seconds(lifelines_loop, 1) * n_trials / subset
    report(benchmark, "log-rank, 10,000 trials of 400 patients", ours_seconds=ours,
           lifelines_loop_seconds_scaled=lifelines_seconds, lifelines_trials_timed=subset,
           speedup_vs_lifelines=lifelines_seconds / ours)


@pytest.fixture(scope="module")
def cohorts():
    rng = np.random.default_rng(SEED + 2)
    n_groups = 1000
    sizes = rng.integers(200, 401, n_groups)
    x = rng.normal(size=sizes.sum())
    event, censor = rng.exponential(40.0 * np.exp(-0.4 * x)), rng.uniform(0.0, 150.0, sizes.sum())
    return np.minimum(event, censor), event <= censor, x, np.repeat(np.arange(n_groups), sizes), n_groups


def test_cox_thousand_groups(benchmark, cohorts):
    durations, observed, x, group, n_groups = cohorts
    benchmark.pedantic(cox_univariate, args=(durations, observed, x), kwargs={"groups": group}, rounds=3,
                       iterations=1, warmup_rounds=1)
    ours = benchmark.stats["min"]
    subset = 100
    frames = [pd.DataFrame({"T": durations[group == g], "E": observed[group == g], "x": x[group == g]})
              for g in range(subset)]

    def lifelines_loop():
        for frame in frames:
            CoxPHFitter().fit(frame, "T", "E")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_seconds = best_seconds(lifelines_loop, 1) * n_groups / subset
    report(benchmark, "univariate Cox, 1,000 groups of 200-400 rows", ours_seconds=ours,
           lifelines_loop_seconds_scaled=lifelines_seconds, lifelines_groups_timed=subset,
           speedup_vs_lifelines=lifelines_seconds / ours)
