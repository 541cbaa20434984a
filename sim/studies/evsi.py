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
policy's net benefit over the draws is regressed on the trial's two summary statistics
(`sim.studies.decision.evppi`'s additive splines), and EVSI = E[max of the fitted values] - max
of their means. It lies between 0 and the EVPPI of the parameters the trial informs (natural
history and test accuracy), which lies below the EVPI; `evsi_table` checks both and that EVSI
grows with n. The expected net benefit of sampling (ENBS) is the EVSI for the decision's
population (`sim.studies.decision.population_factor`) minus the trial's cost (the economics
file's ``trial_cost``: fixed plus per patient randomized); the size that maximises it is marked.
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
from sim.studies.decision import evppi

__all__ = ["TrialUnit", "simulate_trial_draw", "simulate_trials", "evsi", "evsi_table",
           "STATISTICS", "TRIAL_KEY"]

TRIAL_KEY = 7_000_000
"""The trials' streams: replicate key TRIAL_KEY + draw, apart from the analysis's patients
(draw * 1000 + replicate) and the deterministic cohort's."""
STATISTICS = ("restricted_mean_difference_months", "curative_share_difference")


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
    rows = {"draw": [], "per_arm": []} | {s: [] for s in STATISTICS}
    for size in unit.per_arm:
        (os_a, cure_a), (os_b, cure_b) = ((o[:size], c[:size]) for o, c in arms)
        rows["draw"].append(unit.draw)
        rows["per_arm"].append(size)
        rows[STATISTICS[0]].append(os_b.mean() - os_a.mean())
        rows[STATISTICS[1]].append(cure_b.mean() - cure_a.mean())
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


def evsi(net_benefit: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    """EVSI per patient at each willingness-to-pay by regression of the net benefits
    ((wtp, draw, policy)) on the trial's summary statistics ((draw, statistic)) over the draws:
    the EVPPI of the statistics (`sim.studies.decision.evppi`)."""
    return evppi(net_benefit, statistics)


def evsi_table(net_benefit: np.ndarray, thresholds, statistics: pd.DataFrame, population: float,
               fixed_cost: float, cost_per_patient: float, informed_evppi: np.ndarray,
               perfect: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per trial size and threshold: EVSI per patient and for the population, the trial's cost,
    the ENBS and whether the size maximises it; the checks EVSI <= EVPPI of the parameters the
    trial informs <= EVPI and EVSI growing with n, per threshold). `net_benefit` is (threshold,
    draw, policy) in draw order; `statistics` the trials' (`simulate_trials`)."""
    rows = []
    sizes = sorted(statistics["per_arm"].unique())
    for size in sizes:
        at = statistics[statistics["per_arm"] == size].sort_values("draw")
        value = evsi(net_benefit, at[list(STATISTICS)].to_numpy())
        cost = fixed_cost + cost_per_patient * 2 * size
        for w, v in zip(thresholds, value):
            rows.append({"per_arm": size, "wtp": w, "evsi_per_patient": v,
                         "evsi_population": v * population, "trial_cost": cost,
                         "enbs": v * population - cost})
    table = pd.DataFrame(rows)
    best = table.groupby("wtp")["enbs"].transform("max")
    table["maximises_enbs"] = (table["enbs"] == best) & (best > 0)
    checks = []
    for t, w in enumerate(thresholds):
        curve = table[table["wtp"] == w].sort_values("per_arm")["evsi_per_patient"].to_numpy()
        tolerance = 1e-6 * max(perfect[t], 1.0)
        checks.append({"wtp": w, "evsi_max": curve.max(), "evppi_informed": informed_evppi[t],
                       "evpi": perfect[t],
                       "evsi_within_evppi": bool(curve.max() <= informed_evppi[t] + tolerance),
                       "evppi_within_evpi": bool(informed_evppi[t] <= perfect[t] + tolerance),
                       "evsi_non_negative": bool(curve.min() >= -tolerance),
                       "evsi_grows_with_n": bool(np.all(np.diff(curve) >= -0.05 * max(
                           curve.max(), tolerance)))})
    return table, pd.DataFrame(checks)
