"""Benchmarks report ratios against a reference timed in the same run (machines are noisy)."""
