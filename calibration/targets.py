"""The study's reported figures as calibration targets: load and validate `targets.toml`.

`load_targets()` reads the packaged `calibration/targets.toml` (or a given path) into frozen
`Target` objects and raises `ValueError` with one line naming the entry and the field when an
entry is malformed. `study_standard_error()` and `log_hr_standard_error()` give the sampling
spread at the study's size that weights each figure's miss in the calibration (see the `[about]`
table of the file).
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ESTIMATOR_FIELDS",
    "PROPORTION_ESTIMATORS",
    "Target",
    "load_targets",
    "log_hr_standard_error",
    "study_standard_error",
]

Use = Literal["fit", "check", "composition", "withheld", "excluded"]
Estimator = Literal[
    "km",
    "km_from",
    "one_minus_km_site",
    "crude_share",
    "share_among",
    "composition",
    "km_median",
    "median",
    "quantile",
    "cox_univariate",
]
Section = Literal[
    "abstract",
    "clinicopathological characteristics",
    "patterns of recurrence and disease-free survival",
    "overall survival",
    "surgery for recurrent disease following hepatic metastectomy",
    "comment",
    "methods",
]

# The fields each estimator needs, besides value and n.
ESTIMATOR_FIELDS: dict[str, tuple[str, ...]] = {
    "km": ("duration", "event", "at_months"),
    "km_from": ("duration", "event", "origin", "at_months"),
    "one_minus_km_site": ("site", "at_months"),
    "crude_share": ("column",),
    "share_among": ("column", "among"),
    "composition": ("column",),
    "km_median": ("duration", "event"),
    "median": ("column",),
    "quantile": ("column", "quantile"),
    "cox_univariate": ("endpoint", "covariate", "lo", "hi"),
}

# Estimators whose value is a proportion in [0, 1].
PROPORTION_ESTIMATORS = frozenset(
    {"km", "km_from", "one_minus_km_site", "crude_share", "share_among", "composition"}
)

_Z95_WIDTH = 3.92  # width of a 95% normal interval in standard errors (2 x 1.96)


class Target(BaseModel):
    """One reported figure of the study, how to estimate it, and where it comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str | None = None   # the figure in words, for reports
    use: Use
    group: Literal["rectum", "colon", "both"]
    quote: str = Field(min_length=1)
    section: Section
    estimator: Estimator | None = None
    value: float | None = None
    bound: Literal["lower", "upper"] | None = None
    count: int | None = Field(default=None, ge=0)
    n: int | None = Field(default=None, gt=0)
    duration: str | None = None
    event: str | None = None
    origin: str | None = None
    at_months: float | None = Field(default=None, gt=0)
    site: Literal["pelvis", "liver", "lung", "other"] | None = None
    column: str | None = None
    equals: str | None = None
    one_of: tuple[str, ...] | None = None
    includes: Literal["pelvis", "liver", "lung", "other"] | None = None
    where: str | None = None
    among: str | None = None
    quantile: float | None = Field(default=None, gt=0, lt=1)
    endpoint: Literal["os", "dfs", "pelvis", "liver"] | None = None
    covariate: str | None = None
    lo: float | None = Field(default=None, gt=0)
    hi: float | None = Field(default=None, gt=0)
    other_quotes: tuple[str, ...] = ()
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.use == "withheld":
            if self.value is not None:
                raise ValueError("field 'value': a withheld figure must not have a value")
        elif self.value is None:
            raise ValueError(f"field 'value': required when use = '{self.use}'")
        elif self.estimator is None:
            raise ValueError(f"field 'estimator': required when use = '{self.use}'")
        if self.use == "fit" and self.n is None:
            raise ValueError("field 'n': required when use = 'fit'")
        if self.estimator is not None:
            for name in ESTIMATOR_FIELDS[self.estimator]:
                if getattr(self, name) is None:
                    raise ValueError(
                        f"field '{name}': required by estimator '{self.estimator}'"
                    )
        if self.value is not None:
            if self.estimator in PROPORTION_ESTIMATORS and not 0 <= self.value <= 1:
                raise ValueError(
                    f"field 'value': a share must lie in [0, 1], got {self.value}"
                )
            if self.estimator == "cox_univariate" and not (
                self.lo <= self.value <= self.hi
            ):
                raise ValueError(
                    f"field 'value': the hazard ratio {self.value} lies outside its "
                    f"95% CI [{self.lo}, {self.hi}]"
                )
        if (self.lo is None) != (self.hi is None):
            raise ValueError("field 'lo': lo and hi go together")
        if self.lo is not None and self.estimator != "cox_univariate":
            raise ValueError("field 'lo': only a cox_univariate target has a CI")
        if self.count is not None:
            if self.n is None or self.count > self.n:
                raise ValueError(
                    f"field 'count': {self.count} needs a denominator n >= count, got n = {self.n}"
                )
            if self.value is not None and abs(self.value - self.count / self.n) > 5e-5:
                raise ValueError(
                    f"field 'value': expected count / n = {self.count / self.n:.4f}, "
                    f"got {self.value}"
                )
        return self


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if not loc:
        return msg
    if first["type"] == "missing":
        return f"field '{loc}': {msg}"
    return f"field '{loc}': {msg} (got {first['input']!r})"


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Read and validate the targets file (default: the packaged `calibration/targets.toml`).

    Raises ValueError with one line naming the file, the entry and the field when an entry is
    malformed, an id is repeated, or the file is not valid TOML.
    """
    if path is None:
        source = "calibration/targets.toml"
        raw = resources.files("calibration").joinpath("targets.toml").read_bytes()
    else:
        source = str(path)
        raw = Path(path).read_bytes()
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{source}: not valid TOML: {err}".replace("\n", " ")) from None
    unknown = sorted(set(data) - {"about", "target", "external"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key '{unknown[0]}' "
                         "(expected about, target, external)")
    entries = data.get("target", [])
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: field 'target': expected one or more [[target]] tables")
    targets: list[Target] = []
    first_seen: dict[str, int] = {}
    for i, entry in enumerate(entries, start=1):
        label = f"target #{i}" + (f" ('{entry['id']}')" if "id" in entry else "")
        try:
            target = Target.model_validate(entry)
        except ValidationError as err:
            raise ValueError(f"{source}: {label}: {_one_line(err)}") from None
        if target.id in first_seen:
            raise ValueError(
                f"{source}: {label}: field 'id': duplicate of target #{first_seen[target.id]}"
            )
        first_seen[target.id] = i
        targets.append(target)
    return targets


def study_standard_error(target: Target) -> float:
    """Sampling spread of a share or Kaplan-Meier figure at the study's size n.

    The binomial approximation sqrt(p (1 - p) / n) with p = value. For a Kaplan-Meier figure
    this is Greenwood's variance without censoring, so it understates the spread where many
    patients were censored before at_months (5-year figures with a median follow-up of 30.7
    months). Raises ValueError for other estimators (medians have no closed form without the
    event counts; hazard ratios: see log_hr_standard_error).
    """
    if target.estimator not in PROPORTION_ESTIMATORS:
        raise ValueError(
            f"target '{target.id}': estimator '{target.estimator}' has no binomial standard "
            f"error (only {', '.join(sorted(PROPORTION_ESTIMATORS))})"
        )
    if target.value is None or target.n is None:
        raise ValueError(f"target '{target.id}': needs value and n, got {target.value}, {target.n}")
    p = target.value
    return math.sqrt(p * (1.0 - p) / target.n)


def log_hr_standard_error(target: Target) -> float:
    """Standard error of ln(HR) from the reported 95% CI: (ln hi - ln lo) / 3.92."""
    if target.estimator != "cox_univariate" or target.lo is None or target.hi is None:
        raise ValueError(
            f"target '{target.id}': field 'lo': a hazard ratio with a 95% CI is needed, "
            f"got estimator '{target.estimator}'"
        )
    return (math.log(target.hi) - math.log(target.lo)) / _Z95_WIDTH
