"""`crlm-sim summarize` of a million patients: peak memory and time, against reading the same columns.

Run: python -m pytest benchmarks/bench_summarize.py --benchmark-only -s
A cohort of 10^6 patients (horizon design, both primaries) is simulated once for the module (about
20 s on two cores). Each measurement runs in a fresh process, which prints its own peak resident
set size (``ru_maxrss``): the summary, and as the reference the same process reading the same
columns and doing nothing else. Ratios only; nothing is asserted on time or memory (issue 12's bar,
a peak under 1 GiB, is quoted in the closing note).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sim
from sim.execution.executor import LocalExecutor

PATIENTS = 1_000_000

_SUMMARY = """
import json, resource, sys, time
from sim.reports.summary import summarize
start = time.perf_counter()
summarize(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_READ_ONLY = """
import json, resource, sys, time
import pyarrow.parquet as pq
from sim.reports.summary import REQUIRED
start = time.perf_counter()
table = pq.read_table(sys.argv[1] + "/patients.parquet", columns=list(REQUIRED),
                      read_dictionary=["primary_site"]).to_pandas()
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _measure(script: str, directory) -> dict:
    done = subprocess.run([sys.executable, "-c", script, str(directory)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("summarize") / "cohort"
    sim.write_cohort(out, PATIENTS, seed=1, design="horizon", executor=LocalExecutor(2),
                     progress=False)
    return out


def test_summarize_a_million_patients(benchmark, cohort):
    reference = _measure(_READ_ONLY, cohort)
    summary = benchmark.pedantic(_measure, args=(_SUMMARY, cohort), rounds=1, iterations=1)
    figures = {"patients": PATIENTS,
               "peak_rss_mib": summary["peak_kib"] / 1024,
               "peak_rss_bytes_per_patient": summary["peak_kib"] * 1024 / PATIENTS,
               "read_only_peak_rss_mib": reference["peak_kib"] / 1024,
               "peak_ratio_to_read_only": summary["peak_kib"] / reference["peak_kib"],
               "seconds": summary["seconds"],
               "seconds_ratio_to_read_only": summary["seconds"] / reference["seconds"]}
    benchmark.extra_info.update({key: round(value, 3) for key, value in figures.items()})
    print("\nsummarize: " + ", ".join(f"{key} {value:.4g}" for key, value in figures.items()))
