"""A comparison's throughput in patient-lives a second, against references timed in the same run.

Run: python -m pytest benchmarks/bench_comparison.py --benchmark-only -s
The guidelines comparison (6 policies) on 10,000 patients x 20 parameter draws (1,200,000
patient-lives: the shape of a probabilistic analysis's units, one draw of 10,000 patients under
every policy, its patients not kept, as `crlm-sim run --no-patients` runs it), outputs and report
included, on one local worker, two, and a Dask LocalCluster of two workers. The references: SimPy's
floor (one process with one timeout) and a numpy sort of as many float64 values as there are
patient-lives, both timed in the same run on one core. Reported: patient-lives a second, the cost
of a patient-life on one core over each reference's per-element cost, the Dask cluster's
throughput per core over the local pool's, and the peak resident memory of a worker process.
Nothing is asserted on time.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import numpy as np
import pytest

import sim
from conftest import best_seconds, plain_simpy
from sim.execution.executor import DaskExecutor, LocalExecutor
from sim.studies.comparison import load_comparison

GUIDELINES = Path(__file__).resolve().parents[1] / "scenarios" / "comparisons" / "guidelines.toml"
PATIENTS, DRAWS = 10_000, 20
_MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def comparison():
    loaded = load_comparison(GUIDELINES)
    return dataclasses.replace(
        loaded, cohort=loaded.cohort.model_copy(update={"patients": PATIENTS}),
        uncertainty=loaded.uncertainty.model_copy(update={"draws": DRAWS}))


@pytest.fixture(scope="module")
def references(comparison) -> dict[str, float]:
    """Seconds per element of the plain SimPy process and of a numpy sort of the same size."""
    lives = PATIENTS * DRAWS * len(comparison.policies)
    values = np.random.default_rng(0).random(lives)
    return {"plain_simpy": best_seconds(lambda: plain_simpy(100_000), 5) / 100_000,
            "numpy_sort": best_seconds(lambda: np.sort(values), 3) / lives}


def _executor(kind: str):
    return {"local-1": lambda: LocalExecutor(1), "local-2": lambda: LocalExecutor(2),
            "dask-2": lambda: DaskExecutor(None, 2)}[kind]()


@pytest.mark.parametrize("kind", ["local-1", "local-2", "dask-2"])
def test_comparison_patient_lives_per_second(benchmark, tmp_path, comparison, references, kind):
    if kind.startswith("dask"):
        pytest.importorskip("dask.distributed")
    lives = PATIENTS * DRAWS * len(comparison.policies)
    workers = int(kind.split("-")[1])
    executor = _executor(kind)
    runs = iter(range(10))

    def run():
        start = time.perf_counter()
        sim.compare(comparison, out=tmp_path / f"run-{next(runs)}", executor=executor,
                    keep_patients=False)
        return time.perf_counter() - start

    try:
        seconds = benchmark.pedantic(run, rounds=1, iterations=1)
        seconds = min(seconds, run())
    finally:
        if kind.startswith("dask"):
            executor.close()
    _MEASURED[kind] = lives / seconds
    per_life = seconds * workers / lives
    figures = {"workers": workers, "patient_lives": lives, "seconds": seconds,
               "patient_lives_per_second": lives / seconds,
               "ratio_to_plain_simpy_per_core": per_life / references["plain_simpy"],
               "ratio_to_numpy_sort_per_core": per_life / references["numpy_sort"]}
    if kind == "dask-2" and "local-2" in _MEASURED:
        figures["dask_over_local_pool_per_core"] = _MEASURED["dask-2"] / _MEASURED["local-2"]
    if kind.startswith("local"):
        # the largest worker process's peak (kilobytes on Linux); one worker runs in-process
        usage = resource.RUSAGE_SELF if workers == 1 else resource.RUSAGE_CHILDREN
        figures["peak_worker_memory_mb"] = resource.getrusage(usage).ru_maxrss / 1024
    benchmark.extra_info.update({k: round(v, 3) for k, v in figures.items()})
    print(f"\ncomparison ({kind}): " + ", ".join(f"{k} {v:,.4g}" for k, v in figures.items()))
