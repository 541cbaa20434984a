"""Power designs: the TOML files people write to ask "how many patients?", checked at the boundary.

Three kinds (``kind = "..."``), all with a grid of ``sample_sizes``, a two-sided ``alpha``, a
``target_power``, a default number of ``replicates`` and a ``seed``:

- ``exponential``: the textbook case. Exponential survival in two arms with a given
  ``hazard_ratio``, randomized in the ratio ``allocation``; either everyone followed to the event,
  an event-driven analysis at ``events`` events, or fixed follow-up (``accrual_months``,
  ``follow_up_months``, ``dropout_per_year``). Simulation and formula must agree here.
- ``trial``: two surveillance policies (``control``, ``experimental``: policy files) randomized,
  with accrual, minimum follow-up and dropout; ``endpoints`` among ``os`` (log-rank), ``rmst``
  (restricted mean survival difference), ``reresection`` (share with a curative repeat operation,
  two-proportion test) and ``dfs`` (disease-free survival as detected at visits, log-rank).
- ``cohort``: a study like the paper's: patients of a ``primary`` site under a study ``design``, a
  ``covariate`` (a column of the patient table), an ``endpoint`` (``os``, ``dfs`` or a site of
  recurrence), analysed by log-rank and univariate Cox.

The exponential and trial designs (their ``os`` and ``dfs`` endpoints) may also ask for a
``hypothesis = "non_inferiority"`` with a hazard-ratio ``margin`` (one-sided ``alpha``), or for
``hypothesis = "equivalence"`` (two one-sided tests of the margins 1/``margin`` and ``margin``,
each at ``alpha``); a trial's ``rmst`` and ``reresection`` endpoints then take their margins
as differences, ``rmst_margin_months`` and ``reresection_margin`` (experimental - control, larger
better). The hazard-ratio endpoints may also have interim analyses: ``looks`` (information
fractions, the last 1) or ``look_events`` (the event counts at which the analyses are held, the
last the final analysis) with a ``spending`` function (``obrien-fleming``, ``pocock`` or ``hsd``
with ``hsd_gamma``); see `sim.studies.power.looks`.

Policy and parameter paths are relative to the design file; a bare file name not found there is
looked up among the packaged scenarios. Errors are one line naming the file and the field.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sim._toml import read_toml, validate_file
from sim._paths import named_file, scenario_file
from sim.errors import InputError
from sim.limits import MAX_ALLOCATION, MAX_POWER_REPLICATES, MAX_TRIAL_PATIENTS
from sim.output.schema import PATIENT_COLUMNS

__all__ = ["KINDS", "ExponentialDesign", "TrialDesign", "CohortDesign", "Design", "load_design",
           "TRIAL_ENDPOINTS", "COHORT_ENDPOINTS", "COHORT_TESTS"]

KINDS = ("exponential", "trial", "cohort")
TRIAL_ENDPOINTS = ("os", "rmst", "reresection", "dfs")
COHORT_ENDPOINTS = ("os", "dfs", "pelvis", "liver", "lung", "other")
COHORT_TESTS = ("logrank", "cox")

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
Ratio = Annotated[int, Field(gt=0, le=MAX_ALLOCATION, strict=True)]
Allocation = Annotated[tuple[Ratio, Ratio], Field(strict=False)]   # a TOML array, of ints


class _Common(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    alpha: Probability = 0.05
    target_power: Probability = 0.8
    sample_sizes: list[Annotated[int, Field(ge=2, le=MAX_TRIAL_PATIENTS, strict=True)]] = Field(
        min_length=1)
    replicates: Annotated[int, Field(gt=0, le=MAX_POWER_REPLICATES, strict=True)] = 1000
    seed: Annotated[int, Field(ge=0, strict=True)] = 20080101
    path: str = Field("", exclude=True)  # the file it came from (set by the loader)

    @field_validator("sample_sizes")
    @classmethod
    def _increasing(cls, sizes: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ValueError("must be strictly increasing")
        return sizes

    @property
    def share_experimental(self) -> float:
        """Share of patients in the experimental arm (designs with an ``allocation``)."""
        experimental, control = self.allocation
        return experimental / (experimental + control)


class _Sequential(BaseModel):
    """Non-inferiority, equivalence and interim analyses (`sim.studies.power.looks`)."""

    hypothesis: Literal["superiority", "non_inferiority", "equivalence"] = "superiority"
    margin: Annotated[float, Field(gt=1.0, le=10.0)] | None = None
    looks: list[Annotated[float, Field(gt=0.0, le=1.0)]] | None = Field(None, min_length=1, max_length=10)
    look_events: list[Annotated[int, Field(ge=2, strict=True)]] | None = Field(None, min_length=1,
                                                                             max_length=10)
    spending: Literal["obrien-fleming", "pocock", "hsd"] = "obrien-fleming"
    hsd_gamma: Annotated[float, Field(ge=-40.0, le=40.0)] = -4.0
    futility: Literal["obrien-fleming", "pocock", "hsd"] | None = None   # beta spending

    @property
    def sequential(self) -> bool:
        """Analysed by `sim.studies.power.looks` (interim looks or a margin)."""
        return (self.looks is not None or self.look_events is not None
                or self.hypothesis != "superiority")

    @property
    def fractions(self) -> tuple[float, ...]:
        """The looks' information fractions (from `look_events` when the looks are counts)."""
        if self.look_events is not None:
            return tuple(e / self.look_events[-1] for e in self.look_events)
        return tuple(self.looks or (1.0,))


class ExponentialDesign(_Common, _Sequential):
    """Exponential survival, proportional hazards (experimental vs control)."""

    kind: Literal["exponential"]
    hazard_ratio: Annotated[float, Field(gt=0.0)]
    allocation: Allocation = (1, 1)
    control_median_months: Annotated[float, Field(gt=0.0)] = 12.0
    events: Annotated[int, Field(ge=2)] | None = None
    accrual_months: Annotated[float, Field(ge=0.0)] = 0.0
    follow_up_months: Annotated[float, Field(gt=0.0)] | None = None
    dropout_per_year: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class TrialDesign(_Common, _Sequential):
    """Two surveillance policies randomized."""

    kind: Literal["trial"]
    control: str
    experimental: str
    allocation: Allocation = (1, 1)
    primary: Literal["rectum", "colon", "both"] = "both"
    accrual_months: Annotated[float, Field(ge=0.0)] = 36.0
    follow_up_months: Annotated[float, Field(gt=0.0)] = 24.0
    dropout_per_year: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    endpoints: list[Literal["os", "rmst", "reresection", "dfs"]] = Field(
        default_factory=lambda: list(TRIAL_ENDPOINTS), min_length=1)
    rmst_horizon_months: Annotated[float, Field(gt=0.0)] | None = None
    rmst_margin_months: Annotated[float, Field(gt=0.0)] | None = None     # non-inferiority, equivalence
    reresection_margin: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    params: str | None = None

    @property
    def horizon_months(self) -> float:
        """Longest follow-up: the first patient, from entry to the analysis."""
        return self.accrual_months + self.follow_up_months

    @property
    def rmst_months(self) -> float:
        return self.rmst_horizon_months or self.follow_up_months


class CohortDesign(_Common):
    """An observational study of one covariate, like the paper's."""

    kind: Literal["cohort"]
    primary: Literal["rectum", "colon", "both"] = "rectum"
    design: Literal["paper", "horizon"] = "paper"
    years: Annotated[float, Field(gt=0.0)] = 10.0
    covariate: str
    equals: str | None = None
    above: float | None = None
    endpoint: Literal["os", "dfs", "pelvis", "liver", "lung", "other"]
    tests: list[Literal["logrank", "cox"]] = Field(default_factory=lambda: list(COHORT_TESTS), min_length=1)
    policy: str = "baseline.toml"
    params: str | None = None


Design = ExponentialDesign | TrialDesign | CohortDesign
_MODELS = {"exponential": ExponentialDesign, "trial": TrialDesign, "cohort": CohortDesign}
_COLUMN_TYPES = {name: kind for name, kind, _ in PATIENT_COLUMNS}


def _fail(path: Path, field: str, message: str) -> InputError:
    return InputError(f"{path.name}: {field}: {message}")


def resolve(path: Path, field: str, value: str) -> Path:
    """A file named in a design: relative to the design's folder (and under it), or a packaged
    scenario (`sim._paths.named_file`)."""
    return named_file(path, field, value)


def _check_margins(design: TrialDesign, path: Path) -> None:
    """The margins of a trial's rmst and reresection endpoints (differences, larger better)."""
    for endpoint, field, example in (("rmst", "rmst_margin_months", "3 months"),
                                     ("reresection", "reresection_margin", "0.05")):
        value = getattr(design, field)
        if design.hypothesis == "superiority" and value is not None:
            raise _fail(path, field, 'is only for hypothesis = "non_inferiority" or "equivalence"')
        if design.hypothesis != "superiority" and endpoint in design.endpoints and value is None:
            raise _fail(path, field, f"is needed for the {endpoint} endpoint of a "
                                     f"{design.hypothesis.replace('_', '-')} design (the largest "
                                     f"difference, experimental - control, that does not matter; "
                                     f"e.g. {example})")


def _check_sequential(design, path: Path) -> None:
    hazard = design.kind != "trial" or any(e in ("os", "dfs") for e in design.endpoints)
    if design.hypothesis != "superiority" and design.margin is None and hazard:
        raise _fail(path, "margin", f"is needed for a {design.hypothesis.replace('_', '-')} design "
                                    "(the hazard ratio, experimental vs control, above which the "
                                    "experimental arm is inferior; e.g. 1.25)")
    if design.hypothesis == "superiority" and design.margin is not None:
        raise _fail(path, "margin", 'is only for hypothesis = "non_inferiority" or "equivalence"')
    if design.futility is not None and design.hypothesis != "non_inferiority":
        raise _fail(path, "futility", "futility boundaries are for one-sided (non-inferiority) "
                                      "designs")
    if design.futility is not None and len(design.fractions) < 2:
        raise _fail(path, "futility", "needs interim looks (looks = [..., 1.0] or look_events)")
    if design.looks is not None and design.look_events is not None:
        raise _fail(path, "look_events", "give either looks (information fractions) or "
                                         "look_events (event counts), not both")
    if design.look_events is not None:
        events = design.look_events
        if any(b <= a for a, b in zip(events, events[1:])):
            raise _fail(path, "look_events", f"must be increasing event counts (got {events})")
        if events[-1] > design.sample_sizes[0]:
            raise _fail(path, "look_events", f"the last count must not exceed the smallest sample "
                                             f"size {design.sample_sizes[0]} (got {events[-1]})")
        if getattr(design, "events", None) is not None:
            raise _fail(path, "look_events", "give either events (one event-driven analysis) or "
                                             "look_events, not both")
    if design.looks is not None:
        if any(b <= a for a, b in zip(design.looks, design.looks[1:])) or design.looks[-1] != 1.0:
            raise _fail(path, "looks", f"must be increasing information fractions ending at 1.0 "
                                       f"(got {design.looks})")
    if design.kind == "trial" and len(design.fractions) > 1:
        other = [e for e in design.endpoints if e not in ("os", "dfs")]
        if other:
            raise _fail(path, "endpoints", f"interim looks are for the hazard-ratio endpoints "
                                           f"os and dfs; remove {', '.join(other)}")


def _check_exponential(design: ExponentialDesign, path: Path) -> None:
    _check_sequential(design, path)
    if design.events is not None and design.follow_up_months is not None:
        raise _fail(path, "events", "give either events (an event-driven analysis) or follow_up_months, not both")
    if design.events is not None and design.events > design.sample_sizes[0]:
        raise _fail(path, "events", f"must not exceed the smallest sample size {design.sample_sizes[0]} "
                                    f"(got {design.events})")
    if design.accrual_months > 0 and design.follow_up_months is None:
        raise _fail(path, "accrual_months", "needs follow_up_months (the analysis time after the last entry)")


def _check_trial(design: TrialDesign, path: Path) -> None:
    _check_sequential(design, path)
    _check_margins(design, path)
    if len(set(design.endpoints)) != len(design.endpoints):
        raise _fail(path, "endpoints", f"must not repeat an endpoint (got {design.endpoints})")
    if design.rmst_horizon_months is not None and design.rmst_horizon_months > design.horizon_months:
        raise _fail(path, "rmst_horizon_months", f"must not exceed accrual_months + follow_up_months "
                                                 f"= {design.horizon_months:g} (got {design.rmst_horizon_months:g})")
    for field in ("control", "experimental", "params"):
        if getattr(design, field) is not None:
            resolve(path, field, getattr(design, field))


def _check_cohort(design: CohortDesign, path: Path) -> None:
    if len(set(design.tests)) != len(design.tests):
        raise _fail(path, "tests", f"must not repeat a test (got {design.tests})")
    kind = _COLUMN_TYPES.get(design.covariate)
    usable = [n for n, k in _COLUMN_TYPES.items() if n != "patient_id" and k != pa.date32()]
    if kind is None or design.covariate == "patient_id" or kind == pa.date32():
        raise _fail(path, "covariate", f"must be a column of the patient table ({', '.join(usable)}); "
                                       f"got {design.covariate!r}")
    if kind == pa.string() and design.equals is None:
        raise _fail(path, "equals", f"is needed for the text column {design.covariate!r} (the exposed value)")
    if kind != pa.string() and design.equals is not None:
        raise _fail(path, "equals", f"is only for text columns; {design.covariate!r} is {kind}")
    if design.above is not None and kind not in (pa.float64(), pa.int64()):
        raise _fail(path, "above", f"is only for numeric columns; {design.covariate!r} is {kind}")
    binary = kind in (pa.bool_(), pa.string()) or design.above is not None
    if "logrank" in design.tests and not binary:
        raise _fail(path, "above", f"is needed for a log-rank test on the numeric column {design.covariate!r} "
                                   "(patients above it are the exposed group), or set tests = [\"cox\"]")
    for field in ("policy", "params"):
        if getattr(design, field) is not None:
            resolve(path, field, getattr(design, field))


def load_design(path: str | Path) -> Design:
    """Read and check a design file; an error is one line naming the field."""
    path = scenario_file(path, "design file")
    tree = read_toml(path)
    kind = tree.get("kind")
    if not isinstance(kind, str) or kind not in _MODELS:
        # the value is not echoed (the file may be no design at all); a near kind is suggested
        near = difflib.get_close_matches(kind, KINDS, n=1) if isinstance(kind, str) else []
        raise _fail(path, "kind", f"must be one of {', '.join(KINDS)}"
                    + (f"; did you mean {near[0]!r}?" if near else ""))
    if "path" in tree:
        raise _fail(path, "path", "unknown key")
    design = validate_file(path, _MODELS[kind], {**tree, "path": str(path.resolve())})
    {"exponential": _check_exponential, "trial": _check_trial, "cohort": _check_cohort}[kind](design, path)
    return design
