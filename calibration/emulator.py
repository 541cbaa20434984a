"""The posterior by synthetic likelihood on an emulator of the study's figures.

Why not the chains on the loss (`calibration.fit.posterior_chains`): at the objective's cohort the
loss varies from seed to seed by more than the differences an acceptance step weighs, its terms
(1-, 3- and 5-year survival of the same patients, curves that share events) are correlated and
were counted as independent, and 40-dimensional random-walk chains at 0.4 s a step do not mix in
hours. Here, as in emulator-based calibration of cancer microsimulations (BayCANN, Jalal et al.,
Med Decis Making 2021; the CRC-AIM calibration of Vahdat et al. 2023):

1. **Design.** `simulate_design`: parameter sets drawn from the calibration prior (`Prior`), each
   simulated once at the objective's design (every fitted figure of the study and the external
   figures, `calibration.objective`), plus the quantities whose coverage is checked (`QUANTITIES`).
   Appended to ``design.csv`` a batch at a time; a rerun resumes.
2. **Emulator.** `Emulator`: a quadratic response surface of every figure (on the scale of its
   likelihood: log for hazard ratios and FACS ratios) in the standardized parameters, ridge
   penalty chosen by cross-validation (scikit-learn's RidgeCV), its cross-validated residuals kept:
   their covariance (the emulator's error and the simulation noise of each design point) enters
   the likelihood.
3. **Synthetic likelihood.** `SyntheticLikelihood`: the study's figures are one draw of a normal
   vector around the emulator's mean, with the covariance of what a study of the paper's size
   shows around that mean (`noise_covariance`): the residuals of synthetic studies (141 rectal
   and 441 colon patients simulated at prior draws, the external figures with their published
   sampling error) from the emulator, shrunk with the Ledoit-Wolf weight. It holds each figure's
   sampling noise, their correlations (1-, 3- and 5-year survival of the same patients count
   once) and the emulator's error. A figure given only as a bound adds a one-sided normal term
   when the model is on the wrong side. No truncation at |z| <= 1.96.
4. **Sampler.** `sample_posterior`: the mode (BFGS on the emulator) and the curvature there
   (central differences), then independence Metropolis-Hastings (Tierney, Ann Stat 1994) with a
   multivariate t proposal (30 degrees of freedom) shaped by three rounds of importance sampling:
   on a near-normal posterior it accepts about half the proposals and its draws are nearly
   independent. Every step of every chain is kept (`chain`, `step`), so that ArviZ's
   rank-normalised split R-hat and bulk and tail ESS (Vehtari et al., Bayesian Analysis 2021) can
   be recomputed from what is installed.
5. **Coverage.** `coverage_study`: synthetic studies with known parameters drawn from the prior,
   each simulated at the paper's size (141 rectal and 441 colon patients, external figures with
   their published standard errors), each run through steps 3-4 with the same emulator; the rank of
   every true parameter among its posterior draws (simulation-based calibration, Talts et al. 2018)
   and whether the 50%, 80% and 95% intervals of the quantities contain their true values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from calibration.fit import Point, point_of
from calibration.objective import Objective, StudyDesign
from calibration.space import SPACE, from_unbounded, to_unbounded
from sim.model.params import Params

__all__ = ["Prior", "QUANTITIES", "simulate_design", "Emulator", "SyntheticLikelihood",
           "noise_covariance", "observed_and_bounds", "simulate_studies", "SamplerSettings",
           "sample_chains", "sample_posterior", "coverage_study", "likelihood_scale",
           "on_likelihood_scale"]

QUANTITIES = ("os_60", "curative_reop_of_recurred", "lyg_intensive_over_esmo")
"""Quantities whose intervals are checked for coverage: 5-year overall survival and the share of
recurrences operated with curative intent (figures of the study's design), and the life-years
gained over 10 years by intensive over ESMO-like follow-up (`_life_years_gained`)."""
LYG_PATIENTS = 2000


@dataclass(frozen=True)
class Prior:
    """Independent normal priors on the unbounded scale of `calibration.space`: a mean and a
    standard deviation per dimension (`calibration/prior.csv`; the model card says how they were
    set)."""

    mean: np.ndarray
    sd: np.ndarray

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 25])
        return self.mean + self.sd * rng.standard_normal((n, len(self.mean)))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        return stats.norm.logpdf(np.atleast_2d(x), self.mean, self.sd).sum(axis=1)

    @classmethod
    def read(cls, path: Path) -> Prior:
        frame = pd.read_csv(path).set_index("parameter").loc[[d.path for d in SPACE]]
        return cls(frame["mean"].to_numpy(float), frame["sd"].to_numpy(float))


def likelihood_scale(objective: Objective) -> tuple[list[str], np.ndarray]:
    """(figure ids in the objective's order, whether each is on the log scale)."""
    ids = [t.id for t in objective.targets] + [t.id for t in objective.external]
    log = ([t.estimator == "cox_univariate" for t in objective.targets]
           + [t.scale == "log" for t in objective.external])
    return ids, np.array(log)


def _life_years_gained(params: Params, seed: int) -> float:
    """Mean life-years over 10 years, intensive minus ESMO-like follow-up, same patients."""
    from sim.api import simulate_cohort  # noqa: PLC0415

    means = [simulate_cohort(LYG_PATIENTS, seed=seed, design="horizon", years=10.0, policy=name,
                             params=params).patients["os_months"].mean() / 12.0
             for name in ("intensive", "esmo")]
    return float(means[0] - means[1])


def _simulate_point(point: Point) -> tuple[int, np.ndarray]:
    params = point_of(point.x, point.start, clip=False)
    model = point.objective.table(params)["model"].to_numpy(float)
    return point.index, np.append(model, _life_years_gained(params, point.seed))


def simulate_design(objective: Objective, start: Params, prior: Prior, n: int, seed: int,
                    executor, out: Path, batch: int = 100, progress=None) -> pd.DataFrame:
    """The design: `n` prior draws (on the unbounded scale) and what the model gives at each (every
    fitted figure, and the life-years gained), appended to ``out/design.csv`` a batch at a time
    (a rerun resumes)."""
    ids, _ = likelihood_scale(objective)
    columns = ["point", *[d.path for d in SPACE], *ids, "lyg_intensive_over_esmo"]
    path = out / "design.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
    points = prior.draw(n, seed)
    while len(done) < n:
        first = len(done)
        chunk = range(first, min(n, first + batch))
        results: dict[int, np.ndarray] = {}
        executor.run(_simulate_point,
                     [Point(k, points[k], objective, start, seed) for k in chunk],
                     lambda r: results.__setitem__(r[0], r[1]))
        rows = [[k, *points[k], *results[k]] for k in chunk]
        frame = pd.DataFrame(rows, columns=columns)
        frame.to_csv(path, mode="a", header=not path.exists() or first == 0, index=False)
        done = pd.concat([done, frame], ignore_index=True) if first else frame
        if progress is not None:
            progress.update(len(rows))
    return done.iloc[:n]


def on_likelihood_scale(values: np.ndarray, log: np.ndarray) -> np.ndarray:
    """Figures on the likelihood's scale: the log of those flagged in `log` (NaN where not
    positive), the others as they are."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(log, np.log(np.where(values > 0, values, np.nan)), values)


class Emulator:
    """Quadratic response surface of each output in the standardized unbounded parameters,
    ridge penalty by cross-validation; its 5-fold cross-validated `residuals` and `r2` per output
    (the likelihood's covariance holds the emulator's error through `noise_covariance`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, alphas=(0.1, 1.0, 10.0, 100.0, 1000.0)):
        from sklearn.linear_model import RidgeCV  # noqa: PLC0415
        from sklearn.model_selection import KFold  # noqa: PLC0415
        from sklearn.preprocessing import PolynomialFeatures  # noqa: PLC0415

        self.center, self.scale = x.mean(axis=0), x.std(axis=0)
        self.features = PolynomialFeatures(2, include_bias=False)
        z = self.features.fit_transform((x - self.center) / self.scale)
        self.y_mean, self.y_sd = y.mean(axis=0), y.std(axis=0)
        target = (y - self.y_mean) / self.y_sd
        self.model = RidgeCV(alphas=alphas).fit(z, target)
        residuals = np.empty_like(target)
        for train, test in KFold(5, shuffle=True, random_state=0).split(z):
            fold = RidgeCV(alphas=alphas).fit(z[train], target[train])
            residuals[test] = target[test] - fold.predict(z[test])
        self.residuals = residuals * self.y_sd
        self.r2 = 1.0 - residuals.var(axis=0) / target.var(axis=0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = self.features.transform((np.atleast_2d(x) - self.center) / self.scale)
        return self.model.predict(z) * self.y_sd + self.y_mean


class SyntheticLikelihood:
    """log p(observed figures | parameters): normal around the emulator's mean with the given
    covariance (`noise_covariance`: the figures' sampling noise in a study of the paper's size
    and the emulator's error together); figures given as bounds enter one-sided, figures that
    could not be estimated (NaN) not at all."""

    def __init__(self, emulator: Emulator, observed: np.ndarray, covariance: np.ndarray,
                 bound: np.ndarray):
        finite = np.isfinite(observed)
        two_sided, one_sided = (bound == 0) & finite, (bound != 0) & finite
        self.emulator, self.bound = emulator, bound
        self.observed, self.two_sided, self.one_sided = observed, two_sided, one_sided
        inner = covariance[np.ix_(two_sided, two_sided)]
        self.precision_factor = np.linalg.cholesky(np.linalg.inv(inner))
        self.bound_sd = np.sqrt(np.diag(covariance))[one_sided]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mean = self.emulator(x)[:, :len(self.observed)]
        r = (self.observed - mean)[:, self.two_sided] @ self.precision_factor
        loglik = -0.5 * (r ** 2).sum(axis=1)
        if self.one_sided.any():
            miss = (mean - self.observed)[:, self.one_sided] * self.bound[self.one_sided]
            loglik -= 0.5 * ((np.minimum(miss, 0.0) / self.bound_sd) ** 2).sum(axis=1)
        return loglik


def noise_covariance(emulator: Emulator, truths: np.ndarray, figures: np.ndarray) -> np.ndarray:
    """Covariance of what a study of the paper's size shows around the emulator's mean: the
    residuals ``figures - emulator(truths)`` of synthetic studies simulated at prior draws
    (`simulate_studies`), shrunk with the Ledoit-Wolf weight; a figure a study could not
    estimate (NaN) counts as no residual. It holds the sampling noise of every figure at the
    paper's size, their correlation (figures of the same patients count once), and the
    emulator's error, averaged over the prior."""
    from sklearn.covariance import LedoitWolf  # noqa: PLC0415

    residuals = figures - emulator(truths)[:, :figures.shape[1]]
    residuals = np.where(np.isfinite(residuals), residuals, 0.0)
    return LedoitWolf(assume_centered=True).fit(residuals).covariance_


def observed_and_bounds(objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    """(the study's and the external figures on the likelihood's scale, bound direction: +1 a
    lower bound, -1 an upper bound, 0 two-sided)."""
    observed, bound = [], []
    for t in objective.targets:
        observed.append(math.log(t.value) if t.estimator == "cox_univariate" else t.value)
        bound.append({"lower": 1, "upper": -1}.get(t.bound or "", 0))
    for t in objective.external:
        observed.append(math.log(t.value) if t.scale == "log" else t.value)
        bound.append(0)
    return np.array(observed), np.array(bound)


@dataclass(frozen=True)
class SamplerSettings:
    chains: int = 4
    steps: int = 2500
    pilot: int = 20_000          # importance draws of each round that shapes the proposal
    dof: float = 30.0
    seed: int = 1
    rounds: int = 3


def _mode(log_post, start: np.ndarray, step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """The posterior's mode (BFGS) and the inverse of minus the Hessian there, by central
    differences of `log_post` (one batch of 4 d^2 points; the emulator makes them cheap);
    eigenvalues below 1e-6 are raised to it."""
    result = optimize.minimize(lambda x: -float(log_post(x[None, :])[0]), start, method="BFGS",
                               options={"maxiter": 5000, "gtol": 1e-7})
    mode, d = result.x, len(result.x)
    e = np.eye(d) * step
    signs = ((1, 1), (1, -1), (-1, 1), (-1, -1))
    points = np.array([mode + a * e[i] + b * e[j] for i in range(d) for j in range(d)
                       for a, b in signs])
    values = log_post(points).reshape(d, d, 4)
    hessian = (values[..., 0] - values[..., 1] - values[..., 2] + values[..., 3]) / (4 * step ** 2)
    eigenvalues, vectors = np.linalg.eigh(-0.5 * (hessian + hessian.T))
    eigenvalues = np.maximum(eigenvalues, 1e-6)
    return mode, (vectors / eigenvalues) @ vectors.T


def _independence_chains(log_post, center, covariance, chains, steps, dof, seed):
    """Independence Metropolis-Hastings with a multivariate t proposal; every step kept."""
    proposal = stats.multivariate_t(loc=center, shape=covariance, df=dof)
    rng = np.random.default_rng([seed, 7])
    draws = proposal.rvs(size=(steps + 1) * chains, random_state=rng).reshape(steps + 1, chains, -1)
    u = rng.random((steps, chains))
    flat = draws.reshape(-1, draws.shape[-1])
    weight = (log_post(flat) - proposal.logpdf(flat)).reshape(steps + 1, chains)
    state = np.empty_like(draws)
    log_w = np.empty((steps + 1, chains))
    accepted = np.zeros((steps + 1, chains), bool)
    state[0], log_w[0], accepted[0] = draws[0], weight[0], True
    for s in range(1, steps + 1):
        take = np.log(u[s - 1]) < weight[s] - log_w[s - 1]
        state[s] = np.where(take[:, None], draws[s], state[s - 1])
        log_w[s] = np.where(take, weight[s], log_w[s - 1])
        accepted[s] = take
    return state, accepted


def sample_chains(log_post, start: np.ndarray,
                  settings: SamplerSettings = SamplerSettings()) -> tuple[np.ndarray, np.ndarray]:
    """(states (steps + 1, chains, dimensions), accepted) of independence Metropolis-Hastings
    chains on `log_post` (a function of a batch of points), with a multivariate t proposal: first
    the mode and the curvature there (`_mode`), then `rounds` rounds of importance sampling, each
    refitting the proposal's centre and shape to the weighted moments of `pilot` draws from the
    last (population Monte Carlo, Cappé et al. 2004), then the chains."""
    center, covariance = _mode(log_post, start)
    for round_ in range(settings.rounds):       # adaptive importance sampling of the proposal
        proposal = stats.multivariate_t(loc=center, shape=covariance, df=settings.dof)
        points = proposal.rvs(size=settings.pilot,
                              random_state=np.random.default_rng([settings.seed, 1000 + round_]))
        log_w = log_post(points) - proposal.logpdf(points)
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        center = w @ points
        spread = points - center
        covariance = ((spread * w[:, None]).T @ spread * (settings.dof - 2) / settings.dof
                      + 1e-9 * np.eye(len(center)))
    return _independence_chains(log_post, center, covariance, settings.chains, settings.steps,
                                settings.dof, settings.seed)


def sample_posterior(likelihood: SyntheticLikelihood, prior: Prior,
                     settings: SamplerSettings = SamplerSettings()) -> pd.DataFrame:
    """The posterior's chains: columns chain, step, accepted, log_posterior and every parameter
    on the natural scale (step 0 is each chain's first proposal)."""
    def log_post(x):
        return likelihood(x) + prior.log_density(x)

    state, accepted = sample_chains(log_post, prior.mean, settings)
    steps, chains, dim = state.shape
    flat = state.transpose(1, 0, 2).reshape(-1, dim)
    natural = np.array([from_unbounded(x, clip=False) for x in flat])
    frame = pd.DataFrame(natural, columns=[d.path for d in SPACE])
    frame.insert(0, "log_posterior", log_post(flat))
    frame.insert(0, "accepted", accepted.T.reshape(-1))
    frame.insert(0, "step", np.tile(np.arange(steps), chains))
    frame.insert(0, "chain", np.repeat(np.arange(chains), steps))
    return frame


def _synthetic_study(objective: Objective, params: Params, seed: int) -> np.ndarray:
    """The fitted figures of one study of the paper's size (141 rectal, 441 colon patients)
    simulated at `params`, and the external figures with their published sampling error, on the
    likelihood's scale (NaN where a figure cannot be estimated, e.g. a median not reached)."""
    from calibration.estimators import estimate  # noqa: PLC0415
    from calibration.external import (ExternalDesign, external_figures,  # noqa: PLC0415
                                      simulate_external)
    from calibration.objective import simulate_study  # noqa: PLC0415

    patients = simulate_study(params, objective.policy, StudyDesign(141, 441, seed))
    study = estimate(patients, objective.targets)["model"].to_numpy(float)
    figures = external_figures(*simulate_external(params, ExternalDesign(6000, 4000, seed)))
    rng = np.random.default_rng([seed, 11])
    external = np.array([figures[t.id] for t in objective.external])
    _, log = likelihood_scale(objective)
    values = on_likelihood_scale(np.append(study, external), log)
    errors = np.array([t.standard_error for t in objective.external])
    values[len(study):] += errors * rng.standard_normal(len(errors))
    return values


def _simulate_study_point(point: Point) -> tuple[int, np.ndarray]:
    params = point_of(point.x, point.start, clip=False)
    return point.index, _synthetic_study(point.objective, params, point.seed)


def simulate_studies(objective: Objective, start: Params, truths: np.ndarray, seed: int,
                     executor, path: Path) -> np.ndarray:
    """The figures of one synthetic study of the paper's size at each row of `truths`
    (`_synthetic_study`, seeds keyed by (seed, study)), appended to `path` 50 at a time; a rerun
    simulates only the studies not yet there."""
    ids, _ = likelihood_scale(objective)
    known = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["study", *ids])
    missing = [k for k in range(len(truths)) if k not in set(known["study"].astype(int))]
    for first in range(0, len(missing), 50):
        batch = missing[first:first + 50]
        results: dict[int, np.ndarray] = {}
        executor.run(_simulate_study_point,
                     [Point(k, truths[k], objective, start, 1_000_000 + seed * 1000 + k)
                      for k in batch], lambda r: results.__setitem__(r[0], r[1]))
        frame = pd.DataFrame([[k, *results[k]] for k in batch], columns=["study", *ids])
        frame.to_csv(path, mode="a", header=not path.exists(), index=False)
        known = pd.concat([known, frame], ignore_index=True) if len(known) else frame
    return known.set_index("study").loc[range(len(truths))].to_numpy(float)


def coverage_study(objective: Objective, start: Params, prior: Prior, emulator: Emulator,
                   covariance: np.ndarray, bound: np.ndarray, studies: int, seed: int, executor,
                   out: Path, settings: SamplerSettings = SamplerSettings(chains=2, steps=1000,
                                                                          pilot=5000),
                   levels=(0.5, 0.8, 0.95)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulation-based calibration over `studies` synthetic studies with known parameters drawn
    from the prior (``out/studies.csv``), each run through the same likelihood and sampler:
    (ranks of every true parameter among its posterior draws, one row per study; coverage rows
    quantity, nominal, covered, studies). The quantities' values are the emulator's, at the draws
    and at the truth."""
    truths = prior.draw(studies, seed + 1)
    figures = simulate_studies(objective, start, truths, seed, executor, out / "studies.csv")
    ids, _ = likelihood_scale(objective)
    quantity_columns = [len(ids) if q == "lyg_intensive_over_esmo" else ids.index(q)
                        for q in QUANTITIES]
    ranks, hits = [], {(q, level): 0 for q in QUANTITIES for level in levels}
    for k in range(studies):
        likelihood = SyntheticLikelihood(emulator, figures[k], covariance, bound)
        chains = sample_posterior(likelihood, prior, replace(settings, seed=seed + k))
        draws = chains.loc[chains["step"] > 0, [d.path for d in SPACE]].to_numpy(float)
        x = np.array([to_unbounded(row, clip=False) for row in draws])
        ranks.append((x < truths[k]).sum(axis=0))
        predicted, truth = emulator(x), emulator(truths[k][None, :])[0]
        for q, column in zip(QUANTITIES, quantity_columns):
            for level in levels:
                lo, hi = np.quantile(predicted[:, column], [(1 - level) / 2, (1 + level) / 2])
                hits[(q, level)] += int(lo <= truth[column] <= hi)
    rank_frame = pd.DataFrame(ranks, columns=[d.path for d in SPACE])
    rank_frame.insert(0, "draws", len(draws))
    coverage = pd.DataFrame([{"quantity": q, "nominal": level, "covered": hits[(q, level)],
                              "studies": studies} for q in QUANTITIES for level in levels])
    return rank_frame, coverage
