"""The fit: a derivative-free search from the hand-set start, then a posterior sample.

1. Search: CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772; the
   `cma` package) on the unbounded scale of `calibration.space`, from the parameter file's
   values, seeded. Every evaluation is appended to ``history.csv`` after each generation; an
   interrupted fit resumes (`resume=True`) by replaying that history into a new search with the
   same seed: the search asks the same points again (checked against the file, point by point)
   and is told the recorded losses. The state is data only: nothing read back can run code.
2. Posterior: sampling-importance-resampling (SIR; Rubin, "Using the SIR algorithm to simulate
   posterior distributions", Bayesian Statistics 3, 1988; as used for microsimulation calibration
   by Menzies et al., PharmacoEconomics 2017). Proposals are drawn from a normal distribution
   around the fitted point with the search's final covariance (inflated); each is weighed by
   likelihood x prior / proposal density, with the likelihood ``exp(-loss / 2)`` (independent
   normal misses at the study's spread) and a uniform prior on the unbounded scale within the
   bounds. Only proposals consistent with every target (every |z| <= 1.96) are kept, and the
   sample is drawn from them in proportion to their weights, without replacement, so that each
   parameter set in it is distinct. SIR is a dozen lines of numpy; an ABC library (pyabc) would
   bring a database and a scheduler for what this needs.
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

__all__ = ["FitSettings", "search", "posterior_sample", "point_of"]

@dataclass(frozen=True)
class FitSettings:
    budget: int = 600              # objective evaluations of the search
    posterior_proposals: int = 400
    posterior_size: int = 100
    seed: int = 1
    sigma0: float = 0.08           # initial step on the unbounded scale (about 8% of a value)
    inflation: float = 2.0         # proposal covariance = inflation^2 x the search's covariance


def point_of(x: np.ndarray, start: Params) -> Params:
    """The parameter set at a point of the unbounded search space."""
    return with_values(start, {d.path: v for d, v in zip(SPACE, from_unbounded(x))})


@dataclass(frozen=True)
class _Point:
    """One evaluation of the objective: a unit of work for the executor layer."""

    index: int
    x: np.ndarray
    objective: Objective
    start: Params


def _evaluate(point: _Point) -> tuple[int, float, np.ndarray]:
    table = point.objective.table(point_of(point.x, point.start))
    return point.index, point.objective.loss_of(table), table["z"].to_numpy()


def _map(executor, objective: Objective, start: Params, points) -> list[tuple[float, np.ndarray]]:
    """Evaluate the points on the executor (local processes or Dask), results in their order."""
    results: list = [None] * len(points)

    def keep(result):
        results[result[0]] = result[1:]

    executor.run(_evaluate, [_Point(k, np.asarray(x), objective, start) for k, x in enumerate(points)],
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

