"""An economics file: what the events and states of a simulated patient cost and are worth.

One TOML file per setting (`scenarios/economics/`): currency, price year and perspective, the
thresholds and discount rates, and every input of the evaluation as one record: its value (money
at the file's price year), its distribution for the probabilistic analysis (``gamma`` for costs,
durations and one-off QALY losses, ``beta`` for utilities and probabilities, both fitted by the
method of moments to the value and its standard error ``se``; or ``fixed``), the interval the
one-way analysis varies it over (``range``; by default the distribution's 2.5th and 97.5th
percentiles), whether the value is published or an assumption (``evidence``), its ``source``,
and for money its ``price_year`` and the ``conversion`` that brought it to the file's year.

The inputs, by table (the dotted names the code uses in brackets):

- ``durations`` (``duration.``): months of the phases of incurable disease: first-line systemic
  therapy, the maintenance or treatment-free interval after it, second-line therapy, and the
  months before a cancer death costed and valued as the end of life;
- ``probability`` (``probability.``): the share of incurable recurrences treated with a second
  line, and a major complication after a repeat liver resection;
- ``event_cost`` (``cost.``), ``test_cost`` (``test.``), ``monthly_cost`` (``monthly.``): one-off
  costs at events, per examination, and per month in a state or phase (``untreated_recurrence``:
  a month living with a detected incurable recurrence before its care starts);
- ``utility`` (``utility.``): the disease-free and recurrence states as multipliers of the
  age-sex population norm (``utility_norm``: fixed coefficients), the end of life absolute;
- ``disutility`` (``disutility.``): one-off QALY losses;
- ``trial_cost`` (``trial.``): a randomized follow-up trial's fixed and per-patient cost, for the
  expected net benefit of sampling;
- ``population``: patients a year and years a decision concerns (value of information).

A comparison names its economics file (``economics = "..."``); `crlm-sim run --economics FILE`
overrides it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator
from scipy import stats

from sim._paths import scenario_file
from sim._toml import validate_file

__all__ = ["Economics", "Input", "load_economics", "discount_factor", "EVENT_COSTS", "MONTHLY_COSTS", "UTILITIES",
           "DISUTILITIES", "DURATIONS", "PROBABILITIES", "GROUPS", "TABLES"]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

DURATIONS = ("first_line_months", "maintenance_months", "second_line_months", "end_of_life_months")
PROBABILITIES = ("second_line", "major_complication")
EVENT_COSTS = ("repeat_liver_resection", "lung_resection", "pelvic_surgery", "other_site_resection",
               "palliative_procedure", "major_complication", "workup", "clinic_visit")
MONTHLY_COSTS = ("untreated_recurrence", "first_line_therapy", "maintenance",
                 "second_line_therapy", "best_supportive_care", "end_of_life")
UTILITIES = ("disease_free_after_hepatectomy", "disease_free_after_repeat", "recurrence",
             "end_of_life")
DISUTILITIES = ("operation", "major_complication", "workup")
TRIAL_COSTS = ("fixed", "per_patient")
NORM = ("intercept", "male", "age", "age_squared")

TABLES = {  # file table: (dotted prefix, keys (None: any), money)
    "durations": ("duration", DURATIONS, False),
    "probability": ("probability", PROBABILITIES, False),
    "event_cost": ("cost", EVENT_COSTS, True),
    "test_cost": ("test", None, True),
    "monthly_cost": ("monthly", MONTHLY_COSTS, True),
    "utility": ("utility", UTILITIES, False),
    "disutility": ("disutility", DISUTILITIES, False),
    "trial_cost": ("trial", TRIAL_COSTS, True),
}
"""The tables of inputs an economics file holds, and the prefix of their dotted names."""

def _not_future(year: int) -> int:
    """A price year that has come: prices of a year not yet over are not known."""
    if year > dt.date.today().year:
        raise ValueError(f"must not be after the current year, {dt.date.today().year}")
    return year


@dataclass(frozen=True)
class _UpToThisYear(AfterValidator):
    """`_not_future` as a validator, its bound said as the reference (docs/inputs.md) says one."""

    func: object = _not_future
    le: str = "the current year"


def _price_year(low: int):
    return Annotated[int, Field(ge=low), _UpToThisYear()]


GROUPS = {"costs": ("cost.", "test.", "monthly."),
          "utilities": ("utility.", "disutility."),
          "durations and probabilities": ("duration.", "probability.")}
"""The economic inputs' groups for the value of partial perfect information (by prefix)."""


class _Input(BaseModel):
    """One input: value, distribution, one-way range, evidence and source."""

    model_config = _STRICT
    value: Annotated[float, Field(ge=0.0, le=1e9)]
    distribution: Literal["gamma", "beta", "fixed"]
    se: Annotated[float, Field(gt=0.0, le=1e9)] | None = None
    se_basis: str | None = None
    range: Annotated[list[Annotated[float, Field(ge=0.0, le=1e9)]],
                     Field(min_length=2, max_length=2)] | None = None
    evidence: Literal["published", "partly published", "assumption"]
    source: str = Field(min_length=1)
    price_year: _price_year(1950) | None = None
    conversion: str | None = None

    @model_validator(mode="after")
    def _fits(self) -> "_Input":
        if self.distribution == "fixed":
            if self.se is not None:
                raise ValueError("se: a fixed input takes no se (give a range instead)")
        elif self.se is None:
            raise ValueError(f"se: a {self.distribution} input needs its standard error")
        if self.distribution == "beta":
            if not 0 < self.value < 1 or self.se ** 2 >= self.value * (1 - self.value):
                raise ValueError("se: a beta input needs 0 < value < 1 and se below "
                                 "sqrt(value * (1 - value))")
        if self.distribution == "gamma" and not 1e-6 * self.value <= self.se <= 10 * self.value:
            raise ValueError("se: between a millionth and ten times the value for a gamma input")
        if (self.distribution == "fixed" or self.evidence == "assumption") and self.range is None:
            raise ValueError("range: a fixed input or an assumption needs its one-way range "
                             "[low, high]")
        if self.range is not None and not self.range[0] <= self.value <= self.range[1]:
            raise ValueError("range: must be [low, high] with low <= value <= high")
        return self


class _Rate(BaseModel):
    model_config = _STRICT
    value: Annotated[float, Field(ge=0.0, le=0.2)]
    source: str = Field(min_length=1)


class _Coefficient(BaseModel):
    model_config = _STRICT
    value: Annotated[float, Field(ge=-10.0, le=10.0)]
    source: str = Field(min_length=1)


def _table(names: tuple[str, ...], kind) -> type[BaseModel]:
    """A table whose keys are exactly `names`, each a `kind`."""
    return create_model("Table", __config__=_STRICT, **{name: (kind, ...) for name in names})


class _EconomicsFile(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    currency: str = Field(min_length=1)
    price_year: _price_year(1900)
    perspective: str = Field(min_length=1)
    thresholds: list[Annotated[float, Field(gt=0.0, le=1e7)]] = Field(min_length=1, max_length=6)
    thresholds_source: str = Field(min_length=1)
    discount: _table(("costs", "effects"), _Rate)
    population: _table(("incident_per_year", "years"), _Input)
    durations: _table(DURATIONS, _Input)
    probability: _table(PROBABILITIES, _Input)
    event_cost: _table(EVENT_COSTS, _Input)
    test_cost: dict[str, _Input] = Field(min_length=1)
    monthly_cost: _table(MONTHLY_COSTS, _Input)
    utility: _table(UTILITIES, _Input)
    utility_norm: _table(NORM, _Coefficient)
    disutility: _table(DISUTILITIES, _Input)
    trial_cost: _table(TRIAL_COSTS, _Input)


@dataclass(frozen=True)
class Input:
    """One input of an economics file, by its dotted name (``"cost.workup"``)."""

    name: str
    value: float
    distribution: str           # gamma, beta or fixed
    se: float                   # 0 when fixed
    low: float                  # the one-way analysis's interval
    high: float
    evidence: str
    source: str
    price_year: int | None
    conversion: str | None
    se_basis: str | None = None

    def quantiles(self, q) -> np.ndarray:
        """The distribution's quantiles `q` (the value when fixed)."""
        q = np.asarray(q, float)
        if self.distribution == "fixed":
            return np.full(q.shape, self.value)
        if self.distribution == "beta":
            a, b = _beta_shape(self.value, self.se)
            return stats.beta.ppf(q, a, b)
        shape = (self.value / self.se) ** 2
        return stats.gamma.ppf(q, shape, scale=self.value / shape)

    def sample(self, rng: np.random.Generator) -> float:
        if self.distribution == "fixed":
            return self.value
        if self.distribution == "beta":
            return float(rng.beta(*_beta_shape(self.value, self.se)))
        shape = (self.value / self.se) ** 2
        return float(rng.gamma(shape, self.value / shape))


def _beta_shape(mean: float, se: float) -> tuple[float, float]:
    common = mean * (1 - mean) / se ** 2 - 1
    return mean * common, (1 - mean) * common


def discount_factor(years, rate: float):
    """The weight of a cost or an effect `years` after the hepatectomy at the annual discount
    `rate`, as NICE and the Second Panel on Cost-Effectiveness define it: ``(1 + rate) ** -years``,
    in continuous time ``exp(-ln(1 + rate) years)`` (elementwise)."""
    return np.exp(-np.log1p(rate) * np.asarray(years, float))


@dataclass(frozen=True)
class Economics:
    """An economics file, loaded: `inputs` by dotted name (``"cost.workup"``, ``"test.ct_cap"``,
    ``"utility.recurrence"``, ``"duration.first_line_months"``), `means` their values,
    `norm` the population norm's coefficients; `draw(rng)` one set for a probabilistic
    analysis."""

    name: str
    description: str
    currency: str
    price_year: int
    perspective: str
    thresholds: tuple[float, ...]
    thresholds_source: str
    discount_costs: float
    discount_effects: float
    incident_per_year: float
    population_years: float
    inputs: dict[str, Input]
    norm: dict[str, float]
    sources: dict[str, str] = field(default_factory=dict)   # the fixed settings' sources
    path: str = ""

    @property
    def means(self) -> dict[str, float]:
        return {name: item.value for name, item in self.inputs.items()}

    @property
    def cost_unit(self) -> str:
        return f"{self.currency}, {self.price_year} prices"

    def digest(self) -> str:
        blob = json.dumps({k: v for k, v in vars(self).items() if k not in ("sources", "path")},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One set of the inputs, each from its distribution (the value where fixed), in the
        file's order."""
        return {name: item.sample(rng) for name, item in self.inputs.items()}

    def check_tests(self, modality_names, policy_name: str) -> None:
        """Every modality a policy uses must have a test cost in the file (one line if not)."""
        from sim.errors import InputError  # noqa: PLC0415

        missing = [m for m in modality_names if f"test.{m}" not in self.inputs]
        if missing:
            known = ", ".join(sorted(k.removeprefix("test.") for k in self.inputs
                                     if k.startswith("test.")))
            raise InputError(f"{Path(self.path).name}: test_cost: no cost for {missing[0]!r}, "
                             f"a modality of policy {policy_name!r} (the file prices: {known})")


def _input(name: str, leaf: _Input) -> Input:
    if leaf.range is not None:
        low, high = leaf.range
    elif leaf.distribution == "beta":
        low, high = stats.beta.ppf([0.025, 0.975], *_beta_shape(leaf.value, leaf.se))
    else:
        shape = (leaf.value / leaf.se) ** 2
        low, high = stats.gamma.ppf([0.025, 0.975], shape, scale=leaf.value / shape)
    return Input(name, leaf.value, leaf.distribution, leaf.se or 0.0, float(low), float(high),
                 leaf.evidence, leaf.source, leaf.price_year, leaf.conversion, leaf.se_basis)


def load_economics(path: str | Path) -> Economics:
    """Read and check an economics file; an error is one line naming the field."""
    from sim.errors import InputError  # noqa: PLC0415

    path = scenario_file(path, "economics file")
    spec = validate_file(path, _EconomicsFile)
    inputs = {}
    for table, (prefix, _, money) in TABLES.items():
        leaves = getattr(spec, table)
        for key, leaf in (leaves.items() if isinstance(leaves, dict) else leaves):
            name = f"{prefix}.{key}"
            if money and leaf.price_year is None:
                raise InputError(f"{path.name}: {table}.{key}.price_year: a cost needs the price "
                                 f"year of its source")
            if money and leaf.price_year != spec.price_year and not leaf.conversion:
                raise InputError(f"{path.name}: {table}.{key}.conversion: say how the "
                                 f"{leaf.price_year} figure was brought to {spec.price_year} "
                                 f"prices")
            inputs[name] = _input(name, leaf)
    sources = {f"discount.{k}": v.source for k, v in spec.discount}
    sources |= {f"population.{k}": v.source for k, v in spec.population}
    sources |= {f"utility_norm.{k}": v.source for k, v in spec.utility_norm}
    return Economics(spec.name, spec.description, spec.currency, spec.price_year,
                     spec.perspective, tuple(spec.thresholds), spec.thresholds_source,
                     spec.discount.costs.value, spec.discount.effects.value,
                     spec.population.incident_per_year.value, spec.population.years.value,
                     inputs, {k: v.value for k, v in spec.utility_norm}, sources, str(path))
