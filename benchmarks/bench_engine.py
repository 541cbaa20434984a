"""Engine throughput against a plain SimPy loop, and memory of a 10^6-patient run.

Run: python -m pytest benchmarks/bench_engine.py --benchmark-only -s
Each figure is printed and stored in the benchmark's extra_info; nothing is asserted on time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.model.params import load_params
from sim.model.policy import load_policy
from sim.execution.runner import CohortSpec, simulate_tables
from conftest import plain_simpy

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"
CHUNK = 10_000


@pytest.fixture(scope="module")
def plain_seconds_per_process() -> float:
    best = min(_timed(plain_simpy, 100_000) for _ in range(5))
    return best / 100_000


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _cohort(n: int) -> None:
    params, _ = load_params()
    policy = load_policy(BASELINE)
    spec = CohortSpec(n, 1, "horizon", "both")
    for first in range(0, n, CHUNK):
        simulate_tables(spec, params, policy, first, min(CHUNK, n - first))


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_patients_per_second(benchmark, plain_seconds_per_process, n):
    benchmark.pedantic(_cohort, args=(n,), rounds=3 if n <= 10_000 else 1, iterations=1,
                       warmup_rounds=1 if n <= 10_000 else 0)
    per_patient = benchmark.stats["min"] / n
    ratio = per_patient / plain_seconds_per_process
    benchmark.extra_info.update(patients_per_second=round(1 / per_patient),
                                microseconds_per_patient=round(per_patient * 1e6, 2),
                                plain_simpy_microseconds=round(plain_seconds_per_process * 1e6, 2),
                                ratio_to_plain_process=round(ratio, 2))
    print(f"\n{n} patients: {1 / per_patient:,.0f} patients/s, {per_patient * 1e6:.1f} us/patient; "
          f"plain SimPy process {plain_seconds_per_process * 1e6:.1f} us; ratio {ratio:.2f}")


def test_million_patients_bounded_memory(benchmark, tmp_path):
    """10^6 patients through the CLI in chunks; peak RSS of the child process."""
    script = (
        "import resource, sys, time\n"
        "from sim.cli import main\n"
        "t = time.perf_counter()\n"
        f"code = main(['cohort', '--n', '1000000', '--seed', '1', '--design', 'horizon', "
        f"'--primary', 'both', '--workers', '1', '--out', {str(tmp_path / 'million')!r}])\n"
        "print(time.perf_counter() - t, max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
        "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    )

    def run():
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1].split()

    seconds, rss_kb = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=float(seconds), peak_rss_mb=round(int(rss_kb) / 1024))
    print(f"\n10^6 patients: {float(seconds):.0f} s, peak RSS {int(rss_kb) / 1024:.0f} MB")
    manifest = json.loads((tmp_path / "million" / "manifest.json").read_text())
    assert manifest["n"] == 1_000_000  # the run completed (not a timing assertion)
