"""The posterior machinery (`calibration.emulator`) on a toy model with a known posterior: a
linear-normal model with a normal prior, whose posterior is normal in closed form. The sampler's
mean and 90% interval must match it within Monte Carlo error; the emulator must recover a
quadratic surface; the diagnostics must be ArviZ's."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from calibration.diagnostics import chain_summary
from calibration.emulator import Emulator, SamplerSettings, SyntheticLikelihood, sample_chains


class _Exact:
    """A known mean function standing in for the emulator: no residual error."""

    def __init__(self, matrix):
        self.matrix = matrix

    def __call__(self, x):
        return np.atleast_2d(x) @ self.matrix.T


def test_independence_chains_recover_the_conjugate_normal_posterior():
    rng = np.random.default_rng(5)
    d, k = 3, 6
    a = rng.normal(size=(k, d))
    spreads = np.full(k, 0.5)
    correlation = np.eye(k) * 0.7 + 0.3                  # correlated figures, as the study's
    covariance = correlation * np.outer(spreads, spreads)
    prior_mean, prior_sd = np.zeros(d), np.full(d, 2.0)
    observed = a @ np.array([0.5, -1.0, 0.3]) + rng.multivariate_normal(np.zeros(k), covariance)
    likelihood = SyntheticLikelihood(_Exact(a), observed, covariance, np.zeros(k))

    def log_post(x):
        return likelihood(x) + stats.norm.logpdf(np.atleast_2d(x), prior_mean, prior_sd).sum(1)

    precision = a.T @ np.linalg.inv(covariance) @ a + np.diag(prior_sd ** -2.0)
    post_cov = np.linalg.inv(precision)
    post_mean = post_cov @ (a.T @ np.linalg.inv(covariance) @ observed)
    state, accepted = sample_chains(log_post, prior_mean,
                                    SamplerSettings(chains=4, steps=3000, pilot=2000, seed=3))
    draws = state[1:].reshape(-1, d)
    chains = pd.DataFrame({"chain": np.repeat(np.arange(4), 3001),
                           "step": np.tile(np.arange(3001), 4),
                           **{f"p{j}": state[:, :, j].T.reshape(-1) for j in range(d)}})
    summary = chain_summary(chains, [f"p{j}" for j in range(d)])
    assert summary["r_hat"].max() < 1.01 and summary["ess_bulk"].min() > 2000
    sd = np.sqrt(np.diag(post_cov))
    ess = summary["ess_bulk"].to_numpy()
    assert np.all(np.abs(draws.mean(axis=0) - post_mean) < 4 * sd / np.sqrt(ess))
    for j in range(d):
        lo, hi = np.quantile(draws[:, j], [0.05, 0.95])
        exact = stats.norm.ppf([0.05, 0.95], post_mean[j], sd[j])
        # the quantile's Monte Carlo error: sqrt(p(1-p)/ess) / density at the quantile
        error = np.sqrt(0.05 * 0.95 / ess[j]) / stats.norm.pdf(stats.norm.ppf(0.05)) * sd[j]
        assert abs(lo - exact[0]) < 4 * error and abs(hi - exact[1]) < 4 * error
    assert accepted[1:].mean() > 0.5


def test_emulator_recovers_a_quadratic_surface_and_its_noise():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(600, 4))
    truth = 1.0 + x[:, 0] - 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] ** 2
    y = np.column_stack([truth + 0.1 * rng.normal(size=600), 2 * truth])
    emulator = Emulator(x, y)
    grid = rng.normal(size=(200, 4))
    exact = 1.0 + grid[:, 0] - 0.5 * grid[:, 1] * grid[:, 2] + 0.3 * grid[:, 3] ** 2
    assert np.abs(emulator(grid)[:, 0] - exact).max() < 0.1
    # the cross-validated residuals carry the noise's sd (0.1) within its sampling error
    assert abs(emulator.residuals[:, 0].std() - 0.1) < 0.1 * 4 / np.sqrt(2 * 600) + 0.01
    assert emulator.r2.min() > 0.95


def test_posterior_command_writes_its_state_and_refuses_bad_input(tmp_path, capsys):
    """`crlm-sim posterior` end to end at a toy size: every stage's file, a sample of distinct
    draws with their chain and step; a bad count is one line naming the flag, exit status 2."""
    import json

    from sim.cli import main

    out = tmp_path / "run"
    assert main(["posterior", "--design", "40", "--noise-studies", "20", "--studies", "2",
                 "--chains", "2", "--steps", "200", "--posterior-size", "50", "--workers", "1",
                 "--out", str(out)]) == 0
    for name in ("design.csv", "noise.csv", "chains.parquet", "studies.csv", "ranks.csv",
                 "coverage.csv", "diagnostics.csv", "posterior.csv", "summary.json"):
        assert (out / name).exists(), name
    sample = pd.read_csv(out / "posterior.csv")
    assert len(sample) == 50 and {"chain", "step"} <= set(sample.columns)
    assert len(sample.drop(columns=["chain", "step"]).drop_duplicates()) == 50
    assert json.loads((out / "summary.json").read_text())["studies"] == 2
    capsys.readouterr()
    assert main(["posterior", "--design", "0", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--design" in err[0]
    assert not (tmp_path / "bad").exists()
