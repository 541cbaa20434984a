"""The expected value of sample information of a follow-up trial, and the trial size worth running.

A comparison file's ``[trial]`` table proposes a randomized trial of two of its policies with n
patients per arm, every patient followed ``follow_up_years``. For every draw of the
probabilistic analysis, the trial is simulated on that draw's natural history with the
project's own engine (`simulate_trial_draw`: distinct patients in each arm, apart from the
analysis's patients), once at the largest size; the first n patients of each arm make the trial
of size n. The trial reports what such trials report: the difference between the arms in mean
survival restricted to the follow-up (months: every patient is followed to the end, so it is the
mean of the survival times) and in the share of patients given a curative-intent repeat
operation.

EVSI by regression (Strong, Oakley, Brennan and Breeze, Med Decis Making 2015;35:570-583): each
policy's costs and QALYs over the draws are regressed on the trial's two summary statistics
(`sim.studies.voi.evppi_curve`), and EVSI = E[max of the fitted net benefits] - max of their
means, with its standard error. It lies between 0 and the EVPPI of the parameters the trial
informs (natural history and test accuracy), which lies below the EVPI; `evsi_table` checks
both and that EVSI does not fall with n, within 2 standard errors. The expected net benefit of
sampling (ENBS) is the EVSI for the decision's population
(`sim.studies.decision.population_factor`) minus the trial's cost (the economics file's
``trial_cost``: fixed plus per patient randomized); the size that maximises it is named only
where its ENBS stands clear of its noise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.execution.runner import CohortSpec, prepare_cohort, simulate_priced
from sim.model.params import Params
from sim.model.policy import Policy
from sim.studies import voi

__all__ = ["TrialUnit", "simulate_trial_draw", "simulate_trials", "evsi", "evsi_table",
           "STATISTICS", "SPREAD", "TRIAL_KEY", "trial_likelihood"]

TRIAL_KEY = 7_000_000
"""The trials' streams: replicate key TRIAL_KEY + draw, apart from the analysis's patients
(draw * 1000 + replicate) and the deterministic cohort's."""
STATISTICS = ("restricted_mean_difference_months", "curative_share_difference")
SPREAD = ("patient_variance_months", "patient_variance_curative", "patient_covariance")
"""Per patient, summed over the two arms, at the largest size: the variance of survival, of a
curative operation, and their covariance (a trial of n per arm has its statistics' covariance
about these over n): what a likelihood of the trial's result given the parameters needs
(`sim.studies.voi.evsi_importance`)."""


@dataclass(frozen=True)
class TrialUnit:
    """One draw's trial: its parameters, the two arms' policies, the sizes, where to write."""

    draw: int
    params: Params
    control: Policy
    experimental: Policy
    per_arm: tuple[int, ...]
    follow_up_years: float
    primary: str
    seed: int
    staging: str


def simulate_trial_draw(unit: TrialUnit) -> int:
    """Simulate the draw's trial at its largest size and write, for every size, the two summary
    statistics (`STATISTICS`) to `staging`/trials/<draw>.parquet; returns the patient-lives."""
    n = max(unit.per_arm)
    spec = CohortSpec(n, unit.seed, "horizon", unit.primary, unit.follow_up_years,
                      replicate=TRIAL_KEY + unit.draw)
    arms = []
    for first, policy in ((0, unit.control), (n, unit.experimental)):
        prepared = prepare_cohort(spec, unit.params, first, n, 0.0)
        patients = simulate_priced(spec, unit.params, policy, first, n, 0.0, None, prepared,
                                   events=False).patients
        arms.append((patients.column("os_months").to_numpy(),
                     patients.column("curative_reoperation_months").is_valid().to_numpy(
                         zero_copy_only=False)))
    rows = {"draw": [], "per_arm": []} | {s: [] for s in STATISTICS + SPREAD}
    # each arm's per-patient covariance of (survival, curative operation) at the largest size,
    # summed over the arms: a size n's statistics have covariance about this over n
    spread = sum(np.cov(np.stack([o, c.astype(float)])) for o, c in arms)
    for size in unit.per_arm:
        (os_a, cure_a), (os_b, cure_b) = ((o[:size], c[:size]) for o, c in arms)
        rows["draw"].append(unit.draw)
        rows["per_arm"].append(size)
        rows[STATISTICS[0]].append(os_b.mean() - os_a.mean())
        rows[STATISTICS[1]].append(cure_b.mean() - cure_a.mean())
        for name, value in zip(SPREAD, (spread[0, 0], spread[1, 1], spread[0, 1])):
            rows[name].append(value)
    folder = Path(unit.staging) / "trials"
    partial = folder / f".{unit.draw}.partial"
    pq.write_table(pa.table(rows), partial)
    os.replace(partial, folder / f"{unit.draw}.parquet")
    return 2 * n


def simulate_trials(units: list[TrialUnit], staging: Path, executor) -> pd.DataFrame:
    """Every draw's trial statistics (simulating those not yet in `staging`/trials)."""
    folder = staging / "trials"
    folder.mkdir(parents=True, exist_ok=True)
    done = {int(p.stem) for p in folder.glob("[0-9]*.parquet")}
    executor.run(simulate_trial_draw, [u for u in units if u.draw not in done], lambda _: None)
    return pd.concat([pq.read_table(folder / f"{u.draw}.parquet").to_pandas() for u in units],
                     ignore_index=True).sort_values(["per_arm", "draw"], ignore_index=True)


def evsi(cost: np.ndarray, effect: np.ndarray, thresholds, statistics: np.ndarray
         ) -> list[voi.Estimate]:
    """EVSI per patient at each willingness-to-pay, with its standard error, by regression of
    each policy's costs and QALYs ((draw, policy) each) on the trial's summary statistics
    ((draw, statistic)) over the draws (`sim.studies.voi.evppi_curve`)."""
    return voi.evppi_curve(cost, effect, thresholds, statistics)


def evsi_table(cost: np.ndarray, effect: np.ndarray, thresholds, statistics: pd.DataFrame,
               population: float, fixed_cost: float, cost_per_patient: float,
               informed: list[voi.Estimate], perfect: list[voi.Estimate], seed: int = 1
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per trial size and threshold: EVSI per patient with its standard error, for the
    population, the trial's cost, the ENBS with its standard error, the probability that the
    size maximises the ENBS, whether its ENBS is within noise of the best, and whether it is
    named the optimum; per threshold the checks). `cost` and `effect` are (draw, policy) in draw
    order; `statistics` the trials' (`simulate_trials`); `informed` and `perfect` the EVPPI of
    the parameters the trial informs and the EVPI at each threshold.

    The checks, each within 2 standard errors: 0 <= EVSI(n) <= EVPPI(informed) <= EVPI, and
    EVSI(n) non-decreasing in n. The optimum is named (`maximises_enbs`) only where the best
    size's ENBS is positive by more than 2 standard errors; `probability_optimal` is the share
    of 4,000 normal draws of every size's ENBS (its estimate and standard error) in which the
    size is best, and `within_noise_of_best` marks the sizes whose ENBS is within 2 standard
    errors of the best's."""
    rows = []
    sizes = sorted(statistics["per_arm"].unique())
    thresholds = np.asarray(thresholds, float)
    for size in sizes:
        at = statistics[statistics["per_arm"] == size].sort_values("draw")
        values = evsi(cost, effect, thresholds, at[list(STATISTICS)].to_numpy())
        trial_cost = fixed_cost + cost_per_patient * 2 * size
        for w, v, bound in zip(thresholds, values, informed):
            rows.append({"per_arm": size, "wtp": w, "evsi": float(v), "se": v.se,
                         "evppi_informed": float(bound),
                         "evsi_population": float(v) * population, "trial_cost": trial_cost,
                         "enbs": float(v) * population - trial_cost, "enbs_se": v.se * population,
                         "method": v.method, "r2": v.r2})
    table = pd.DataFrame(rows).sort_values(["wtp", "per_arm"], ignore_index=True)
    rng = np.random.default_rng(seed)
    optimal, near, named = [], [], []
    for w in np.sort(thresholds):
        part = table[table["wtp"] == w]
        sampled = rng.normal(part["enbs"].to_numpy(), part["enbs_se"].to_numpy(),
                             (4000, len(part)))
        share = np.bincount(sampled.argmax(axis=1), minlength=len(part)) / len(sampled)
        best = int(part["enbs"].to_numpy().argmax())
        b = part.iloc[best]
        gap = b["enbs"] - part["enbs"].to_numpy()
        optimal += list(share)
        near += list(gap <= 2 * np.hypot(b["enbs_se"], part["enbs_se"].to_numpy()))
        named += [i == best and b["enbs"] > 2 * b["enbs_se"] for i in range(len(part))]
    table["probability_optimal"], table["within_noise_of_best"] = optimal, near
    table["maximises_enbs"] = named
    return table, _checks(table, thresholds, informed, perfect)


def _checks(table: pd.DataFrame, thresholds, informed, perfect) -> pd.DataFrame:
    """Per threshold: EVSI <= EVPPI(informed) <= EVPI and EVSI non-negative and non-decreasing
    in n, each within 2 standard errors."""
    checks = []
    for t, w in enumerate(thresholds):
        curve = table[table["wtp"] == w].sort_values("per_arm")
        value, se = curve["evsi"].to_numpy(), curve["se"].to_numpy()
        top = int(value.argmax())
        steps = np.diff(value) >= -2 * np.hypot(se[1:], se[:-1])
        checks.append({
            "wtp": w, "evsi_max": value[top], "evsi_max_se": se[top],
            "evppi_informed": float(informed[t]), "evppi_informed_se": informed[t].se,
            "evpi": float(perfect[t]), "evpi_se": perfect[t].se,
            "evsi_within_evppi": bool(value[top] <= float(informed[t])
                                      + 2 * np.hypot(se[top], informed[t].se)),
            "evppi_within_evpi": bool(float(informed[t]) <= float(perfect[t])
                                      + 2 * np.hypot(informed[t].se, perfect[t].se)),
            "evsi_non_negative": bool(value.min() >= 0),
            "evsi_grows_with_n": bool(steps.all())})
    return pd.DataFrame(checks)


def trial_likelihood(statistics: pd.DataFrame, per_arm: int) -> tuple[np.ndarray, np.ndarray]:
    """(each draw's observed statistics of a trial of `per_arm` per arm, the (observed draw,
    parameter draw) matrix of their log-likelihood): the statistics are taken as normal, with
    mean the draw's statistics at the largest size simulated (its expectation, up to that size's
    noise) and covariance the draw's per-patient covariance over `per_arm` (`SPREAD`). The
    importance-sampling (two-level) EVSI of Menzies (Med Decis Making 2016;36:308-320) weights
    every draw's net benefit by it (`sim.studies.voi.evsi_importance`)."""
    largest = statistics["per_arm"].max()
    top = statistics[statistics["per_arm"] == largest].sort_values("draw")
    observed = statistics[statistics["per_arm"] == per_arm].sort_values("draw")[
        list(STATISTICS)].to_numpy()
    mean = top[list(STATISTICS)].to_numpy()
    a, d, b = (top[name].to_numpy() / per_arm for name in SPREAD)
    determinant = a * d - b ** 2
    dx = observed[:, None, 0] - mean[None, :, 0]
    dy = observed[:, None, 1] - mean[None, :, 1]
    quadratic = (d * dx ** 2 - 2 * b * dx * dy + a * dy ** 2) / determinant
    return observed, -0.5 * quadratic - 0.5 * np.log(determinant)
