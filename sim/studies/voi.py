"""The value of information on plain inputs, each value with its Monte Carlo standard error.

Shaped like the R package voi (Jackson, Heath, Baio, Strong): the inputs are a probabilistic
analysis's sample, not a model.

- `evpi(net_benefit)`: the expected value of perfect information, E[max_d NB_d] - max_d E[NB_d].
- `evppi(net_benefit, inputs, pars)`: of partial perfect information about the parameters
  `pars` (Strong, Oakley and Brennan, Med Decis Making 2014;34:311-326): each option's net
  benefit, relative to the first, is regressed on the parameters over the draws; the fitted
  values g stand for E[NB | parameters] and EVPPI = E[max_d g_d] - max_d E[g_d].
- `evsi(net_benefit, inputs, study_data)`: of sample information, the same regression on a
  study's summary statistics, simulated draw by draw (Strong, Oakley, Brennan and Breeze, Med
  Decis Making 2015;35:570-583).

`net_benefit` is a draws x options frame (or array), `inputs` a draws x parameters frame,
`study_data` a draws x statistics frame. Each function returns an `Estimate`: a float (the
value) that also carries `.se`, its standard error, and, for the regressions, `.method`, `.r2`
(cross-validated, the worst over the options) and `.residual_check` (the largest correlation
between a residual and its fitted value, binned: what the fit left out).

**The regression** (`fit`) is chosen per response by leave-one-out cross-validation among

- ``"gam"``: an additive model, a cubic B-spline basis per parameter (scikit-learn's
  `SplineTransformer`) with a ridge penalty chosen by exact leave-one-out error (mgcv's GAM,
  voi's default, is the same kind of model; with two parameters the basis includes their
  tensor product, as voi's ``te()`` does);
- ``"gp"``: a Gaussian process with an automatic-relevance squared-exponential covariance and a
  noise term (Strong 2014; SAVI), its hyperparameters fitted by scikit-learn's
  `GaussianProcessRegressor` on 150 draws (Strong 2014 also fits them on a subset), then the
  exact posterior on every draw. It captures interactions, which an additive model cannot; it
  is tried (`fit_many`) where the additive model leaves more than 5% of the variance
  unexplained, the group has three or more parameters and there are at most 2,500 draws (its
  matrices are draws x draws), on the 12 parameters that explain most alone where the group is
  larger (`_screen`).

**The standard error** of an EVPPI or EVSI is Strong's: the fitted values' posterior (the
Gaussian process's, or the ridge regression's as a Bayesian linear model) is sampled 200 times,
the EVPPI computed for each sample, and their variance added to that of the mean over the draws
(the regret's variance over their number). For EVPI it is the latter alone.

Net benefit that is a linear function of the willingness to pay (wtp x QALYs - cost) is fitted
once for costs and once for QALYs (`evppi_curve`, as SAVI does), so that a curve over many
willingness-to-pay values costs two regressions per option.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Estimate", "Fit", "evpi", "evppi", "evsi", "evsi_importance", "evppi_curve", "fit",
           "fit_many", "regret"]

METHODS = ("auto", "gam", "gp")
"""The regressions: chosen by cross-validation, additive splines, a Gaussian process."""
SAMPLES = 200
"""Posterior samples of the fitted values for an estimate's standard error (its own relative
error about 5%)."""
GP_MAX_DRAWS = 2_500
"""The Gaussian process is tried up to this many draws (its matrices are draws x draws)."""
GP_HYPER_DRAWS = 150
"""Draws on which a Gaussian process's hyperparameters are fitted (Strong 2014 uses a subset)."""
GP_WORTH_TRYING = 0.95
"""Above this leave-one-out R² of the additive model a Gaussian process is not tried."""
GP_MAX_PARAMETERS = 12
"""A larger group is screened to this many parameters before a Gaussian process is fitted:
those whose own spline regression explains most of the response (`_screen`)."""


class Estimate(float):
    """A value of information: a float, with its standard error `se`, the regression `method`,
    its cross-validated `r2` and `residual_check` (NaN where no regression was made)."""

    se: float
    method: str
    r2: float
    residual_check: float

    def __new__(cls, value: float, se: float, method: str = "", r2: float = float("nan"),
                residual_check: float = float("nan")):
        self = super().__new__(cls, value)
        self.se, self.method, self.r2, self.residual_check = float(se), method, float(r2), float(
            residual_check)
        return self

    @property
    def value(self) -> float:
        return float(self)

    def __repr__(self) -> str:
        extra = f", method={self.method!r}, r2={self.r2:.3f}" if self.method else ""
        return f"Estimate({float(self):.6g}, se={self.se:.3g}{extra})"

    def __reduce__(self):
        return (Estimate, (float(self), self.se, self.method, self.r2, self.residual_check))


def regret(values: np.ndarray) -> np.ndarray:
    """Per draw, what the draw's best option gains over the option best on average; `values` is
    (draw, option) or (..., draw, option). Its mean over the draws is the EVPI (or, of fitted
    values, the EVPPI)."""
    values = np.asarray(values, float)
    chosen = values.mean(axis=-2).argmax(axis=-1)
    at_chosen = np.take_along_axis(values, chosen[..., None, None], axis=-1)[..., 0]
    return values.max(axis=-1) - at_chosen


def _matrix(frame, what: str) -> tuple[np.ndarray, list[str]]:
    if isinstance(frame, pd.DataFrame):
        return frame.to_numpy(float), [str(c) for c in frame.columns]
    array = np.asarray(frame, float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{what}: a draws x columns frame or array is needed, got shape "
                         f"{array.shape}")
    return array, [str(i) for i in range(array.shape[1])]


def _net(net_benefit) -> np.ndarray:
    values, _ = _matrix(net_benefit, "net_benefit")
    if values.shape[1] < 2:
        raise ValueError("net_benefit: at least two options (columns) are needed")
    if not np.isfinite(values).all():
        raise ValueError("net_benefit: every value must be finite")
    return values


def evpi(net_benefit) -> Estimate:
    """The expected value of perfect information per decision, E[max_d NB_d] - max_d E[NB_d],
    with the Monte Carlo standard error of the mean over the draws. `net_benefit`: draws x
    options.

    >>> import numpy as np
    >>> float(evpi(np.array([[0.0, 1.0], [0.0, -3.0], [0.0, 1.0]])))   # draw 2 prefers option 1
    1.0
    """
    per_draw = regret(_net(net_benefit))
    return Estimate(per_draw.mean(), per_draw.std(ddof=1) / np.sqrt(len(per_draw)))


# -- the regressions ------------------------------------------------------------------------


@dataclass
class Fit:
    """One response regressed on a parameter matrix: the fitted values, a sampler of their
    posterior (`sample(z)`: fitted + root @ z, `z` standard normal of shape (k, samples)), the
    method, the exact leave-one-out residuals and the residuals."""

    fitted: np.ndarray
    root: np.ndarray            # draws x k
    method: str
    loo: np.ndarray
    residuals: np.ndarray

    @property
    def r2(self) -> float:
        """The leave-one-out (cross-validated) R²."""
        return _r2(self.loo, self.fitted + self.residuals)

    def sample(self, z: np.ndarray) -> np.ndarray:
        return self.fitted[:, None] + self.root @ z[: self.root.shape[1]]


def _r2(loo: np.ndarray, y: np.ndarray) -> float:
    total = float(np.var(y))
    return 1.0 - float(np.mean(loo ** 2)) / total if total > 0 else float("nan")


def _standardise(x: np.ndarray) -> np.ndarray:
    spread = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def _spline_basis(x: np.ndarray) -> np.ndarray:
    """The additive cubic B-spline basis of the standardised parameters (knots at quantiles),
    with the two parameters' tensor product when there are two."""
    from sklearn.preprocessing import SplineTransformer  # noqa: PLC0415 - value of information only

    draws, width = x.shape
    knots = max(3, min(8, draws // 40)) if width <= 2 else max(3, min(5, draws // 60))
    basis = SplineTransformer(n_knots=knots, degree=3, knots="quantile",
                              extrapolation="linear").fit_transform(x)
    if width == 2:
        per = basis.shape[1] // 2
        coarse = SplineTransformer(n_knots=max(3, knots // 2), degree=3, knots="quantile",
                                   extrapolation="linear").fit_transform(x)
        half = coarse.shape[1] // 2
        tensor = (coarse[:, :half, None] * coarse[:, None, half:]).reshape(draws, -1)
        basis = np.hstack([basis[:, :per], basis[:, per:], tensor])
    return basis - basis.mean(axis=0)


def _decompose(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spline basis's singular vectors and values (made once for every response)."""
    u, s, _ = np.linalg.svd(_spline_basis(x), full_matrices=False)
    keep = s > s[0] * 1e-10
    return u[:, keep], s[keep]


def _fit_gam(x: np.ndarray, y: np.ndarray, decomposition=None) -> Fit:
    """Ridge regression on the spline basis, the penalty by exact leave-one-out error over a
    grid; the posterior is the Bayesian ridge regression's (prior precision = the penalty), with
    the intercept's."""
    u, s = decomposition if decomposition is not None else _decompose(x)
    centre = y.mean()
    projected = u.T @ (y - centre)
    best = None
    for alpha in np.logspace(-6, 6, 49) * (s[0] ** 2):
        shrink = s ** 2 / (s ** 2 + alpha)
        fitted = centre + u @ (shrink * projected)
        leverage = (u ** 2) @ shrink + 1.0 / len(y)
        loo = (y - fitted) / (1.0 - leverage)
        if best is None or loo @ loo < best[0]:
            best = (loo @ loo, shrink, fitted, leverage, loo)
    _, shrink, fitted, leverage, loo = best
    residuals = y - fitted
    sigma2 = float(residuals @ residuals) / max(len(y) - leverage.sum(), 1.0)
    root = np.hstack([u * np.sqrt(sigma2 * shrink),
                      np.full((len(y), 1), np.sqrt(sigma2 / len(y)))])
    return Fit(fitted, root, "gam", loo, residuals)


def _fit_gp(x: np.ndarray, y: np.ndarray, seed: int) -> Fit:
    """Gaussian-process regression (squared exponential with a length per parameter, plus
    noise): hyperparameters by scikit-learn's marginal-likelihood fit on a subsample, then the
    exact posterior of the noise-free function at every draw. Its posterior is sampled by
    Matheron's rule (a prior sample corrected by the data), linear in standard normals."""
    from scipy.linalg import cho_factor, cho_solve  # noqa: PLC0415
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415
    from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: PLC0415
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel  # noqa: PLC0415

    draws, width = x.shape
    centre, scale = y.mean(), y.std()
    target = (y - centre) / scale
    subset = np.random.default_rng(seed).permutation(draws)[:GP_HYPER_DRAWS]
    kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(width, 2.0), (1e-2, 1e3))
              + WhiteKernel(0.5, (1e-6, 10.0)))
    with warnings.catch_warnings():   # a length at its bound: a parameter that does not matter
        warnings.simplefilter("ignore", ConvergenceWarning)
        learned = GaussianProcessRegressor(kernel, random_state=seed).fit(
            x[subset], target[subset]).kernel_
    signal, noise = learned.k1(x), learned.k2.noise_level
    inverse = cho_solve(cho_factor(signal + noise * np.eye(draws), lower=True), np.eye(draws))
    weights = inverse @ target
    fitted = signal @ weights
    loo = weights / np.diag(inverse)                     # exact leave-one-out residuals
    prior = np.linalg.cholesky(signal + 1e-8 * np.eye(draws))
    gain = signal @ inverse
    root = np.hstack([prior - gain @ prior, -np.sqrt(noise) * gain])
    return Fit(centre + scale * fitted, scale * root, "gp", scale * loo,
               scale * (target - fitted))


def fit(parameters: np.ndarray, response: np.ndarray, method: str = "auto", seed: int = 1) -> Fit:
    """Regress `response` (draws) on `parameters` (draws x k) by `method` ("gam", "gp" or
    "auto": the one of least leave-one-out error among those that apply)."""
    return fit_many(parameters, [response], method, seed)[0]


def fit_many(parameters: np.ndarray, responses, method: str = "auto", seed: int = 1) -> list[Fit]:
    """`fit` of each of `responses` on the same parameters (the spline basis decomposed once).
    Under "auto" a Gaussian process is tried where the group has three or more parameters, at
    most `GP_MAX_DRAWS` draws, and the additive model's leave-one-out R² is below
    `GP_WORTH_TRYING` (above it there is too little left for interactions to explain)."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - scikit-learn's dependency

    _method(method)
    with threadpool_limits(1):   # small matrices: BLAS threads cost more than they give
        return _fit_many(np.asarray(parameters, float), responses, method, seed)


def _fit_many(x: np.ndarray, responses, method: str, seed: int) -> list[Fit]:
    x = _standardise(x[:, x.std(axis=0) > 0])
    decomposition = _decompose(x) if x.shape[1] and method != "gp" else None
    out = []
    for y in responses:
        y = np.asarray(y, float)
        if x.shape[1] == 0 or np.var(y) == 0:
            flat = y - y.mean()
            out.append(Fit(np.full(len(y), y.mean()), np.zeros((len(y), 1)), "constant", flat,
                           flat))
        elif method == "gp":
            out.append(_fit_gp(x, y, seed))
        else:
            additive = _fit_gam(x, y, decomposition)
            if (method == "auto" and x.shape[1] >= 3 and len(y) <= GP_MAX_DRAWS
                    and additive.r2 < GP_WORTH_TRYING):
                additive = max(additive, _fit_gp(_screen(x, y), y, seed), key=lambda f: f.r2)
            out.append(additive)
    return out


def _screen(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The `GP_MAX_PARAMETERS` columns of `x` whose own additive spline fit has the highest
    leave-one-out R² (all of them if fewer): a Gaussian process's lengths are fitted at a cost
    that grows with the parameters, and one that explains nothing alone rarely matters in an
    interaction here."""
    if x.shape[1] <= GP_MAX_PARAMETERS:
        return x
    alone = [_fit_gam(x[:, [j]], y).r2 for j in range(x.shape[1])]
    return x[:, np.sort(np.argsort(alone)[::-1][:GP_MAX_PARAMETERS])]


def _method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method: one of {', '.join(map(repr, METHODS))}, not {method!r}")


def _residual_check(fitted: np.ndarray, residuals: np.ndarray) -> float:
    """|correlation| between the fitted values' deciles and their mean residuals: near 0 where
    the regression left no trend in what it fitted."""
    if np.ptp(fitted) == 0:
        return 0.0
    bins = np.array_split(np.argsort(fitted), min(10, len(fitted) // 2))
    means = np.array([residuals[b].mean() for b in bins])
    centres = np.array([fitted[b].mean() for b in bins])
    return abs(float(np.corrcoef(means, centres)[0, 1])) if means.std() > 0 else 0.0


def _estimate(samples: np.ndarray, fitted: np.ndarray, observed: np.ndarray, loo: np.ndarray,
              methods) -> Estimate:
    """EVPPI from the fitted values (draws x options, relative to the first), its standard error
    from their posterior samples (samples x draws x options) and the mean over the draws. The R²
    is the worst over the options, from each one's leave-one-out residuals (`loo`, draws x
    options) against the net benefit it fits (`observed`); the residual check the worst too."""
    per_draw = regret(fitted)
    posterior = regret(samples).mean(axis=-1)
    se = np.sqrt(posterior.var(ddof=1) + per_draw.var(ddof=1) / len(per_draw))
    options = range(1, fitted.shape[1])
    r2 = [_r2(loo[:, d], observed[:, d]) for d in options if np.var(observed[:, d]) > 0]
    check = max((_residual_check(fitted[:, d], observed[:, d] - fitted[:, d]) for d in options),
                default=0.0)
    return Estimate(max(per_draw.mean(), 0.0), se, "+".join(sorted(set(methods))),
                    min(r2, default=float("nan")), check)


def _normal(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _stack(columns, draws: int) -> np.ndarray:
    """(draws, options) from the options' columns after the first (which is 0)."""
    return np.column_stack([np.zeros(draws), *columns])


def _regression_value(net: np.ndarray, x: np.ndarray, method: str, seed: int) -> Estimate:
    """EVPPI of net benefits that are not split into costs and effects: the curve's at a
    willingness to pay of 0, the net benefit as a negative cost."""
    return evppi_curve(-net, np.zeros_like(net), [0.0], x, method, seed)[0]


def _columns(inputs, pars) -> np.ndarray:
    values, names = _matrix(inputs, "inputs")
    if pars is None:
        return values
    pars = [pars] if isinstance(pars, (str, int)) else list(pars)
    missing = [p for p in pars if str(p) not in names]
    if missing:
        raise ValueError(f"pars: {missing[0]!r} is not a column of inputs (columns: "
                         f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
    return values[:, [names.index(str(p)) for p in pars]]


def evppi(net_benefit, inputs, pars=None, method: str = "auto", seed: int = 1) -> Estimate:
    """The expected value of partial perfect information about the parameters `pars` (columns
    of `inputs`; None: all of them), by regression (`fit`), with its standard error.

    Parameters
    ----------
    net_benefit : draws x options frame or array
    inputs : draws x parameters frame (or array: `pars` then indexes its columns)
    pars : a column name, a list of them, or None
    method : "auto" (cross-validated choice), "gam" or "gp"
    seed : the seed of the posterior sampling (and of the Gaussian process's subsample)

    Returns
    -------
    Estimate
        the EVPPI per decision, with `.se`, `.method`, `.r2` and `.residual_check`.
    """
    _method(method)
    net = _net(net_benefit)
    x = _columns(inputs, pars)
    if len(x) != len(net):
        raise ValueError(f"inputs: {len(x)} draws, net_benefit {len(net)}: one row per draw in "
                         f"each")
    return _regression_value(net, x, method, seed)


def evsi(net_benefit, inputs, study_data, method: str = "auto", seed: int = 1) -> Estimate:
    """The expected value of sample information of a study whose summary statistics were
    simulated draw by draw, by regression of the net benefit on them (Strong et al. 2015).

    Parameters
    ----------
    net_benefit : draws x options frame or array
    inputs : draws x parameters frame, or None; used only when `study_data` is a function
    study_data : draws x statistics frame (or array), or a function of `inputs` returning one
    method, seed : as `evppi`
    """
    _method(method)
    net = _net(net_benefit)
    if callable(study_data):
        if inputs is None:
            raise ValueError("inputs: needed to simulate study_data")
        study_data = study_data(inputs)
    x, _ = _matrix(study_data, "study_data")
    if len(x) != len(net):
        raise ValueError(f"study_data: {len(x)} draws, net_benefit {len(net)}: one row per "
                         f"draw in each")
    return _regression_value(net, x, method, seed)


def evsi_importance(net_benefit, log_likelihood: np.ndarray) -> Estimate:
    """EVSI by importance sampling, a two-level Monte Carlo over the probabilistic sample
    (Menzies, Med Decis Making 2016;36:308-320; voi's ``method = "is"``): for each draw k's
    simulated study, every draw i's net benefit weighted by the likelihood of k's result given
    i's parameters (`log_likelihood[k, i]`) is the net benefit expected after the study; EVSI =
    mean over k of its maximum - the maximum of the prior means. The standard error is that of
    the mean over the studies k.

    Parameters
    ----------
    net_benefit : draws x options frame or array
    log_likelihood : (studies, draws) array: log p(study k's data | draw i's parameters)
    """
    net = _net(net_benefit)
    log_likelihood = np.asarray(log_likelihood, float)
    if log_likelihood.ndim != 2 or log_likelihood.shape[1] != len(net):
        raise ValueError(f"log_likelihood: (studies, {len(net)} draws) needed, got shape "
                         f"{log_likelihood.shape}")
    weights = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    posterior = weights @ net                                   # (studies, options)
    per_study = posterior.max(axis=1) - posterior[:, net.mean(axis=0).argmax()]
    return Estimate(per_study.mean(), per_study.std(ddof=1) / np.sqrt(len(per_study)),
                    "importance sampling")


def evppi_curve(cost: np.ndarray, effect: np.ndarray, wtp, x: np.ndarray, method: str = "auto",
                seed: int = 1) -> list[Estimate]:
    """EVPPI (or EVSI, with summary statistics as `x`) at every willingness to pay of `wtp`, the
    net benefit being wtp x effect - cost ((draw, option) each): the costs and effects of each
    option, relative to the first, are fitted once each (as SAVI does), and their posterior
    samples drawn with the correlation of their residuals."""
    cost, effect = np.asarray(cost, float), np.asarray(effect, float)
    dc, de = cost - cost[:, :1], effect - effect[:, :1]
    draws, options = cost.shape
    both = fit_many(x, [column for d in range(1, options) for column in (dc[:, d], de[:, d])],
                    method, seed)
    cost_fits, effect_fits = both[0::2], both[1::2]
    width = max(f.root.shape[1] for f in cost_fits + effect_fits)
    z_effect, independent = _normal((width, SAMPLES), seed + 1), _normal((width, SAMPLES), seed + 2)
    cost_samples, effect_samples = [], []
    for fc, fe in zip(cost_fits, effect_fits):
        rho = _correlation(fc.residuals, fe.residuals)
        cost_samples.append(fc.sample(rho * z_effect + np.sqrt(1 - rho ** 2) * independent))
        effect_samples.append(fe.sample(z_effect))
    zeros = np.zeros((draws, SAMPLES))
    cost_samples = np.stack([zeros, *cost_samples], axis=-1).transpose(1, 0, 2)
    effect_samples = np.stack([zeros, *effect_samples], axis=-1).transpose(1, 0, 2)
    fitted_cost = _stack((f.fitted for f in cost_fits), draws)
    fitted_effect = _stack((f.fitted for f in effect_fits), draws)
    loo_cost = _stack((f.loo for f in cost_fits), draws)
    loo_effect = _stack((f.loo for f in effect_fits), draws)
    methods = [f.method for f in cost_fits + effect_fits if f.method != "constant"] or [
        "constant"]
    return [_estimate(w * effect_samples - cost_samples, w * fitted_effect - fitted_cost,
                      w * de - dc, w * loo_effect - loo_cost, methods)
            for w in np.atleast_1d(np.asarray(wtp, float))]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
