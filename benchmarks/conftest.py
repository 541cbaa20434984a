"""Benchmarks report ratios against a reference measured in the same run (machines are noisy)."""

import time

import numpy as np
import simpy


def best_seconds(function, repeats: int) -> float:
    """Shortest of ``repeats`` wall-clock timings of ``function()``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def plain_simpy(n: int) -> None:
    """The reference of SimPy's floor: n processes that each wait once, in one environment."""
    env = simpy.Environment()

    def process(env):
        yield env.timeout(1.0)

    for _ in range(n):
        env.process(process(env))
    env.run()
