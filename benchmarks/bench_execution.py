"""Scale: speed-up of 2 local workers over 1, the Dask LocalCluster's overhead, and peak memory.

Run: python -m pytest benchmarks/bench_execution.py --benchmark-only -s
Each run is a child process (`crlm-sim cohort`), so its peak RSS is its own (the largest of the
parent and its worker processes is reported). Nothing is asserted on time.
"""

from __future__ import annotations

import json
import subprocess
import sys


N_SPEEDUP = 1_000_000
N_MEMORY = 10_000_000


def _run(tmp_path, name: str, n: int, *options: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB, the largest process of the run) of one cohort command."""
    script = (
        "import resource, sys, time\n"
        "from sim.cli import main\n"
        "t = time.perf_counter()\n"
        f"code = main(['cohort', '--n', '{n}', '--seed', '1', '--design', 'horizon', '--primary', "
        f"'both', '--out', {str(tmp_path / name)!r}, *{list(options)!r}])\n"
        "seconds = time.perf_counter() - t\n"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(seconds, max(own, children))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    seconds, rss_kb = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(rss_kb) / 1024


def test_two_workers_speed_up(benchmark, tmp_path):
    one, _ = _run(tmp_path, "one", N_SPEEDUP, "--workers", "1")
    two, _ = benchmark.pedantic(_run, args=(tmp_path, "two", N_SPEEDUP, "--workers", "2"),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(seconds_one_worker=round(one, 1), seconds_two_workers=round(two, 1),
                                speedup=round(one / two, 2))
    print(f"\n10^6 patients: 1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x")


def test_dask_local_cluster_overhead(benchmark, tmp_path):
    local, _ = _run(tmp_path, "local", N_SPEEDUP // 4, "--workers", "2")
    dask, _ = benchmark.pedantic(_run, args=(tmp_path, "dask", N_SPEEDUP // 4, "--executor", "dask",
                                             "--workers", "2"), rounds=1, iterations=1)
    benchmark.extra_info.update(seconds_local=round(local, 1), seconds_dask=round(dask, 1),
                                ratio=round(dask / local, 2))
    print(f"\n2.5x10^5 patients on 2 workers: local {local:.1f} s, Dask LocalCluster {dask:.1f} s "
          f"(x{dask / local:.2f}, cluster start-up included)")


def test_peak_memory_ten_million(benchmark, tmp_path):
    seconds, rss = benchmark.pedantic(_run, args=(tmp_path, "ten-million", N_MEMORY, "--workers", "2"),
                                      rounds=1, iterations=1)
    small_seconds, small_rss = _run(tmp_path, "small", N_MEMORY // 100, "--workers", "2")
    benchmark.extra_info.update(seconds=round(seconds), peak_rss_mb=round(rss),
                                peak_rss_mb_at_1e5=round(small_rss))
    print(f"\n10^7 patients: {seconds:.0f} s, peak RSS {rss:.0f} MB (10^5 patients: {small_rss:.0f} MB)")
    manifest = json.loads((tmp_path / "ten-million" / "manifest.json").read_text())
    assert manifest["n"] == N_MEMORY  # completed (not a timing assertion)
