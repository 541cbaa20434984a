"""External targets: five published figures from outside the study, on their own simulated cohorts.

The study sees 141 rectal patients for a median 30.7 months; what decides a follow-up policy (late
recurrence, 10-year survival, what surveillance buys, how repeated CEA tests behave) needs other
sources. `targets.toml`'s ``[[external]]`` entries name five such figures with their citation,
population, counts and how each transfers to this population; this module simulates the cohorts
they are read on, estimates them the way the project's acceptance check `external` does, and gives each miss in
standard errors derived from the published counts.

- a long cohort (both primaries in the study's mix, 20-year horizon, baseline policy):
  10-year survival of the 1985-1994 hepatectomies (Tomlinson 2007) and later recurrence among the
  disease-free at 5 years (Viganò 2008);
- one cohort per FACS arm (`scenarios/trials/`, the same patients in every arm): the ratio of
  curative treatment of recurrence to the minimum arm by month 53 (Primrose 2014), and under CEA
  only the share of first recurrences found before symptoms (Nicholson 2015).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sim.model.params import Params
from sim.model.policy import Policy, load_policy
from sim.api import simulate_cohort

__all__ = ["ExternalTarget", "ExternalDesign", "load_external_targets", "simulate_external",
           "external_figures", "FACS_ARMS"]

FACS_ARMS = ("facs-minimum", "facs-cea", "facs-ct", "facs-cea-ct")
FACS_MONTHS = 53.0  # the trial's mean follow-up of 4.4 years


class ExternalTarget(BaseModel):
    """One published figure from outside the study, with its provenance and spread."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str                       # short name of the source, e.g. "Tomlinson 2007"
    value: float
    standard_error: float = Field(ge=0.0)
    scale: Literal["level", "log"]
    use: Literal["fit", "check"] = "fit"
    count: int | None = None
    n: int | None = None
    reference_count: int | None = None
    reference_n: int | None = None
    arm: str | None = None
    citation: str
    population: str
    quote: str
    estimator: str
    transfer: str
    note: str = ""

    def z(self, model: float) -> float:
        """The model's miss in standard errors (on the log scale for a ratio)."""
        if self.standard_error == 0 or not np.isfinite(model):
            return 0.0 if model == self.value else 10.0
        if self.scale == "log":
            return (math.log(model) - math.log(self.value)) / self.standard_error if model > 0 else -10.0
        return (model - self.value) / self.standard_error


def load_external_targets(path: str | Path | None = None) -> list[ExternalTarget]:
    """The ``[[external]]`` entries of the targets file (default: the packaged one)."""
    raw = (Path(path).read_bytes() if path is not None
           else resources.files("calibration").joinpath("targets.toml").read_bytes())
    entries = tomllib.loads(raw.decode("utf-8")).get("external", [])
    return [ExternalTarget.model_validate(entry) for entry in entries]


@dataclass(frozen=True)
class ExternalDesign:
    """Sizes of the external cohorts; the seed is distinct from the study's."""

    long_patients: int = 6000
    arm_patients: int = 4000
    seed: int = 8_080


def _scenario(*parts: str) -> Path:
    return Path(str(resources.files("sim").joinpath("scenarios", *parts)))


@lru_cache(maxsize=1)
def _policies() -> tuple[Policy, dict[str, Policy]]:
    return (load_policy(_scenario("baseline.toml")),
            {arm: load_policy(_scenario("trials", f"{arm}.toml")) for arm in FACS_ARMS})


def _cohort(params: Params, policy: Policy, n: int, seed: int, years: float) -> pd.DataFrame:
    return simulate_cohort(n, seed=seed, design="horizon", primary="both", years=years,
                           policy=policy, params=params).patients


def simulate_external(params: Params, design: ExternalDesign = ExternalDesign()
                      ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The long cohort and one cohort per FACS arm (the same patients in every arm)."""
    baseline, arms = _policies()
    long = _cohort(params, baseline, design.long_patients, design.seed, 20.0)
    # a horizon past month 53 leaves everything before it unchanged: 5 years is enough
    return long, {arm: _cohort(params, policy, design.arm_patients, design.seed, 5.0)
                  for arm, policy in arms.items()}


def external_figures(long: pd.DataFrame, arms: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The figures of the ``[[external]]`` entries, by id."""
    os_months = long["os_months"].to_numpy(float)
    year = pd.to_datetime(long["hepatectomy_date"]).dt.year.to_numpy()
    era = (year >= 1985) & (year <= 1994) & ~long["periop_death"].to_numpy(bool)
    recurred = long["recurrence"].to_numpy(bool)
    found = long["recurrence_months"].to_numpy(float)
    free5 = (os_months >= 60) & ~(recurred & (found <= 60))
    later = recurred & (found > 60) & (found <= 180)
    figures = {"tomlinson_os_120_1985_1994": float((os_months[era] >= 120).mean()),
               "vigano_late_recurrence": float(later[free5].mean())}

    def curative(arm):
        return float((arms[arm]["curative_reoperation_months"].to_numpy(float) <= FACS_MONTHS).mean())

    base = curative("facs-minimum")
    for arm, name in (("facs-cea", "cea"), ("facs-ct", "ct"), ("facs-cea-ct", "cea_ct")):
        figures[f"facs_curative_ratio_{name}"] = curative(arm) / base if base > 0 else math.nan
    cea = arms["facs-cea"]
    diagnosed = cea["recurrence"].to_numpy(bool) & (cea["recurrence_months"].to_numpy(float)
                                                    <= FACS_MONTHS)
    before = cea["recurrence_months"].to_numpy(float) < cea["first_symptom_months"].to_numpy(float)
    figures["nicholson_cea_per_patient"] = float(before[diagnosed].mean())
    minimum = arms["facs-minimum"]
    cancer = (minimum["death_cause"] == "cancer").to_numpy(bool)
    figures["minimum_cancer_death_without_diagnosis"] = float(
        (~minimum["recurrence"].to_numpy(bool))[cancer].mean())
    return figures
