"""Convergence of installed chains, by ArviZ's definitions (rank-normalised split R-hat, bulk and
tail effective sample size; Vehtari, Gelman, Simpson, Carpenter and Bürkner, Bayesian Analysis
2021), so that anyone can recompute them from `sim/data/chains.parquet`."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["chain_summary"]


def chain_summary(chains: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """One row per parameter: r_hat, ess_bulk, ess_tail over every step of every chain (chains
    of equal length, ordered by `step`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az  # noqa: PLC0415

    ordered = chains.sort_values(["chain", "step"])
    rows = []
    for name in parameters:
        array = np.stack([group[name].to_numpy(float) for _, group in ordered.groupby("chain")])
        rows.append({"parameter": name, "r_hat": float(az.rhat(array)),
                     "ess_bulk": float(az.ess(array, method="bulk")),
                     "ess_tail": float(az.ess(array, method="tail")),
                     "mean": float(array.mean()), "sd": float(array.std(ddof=1))})
    return pd.DataFrame(rows)
