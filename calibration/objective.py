"""The calibration objective: simulate the study's design, estimate every figure the study's way,
weigh each miss by that figure's sampling spread in a study of the paper's size.

Common random numbers: every evaluation simulates the same patients (same seed, same patient
ids), so two parameter sets are compared on identical draws and the objective is a deterministic
function of the parameters.

Spread at the study's size (the denominator of each z):
- hazard ratios: the reported interval, on the log scale, ``(ln hi - ln lo) / 3.92``;
- every other figure: its standard deviation across pseudo-studies of the study's size (rectal
  141, colon 441), from one large simulated cohort at the starting parameters, fixed for the fit
  (a spread that moved with the parameters would let the search widen it instead of fitting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from calibration.estimators import estimate
from calibration.external import (ExternalDesign, ExternalTarget, external_figures,
                                  load_external_targets, simulate_external)
from calibration.targets import Target, log_hr_standard_error
from sim.model.params import Params
from sim.model.policy import Policy
from sim.execution.runner import CohortSpec, simulate_tables

__all__ = ["StudyDesign", "Objective", "simulate_study", "MISSING_Z"]

MISSING_Z = 10.0  # a figure the model cannot produce (e.g. a median never reached) counts as z = 10
# Hazard ratios: the study's intervals are wide (pelvic ones span a factor of 10), so the z alone
# leaves them loose. The issue asks for every hazard ratio within 25% of the reported value: a
# hinge outside a band of 20% (a margin for the seed-to-seed noise of a hazard ratio estimated on
# another cohort, such as the acceptance check's), in steps of 0.05 on the log scale, adds to the
# loss.
HR_BAND = math.log(1.20)
HR_BAND_STEP = 0.05
_COLON_OFFSET = 10_000_000  # colon patients get ids from here: distinct streams from the rectal ones


@dataclass(frozen=True)
class StudyDesign:
    """The simulated study: how many patients of each primary, which seed."""

    rectal_patients: int = 141 * 20
    colon_patients: int = 441 * 4
    seed: int = 20_080_101


def simulate_study(params: Params, policy: Policy, design: StudyDesign) -> pd.DataFrame:
    """Patients of both primaries under the paper's design (accrual 1984-2005, study close)."""
    tables = []
    for primary, n, first in (("rectum", design.rectal_patients, 0),
                              ("colon", design.colon_patients, _COLON_OFFSET)):
        if n:
            spec = CohortSpec(n, design.seed, "paper", primary)
            for start in range(first, first + n, 10_000):
                tables.append(simulate_tables(spec, params, policy, start,
                                              min(10_000, first + n - start))[0])
    return pa.concat_tables(tables).to_pandas()


def _z(target: Target, model: float, spread: float) -> float:
    if not np.isfinite(model) or model <= 0 and target.estimator == "cox_univariate":
        return MISSING_Z
    if target.estimator == "cox_univariate":
        z = (math.log(model) - math.log(target.value)) / log_hr_standard_error(target)
    else:
        z = (model - target.value) / spread if spread > 0 else MISSING_Z
    if target.bound == "lower":
        z = min(z, 0.0)
    elif target.bound == "upper":
        z = max(z, 0.0)
    return float(z)


class Objective:
    """``loss(params) = sum of z^2`` over the fitted figures, the study's and the external ones
    (`calibration.external`, each on its own cohorts, spread from its published counts);
    `table(params)` shows each one."""

    def __init__(self, start: Params, policy: Policy, targets: list[Target],
                 design: StudyDesign = StudyDesign(), spread_design: StudyDesign | None = None,
                 external: list[ExternalTarget] | None = None,
                 external_design: ExternalDesign = ExternalDesign()):
        self.policy, self.design = policy, design
        self.targets = [t for t in targets if t.use == "fit"]
        external = load_external_targets() if external is None else external
        self.external = [t for t in external if t.use == "fit"]
        self.external_design = external_design
        spread_design = spread_design or StudyDesign(141 * 100, 441 * 30, design.seed + 1)
        self.spread = self._spreads(start, spread_design)

    def _spreads(self, params: Params, design: StudyDesign) -> dict[str, float]:
        patients = simulate_study(params, self.policy, design)
        spreads = {}
        for group, studies in (("rectum", design.rectal_patients // 141),
                               ("colon", design.colon_patients // 441)):
            chosen = [t for t in self.targets if t.group == group]
            if chosen and studies > 2:
                table = estimate(patients, chosen, studies=studies)
                per_study = table.drop(columns="model").to_numpy(dtype=float)
                spreads.update(zip(table.index, np.nanstd(per_study, axis=1, ddof=1)))
        return spreads

    def table(self, params: Params) -> pd.DataFrame:
        """Every fitted figure: reported, model, spread at the study's size (log scale for a
        hazard ratio or an external ratio), z."""
        patients = simulate_study(params, self.policy, self.design)
        model = estimate(patients, self.targets)["model"]
        rows = []
        for t in self.targets:
            spread = (log_hr_standard_error(t) if t.estimator == "cox_univariate"
                      else self.spread.get(t.id, math.nan))
            value = float(model[t.id])
            band = 0.0
            if t.estimator == "cox_univariate":
                ratio = abs(math.log(value / t.value)) if value > 0 else math.inf
                band = max(0.0, ratio - HR_BAND) / HR_BAND_STEP if math.isfinite(ratio) else MISSING_Z
            rows.append((t.id, t.value, value, spread, _z(t, value, spread), band))
        if self.external:
            figures = external_figures(*simulate_external(params, self.external_design))
            rows += [(t.id, t.value, figures[t.id], t.standard_error, t.z(figures[t.id]), 0.0)
                     for t in self.external]
        columns = ["id", "reported", "model", "spread", "z", "band"]
        return pd.DataFrame(rows, columns=columns).set_index("id")

    @staticmethod
    def loss_of(table: pd.DataFrame) -> float:
        """Sum of squared z, plus the squared hinge of hazard ratios outside the 25% band."""
        return float((table["z"] ** 2).sum() + (table["band"] ** 2).sum())

    def loss(self, params: Params) -> float:
        return self.loss_of(self.table(params))
