"""Power curve of a design: every replicate trial analysed as planned, in one vectorized
`sim.analysis` call per sample size and endpoint; power with its Wilson interval, the analytic
power beside it, and the smallest sample size that reaches the target power.

Analytic power: the exponential design uses the formulas with the design's own numbers (hazard
ratio, expected events). The trial and cohort designs have no hazard ratio written down: the effect
is estimated on all replicates of the largest trial pooled (one Cox fit, one Kaplan–Meier per arm,
pooled shares), the events per patient likewise, and the formulas are applied to those; the gap
between the two curves is then what the formulas miss (censoring patterns, non-proportional
hazards, detection at visits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from sim.analysis import cox_univariate, kaplan_meier, logrank, rmst
from sim.errors import InputError
from sim.studies.power.formulas import (
    event_probability_exponential,
    freedman_power,
    margin_p_value,
    margin_power,
    normal_power,
    schoenfeld_events,
    schoenfeld_power,
    two_proportion_power,
)
from sim.studies.power.looks import (LookPlan, TrialData, analyse_looks, analytic_sequential_power,
                                     look_columns)
from sim.studies.power.designs import Design
from sim.studies.power.simulate import Replicates, dropout_rate_per_month

__all__ = ["PowerCurve", "power_curve", "wilson_interval", "crossing", "CURVE_COLUMNS"]

CURVE_COLUMNS = ("endpoint", "test", "n", "replicates", "events", "power", "power_lower", "power_upper",
                 "analytic_power", "schoenfeld_power", "freedman_power", "failed")
_LEVEL = 0.95
_LARGEST_N = 1e9


def wilson_interval(successes, trials, level: float = _LEVEL):
    """Wilson score interval of a binomial proportion (arrays welcome)."""
    z = ndtri(1 - (1 - level) / 2)
    successes, trials = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def crossing(n, values, target: float) -> tuple[float, str]:
    """Smallest sample size at which a curve through ``(n, values)`` reaches ``target``.

    Interpolated between the last grid point below the target and the first at or above it,
    linearly in ``probit(power)`` against ``sqrt(n)`` (the scale on which the normal approximation
    is a straight line), rounded up. Returns the size and where it lies: ``"inside"`` the grid,
    ``"at_or_below"`` its first point (already reached there) or ``"beyond"`` its last (NaN).
    """
    n, values = np.asarray(n, dtype=float), np.asarray(values, dtype=float)
    reached = values >= target
    if not reached.any():
        return float("nan"), "beyond"
    i = int(np.argmax(reached))
    if i == 0:
        return float(n[0]), "at_or_below"
    low, high = ndtri(np.clip(values[[i - 1, i]], 1e-6, 1 - 1e-6))
    share = (ndtri(target) - low) / (high - low)
    root = np.sqrt(n[i - 1]) + share * (np.sqrt(n[i]) - np.sqrt(n[i - 1]))
    return float(min(np.ceil(root * root - 1e-9), n[i])), "inside"


@dataclass(frozen=True)
class _Test:
    """One endpoint analysed one way: p-values and events of every replicate at a size, the
    analytic powers at any sizes, and the effect the analytic powers assume."""

    endpoint: str
    test: str
    run: Callable[[int], tuple[np.ndarray, np.ndarray]]
    analytic: Callable[[np.ndarray], dict[str, np.ndarray]]
    effect: str
    events_per_patient: float  # NaN where events do not grow with n (an event-driven analysis)
    required_events: float | None = None  # events the formula needs, where known without n
    sequential: Callable[[int], dict] | None = None  # looks or a margin: `looks.analyse_looks`


@dataclass(frozen=True)
class PowerCurve:
    """Power per endpoint and sample size (``table``), the smallest sample size per endpoint
    (``smallest``), and the analytic power on a fine grid (``analytic``) for the figure."""

    design: Design
    replicates: int
    seed: int
    table: pd.DataFrame
    smallest: pd.DataFrame
    analytic: pd.DataFrame = field(repr=False)
    parameter_hash: str | None = None


def _replicate_index(replicates: int, n: int) -> np.ndarray:
    return np.repeat(np.arange(replicates), n)


def _first(columns: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return columns[name][:, :n]


def _logrank_run(durations: Callable, arm: np.ndarray) -> Callable:
    def run(n: int):
        time, observed = durations(n)
        table = logrank(time.ravel(), observed.ravel(), arm[:, :n].ravel(),
                        groups={"replicate": _replicate_index(time.shape[0], n)})
        return table["p_value"].to_numpy(), observed.sum(axis=1)
    return run


def _pooled_hazard_ratio(time: np.ndarray, observed: np.ndarray, x: np.ndarray) -> float:
    """Hazard ratio (per unit of x) of all replicates of the largest trial pooled: one Cox fit."""
    return float(cox_univariate(time.ravel(), observed.ravel(), x.ravel().astype(float))["hr"].iloc[0])


def _hazard_analytic(hazard_ratio: float, events: Callable, alpha: float, share: float | None,
                     variance: float | None = None) -> Callable:
    def analytic(n):
        d = events(np.asarray(n, dtype=float))
        if not np.isfinite(hazard_ratio):
            nan = np.full(np.shape(d), np.nan)
            return {"analytic_power": nan, "schoenfeld_power": nan, "freedman_power": nan}
        if share is None:  # a continuous covariate: Schoenfeld with its variance
            schoenfeld = schoenfeld_power(d, hazard_ratio, alpha, variance=variance)
            freedman = np.full(np.shape(d), np.nan)
        else:
            schoenfeld = schoenfeld_power(d, hazard_ratio, alpha, share)
            freedman = freedman_power(d, hazard_ratio, alpha, share)
        return {"analytic_power": schoenfeld, "schoenfeld_power": schoenfeld, "freedman_power": freedman}
    return analytic


def _exponential_tests(rep: Replicates) -> Iterator[_Test]:
    design, columns = rep.design, rep.columns
    arm, time = columns["arm"], columns["time_months"]

    def durations(n: int):
        event_time, dropout = time[:, :n], _first(columns, "dropout_months", n)
        if design.events is not None:  # analysis at the events-th observed event
            seen = np.where(event_time <= dropout, event_time, np.inf)
            analysis = np.partition(seen, design.events - 1, axis=1)[:, design.events - 1:design.events]
            censor = np.minimum(dropout, analysis)
        elif design.follow_up_months is not None:
            to_analysis = design.accrual_months + design.follow_up_months - _first(columns, "entry_months", n)
            censor = np.minimum(dropout, to_analysis)
        else:
            censor = dropout
        return np.minimum(event_time, censor), event_time <= censor

    share = design.share_experimental
    probability = event_probability_exponential(
        np.log(2.0) / design.control_median_months, design.hazard_ratio, share, design.accrual_months,
        design.follow_up_months, dropout_rate_per_month(design.dropout_per_year))

    def events(n):
        return np.full(np.shape(n), float(design.events)) if design.events is not None else n * probability

    if design.sequential:
        def final(n: int):
            if design.events is not None:    # (no accrual: entry 0) the events-th observed event
                seen = np.where(time[:, :n] <= columns["dropout_months"][:, :n], time[:, :n], np.inf)
                return np.partition(seen, design.events - 1, axis=1)[:, design.events - 1]
            if design.follow_up_months is not None:
                return np.full(time.shape[0], design.accrual_months + design.follow_up_months)
            return np.full(time.shape[0], np.inf)
        data = TrialData(columns["entry_months"], time, columns["dropout_months"], arm, final)
        yield _sequential_test("survival", data, design, design.hazard_ratio, events, share,
                               f"hazard ratio {design.hazard_ratio:g} (experimental vs control, as designed)",
                               float("nan") if design.events is not None else probability)
        return

    yield _Test("survival", "logrank", _logrank_run(durations, arm),
                _hazard_analytic(design.hazard_ratio, events, design.alpha, share),
                f"hazard ratio {design.hazard_ratio:g} (experimental vs control, as designed)",
                float("nan") if design.events is not None else probability,
                float(schoenfeld_events(design.hazard_ratio, design.target_power, design.alpha, share)))


def _trial_tests(rep: Replicates) -> Iterator[_Test]:
    design, columns = rep.design, rep.columns
    arm, share, alpha = columns["arm"], design.share_experimental, design.alpha
    replicates, largest = rep.n_replicates, rep.max_n
    censor = np.minimum(design.horizon_months - columns["entry_months"], columns["dropout_months"])

    def observed(time_column: str, event_column: str):
        def durations(n: int):
            time, limit = _first(columns, time_column, n), censor[:, :n]
            return np.minimum(time, limit), _first(columns, event_column, n) & (time <= limit)
        return durations

    for endpoint in design.endpoints:
        if endpoint in ("os", "dfs"):
            durations = observed(*(("os_months", "death") if endpoint == "os" else ("dfs_months", "dfs_event")))
            time, seen = durations(largest)
            hazard_ratio = _pooled_hazard_ratio(time, seen, arm)
            per_patient = seen.mean()
            name = "overall survival" if endpoint == "os" else "disease-free survival (detected at visits)"
            if design.sequential:
                t_column, e_column = ("os_months", "death") if endpoint == "os" else ("dfs_months", "dfs_event")
                event_time = np.where(columns[e_column], columns[t_column], np.inf)
                data = TrialData(columns["entry_months"], event_time, columns["dropout_months"], arm,
                                 lambda n: np.full(replicates, design.horizon_months))
                yield _sequential_test(endpoint, data, design, hazard_ratio,
                                       lambda n, p=per_patient: n * p, share,
                                       f"{name}: hazard ratio {hazard_ratio:.3f} (experimental vs "
                                       "control, all replicates pooled)", per_patient)
                continue
            yield _Test(endpoint, "logrank", _logrank_run(durations, arm),
                        _hazard_analytic(hazard_ratio, lambda n, p=per_patient: n * p, alpha, share),
                        f"{name}: hazard ratio {hazard_ratio:.3f} (experimental vs control, all replicates pooled)",
                        per_patient)
        elif endpoint == "rmst":
            yield _rmst_test(observed("os_months", "death"), arm, design, replicates, largest)
        else:
            yield _reresection_test(columns, censor, arm, design, largest)


def plan_of(design) -> LookPlan:
    """The looks, spending, margin and sidedness a design asks for."""
    one_sided = design.hypothesis != "superiority"
    return LookPlan(design.fractions, design.spending, design.hsd_gamma, design.alpha,
                    design.margin if one_sided else 1.0, 1 if one_sided else 2, design.futility,
                    1.0 - design.target_power, design.hypothesis == "equivalence",
                    tuple(design.look_events) if design.look_events is not None else None)


def _sequential_test(endpoint: str, data: TrialData, design, hazard_ratio: float, events: Callable,
                     share: float, effect: str, per_patient: float) -> _Test:
    """A hazard ratio analysed at the design's looks, or against its margin (`looks`)."""
    plan = plan_of(design)
    fixed = LookPlan((1.0,), plan.spending, plan.gamma, plan.alpha, plan.margin, plan.sided,
                     equivalence=plan.equivalence)

    def analytic(n):
        d = events(np.asarray(n, dtype=float))
        if plan.events is not None:   # the final analysis at its count, or at the end if fewer
            d = np.minimum(d, plan.events[-1])
        if not np.isfinite(hazard_ratio):
            nan = np.full(np.shape(d), np.nan)
            return {"analytic_power": nan, "schoenfeld_power": nan, "freedman_power": nan}
        return {"analytic_power": analytic_sequential_power(d, hazard_ratio, plan, share),
                "schoenfeld_power": analytic_sequential_power(d, hazard_ratio, fixed, share),
                "freedman_power": np.full(np.shape(d), np.nan)}

    test = ("cox_equivalence" if plan.equivalence else "cox_noninferiority" if plan.sided == 1
            else "cox_wald")
    if plan.equivalence:
        effect += (f"; equivalence margins {1 / plan.margin:.3g} and {plan.margin:g} (two one-sided "
                   f"tests, each at alpha {plan.alpha:g})")
    elif plan.sided == 1:
        effect += f"; non-inferiority margin {plan.margin:g}, one-sided alpha {plan.alpha:g}"
    if plan.events is not None and len(plan.events) > 1:
        effect += (f"; {len(plan.events)} looks at "
                   + ", ".join(f"{e:,}" for e in plan.events) + f" events, {plan.spending} spending"
                   + (f", futility by {plan.futility} beta spending" if plan.futility else ""))
    elif len(plan.fractions) > 1:
        effect += (f"; {len(plan.fractions)} looks at information "
                   + ", ".join(f"{f:g}" for f in plan.fractions) + f", {plan.spending} spending"
                   + (f", futility by {plan.futility} beta spending" if plan.futility else ""))
    return _Test(endpoint, test, None, analytic, effect, per_patient,
                 sequential=lambda n: analyse_looks(data, plan, n, hazard_ratio, share))


def _rmst_by_arm(time, seen, groups: dict, horizon: float) -> pd.DataFrame:
    return rmst(kaplan_meier(time, seen, groups=groups), horizon)


def _rmst_test(durations: Callable, arm: np.ndarray, design, replicates: int, largest: int) -> _Test:
    horizon, alpha = design.rmst_months, design.alpha
    margin = design.rmst_margin_months if design.hypothesis != "superiority" else None

    def run(n: int):
        time, seen = durations(n)
        table = _rmst_by_arm(time.ravel(), seen.ravel(), {"replicate": _replicate_index(replicates, n),
                                                         "arm": arm[:, :n].ravel()}, horizon)
        mean, se = (np.full((replicates, 2), np.nan) for _ in range(2))
        rows, arms = table["replicate"].to_numpy(), table["arm"].to_numpy()
        mean[rows, arms], se[rows, arms] = table["rmst"].to_numpy(), table["se"].to_numpy()
        difference, spread_n = mean[:, 1] - mean[:, 0], np.sqrt(se[:, 0] ** 2 + se[:, 1] ** 2)
        if margin is not None:
            return margin_p_value(difference, spread_n, margin, design.hypothesis), seen.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = difference / spread_n
        return 2 * ndtr(-np.abs(z)), seen.sum(axis=1)

    time, seen = durations(largest)
    pooled = _rmst_by_arm(time.ravel(), seen.ravel(), {"arm": arm.ravel()}, horizon)
    difference = float(pooled["rmst"].iloc[1] - pooled["rmst"].iloc[0])
    spread = float(np.sqrt((pooled["se"] ** 2).sum() * time.size))  # SE of the difference times sqrt(patients)

    def analytic(n):
        n = np.asarray(n, dtype=float)
        nan = np.full(n.shape, np.nan)
        if spread <= 0:
            power = nan
        elif margin is not None:
            power = margin_power(difference, spread / np.sqrt(n), margin, design.hypothesis, alpha)
        else:
            power = normal_power(difference / (spread / np.sqrt(n)), alpha)
        return {"analytic_power": power, "schoenfeld_power": nan, "freedman_power": nan}

    return _Test("rmst", "rmst_difference" + _margin_suffix(design, margin), run, analytic,
                 f"restricted mean survival to {horizon:g} months: difference {difference:+.2f} months "
                 "(experimental - control, all replicates pooled)"
                 + _margin_words(design, margin, "months"), float(seen.mean()))


def _margin_suffix(design, margin: float | None) -> str:
    return "" if margin is None else f"_{design.hypothesis.replace('non_inferiority', 'noninferiority')}"


def _margin_words(design, margin: float | None, unit: str) -> str:
    if margin is None:
        return ""
    if design.hypothesis == "non_inferiority":
        return f"; non-inferiority margin -{margin:g} {unit}, one-sided alpha {design.alpha:g}"
    return (f"; equivalence margins -{margin:g} and +{margin:g} {unit} (two one-sided tests, each "
            f"at alpha {design.alpha:g})")


def _reresection_test(columns, censor, arm, design, largest: int) -> _Test:
    share, alpha = design.share_experimental, design.alpha
    margin = design.reresection_margin if design.hypothesis != "superiority" else None
    operated = columns["curative_reoperation_months"] <= censor  # NaN (never) compares False

    def shares(n: int):
        experimental = arm[:, :n] == 1
        done = operated[:, :n]
        n_e, n_c = experimental.sum(axis=1), (~experimental).sum(axis=1)
        x_e, x_c = (done & experimental).sum(axis=1), (done & ~experimental).sum(axis=1)
        return x_e, n_e, x_c, n_c

    def run(n: int):
        x_e, n_e, x_c, n_c = shares(n)
        if margin is not None:   # the Wald test of the difference (unpooled), as usual with a margin
            with np.errstate(divide="ignore", invalid="ignore"):
                q_e, q_c = x_e / n_e, x_c / n_c
                se = np.sqrt(q_e * (1 - q_e) / n_e + q_c * (1 - q_c) / n_c)
            return margin_p_value(q_e - q_c, se, margin, design.hypothesis), x_e + x_c
        pooled = (x_e + x_c) / (n_e + n_c)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x_e / n_e - x_c / n_c) / np.sqrt(pooled * (1 - pooled) * (1 / n_e + 1 / n_c))
        return 2 * ndtr(-np.abs(z)), x_e + x_c

    x_e, n_e, x_c, n_c = (values.sum() for values in shares(largest))
    p_e, p_c = x_e / n_e, x_c / n_c

    def analytic(n):
        n = np.asarray(n, dtype=float)
        nan = np.full(n.shape, np.nan)
        if margin is not None:
            se = np.sqrt(p_e * (1 - p_e) / (n * share) + p_c * (1 - p_c) / (n * (1 - share)))
            power = margin_power(p_e - p_c, se, margin, design.hypothesis, alpha)
        else:
            power = two_proportion_power(p_e, p_c, n, alpha, share) * np.ones(n.shape)
        return {"analytic_power": power, "schoenfeld_power": nan, "freedman_power": nan}

    return _Test("reresection", "two_proportions" + _margin_suffix(design, margin), run, analytic,
                 f"curative re-resection by the analysis: {p_e:.1%} experimental vs {p_c:.1%} control "
                 "(all replicates pooled)" + _margin_words(design, margin, "(share of patients)"),
                 float((x_e + x_c) / (n_e + n_c)))


def _cohort_tests(rep: Replicates) -> Iterator[_Test]:
    design, columns = rep.design, rep.columns
    time, seen, x = columns["time_months"], columns["event"], columns["x"]
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise InputError(f"{design.name}: covariate: column {design.covariate!r} has missing values; "
                         "give above = ... to compare patients above a threshold")
    binary = x.dtype == np.bool_
    hazard_ratio = _pooled_hazard_ratio(time, seen, x)
    per_patient = float(seen.mean())
    share = float(x.mean()) if binary else None
    variance = None if binary else float(x.var(ddof=1))
    analytic = _hazard_analytic(hazard_ratio, lambda n: n * per_patient, design.alpha, share, variance)
    exposed = (f"{design.covariate} == {design.equals!r}" if design.equals is not None else
               f"{design.covariate} > {design.above:g}" if design.above is not None else design.covariate)
    effect = (f"{design.endpoint}: hazard ratio {hazard_ratio:.3f} for {exposed}"
              + (f" ({share:.1%} of patients)" if binary else " (per unit)") + ", all replicates pooled")

    def durations(n: int):
        return time[:, :n], seen[:, :n]

    for test in design.tests:
        if test == "logrank":
            yield _Test(design.endpoint, "logrank", _logrank_run(durations, x), analytic, effect, per_patient)
        else:
            def run(n: int):
                table = cox_univariate(time[:, :n].ravel(), seen[:, :n].ravel(), x[:, :n].ravel().astype(float),
                                       groups={"replicate": _replicate_index(rep.n_replicates, n)})
                return table["p_value"].to_numpy(), seen[:, :n].sum(axis=1)
            yield _Test(design.endpoint, "cox", run, analytic, effect, per_patient)


_TESTS = {"exponential": _exponential_tests, "trial": _trial_tests, "cohort": _cohort_tests}


def _analytic_n(analytic: Callable, target: float) -> float:
    """Smallest n with analytic power at or above the target (NaN if never)."""
    def gap(n):
        return float(analytic(np.array([n]))["analytic_power"][0]) - target
    try:
        if not gap(_LARGEST_N) >= 0:
            return float("nan")
        if gap(2.0) >= 0:
            return 2.0
        return float(np.ceil(brentq(gap, 2.0, _LARGEST_N, xtol=1e-6) - 1e-9))
    except (ValueError, FloatingPointError):
        return float("nan")


def power_curve(replicates: Replicates) -> PowerCurve:
    """Analyse every replicate at every sample size of the design."""
    design = replicates.design
    rows, smallest, fine = [], [], []
    grid = np.asarray(design.sample_sizes, dtype=float)
    # the analytic curve of the figure (a sequential design's costs a boundary search a point)
    points = 40 if getattr(design, "sequential", False) else 200
    dense = np.unique(np.concatenate([np.linspace(grid[0], grid[-1], points), grid]))
    for test in _TESTS[design.kind](replicates):
        table_rows = []
        for n in design.sample_sizes:
            if test.sequential is not None:
                looked = test.sequential(n)
                row = {"endpoint": test.endpoint, "test": test.test, "n": n,
                       "replicates": replicates.n_replicates,
                       "events": looked["looks"][-1]["events"],    # at the final analysis
                       "rejected": int(looked["rejected"].sum()),
                       "failed": int(looked["failed"].sum()),
                       "expected_events": looked["expected_events"],
                       "expected_months": looked["expected_months"]}
                for k, look in enumerate(looked["looks"], start=1):
                    row.update({f"look{k}_{name}": value for name, value in look.items()})
                table_rows.append(row)
                continue
            p_values, events = test.run(n)
            failed = int(np.isnan(p_values).sum())
            rejected = int((np.nan_to_num(p_values, nan=1.0) < design.alpha).sum())
            table_rows.append({"endpoint": test.endpoint, "test": test.test, "n": n,
                               "replicates": replicates.n_replicates, "events": float(np.mean(events)),
                               "rejected": rejected, "failed": failed})
        part = pd.DataFrame(table_rows)
        part["power"] = part["rejected"] / part["replicates"]
        part["power_lower"], part["power_upper"] = wilson_interval(part["rejected"], part["replicates"])
        for name, values in test.analytic(grid).items():
            part[name] = values
        rows.append(part)
        n_point, where = crossing(part["n"], part["power"], design.target_power)
        n_low, where_low = crossing(part["n"], part["power_upper"], design.target_power)
        n_high, where_high = crossing(part["n"], part["power_lower"], design.target_power)
        analytic_n = (_analytic_n(test.analytic, design.target_power) if np.isfinite(test.events_per_patient)
                      else float("nan"))
        analytic_events = (test.required_events if test.required_events is not None
                           else analytic_n * test.events_per_patient)
        smallest.append({"endpoint": test.endpoint, "test": test.test, "target_power": design.target_power,
                         "n": n_point, "n_where": where, "n_lower": n_low, "n_lower_where": where_low,
                         "n_upper": n_high, "n_upper_where": where_high, "analytic_n": analytic_n,
                         "analytic_events": analytic_events, "effect": test.effect})
        curve = test.analytic(dense)
        fine.append(pd.DataFrame({"endpoint": test.endpoint, "test": test.test, "n": dense,
                                  "analytic_power": curve["analytic_power"],
                                  "schoenfeld_power": curve["schoenfeld_power"]}))
    columns = list(CURVE_COLUMNS)
    if getattr(design, "sequential", False):
        columns += ["expected_events", "expected_months",
                    *look_columns(len(design.fractions),
                                  design.futility is not None and len(design.fractions) > 1)]
    table = pd.concat(rows, ignore_index=True).reindex(columns=columns)  # (looks: os, dfs only)
    return PowerCurve(design, replicates.n_replicates, replicates.seed, table, pd.DataFrame(smallest),
                      pd.concat(fine, ignore_index=True), replicates.parameter_hash)
