"""Power by simulation at scale: 10,000 replicate trials of 400 patients, simulation and analysis
timed separately, the analysis against a lifelines ``logrank_test`` loop over the same trials.

Run: python -m pytest benchmarks/bench_power.py --benchmark-only -s
The trials are the textbook exponential design of ``scenarios/power/exponential.toml`` at n = 400
(uniform accrual over 24 months, analysis 12 months after the last entry: about 267 events each),
so that the 10,000 trials take seconds to simulate and the analysis is what is measured. The
lifelines loop is timed on the first 200 trials and scaled to 10,000. Inputs are built outside the
timed calls; ratios go to ``extra_info`` and are printed; nothing is asserted on time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.analysis import logrank
from sim.studies.power import load_design, power_curve, simulate_replicates
from conftest import best_seconds

DESIGN = Path(__file__).resolve().parents[1] / "scenarios" / "power" / "exponential.toml"
TRIALS, PATIENTS, SUBSET, SEED = 10_000, 400, 200, 20240607


@pytest.fixture(scope="module")
def design():
    return load_design(DESIGN).model_copy(update={"sample_sizes": [PATIENTS]})


@pytest.fixture(scope="module")
def replicates(design):
    return simulate_replicates(design, TRIALS, SEED)


@pytest.fixture(scope="module")
def observed(replicates):
    """Durations, events, arms and trial number of every patient of every trial (flat arrays)."""
    design, columns = replicates.design, replicates.columns
    to_analysis = design.accrual_months + design.follow_up_months - columns["entry_months"]
    censor = np.minimum(columns["dropout_months"], to_analysis)
    time_months = columns["time_months"]
    durations = np.minimum(time_months, censor).ravel()
    events = (time_months <= censor).ravel()
    trial = np.repeat(np.arange(TRIALS), PATIENTS)
    return durations, events, columns["arm"].ravel(), trial


def test_simulation(benchmark, design):
    benchmark.pedantic(simulate_replicates, args=(design, TRIALS, SEED), rounds=2, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(trials=TRIALS, patients=PATIENTS, seconds=round(mean, 3),
                                patients_per_second=round(TRIALS * PATIENTS / mean))
    print(f"\nsimulation: {TRIALS:,} trials of {PATIENTS} patients in {mean:.2f} s "
          f"({TRIALS * PATIENTS / mean:,.0f} patients/s)")


def test_analysis_against_lifelines_loop(benchmark, observed, replicates):
    from lifelines.statistics import logrank_test  # noqa: PLC0415

    durations, events, arm, trial = observed
    logrank(durations, events, arm, groups={"replicate": trial})  # warm-up (page faults, caches)
    benchmark.pedantic(logrank, args=(durations, events, arm), kwargs={"groups": {"replicate": trial}},
                       rounds=5, iterations=1)
    vectorized = benchmark.stats.stats.min

    rows = SUBSET * PATIENTS
    sub_durations, sub_events, sub_arm = durations[:rows], events[:rows], arm[:rows]

    def lifelines_loop():
        p_values = np.empty(SUBSET)
        for k in range(SUBSET):
            part = slice(k * PATIENTS, (k + 1) * PATIENTS)
            d, e, a = sub_durations[part], sub_events[part], sub_arm[part] == 1
            p_values[k] = logrank_test(d[a], d[~a], e[a], e[~a]).p_value
        return p_values

    loop = best_seconds(lifelines_loop, 2) * TRIALS / SUBSET
    ours = logrank(sub_durations, sub_events, sub_arm, groups={"replicate": trial[:rows]})["p_value"]
    np.testing.assert_allclose(ours, lifelines_loop(), rtol=1e-9)  # the same test, trial by trial
    whole = best_seconds(lambda: power_curve(replicates), 2)
    ratio = loop / vectorized
    benchmark.extra_info.update(trials=TRIALS, patients=PATIENTS, vectorized_seconds=round(vectorized, 4),
                                lifelines_loop_seconds_scaled=round(loop, 2), lifelines_subset=SUBSET,
                                ratio=round(ratio, 1), power_curve_seconds=round(whole, 3))
    print(f"\nanalysis of {TRIALS:,} trials of {PATIENTS}: one sim.analysis.logrank call {vectorized:.3f} s, "
          f"lifelines logrank_test loop {loop:.1f} s (timed on {SUBSET}, scaled): {ratio:.0f}x; "
          f"whole power_curve (censoring, test, Wilson, formulas) {whole:.3f} s")
