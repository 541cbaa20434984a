"""A surveillance policy: phases of visits, what each visit examines, and how well.

One TOML file per policy (`scenarios/`). A visit schedule restarts at the hepatectomy and again at
each curative-intent repeat operation. The engine sees a `Policy` as arrays: visit times, and per
visit the chance of finding disease at each site (imaging) or in the patient (markers).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim._toml import validate_file
from sim.limits import MAX_VISITS
from sim.model.params import Sourced
from sim.model.streams import VISIT_MONTHS

__all__ = ["Policy", "load_policy", "SITES"]

SITES = ("pelvis", "liver", "lung", "other")
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _SourcedProbability(Sourced):
    value: Annotated[float, Field(ge=0.0, le=1.0, strict=True, allow_inf_nan=False)]


class _SourcedAmount(Sourced):
    value: Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]


class _Sensitivity(BaseModel):
    model_config = _STRICT
    pelvis: _SourcedProbability | None = None
    liver: _SourcedProbability | None = None
    lung: _SourcedProbability | None = None
    other: _SourcedProbability | None = None
    patient: _SourcedProbability | None = None


class _Modality(BaseModel):
    model_config = _STRICT
    label: str = ""
    per_patient: bool = False
    sensitivity: _Sensitivity
    specificity: _SourcedProbability | None = None   # absent: no false positives
    cost: _SourcedAmount | None = None               # per examination

    @model_validator(mode="after")
    def _sensitivity_matches_kind(self) -> "_Modality":
        if self.per_patient and self.sensitivity.patient is None:
            raise ValueError("a per_patient modality needs sensitivity.patient")
        if not self.per_patient and self.sensitivity.patient is not None:
            raise ValueError("sensitivity.patient is only for per_patient = true")
        return self


class _Capacity(BaseModel):
    """Slots per week of one department (the patients of one chunk share it)."""

    model_config = _STRICT
    imaging_slots_per_week: Annotated[float, Field(gt=0.0)] | None = None
    operating_slots_per_week: Annotated[float, Field(gt=0.0)] | None = None
    source: str = ""


class _Phase(BaseModel):
    model_config = _STRICT
    from_months: Annotated[float, Field(ge=0.0)]
    to_months: Annotated[float, Field(gt=0.0, le=VISIT_MONTHS)]
    interval_months: Annotated[float, Field(gt=0.0)]
    modalities: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> "_Phase":
        if self.to_months <= self.from_months:
            raise ValueError("to_months must be greater than from_months")
        return self


class _PolicyFile(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    adherence: _SourcedProbability
    workup_cost: _SourcedAmount | None = None   # per work-up of a positive result
    currency: str = "USD"                       # of every cost in the file
    price_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    capacity: _Capacity | None = None
    phase: list[_Phase] = Field(default_factory=list)
    modality: dict[str, _Modality] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounded_schedule(self) -> "_PolicyFile":
        visits = {round(p.from_months + step * p.interval_months, 9) for p in self.phase
                  for step in range(1, min(int((p.to_months - p.from_months) / p.interval_months
                                               + 1e-9), MAX_VISITS + 1) + 1)}
        if len(visits) > MAX_VISITS:
            raise ValueError(f"phase: at most {MAX_VISITS} scheduled visits (one every two weeks "
                             f"for 20 years); this schedule has more (see interval_months)")
        return self

    @model_validator(mode="after")
    def _known_modalities(self) -> "_PolicyFile":
        for number, phase in enumerate(self.phase):
            for name in phase.modalities:
                if name not in self.modality:
                    allowed = ", ".join(sorted(self.modality)) or "none defined"
                    raise ValueError(f"phase {number}: unknown modality {name!r} (defined: {allowed})")
        return self


@dataclass(frozen=True)
class Policy:
    """Visit schedule as arrays, relative to the start of a disease-free interval.

    `visit_months[j]` is the j-th visit; `site_sensitivity[j, s]` the chance that visit j finds
    disease present at site s (imaging modalities combined); `patient_sensitivity[j]` the chance
    that a marker at visit j is positive when disease is present; `specificity[j]` the chance
    that visit j is negative without disease; `modalities[j]` its label. `uses[k, j]` says whether
    visit j includes modality `modality_names[k]`, which costs `modality_cost[k]`.
    """

    name: str
    description: str
    adherence: float
    visit_months: np.ndarray
    site_sensitivity: np.ndarray
    patient_sensitivity: np.ndarray
    modalities: tuple[str, ...]
    sources: dict
    specificity: np.ndarray = field(default_factory=lambda: np.ones(0))
    modality_names: tuple[str, ...] = ()
    uses: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    modality_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    workup_cost: float = 0.0
    imaging_slots_per_week: float | None = None
    operating_slots_per_week: float | None = None
    imaging: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # not a blood marker
    schedule: tuple = ()   # the phases as written: (from, to, interval, modality labels); for reports
    currency: str = "USD"  # of the costs, as the file states it
    price_year: int | None = None

    @property
    def n_visits(self) -> int:
        return len(self.visit_months)

    @property
    def visit_month_index(self) -> np.ndarray:
        """The month (0..239) that keys each visit's attendance and false-positive draws."""
        return np.minimum(np.floor(self.visit_months + 1e-9).astype(int), VISIT_MONTHS - 1)

    def digest(self) -> str:
        """A short hash of everything that decides a run's result (not the sources): two policy
        files that differ in any schedule, accuracy, cost or capacity differ here."""
        fields = {name: (value.tolist() if isinstance(value, np.ndarray) else value)
                  for name, value in vars(self).items()
                  if name not in ("sources", "description", "schedule", "currency", "price_year")}
        blob = json.dumps(fields, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def cost_unit(self) -> str:
        """The currency and price year of the policy's costs, in words."""
        year = f"{self.price_year} prices" if self.price_year else "price year not stated"
        return f"{self.currency}, {year}"

    @property
    def has_capacity(self) -> bool:
        return self.imaging_slots_per_week is not None or self.operating_slots_per_week is not None


def _build(spec: _PolicyFile) -> Policy:
    visits: dict[float, set[str]] = {}
    for phase in spec.phase:
        count = int(np.floor((phase.to_months - phase.from_months) / phase.interval_months + 1e-9))
        for step in range(1, count + 1):
            time = round(phase.from_months + step * phase.interval_months, 9)
            if time <= phase.to_months:
                visits.setdefault(time, set()).update(phase.modalities)
    times = np.array(sorted(visits), dtype=float)
    site_miss = np.ones((len(times), len(SITES)))
    patient_miss = np.ones(len(times))
    specificity = np.ones(len(times))
    modality_names = tuple(sorted(spec.modality))
    uses = np.zeros((len(modality_names), len(times)), bool)
    labels = []
    for j, time in enumerate(times):
        names = sorted(visits[time])
        labels.append("+".join(names))
        for name in names:
            modality = spec.modality[name]
            uses[modality_names.index(name), j] = True
            if modality.specificity is not None:
                specificity[j] *= modality.specificity.value
            if modality.per_patient:
                patient_miss[j] *= 1.0 - modality.sensitivity.patient.value
                continue
            for s, site in enumerate(SITES):
                leaf = getattr(modality.sensitivity, site)
                site_miss[j, s] *= 1.0 - (leaf.value if leaf is not None else 0.0)
    sources = {"adherence": spec.adherence.source}
    for name, modality in spec.modality.items():
        for site, leaf in modality.sensitivity:
            if leaf is not None:
                sources[f"modality.{name}.sensitivity.{site}"] = leaf.source
        for what in ("specificity", "cost"):
            if getattr(modality, what) is not None:
                sources[f"modality.{name}.{what}"] = getattr(modality, what).source
    cost = np.array([spec.modality[n].cost.value if spec.modality[n].cost else 0.0
                     for n in modality_names])
    imaging = np.array([not spec.modality[n].per_patient for n in modality_names], bool)
    capacity = spec.capacity or _Capacity()
    schedule = tuple((p.from_months, p.to_months, p.interval_months,
                      tuple(spec.modality[m].label or m for m in p.modalities)) for p in spec.phase)
    return Policy(spec.name, spec.description, spec.adherence.value, times, 1.0 - site_miss,
                  1.0 - patient_miss, tuple(labels), sources, specificity, modality_names, uses,
                  cost, spec.workup_cost.value if spec.workup_cost else 0.0,
                  capacity.imaging_slots_per_week, capacity.operating_slots_per_week, imaging,
                  schedule, spec.currency, spec.price_year)


def load_policy(path: str | Path) -> Policy:
    """Read and check a policy file; an error is one line naming the field."""
    path = Path(path)
    spec = validate_file(path, _PolicyFile)
    return _build(spec)
