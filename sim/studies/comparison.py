"""Compare surveillance policies on the same patients, over parameter uncertainty.

A comparison file (TOML, `scenarios/comparisons/`) names the policies, the cohort and the
uncertainty. Every policy runs on the same simulated patients (common random numbers: a patient's
disease is identical under every policy) for each parameter draw from the calibration's posterior
sample (probabilistic sensitivity analysis). A work unit is one (draw, replicate, chunk) under every
policy, on the executor layer: the policies share the unit's cohort and random draws, and each
writes its partition; the analysis (`sim.studies.digest.digest`) reads them back a few draws
at a time and summarises every (policy, draw) with `sim.analysis`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim._toml import validate_file
from sim._paths import named_file, scenario_file
from sim.errors import InputError
from sim.limits import MAX_CHUNK, MAX_COMPARISON_PATIENTS, MAX_PATIENT_LIVES
from sim.execution.executor import Progress
from sim.studies.summaries import department_records
from sim.model.economics import Economics, load_economics
from sim.model.params import Params, load_params, with_values
from sim.model.policy import Policy, load_policy
from sim.engine.draws import SharedDraws, draw_chunks
from sim.execution.runner import (CohortSpec, PreparedCohort, prepare_cohort, simulate_priced,
                                  write_atomic)
from sim.output.tables import arrow_patients
from sim.studies.digest import DIGESTED, store_digest
from sim.studies.economics import priced_columns

__all__ = ["Comparison", "load_comparison", "check_trial", "draw_parameters", "economic_draws",
           "run_units", "ComparisonUnit", "MIN_TRIAL_DRAWS"]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Cohort(BaseModel):
    model_config = _STRICT
    patients: Annotated[int, Field(gt=0, le=MAX_COMPARISON_PATIENTS)]
    primary: Literal["rectum", "colon", "both"] = "both"
    years: Annotated[float, Field(gt=0, le=20)] | Literal["lifetime"] = 10.0
    accrual_years: Annotated[float, Field(ge=0)] = 5.0
    patients_per_department: Annotated[int, Field(gt=0, le=MAX_CHUNK)] = 10_000

    @field_validator("years", mode="before")
    @classmethod
    def _horizon(cls, years):
        """One message naming both kinds of horizon (not the union's members)."""
        number = isinstance(years, (int, float)) and not isinstance(years, bool)
        if years != "lifetime" and not (number and 0 < years <= 20):
            raise ValueError('must be a number of years above 0 and at most 20, or "lifetime" '
                             '(to death or age 100)')
        return years


class _Uncertainty(BaseModel):
    model_config = _STRICT
    draws: Annotated[int, Field(ge=0)] = 0
    replicates: Annotated[int, Field(gt=0, le=1000)] = 1  # (draw, replicate) keys a stream: see below
    seed: Annotated[int, Field(ge=0)] = 1


class _Trial(BaseModel):
    """A proposed randomized trial of two of the policies (for the value of sample information,
    `sim.studies.evsi`)."""

    model_config = _STRICT
    policies: list[str] = Field(min_length=2, max_length=2)   # control, experimental (names)
    per_arm: list[Annotated[int, Field(gt=0, le=20_000)]] = Field(min_length=1, max_length=10)
    follow_up_years: Annotated[float, Field(gt=0, le=20)] = 5.0


class _Sensitivity(BaseModel):
    """The deterministic analyses' base-case cohort (`sim.studies.sensitivity`)."""

    model_config = _STRICT
    patients: Annotated[int, Field(gt=0, le=1_000_000)] | None = None   # None: the cohort's


class _ComparisonFile(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    reference: str
    policies: list[str] = Field(min_length=1)
    cohort: _Cohort
    uncertainty: _Uncertainty = _Uncertainty()
    economics: str | None = None   # an economics file (scenarios/economics/): a cost-effectiveness analysis
    sensitivity: _Sensitivity = _Sensitivity()
    trial: _Trial | None = None

    @model_validator(mode="after")
    def _unique(self) -> "_ComparisonFile":
        if len(set(self.policies)) != len(self.policies):
            raise ValueError("policies: each policy file may be listed once")
        return self


@dataclass(frozen=True)
class Comparison:
    """A comparison of surveillance policies, as loaded from its file: the policies (run on the
    same patients), the reference policy's name, the cohort (size, primary mix, horizon) and the
    uncertainty (parameter draws, replicates, seed). Change it with `dataclasses.replace`."""

    name: str
    description: str
    reference: str
    policies: tuple[Policy, ...]
    cohort: _Cohort
    uncertainty: _Uncertainty
    economics: Economics | None = None
    sensitivity: _Sensitivity = field(default_factory=_Sensitivity)
    trial: _Trial | None = None


def load_comparison(path: str | Path, economics: str | Path | None = None) -> Comparison:
    """Read and check a comparison file and the policy and economics files it names (`economics`,
    a file, replaces the one it names); an error is one line."""
    path = scenario_file(path, "comparison file")
    spec = validate_file(path, _ComparisonFile)
    policies = tuple(load_policy(named_file(path, "policies", name, "policy file"))
                     for name in spec.policies)
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise InputError(f"{path.name}: policies: two policies share the name {names}")
    if spec.reference not in names:
        raise InputError(f"{path.name}: reference: must be the name of one of the policies "
                         f"({', '.join(names)}); got {spec.reference!r}")
    u = spec.uncertainty
    lives = spec.cohort.patients * len(policies) * max(u.draws, 1) * u.replicates
    if lives > MAX_PATIENT_LIVES:
        raise InputError(f"{path.name}: cohort.patients: {spec.cohort.patients:,} patients x "
                         f"{len(policies)} policies x {max(u.draws, 1)} draws x {u.replicates} "
                         f"replicates make {lives:,} patient-lives, more than "
                         f"{MAX_PATIENT_LIVES:,}")
    priced = None
    if economics is not None:
        priced = load_economics(scenario_file(economics, "economics file"))
    elif spec.economics is not None:
        priced = load_economics(named_file(path, "economics", spec.economics, "economics file"))
    if priced is not None:
        for policy in policies:
            priced.check_tests([m for m, used in zip(policy.modality_names, policy.uses.any(axis=1))
                                if used], policy.name)
    trial = spec.trial
    if trial is not None and (not set(trial.policies) <= set(names)
                              or len(set(trial.policies)) != 2):
        raise InputError(f"{path.name}: trial.policies: the names of two different policies "
                         f"of the comparison ({', '.join(names)}); got {trial.policies}")
    comparison = Comparison(spec.name, spec.description, spec.reference, policies, spec.cohort,
                            spec.uncertainty, priced, spec.sensitivity, trial)
    check_trial(comparison, path.name)
    return comparison


MIN_TRIAL_DRAWS = 3
"""Parameter draws a proposed trial's value needs: its EVSI regresses the draws' net benefit on
the trial's two summary statistics (`sim.studies.evsi`)."""


def check_trial(comparison: Comparison, where: str) -> None:
    """A `[trial]` that cannot be valued is refused in one line saying why (it needs an
    economics file and `MIN_TRIAL_DRAWS` parameter draws), never left out without a word."""
    if comparison.trial is None:
        return
    if comparison.economics is None:
        raise InputError(f"{where}: trial: a proposed trial is valued only in a "
                         f"cost-effectiveness analysis: name an economics file (economics = "
                         f"\"economics/us\", or --economics FILE) or remove [trial]")
    draws = comparison.uncertainty.draws
    if draws < MIN_TRIAL_DRAWS:
        raise InputError(f"{where}: trial: the value of a proposed trial needs at least "
                         f"{MIN_TRIAL_DRAWS} parameter draws (uncertainty.draws = {draws}); ask "
                         f"for more draws or remove [trial]")


ECONOMIC_SEED_KEY = 0x45434F4E   # "ECON": the economic draws' stream, apart from the patients'


def economic_draws(economics: Economics, seed: int, draws: int) -> list[dict[str, float]]:
    """The priced parameters of each draw: the file's means for the point estimate (draws = 0),
    else draw d from its own stream keyed by (seed, d), the same for every policy."""
    if draws == 0:
        return [dict(economics.means)]
    return [economics.draw(np.random.default_rng([seed, d, ECONOMIC_SEED_KEY]))
            for d in range(draws)]


@lru_cache(maxsize=4)
def draw_parameters(draws: int) -> tuple[Params, ...]:
    """The point estimate (draws = 0), or the first `draws` sets of the posterior sample (made
    once per process: a run asks for them to check its file, to simulate and to analyse)."""
    params, _ = load_params()
    if draws == 0:
        return (params,)
    sample_file = Path(str(resources.files("sim") / "data" / "posterior.csv"))
    if not sample_file.exists():
        raise InputError("uncertainty.draws: the package ships no posterior sample; use draws = 0")
    sample = pd.read_csv(sample_file)
    if draws > len(sample):
        raise InputError(f"uncertainty.draws: at most {len(sample)} (the posterior sample's size); "
                         f"got {draws}")
    columns = [c for c in sample.columns if "." in c]
    return tuple(with_values(params, dict(zip(columns, row))) for row in
                 sample[columns].head(draws).itertuples(index=False))


@dataclass(frozen=True)
class ComparisonUnit:
    """One parameter draw, one replicate, one chunk of patients (a department when a policy has
    a capacity), under every policy: the policies share the cohort and the draws common to
    them (`sim.engine.draws.SharedDraws`), made once for all."""

    draw: int
    replicate: int
    first: int
    count: int
    seed: int
    primary: str
    years: float | str             # a number of years or "lifetime"
    accrual_months: float
    params: Params
    policies: tuple[Policy, ...]
    staging: str
    economics: Economics | None = None
    prices: dict | None = None     # the draw's priced parameters (with `economics`)
    whole_draw: bool = False       # the unit is every patient of its draw: digest it here
    keep_patients: bool = True     # write the patients (else a whole draw's are not written)
    reference: str | None = None   # the reference policy (for the digest's detection advance)

    @property
    def key(self) -> str:
        """The unit's name: its file of the departments' records (one per policy) is its mark
        of done."""
        return f"d{self.draw:03d}-r{self.replicate:02d}-c{self.first:09d}"

    def name(self, k: int) -> str:
        """The name of policy k's partition and record."""
        return f"p{k:02d}-{self.key}"

    @property
    def names(self) -> list[str]:
        return [self.name(k) for k in range(len(self.policies))]

    @property
    def lives(self) -> int:
        return self.count * len(self.policies)


def simulate_comparison_unit(unit: ComparisonUnit) -> int:
    """Simulate a unit and write each policy's patients (with scenario_id and draw) and
    department; returns its patient-lives."""
    # The same patients for every policy: the streams' replicate key is draw * 1000 + replicate,
    # one distinct key per (draw, replicate) pair (replicates <= 1000), never a derived seed.
    lifetime = unit.years == "lifetime"
    spec = CohortSpec(unit.count, unit.seed, "lifetime" if lifetime else "horizon", unit.primary,
                      10.0 if lifetime else unit.years,
                      replicate=unit.draw * 1000 + unit.replicate)
    rate = unit.economics.discount_costs if unit.economics is not None else None
    prepared = prepare_cohort(spec, unit.params, unit.first, unit.count, unit.accrual_months)
    shared = SharedDraws()
    # every policy's draws at once, episode by episode (a later episode's natural history made
    # once for the patients any policy needs it for)
    drawn = draw_chunks(unit.params, list(unit.policies), prepared.cohort,
                        prepared.censor_months, prepared.censor_detail, spec.seed,
                        spec.replicate, shared)
    # a whole draw whose patients are not kept is digested here and never written: its
    # departments' records, the unit's mark of done, follow its digest
    write = unit.keep_patients or not unit.whole_draw
    columns, records = [], []
    added = (*(priced_columns() if unit.economics is not None else ()), *_KEYS)
    for k, policy in enumerate(unit.policies):
        patients, events, department, discounted = simulate_priced(
            spec, unit.params, policy, unit.first, unit.count, unit.accrual_months, rate,
            prepared, shared, events=unit.economics is not None, table=False,
            columns=None if write else _DIGESTED, drawn=drawn[k])
        columns.append(_policy_columns(unit, policy, patients, events, discounted))
        if write:
            write_atomic(_policy_table(columns[-1], prepared, added),
                          Path(unit.staging) / "patients" / f"{unit.name(k)}.parquet")
        records.append({"name": unit.name(k), "scenario_id": policy.name, "draw": unit.draw,
                        "department": department})
    if unit.whole_draw:   # the analysis's share of the work, done while the patients are here
        store_digest(Path(unit.staging), unit.draw, columns,
                     priced_columns() if unit.economics is not None else (), unit.reference)
    done = Path(unit.staging) / "departments" / f"{unit.key}.json"   # the unit's mark of done
    done.with_name(f".{done.name}.partial").write_text(json.dumps(records))
    os.replace(done.with_name(f".{done.name}.partial"), done)
    return unit.lives


_KEYS = ("scenario_id", "draw", "replicate")
"""The columns that key a policy's patients in a comparison's partitions (after the priced ones)."""
_DIGESTED = tuple(name for name in DIGESTED if name not in _KEYS)
"""The patient columns a whole draw not written needs: those the digest reads."""


def _policy_columns(unit: ComparisonUnit, policy: Policy, patients: dict[str, np.ndarray],
                    events: pa.Table | None, discounted: dict | None) -> dict[str, np.ndarray]:
    """A policy's patients (numpy columns) with their priced columns (with an economics file),
    policy, draw and replicate."""
    if unit.economics is not None:
        from sim.studies.economics import patient_economics  # noqa: PLC0415

        covariates = pd.DataFrame({name: patients[name] for name in
                                   ("patient_id", "age_years", "sex", "first_symptom_months")})
        priced = patient_economics(covariates, events.to_pandas(), discounted,
                                   policy.modality_names, unit.prices, unit.economics)
        patients = patients | {name: priced[name].to_numpy() for name in priced.columns}
    n = len(patients["patient_id"])
    return patients | {"scenario_id": np.full(n, policy.name, dtype=object),  # `_KEYS`
                       "draw": np.full(n, unit.draw, np.int64),
                       "replicate": np.full(n, unit.replicate, np.int64)}


def _policy_table(columns: dict[str, np.ndarray], prepared: PreparedCohort,
                  added: tuple[str, ...]) -> pa.Table:
    """A policy's partition: its patients' table (`patients_schema`, the covariates converted
    once for every policy of the unit), then the columns `added` by the unit."""
    table = arrow_patients(columns, prepared.arrays, prepared.cohort)
    for name in added:
        table = table.append_column(name, pa.array(columns[name]))
    return table


def run_units(comparison: Comparison, staging: Path, executor,
              progress: bool | None = False, keep_patients: bool = True) -> None:
    """Every (draw, replicate, chunk) unit not yet done in `staging`, with progress shown as
    `sim.execution.executor.Progress` does (False: none; None or True: a bar on a terminal,
    a few lines otherwise); `keep_patients` False: a unit that holds a whole draw digests it
    without writing its patients."""
    for folder in ("patients", "departments"):
        (staging / folder).mkdir(parents=True, exist_ok=True)  # (tests call it on a bare folder)
    done = {record["name"] for record in department_records(staging)}
    cohort, uncertainty = comparison.cohort, comparison.uncertainty
    draws = draw_parameters(uncertainty.draws)
    prices = (economic_draws(comparison.economics, uncertainty.seed, uncertainty.draws)
              if comparison.economics is not None else [None] * len(draws))
    whole_draw = uncertainty.replicates == 1 and cohort.patients <= cohort.patients_per_department
    units = [
        ComparisonUnit(d, r, first, min(cohort.patients_per_department, cohort.patients - first),
                       uncertainty.seed, cohort.primary, cohort.years, 12.0 * cohort.accrual_years,
                       params, comparison.policies, str(staging), comparison.economics, prices[d],
                       whole_draw=whole_draw, keep_patients=keep_patients,
                       reference=comparison.reference)
        for d, params in enumerate(draws)
        for r in range(uncertainty.replicates)
        for first in range(0, cohort.patients, cohort.patients_per_department)
    ]
    todo = [u for u in units if not done.issuperset(u.names)]
    bar = Progress(sum(u.lives for u in units), len(units), progress,
                   done_patients=sum(u.lives for u in units if done.issuperset(u.names)),
                   done_units=len(units) - len(todo), nouns=("patient-life", "patient-lives"))
    try:
        executor.run(simulate_comparison_unit, todo, bar.update)
    finally:
        bar.close()
