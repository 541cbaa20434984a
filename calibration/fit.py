"""The fit: a derivative-free search from the hand-set start, then a posterior sample.

1. Search: CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772; the
   `cma` package) on the unbounded scale of `calibration.space`, from the parameter file's
   values, seeded. Every evaluation is appended to ``history.csv`` after each generation; an
   interrupted fit resumes (`resume=True`) by replaying that history into a new search with the
   same seed: the search asks the same points again (checked against the file, point by point)
   and is told the recorded losses. The state is data only: nothing read back can run code.
2. Posterior. The target is the likelihood ``exp(-loss / 2)`` (independent normal misses at the
   study's spread), a uniform prior on the unbounded scale within the bounds, and consistency
   with every target (every |z| <= 1.96; the sample holds no parameter set that misses a figure
   by more than that).
   - `posterior_sample`: sampling-importance-resampling (SIR; Rubin, "Using the SIR algorithm
     to simulate posterior distributions", Bayesian Statistics 3, 1988; Menzies et al.,
     PharmacoEconomics 2017). Proposals from a normal distribution around the fitted point
     with the search's covariance (inflated), weighed by likelihood x prior / proposal density.
     In 40 dimensions the weights are degenerate (the 2024 sample of 90 had an effective sample
     size of 1): kept for small fits and for the record.
   - `posterior_chains` (what `crlm-sim calibrate --posterior-size N` uses for a large sample):
     random-walk Metropolis (Metropolis et al. 1953; proposal covariance 2.38^2 / d times the
     target's covariance, Gelman, Roberts and Gilks 1996, here estimated from the chains' own
     starts and scaled during a burn-in to an acceptance near 0.3, then fixed), several chains
     in parallel, one evaluation per chain and step on the executor, started from distinct
     consistent parameter sets (the installed sample). Every `thin`-th state after the burn-in
     is a draw; a draw identical to its chain's previous one (no move accepted) is skipped, so
     every parameter set in the sample is distinct; the sample is written in a seeded random
     order (any first k draws spread over the chains and steps). The chains' state is appended to
     ``chains.csv`` after each step, and the proposals' covariance to ``proposal.csv`` at the
     start; an interrupted run resumes from them (the random numbers of step g are keyed by
     (seed, g): the resumed chains are the same, whatever sample was installed meanwhile). Effective sample sizes
     and the Gelman-Rubin R-hat of each parameter are written beside the sample.
   Both are a few dozen lines of numpy; an ABC or MCMC library (pyabc, emcee) would bring a
   database or its own process pool for what this needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.objective import Objective
from calibration.space import SPACE, from_unbounded, get, to_unbounded, with_values
from sim.errors import InputError
from sim.model.params import Params

__all__ = ["FitSettings", "ChainSettings", "search", "posterior_sample", "posterior_chains",
           "chain_diagnostics", "point_of", "Point"]

@dataclass(frozen=True)
class FitSettings:
    budget: int = 600              # objective evaluations of the search
    posterior_proposals: int = 400
    posterior_size: int = 100
    seed: int = 1
    sigma0: float = 0.08           # initial step on the unbounded scale (about 8% of a value)
    inflation: float = 2.0         # proposal covariance = inflation^2 x the search's covariance


def point_of(x: np.ndarray, start: Params, clip: bool = True) -> Params:
    """The parameter set at a point of the unbounded search space (clipped to the bounds unless
    `clip` is False)."""
    return with_values(start, {d.path: v for d, v in zip(SPACE, from_unbounded(x, clip))})


@dataclass(frozen=True)
class Point:
    """One simulation at a point of the unbounded space: a unit of work for the executor layer
    (`seed`: for the simulations that take their own, `calibration.emulator`)."""

    index: int
    x: np.ndarray
    objective: Objective
    start: Params
    seed: int = 0


def _evaluate(point: Point) -> tuple[int, float, np.ndarray]:
    table = point.objective.table(point_of(point.x, point.start))
    return point.index, point.objective.loss_of(table), table["z"].to_numpy()


def _map(executor, objective: Objective, start: Params, points) -> list[tuple[float, np.ndarray]]:
    """Evaluate the points on the executor (local processes or Dask), results in their order."""
    results: list = [None] * len(points)

    def keep(result):
        results[result[0]] = result[1:]

    executor.run(_evaluate, [Point(k, np.asarray(x), objective, start) for k, x in enumerate(points)],
                 keep)
    return results


def _replay(es, history: Path, progress=None) -> None:
    """Bring a new search to where the recorded one stopped: ask, check that the points are the
    recorded ones, tell the recorded losses. A history from other settings is refused."""
    try:
        frame = pd.read_csv(history)
        columns = ["generation", "loss", *[d.path for d in SPACE]]
        recorded = frame[columns].to_numpy(dtype=float)
    except (ValueError, KeyError, pd.errors.ParserError) as error:
        raise InputError(f"--resume: {history} is not a search history of this version "
                         f"({type(error).__name__})") from None
    for generation in np.unique(recorded[:, 0]):
        rows = recorded[recorded[:, 0] == generation]
        points = es.ask()
        natural = np.array([from_unbounded(x) for x in points])
        if len(rows) != len(points) or not np.allclose(natural, rows[:, 2:], rtol=1e-9, atol=0):
            raise InputError(f"--resume: {history} was written by a search with other settings "
                             "(start, --sigma or --seed); repeat its command exactly")
        es.tell(points, rows[:, 1].tolist())
        if progress is not None:
            progress.update(len(points))


def search(objective: Objective, start: Params, settings: FitSettings, out: Path, executor,
           resume: bool = False, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """CMA-ES from `start`; returns the best point and the final covariance (unbounded scale)."""
    import cma  # noqa: PLC0415 - only the calibration needs it

    out.mkdir(parents=True, exist_ok=True)
    history = out / "history.csv"
    x0 = to_unbounded(np.array([get(start, d.path) for d in SPACE]))
    es = cma.CMAEvolutionStrategy(x0, settings.sigma0, {
        "seed": settings.seed, "verbose": -9, "maxfevals": settings.budget,
        "CMA_diagonal": False})
    es.inject([x0])  # the start is evaluated in the first generation: the fit never loses it
    if resume and history.exists():
        _replay(es, history, progress)
    else:
        history.unlink(missing_ok=True)
    while not es.stop():
        points = es.ask()
        results = _map(executor, objective, start, points)
        es.tell(points, [loss for loss, _ in results])
        rows = pd.DataFrame(
            [[es.countiter, loss, *from_unbounded(x)] for x, (loss, _) in zip(points, results)],
            columns=["generation", "loss", *[d.path for d in SPACE]])
        rows.to_csv(history, mode="a", header=not history.exists(), index=False)
        if progress is not None:
            progress.update(len(points))
            progress.set_postfix(best=f"{es.result.fbest:.2f}")
    covariance = es.sigma ** 2 * es.C if hasattr(es, "C") else np.eye(len(SPACE)) * es.sigma ** 2
    return np.asarray(es.result.xbest), np.asarray(covariance)


def posterior_sample(objective: Objective, start: Params, best: np.ndarray,
                     covariance: np.ndarray, settings: FitSettings, executor,
                     progress=None) -> pd.DataFrame:
    """SIR sample of parameter sets consistent with every target (see the module's text)."""
    rng = np.random.default_rng(settings.seed)
    cov = settings.inflation ** 2 * (covariance + 1e-6 * np.eye(len(best)))
    proposals = rng.multivariate_normal(best, cov, size=settings.posterior_proposals)
    results = []
    for begin in range(0, len(proposals), 16):
        results += _map(executor, objective, start, proposals[begin:begin + 16])
        if progress is not None:
            progress.update(len(proposals[begin:begin + 16]))
    loss = np.array([r[0] for r in results])
    worst = np.array([np.max(np.abs(r[1])) for r in results])
    natural = np.array([from_unbounded(x, clip=False) for x in proposals])
    lower, upper = (np.array([getattr(d, side) for d in SPACE]) for side in ("lower", "upper"))
    inside = ((natural >= lower) & (natural <= upper)).all(axis=1)
    difference = proposals - best
    log_q = -0.5 * np.einsum("ij,jk,ik->i", difference, np.linalg.inv(cov), difference)
    log_w = np.where(inside & (worst <= 1.96), -0.5 * loss - log_q, -np.inf)
    frame = pd.DataFrame(natural, columns=[d.path for d in SPACE])
    frame.insert(0, "loss", loss)
    frame.insert(1, "max_abs_z", worst)
    frame.insert(2, "log_weight", log_w)
    consistent = np.flatnonzero(np.isfinite(log_w))
    if len(consistent) == 0:
        return frame.iloc[0:0]
    weight = np.exp(log_w[consistent] - log_w[consistent].max())
    size = min(settings.posterior_size, len(consistent), int((weight > 0).sum()))
    chosen = rng.choice(consistent, size=size, replace=False, p=weight / weight.sum())
    return frame.iloc[np.sort(chosen)].reset_index(drop=True)



@dataclass(frozen=True)
class ChainSettings:
    """Random-walk Metropolis: chains, draws wanted, burn-in steps, thinning, target acceptance."""

    size: int = 1000
    chains: int = 10
    burn: int = 40
    thin: int = 5
    seed: int = 1
    acceptance: float = 0.3
    max_steps: int = 2000      # per chain, burn-in included: a run that mixes badly stops here


def _target(loss: float, worst: float, x: np.ndarray) -> float:
    """Log posterior density (up to a constant): -inf outside the bounds or the consistent set."""
    natural = from_unbounded(x, clip=False)
    inside = all(d.lower <= v <= d.upper for d, v in zip(SPACE, natural))
    return -0.5 * loss if inside and worst <= 1.96 and np.isfinite(loss) else -np.inf


def posterior_chains(objective: Objective, start: Params, starts: np.ndarray,
                     covariance: np.ndarray, settings: ChainSettings, executor, out: Path,
                     progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posterior sample of `settings.size` distinct parameter sets by random-walk Metropolis
    from `starts` (chains x dimensions, unbounded scale), with proposals shaped by `covariance`
    (see the module's text); and the chains' whole history. Resumes from ``out/chains.csv``."""
    paths = [d.path for d in SPACE]
    chains, dimension = starts.shape
    record = out / "chains.csv"
    columns = ["step", "chain", "scale", "accepted", "loss", "max_abs_z", *paths]
    covariance = _proposal_shape(out / "proposal.csv", covariance, paths)
    factor = np.linalg.cholesky(covariance + 1e-8 * np.eye(dimension))
    if record.exists():
        history = pd.read_csv(record)
        if list(history.columns) != columns or history["chain"].max() + 1 != chains:
            raise InputError(f"--resume: {record} was written by other chain settings")
    else:
        results = _map(executor, objective, start, list(starts))
        history = pd.DataFrame(
            [[0, c, 2.38 / np.sqrt(dimension), True, loss, np.max(np.abs(z)),
              *from_unbounded(x)] for c, (x, (loss, z)) in enumerate(zip(starts, results))],
            columns=columns)
        history.to_csv(record, index=False)
    while True:
        last = history[history["step"] == history["step"].max()].sort_values("chain")
        step = int(last["step"].iloc[0])
        draws = _draws(history, settings)
        if len(draws) >= settings.size or step >= settings.max_steps:
            break
        current = np.array([to_unbounded(row) for row in last[paths].to_numpy()])
        log_p = np.array([_target(l, w, x) for l, w, x in
                          zip(last["loss"], last["max_abs_z"], current)])
        scale = float(last["scale"].iloc[0])
        rng = np.random.default_rng([settings.seed, step + 1])
        proposals = current + scale * rng.standard_normal((chains, dimension)) @ factor.T
        u = rng.random(chains)
        results = _map(executor, objective, start, list(proposals))
        rows = []
        accepted = 0
        for c in range(chains):
            loss, z = results[c]
            worst = float(np.max(np.abs(z)))
            proposed = _target(loss, worst, proposals[c])
            # a chain outside the support (a start no longer consistent) takes any point inside
            move = (np.isfinite(proposed) if log_p[c] == -np.inf
                    else np.log(u[c]) < proposed - log_p[c])
            accepted += bool(move)
            if move:
                rows.append([step + 1, c, scale, True, loss, worst, *from_unbounded(proposals[c])])
            else:   # the state as recorded (a round trip of the scales could move its last bit)
                rows.append([step + 1, c, scale, False, *last.iloc[c][["loss", "max_abs_z", *paths]]])
        if step + 1 <= settings.burn:   # during the burn-in only: steer the acceptance rate
            scale *= float(np.exp(accepted / chains - settings.acceptance))
            for row in rows:
                row[2] = scale
        new = pd.DataFrame(rows, columns=columns)
        new.to_csv(record, mode="a", header=False, index=False)
        history = pd.concat([history, new], ignore_index=True)
        if progress is not None:
            progress.update(chains)
            progress.set_postfix(draws=len(_draws(history, settings)),
                                 accepted=f"{accepted}/{chains}")
    # in a seeded random order: the first k draws (a comparison with k draws takes those) are
    # then a spread of the chains and steps, not the first steps of a few chains
    drawn = _draws(history, settings).head(settings.size)
    order = np.random.default_rng([settings.seed, _SHUFFLE]).permutation(len(drawn))
    return drawn.iloc[order].reset_index(drop=True), history


_SHUFFLE = 0x53485546   # "SHUF": the stream of the sample's order


def _proposal_shape(path: Path, covariance: np.ndarray, paths: list[str]) -> np.ndarray:
    """The covariance that shapes a run's proposals: the one it started with, kept in `path`
    (so that a resumed run goes on with it even after another sample, with another spread, was
    installed), else `covariance`, which is then kept there."""
    if path.exists():
        kept = pd.read_csv(path)
        if list(kept.columns) != paths:
            raise InputError(f"--resume: {path} was written for other parameters")
        return kept.to_numpy(dtype=float)
    pd.DataFrame(covariance, columns=paths).to_csv(path, index=False, float_format="%.17g")
    return covariance


def _draws(history: pd.DataFrame, settings: ChainSettings) -> pd.DataFrame:
    """Every `thin`-th state after the burn-in, in order of step then chain, without a state
    equal to its chain's previous draw."""
    paths = [d.path for d in SPACE]
    kept = history[(history["step"] > settings.burn)
                   & ((history["step"] - settings.burn) % settings.thin == 0)]
    kept = kept.sort_values(["chain", "step"])
    same = (kept[paths].diff().abs().sum(axis=1) == 0) & (kept["chain"].diff() == 0)
    kept = kept[~same].sort_values(["step", "chain"])
    frame = kept[["loss", "max_abs_z", *paths]].copy()
    frame.insert(2, "log_weight", 0.0)       # equally weighted draws
    frame.insert(3, "chain", kept["chain"].to_numpy())
    frame.insert(4, "step", kept["step"].to_numpy())
    return frame


def chain_diagnostics(history: pd.DataFrame, settings: ChainSettings) -> pd.DataFrame:
    """Per parameter: the Gelman-Rubin R-hat (split chains) and the effective sample size of
    the draws after the burn-in (Geyer's initial positive sequence, pooled over chains)."""
    paths = [d.path for d in SPACE]
    after = history[history["step"] > settings.burn]
    rows = []
    for path in paths:
        series = [g.sort_values("step")[path].to_numpy() for _, g in after.groupby("chain")]
        n = min(len(x) for x in series)
        if n < 4:
            rows.append({"parameter": path, "r_hat": np.nan, "ess": np.nan})
            continue
        half = n // 2
        split = np.array([x[:half] for x in series] + [x[half:2 * half] for x in series])
        means, variances = split.mean(axis=1), split.var(axis=1, ddof=1)
        within, between = variances.mean(), half * means.var(ddof=1)
        r_hat = np.sqrt(((half - 1) / half * within + between / half) / within) if within > 0 else np.nan
        rows.append({"parameter": path, "r_hat": r_hat, "ess": _ess(np.array([x[:n] for x in series]))})
    return pd.DataFrame(rows)


def _ess(chains: np.ndarray) -> float:
    """Effective sample size of (chains x steps) draws: chains x steps over the integrated
    autocorrelation time, summed over lags while pairs of autocorrelations stay positive."""
    m, n = chains.shape
    centred = chains - chains.mean(axis=1, keepdims=True)
    variance = (centred ** 2).mean()
    if variance == 0:
        return float("nan")
    tau, lag = 1.0, 1
    while lag + 1 < n:
        pair = sum((centred[:, :n - k] * centred[:, k:]).mean() / variance for k in (lag, lag + 1))
        if pair <= 0:
            break
        tau += 2 * pair
        lag += 2
    return float(m * n / tau)
