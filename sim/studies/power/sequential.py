"""Group-sequential boundaries: K analyses, two-sided, by recursive numerical integration.

The standardized statistics Z_1..Z_K at information fractions t_1 < ... < t_K = 1 are those of a
Brownian motion: the score S_k = Z_k sqrt(t_k) has independent normal increments with variance
t_k - t_{k-1} (and mean theta (t_k - t_{k-1}) under a drift theta). The probability of first
crossing |Z_k| >= b_k at look k is computed by carrying the density of S_k on the continuation
region from look to look, integrating against the normal increment on a fine grid with Simpson's
rule (Armitage, McPherson and Rowe, J R Stat Soc A 1969;132:235-244; Jennison and Turnbull,
Group Sequential Methods with Applications to Clinical Trials, 2000, chapter 19).

- `classical_boundaries`: Pocock's constant boundary and O'Brien and Fleming's c sqrt(K/k), for
  equally spaced looks, with c found so that the total two-sided type I error is alpha.
- `spending_boundaries`: the Lan-DeMets boundaries of an alpha-spending function (O'Brien-Fleming
  type, Pocock type, Hwang-Shih-DeCani with parameter gamma) at any information fractions.
- `crossing_probabilities`: the probability of stopping at each look for given boundaries, under
  the null or a drift.
- `futility_boundaries`: one-sided designs, lower (futility) boundaries that spend the type II
  error `beta` by a spending function under the drift the design expects (non-binding: the
  efficacy boundaries are computed without them); `exit_probabilities` gives each look's
  probability of exiting above and below.
- `equivalence_probabilities`: two one-sided tests at each look (equivalence when both reject at
  the same look): the stopping region is an interval around 0, the continuation region its two
  sides, carried on two grids.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

__all__ = ["spending", "crossing_probabilities", "classical_boundaries", "spending_boundaries",
           "futility_boundaries", "exit_probabilities", "equivalence_probabilities",
           "SPENDING_FUNCTIONS"]

SPENDING_FUNCTIONS = ("obrien-fleming", "pocock", "hsd")
_POINTS = 401   # grid points over each look's continuation region (odd: Simpson's rule)


def spending(kind: str, t, alpha: float, gamma: float = -4.0) -> np.ndarray:
    """Cumulative two-sided alpha spent by information fraction `t` (Lan and DeMets 1983;
    Hwang, Shih and DeCani 1990)."""
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    if kind == "obrien-fleming":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2.0 * (1.0 - norm.cdf(norm.ppf(1.0 - alpha / 2.0) / np.sqrt(t))), 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    if kind == "hsd":
        if gamma == 0:
            return alpha * t
        return alpha * (1.0 - np.exp(-gamma * t)) / (1.0 - math.exp(-gamma))
    raise ValueError(f"unknown spending function {kind!r} (one of {', '.join(SPENDING_FUNCTIONS)})")


def _simpson_weights(n: int, width: float) -> np.ndarray:
    weights = np.ones(n)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return weights * width / (3.0 * (n - 1))


def _step(grid, density, t_before, t_now, bound, lower, drift):
    """From the continuation density of S at `t_before` (on `grid`) to look `t_now`: the
    probability of crossing above `bound` and below `lower` (z-scale), and the new continuation
    density and grid."""
    spread = math.sqrt(t_now - t_before)
    edge, floor = bound * math.sqrt(t_now), lower * math.sqrt(t_now)
    shift = drift * (t_now - t_before)
    new_grid = np.linspace(floor, edge, _POINTS)
    if grid is None:   # the first look: S_1 ~ N(drift t_1, t_1)
        centre, scale = drift * t_now, math.sqrt(t_now)
        return (norm.sf((edge - centre) / scale), norm.cdf((floor - centre) / scale), new_grid,
                norm.pdf((new_grid - centre) / scale) / scale)
    weights = _simpson_weights(len(grid), grid[-1] - grid[0]) * density
    above = float(weights @ norm.sf((edge - grid - shift) / spread))
    below = float(weights @ norm.cdf((floor - grid - shift) / spread))
    kernel = norm.pdf((new_grid[:, None] - grid[None, :] - shift) / spread) / spread
    return above, below, new_grid, kernel @ weights


_NO_LOWER = -8.0   # a one-sided design's continuation region reaches down to here (z-scale)


def crossing_probabilities(bounds, t, drift: float = 0.0, sided: int = 2) -> np.ndarray:
    """Probability of first crossing the boundary at each look: |Z_k| >= bounds[k] (two-sided)
    or Z_k >= bounds[k] (one-sided: no lower boundary), for a drift `drift` of the score per
    unit information (0: the null)."""
    bounds, t = np.asarray(bounds, float), np.asarray(t, float)
    grid = density = None
    before, out = 0.0, []
    for bound, now in zip(bounds, t):
        lower = -bound if sided == 2 else _NO_LOWER
        above, below, grid, density = _step(grid, density, before, now, bound, lower, drift)
        out.append(above + below if sided == 2 else above)
        before = now
    return np.array(out)


def classical_boundaries(looks: int, alpha: float, kind: str, sided: int = 2) -> np.ndarray:
    """Pocock's constant boundary or O'Brien and Fleming's c sqrt(K/k) for `looks` equally spaced
    analyses at level `alpha` (Jennison and Turnbull 2000, tables 2.1 and 2.3, two-sided)."""
    t = np.arange(1, looks + 1) / looks
    shape = {"pocock": np.ones(looks), "obrien-fleming": np.sqrt(looks / np.arange(1, looks + 1))}[kind]

    def excess(c):
        return crossing_probabilities(c * shape, t, sided=sided).sum() - alpha

    constant = brentq(excess, norm.ppf(1 - alpha / 2) * 0.5, 10.0, xtol=1e-10)
    return constant * shape


def spending_boundaries(t, alpha: float, kind: str, gamma: float = -4.0,
                        sided: int = 2) -> np.ndarray:
    """Boundaries spending `alpha` (two-sided, or one-sided with `sided` = 1) by the spending
    function `kind` at information fractions `t` (the last 1): look by look, b_k is found so that
    the probability of first crossing at k is the alpha spent between t_{k-1} and t_k."""
    t = np.asarray(t, float)
    spent = np.diff(np.concatenate([[0.0], spending(kind, t, alpha, gamma)]))
    bounds = []
    for k in range(len(t)):
        def excess(b):
            return crossing_probabilities([*bounds, b], t[:k + 1], sided=sided)[-1] - spent[k]

        bounds.append(brentq(excess, 0.1, 40.0, xtol=1e-10) if spent[k] > 1e-15 else 40.0)
    return np.array(bounds)


def exit_probabilities(upper, lower, t, drift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One-sided design with a lower boundary: the probability of first exiting above
    (Z_k >= upper[k]) and below (Z_k <= lower[k]) at each look, under `drift`."""
    upper, lower, t = (np.asarray(v, float) for v in (upper, lower, t))
    grid = density = None
    before, above_k, below_k = 0.0, [], []
    for b, a, now in zip(upper, lower, t):
        above, below, grid, density = _step(grid, density, before, now, b, max(a, _NO_LOWER), drift)
        above_k.append(above)
        below_k.append(below)
        before = now
    return np.array(above_k), np.array(below_k)


def futility_boundaries(upper, t, drift: float, beta: float, kind: str,
                        gamma: float = -4.0) -> np.ndarray:
    """Lower boundaries of a one-sided design spending `beta` (the type II error) by the
    spending function `kind` at information fractions `t`, under the drift the design expects;
    each at most its efficacy boundary, and the last equal to it (a trial that reaches the final
    analysis without crossing has failed). Non-binding: `upper` is not changed by them."""
    upper, t = np.asarray(upper, float), np.asarray(t, float)
    spent = np.diff(np.concatenate([[0.0], spending(kind, t, beta, gamma)]))
    lower: list[float] = []
    for k in range(len(t) - 1):
        def excess(a):
            return exit_probabilities(upper[:k + 1], [*lower, a], t[:k + 1], drift)[1][-1] - spent[k]

        if excess(upper[k]) <= 0:        # even at the efficacy boundary too little is spent
            lower.append(float(upper[k]))
        elif excess(_NO_LOWER) >= 0:
            lower.append(_NO_LOWER)
        else:
            lower.append(brentq(excess, _NO_LOWER, upper[k], xtol=1e-10))
    return np.array([*lower, upper[-1]])


def equivalence_probabilities(bounds, t, width: float, drift: float = 0.0) -> np.ndarray:
    """Two one-sided tests of a margin m at each look, each against its one-sided boundary
    `bounds[k]`: the probability that both first reject together at look k. On the scale of the
    standardized estimate U_k = theta_hat sqrt(I_k) (theta the log hazard ratio, I_k the
    information), both reject when ``|U_k| <= width sqrt(t_k) - bounds[k]``, with ``width =
    log(m) sqrt(I_K)``; `drift` is ``theta sqrt(I_K)``. The continuation region is the two sides
    of that interval, each carried on its own grid (reaching 8 standard deviations past the
    centre of S_k's distribution)."""
    bounds, t = np.asarray(bounds, float), np.asarray(t, float)
    grids = densities = None
    before, out = 0.0, []
    for bound, now in zip(bounds, t):
        half = max(width * math.sqrt(now) - bound, 0.0) * math.sqrt(now)   # on the scale of S
        centre, reach = drift * now, 8.0 * math.sqrt(now)
        new_grids = [np.linspace(min(-half, centre - reach), -half, _POINTS),
                     np.linspace(half, max(half, centre + reach), _POINTS)]
        if grids is None:
            scale = math.sqrt(now)
            out.append(float(norm.cdf((half - centre) / scale) - norm.cdf((-half - centre) / scale)))
            densities = [norm.pdf((g - centre) / scale) / scale for g in new_grids]
        else:
            spread, shift = math.sqrt(now - before), drift * (now - before)
            grid = np.concatenate(grids)
            weights = np.concatenate([_simpson_weights(len(g), g[-1] - g[0]) * f
                                      for g, f in zip(grids, densities)])
            out.append(float(weights @ (norm.cdf((half - grid - shift) / spread)
                                        - norm.cdf((-half - grid - shift) / spread))))
            densities = [norm.pdf((g[:, None] - grid[None, :] - shift) / spread) / spread @ weights
                         for g in new_grids]
        grids, before = new_grids, now
    return np.array(out)
