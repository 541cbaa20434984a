"""The installed posterior is what the model card says: converged chains by ArviZ's definitions,
the sample drawn from them, and coverage shown over at least 200 synthetic studies."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pandas as pd

from calibration.diagnostics import chain_summary
from calibration.space import SPACE

DATA = Path(str(resources.files("sim") / "data"))
CALIBRATION = Path(__file__).resolve().parents[1] / "calibration"
PARAMETERS = [d.path for d in SPACE]


def test_installed_chains_have_converged():
    chains = pd.read_parquet(DATA / "chains.parquet")
    assert chains.groupby("chain").size().nunique() == 1      # chains of equal length
    summary = chain_summary(chains, PARAMETERS)
    assert summary["r_hat"].max() <= 1.01, summary.sort_values("r_hat").tail(3)
    assert summary[["ess_bulk", "ess_tail"]].min().min() >= 400


def test_the_sample_is_drawn_from_the_chains():
    chains = pd.read_parquet(DATA / "chains.parquet")
    sample = pd.read_csv(DATA / "posterior.csv")
    assert len(sample[PARAMETERS].drop_duplicates()) >= 1000
    joined = sample.merge(chains, on=["chain", "step"], suffixes=("", "_chain"))
    assert len(joined) == len(sample)
    for name in PARAMETERS:
        scale = joined[name].abs().max()
        assert (joined[name] - joined[f"{name}_chain"]).abs().max() < 1e-9 * scale


def test_coverage_is_within_two_binomial_standard_errors():
    coverage = pd.read_csv(CALIBRATION / "coverage.csv")
    assert set(coverage["quantity"]) >= {"os_60", "curative_reop_of_recurred",
                                         "lyg_intensive_over_esmo"}
    assert set(coverage["nominal"]) == {0.5, 0.8, 0.95}
    assert coverage["studies"].min() >= 200
    for row in coverage.itertuples():
        se = math.sqrt(row.nominal * (1 - row.nominal) / row.studies)
        assert abs(row.covered / row.studies - row.nominal) <= 2 * se, row
