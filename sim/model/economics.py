"""An economics file: what the events and states of a simulated patient cost and are worth.

One TOML file per setting (`scenarios/economics/`): currency and price year, discount rates for
costs and effects, one-off costs of events, costs per month in a state, utilities of states and
one-off disutilities, the thresholds to report and the population for the value of information.
Every number is a ``{ value, source }`` table, as in the parameter file; an uncertain one also
gives ``sd``, its standard deviation for probabilistic analysis: costs and disutilities are drawn
from a gamma distribution, utilities from a beta distribution, each with the file's mean and sd
(method of moments). Discount rates, durations and thresholds are fixed.

A comparison names its economics file (``economics = "..."``); `crlm-sim run --economics FILE`
overrides it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from sim._paths import scenario_file
from sim._toml import validate_file

__all__ = ["Economics", "load_economics", "EVENT_COSTS", "MONTHLY_COSTS", "UTILITIES",
           "DISUTILITIES", "GROUPS"]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

EVENT_COSTS = ("repeat_liver_resection", "lung_resection", "pelvic_surgery", "other_site_resection",
               "palliative_procedure", "workup")
MONTHLY_COSTS = ("systemic_therapy", "best_supportive_care", "end_of_life")
UTILITIES = ("disease_free_after_hepatectomy", "disease_free_after_repeat", "recurrence",
             "end_of_life")
DISUTILITIES = ("operation", "workup")
GROUPS = {"costs": ("cost.", "test.", "monthly."), "utilities": ("utility.", "disutility.")}
"""The economic parameters' groups for the value of partial perfect information (by prefix)."""


class _Amount(BaseModel):
    """A non-negative amount with its source, and its sd where it is uncertain."""

    model_config = _STRICT
    value: Annotated[float, Field(ge=0.0, le=1e9)]
    sd: Annotated[float, Field(ge=0.0, le=1e9)] = 0.0
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _gamma_exists(self) -> "_Amount":
        if self.sd and not 1e-6 * self.value <= self.sd <= 10 * self.value:
            raise ValueError("sd must be 0 (fixed) or between a millionth and ten times the value "
                             "(a gamma distribution with that mean and spread)")
        return self


class _Utility(BaseModel):
    model_config = _STRICT
    value: Annotated[float, Field(gt=0.0, lt=1.0)]
    sd: Annotated[float, Field(ge=0.0)] = 0.0
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _beta_exists(self) -> "_Utility":
        if self.sd and self.sd ** 2 >= self.value * (1 - self.value):
            raise ValueError(f"sd must be below sqrt(value * (1 - value)) = "
                             f"{np.sqrt(self.value * (1 - self.value)):.3f} for a beta distribution")
        return self


class _Rate(BaseModel):
    model_config = _STRICT
    value: Annotated[float, Field(ge=0.0, le=0.2)]
    source: str = Field(min_length=1)


class _Fixed(BaseModel):
    model_config = _STRICT
    value: Annotated[float, Field(ge=0.0, le=1e9)]
    source: str = Field(min_length=1)


def _table(names: tuple[str, ...], kind) -> type[BaseModel]:
    """A table whose keys are exactly `names`, each a `kind`."""
    return create_model("Table", __config__=_STRICT, **{name: (kind, ...) for name in names})


_Discount = _table(("costs", "effects"), _Rate)
_Durations = _table(("systemic_therapy_months", "end_of_life_months"), _Fixed)
_Population = _table(("incident_per_year", "years"), _Fixed)
_EventCost = _table(EVENT_COSTS, _Amount)
_MonthlyCost = _table(MONTHLY_COSTS, _Amount)
_Utilities = _table(UTILITIES, _Utility)
_Disutilities = _table(DISUTILITIES, _Amount)


class _EconomicsFile(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    currency: str = Field(min_length=1)
    price_year: Annotated[int, Field(ge=1900, le=2100)]
    thresholds: list[Annotated[float, Field(gt=0.0, le=1e7)]] = Field(min_length=1, max_length=6)
    discount: _Discount
    durations: _Durations
    population: _Population
    event_cost: _EventCost
    test_cost: dict[str, _Amount] = Field(min_length=1)
    monthly_cost: _MonthlyCost
    utility: _Utilities
    disutility: _Disutilities


@dataclass(frozen=True)
class Economics:
    """An economics file, loaded: `means` holds every priced parameter by dotted name
    (``"cost.workup"``, ``"test.ct_cap"``, ``"utility.recurrence"``, ``"disutility.operation"``),
    `sds` their spreads; `draw(rng)` one set for a probabilistic analysis."""

    name: str
    description: str
    currency: str
    price_year: int
    thresholds: tuple[float, ...]
    discount_costs: float
    discount_effects: float
    systemic_therapy_months: float
    end_of_life_months: float
    incident_per_year: float
    population_years: float
    means: dict[str, float]
    sds: dict[str, float]
    sources: dict[str, str]
    path: str = ""

    @property
    def cost_unit(self) -> str:
        return f"{self.currency}, {self.price_year} prices"

    def digest(self) -> str:
        blob = json.dumps({k: v for k, v in vars(self).items() if k not in ("sources", "path")},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One set of the priced parameters: gamma for costs and disutilities, beta for
        utilities (mean and sd from the file), the mean where the sd is 0."""
        values = {}
        for name, mean in self.means.items():
            sd = self.sds[name]
            if sd == 0 or mean == 0:
                values[name] = mean
            elif name.startswith("utility."):
                common = mean * (1 - mean) / sd ** 2 - 1
                values[name] = float(rng.beta(mean * common, (1 - mean) * common))
            else:
                shape = (mean / sd) ** 2
                values[name] = float(rng.gamma(shape, mean / shape))
        return values

    def check_tests(self, modality_names, policy_name: str) -> None:
        """Every modality a policy uses must have a test cost in the file (one line if not)."""
        from sim.errors import InputError  # noqa: PLC0415

        missing = [m for m in modality_names if f"test.{m}" not in self.means]
        if missing:
            known = ", ".join(sorted(k.removeprefix("test.") for k in self.means
                                     if k.startswith("test.")))
            raise InputError(f"{Path(self.path).name}: test_cost: no cost for {missing[0]!r}, "
                             f"a modality of policy {policy_name!r} (the file prices: {known})")


def load_economics(path: str | Path) -> Economics:
    """Read and check an economics file; an error is one line naming the field."""
    path = scenario_file(path, "economics file")
    spec = validate_file(path, _EconomicsFile)
    means, sds, sources = {}, {}, {}
    for prefix, table in (("cost", spec.event_cost), ("monthly", spec.monthly_cost),
                          ("utility", spec.utility), ("disutility", spec.disutility)):
        for name, leaf in table:
            means[f"{prefix}.{name}"], sds[f"{prefix}.{name}"] = leaf.value, leaf.sd
            sources[f"{prefix}.{name}"] = leaf.source
    for name, leaf in spec.test_cost.items():
        means[f"test.{name}"], sds[f"test.{name}"], sources[f"test.{name}"] = (
            leaf.value, leaf.sd, leaf.source)
    for group, table in (("discount", spec.discount), ("durations", spec.durations),
                         ("population", spec.population)):
        for name, leaf in table:
            sources[f"{group}.{name}"] = leaf.source
    return Economics(spec.name, spec.description, spec.currency, spec.price_year,
                     tuple(spec.thresholds), spec.discount.costs.value, spec.discount.effects.value,
                     spec.durations.systemic_therapy_months.value,
                     spec.durations.end_of_life_months.value,
                     spec.population.incident_per_year.value, spec.population.years.value,
                     means, sds, sources, str(path))
