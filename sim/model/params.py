"""The model's parameters: one TOML file in, one frozen `Params` out.

Every number in the file is a table ``{ value = ..., source = "..." }``; the source starts with
``study:``, ``cite:``, ``assumption:`` or ``hand-set:`` (or ``fitted:`` once calibrated). The file
is checked at the boundary with pydantic (ranges, unknown keys, missing keys), then the values
become frozen dataclasses for the engine and the sources are kept beside them.
"""

from __future__ import annotations

import dataclasses
import difflib
import datetime as dt
import hashlib
import json
import numbers
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from sim._toml import allowed_keys, first_error, read_toml
from sim.checks import ArgumentTypeError
from sim.errors import InputError

__all__ = ["Params", "load_params", "default_params_path", "with_values", "SOURCE_PREFIXES"]

SOURCE_PREFIXES = ("study", "cite:", "assumption:", "hand-set:", "fitted:")

# Numbers are numbers: a string ("0.9") or a boolean is refused, not coerced, and so is infinity.
Probability = Annotated[float, Field(ge=0.0, le=1.0, strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]
HazardRatio = Annotated[float, Field(gt=0.0, strict=True, allow_inf_nan=False)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_STRICT = ConfigDict(extra="forbid")


class Sourced(BaseModel):
    """A number of a file people write, with where it comes from (shared with the policies)."""

    model_config = _STRICT
    source: str

    @field_validator("source")
    @classmethod
    def _has_known_prefix(cls, source: str) -> str:
        if not source.strip().startswith(SOURCE_PREFIXES):
            raise ValueError(f"source must start with one of {', '.join(SOURCE_PREFIXES)}")
        return source


class _Sourced(Sourced):
    """One leaf of the parameter file: a value and where it comes from."""

    value: Any   # checked by the field it fills (strict numbers, dates)


@dataclass(frozen=True)
class Cohort:
    __pydantic_config__ = _STRICT
    rectal_share: Probability
    age_mean_years: Positive
    age_sd_years: Positive
    age_min_years: Positive
    age_max_years: Positive
    male_share: Probability
    accrual_start: dt.date
    accrual_end: dt.date
    pre1994_share: Probability
    t3_t4_share: Probability
    t4_share_of_t3_t4: Probability
    t1_share_of_t1_t2: Probability
    node_positive_share: Probability
    n2_share: Probability
    cea_gt_200_share: Probability
    synchronous_share: Probability
    simultaneous_share_of_synchronous: Probability
    chemoradiation_share_synchronous: Probability
    chemoradiation_share_metachronous: Probability
    complete_response_share_of_chemoradiation: Probability
    preop_chemo_share_synchronous: Probability
    preop_chemo_share_metachronous: Probability
    lar_share: Probability
    apr_share: Probability
    major_share_synchronous: Probability
    major_share_metachronous: Probability
    rfa_share_less_than_hemi: Probability
    rfa_share_hemi_or_more: Probability
    rfa_only_share_of_rfa: Probability
    anatomic_share: Probability
    margin_positive_share: Probability
    tumor_gt_5cm_share: Probability

    def __post_init__(self):
        if not self.age_min_years < self.age_max_years:
            raise ValueError("age_min_years must be below age_max_years")
        if not self.age_min_years <= self.age_mean_years <= self.age_max_years:
            raise ValueError("age_mean_years must lie between age_min_years and age_max_years")
        if not self.accrual_start < self.accrual_end:
            raise ValueError("accrual_start must come before accrual_end")


@dataclass(frozen=True)
class Perioperative:
    __pydantic_config__ = _STRICT
    complication_prob: Probability
    los_median_days_uncomplicated: Positive
    los_sigma_log: Positive
    los_complication_multiplier: Positive
    death_90d_prob: Probability


@dataclass(frozen=True)
class HazardRatiosAllSites:
    __pydantic_config__ = _STRICT
    era_pre1994: HazardRatio
    tumor_gt_5cm: HazardRatio
    margin_positive: HazardRatio
    rfa: HazardRatio
    n2: HazardRatio
    cea_gt_200: HazardRatio
    colon_primary: HazardRatio


@dataclass(frozen=True)
class HazardRatiosPelvis:
    __pydantic_config__ = _STRICT
    cea_gt_200: HazardRatio
    apr: HazardRatio
    era_pre1994: HazardRatio
    chemoradiation: HazardRatio


@dataclass(frozen=True)
class HazardRatiosLiver:
    __pydantic_config__ = _STRICT
    less_than_hemihepatectomy: HazardRatio
    margin_positive: HazardRatio
    rfa: HazardRatio


@dataclass(frozen=True)
class Recurrence:
    __pydantic_config__ = _STRICT
    onset_weibull_shape: Positive
    onset_weibull_scale_months: Positive
    theta_pelvis: NonNegative
    theta_liver: NonNegative
    theta_lung: NonNegative
    theta_other: NonNegative
    co_involvement_pelvis: Probability
    co_involvement_liver: Probability
    co_involvement_lung: Probability
    co_involvement_other: Probability
    late_share: NonNegative
    late_weibull_shape: Positive
    late_weibull_scale_months: Positive
    late_tempo_shift: Finite
    spread_rate_per_month: NonNegative
    rerecurrence_theta_multiplier: NonNegative
    hazard_ratio_all_sites: HazardRatiosAllSites
    hazard_ratio_pelvis: HazardRatiosPelvis
    hazard_ratio_liver: HazardRatiosLiver


@dataclass(frozen=True)
class Growth:
    """Tumour burden: log2 of the summed volume of an episode's lesions, in volumes of one
    10-mm lesion (`sim.model.natural_history`)."""

    __pydantic_config__ = _STRICT
    onset_diameter_mm: Positive
    doubling_time_median_months: Positive
    doubling_time_sigma_log: NonNegative
    onset_doubling_exponent: NonNegative
    symptom_log2_burden_mean: Finite
    symptom_log2_burden_sd: NonNegative
    resectable_log2_burden_mean: Finite
    resectable_log2_burden_sd: NonNegative


@dataclass(frozen=True)
class Detection:
    __pydantic_config__ = _STRICT
    size_exponent: Positive
    marker_producing_share: Probability


@dataclass(frozen=True)
class Treatment:
    __pydantic_config__ = _STRICT
    curative_max_sites: Annotated[int, Field(ge=1, le=4)]
    curative_prob_if_resectable: Probability
    curative_log_odds_per_tempo_sd: Finite
    other_procedure_prob: Probability
    surgery_delay_months: NonNegative
    repeat_operative_death_prob: Probability
    restaging_interval_months: Positive


@dataclass(frozen=True)
class CancerDeathHazardRatios:
    __pydantic_config__ = _STRICT
    multiple_sites: HazardRatio
    cea_gt_200: HazardRatio
    n2: HazardRatio
    era_pre1994: HazardRatio


@dataclass(frozen=True)
class CancerDeath:
    __pydantic_config__ = _STRICT
    weibull_shape: Positive
    weibull_scale_months: Positive
    doubling_exponent: NonNegative
    hazard_ratio: CancerDeathHazardRatios


@dataclass(frozen=True)
class Study:
    __pydantic_config__ = _STRICT
    close_date: dt.date
    loss_to_follow_up_rate_per_month: NonNegative


@dataclass(frozen=True)
class Meta:
    __pydantic_config__ = _STRICT
    name: str
    description: str = ""


@dataclass(frozen=True)
class Params:
    """All parameters of the model, immutable. `sources` maps a dotted name to its source."""

    __pydantic_config__ = _STRICT
    meta: Meta
    cohort: Cohort
    perioperative: Perioperative
    recurrence: Recurrence
    growth: Growth
    detection: Detection
    treatment: Treatment
    cancer_death: CancerDeath
    study: Study

    def digest(self) -> str:
        """A short hash of the values (not the sources): the manifest's parameter hash."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_ADAPTER = TypeAdapter(Params)


def _split_sources(tree: dict[str, Any], prefix: str, path: Path,
                   sources: dict[str, str]) -> dict[str, Any]:
    """Replace each ``{value, source}`` leaf by its value, collecting the sources."""
    values: dict[str, Any] = {}
    for key, node in tree.items():
        name = f"{prefix}{key}"
        allowed = allowed_keys(Params, tuple(prefix.split(".")[:-1]))
        if key not in allowed:   # named, never echoed: the file may not be a parameter file at all
            near = difflib.get_close_matches(key, allowed, n=1)
            raise InputError(f"{path.name}: {name}: unknown key" + (
                f"; did you mean {near[0]!r}?" if near else "") + f" (allowed: {', '.join(allowed)})")
        if isinstance(node, dict) and "value" in node:
            try:
                leaf = _Sourced.model_validate(node)
            except ValidationError as error:
                raise first_error(path, error, prefix=name) from None
            values[key] = leaf.value
            sources[name] = leaf.source
        elif isinstance(node, dict):
            values[key] = _split_sources(node, f"{name}.", path, sources)
        elif prefix == "meta.":
            values[key] = node
        else:
            raise InputError(f"{path.name}: {name}: must be a table {{ value = ..., source = \"...\" }}"
                             f" (got {node!r})")
    return values


def default_params_path() -> Path:
    """The parameter file shipped with the package."""
    return Path(str(resources.files("sim") / "data" / "params.toml"))


def load_params(path: str | Path | None = None) -> tuple[Params, dict[str, str]]:
    """Read, check and freeze a parameter file; returns the parameters and their sources."""
    path = Path(path) if path is not None else default_params_path()
    tree = read_toml(path)
    sources: dict[str, str] = {}
    values = _split_sources(tree, "", path, sources)
    try:
        params = _ADAPTER.validate_python(values)
    except ValidationError as error:
        raise first_error(path, error, model=Params) from None
    return params, sources


@lru_cache(maxsize=1)
def numeric_leaves() -> dict[str, tuple[type, TypeAdapter]]:
    """Every number of the parameters by dotted path: its type (float or int) and the check of
    its domain, the file's own (probabilities in [0, 1], rates, scales, shapes and hazard ratios
    > 0, finite)."""
    leaves: dict[str, tuple[type, TypeAdapter]] = {}

    def walk(kind, prefix: str) -> None:
        for name, hint in typing.get_type_hints(kind, include_extras=True).items():
            if name.startswith("__"):
                continue
            base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
            if dataclasses.is_dataclass(base):
                walk(base, f"{prefix}{name}.")
            elif base in (int, float):
                leaves[f"{prefix}{name}"] = (base, TypeAdapter(hint))
    walk(Params, "")
    return leaves


def _checked_value(path, value) -> float | int:
    """`value` for the parameter `path`, within its domain; one line naming the key if not."""
    leaves = numeric_leaves()
    if path not in leaves:
        near = difflib.get_close_matches(str(path), list(leaves), n=1, cutoff=0.0)
        raise InputError(f"values: {path!r}: not a numeric parameter; the nearest is "
                         f"{near[0]!r} (the dotted paths of docs/inputs.md)")
    base, adapter = leaves[path]
    integral = base is int
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or (integral and not float(value).is_integer())):    # 4.0 is 4; 2.5 is no count
        kind = "an integer" if integral else "a number"
        raise ArgumentTypeError(f"values: {path}: must be {kind} (got {value!r}, "
                                f"{type(value).__name__})")
    try:
        return adapter.validate_python(int(value) if integral else float(value))
    except ValidationError as error:
        message = error.errors(include_url=False)[0]["msg"]
        raise InputError(f"values: {path}: {message} (got {value!r})") from None


def with_values(params: Params, values: Mapping[str, float]) -> Params:
    """A copy of `params` with the given dotted paths (``"recurrence.theta_liver"``) replaced,
    each value checked against its parameter's domain (as in a parameter file); the frozen
    dataclasses are rebuilt along the paths, each once, the original is untouched."""
    if not isinstance(params, Params):
        raise ArgumentTypeError(f"params: must be a Params (sim.load_params()); got "
                        f"{type(params).__name__}")
    if not isinstance(values, Mapping):
        raise ArgumentTypeError(f"values: must be a mapping of dotted parameter paths to numbers, "
                        f"such as {{'growth.doubling_time_median_months': 3.0}}; got "
                        f"{type(values).__name__}")
    tree: dict = {}
    for path, value in values.items():
        checked = _checked_value(path, value)
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = checked

    def replace(node, updates: dict):
        return dataclasses.replace(node, **{
            name: replace(getattr(node, name), value) if isinstance(value, dict) else value
            for name, value in updates.items()})

    try:
        return replace(params, tree)
    except ValueError as error:     # a rule between values (`Cohort.__post_init__`)
        raise InputError(f"values: {', '.join(values)}: {error}") from None
