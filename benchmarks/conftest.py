"""Benchmarks report ratios against a reference measured in the same run (machines are noisy)."""

import time

import numpy as np


def best_seconds(function, repeats: int) -> float:
    """Shortest of ``repeats`` wall-clock timings of ``function()``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
