"""Deterministic sensitivity analysis of an economic comparison: one-way, two-way and threshold.

One base-case cohort (the fitted point estimate of the natural history, `patients` patients
under every policy, common random numbers, the comparison's horizon) is simulated once and its
courses kept (`sim.studies.economics.course_of`); every analysis below prices the same courses
again with other inputs (`sim.studies.economics.price`), as dampack's ``owsa``, ``twsa`` and
threshold analyses re-run a deterministic model:

- `base`: each policy's mean cost, life-years, QALYs and net benefit at the file's means, with
  its difference from the reference and the difference's Monte Carlo standard error (paired per
  patient);
- `one_way`: every input of the file that changes a net benefit, at the low and the high end of
  its interval (`Input.low`, `Input.high`: the file's range, else the 2.5th and 97.5th
  percentiles of its distribution), the incremental net benefit of each policy against the
  reference at each threshold (a tornado diagram ranks inputs by the width of that swing);
- `two_way`: the two inputs of the widest swing, each over its interval on a grid, the
  incremental net benefit and the best policy at the first threshold;
- `thresholds`: for the inputs of the widest swings (and the CT price and the utility of
  recurrence), the value at which the decision at each threshold changes, where one exists
  in the input's domain (costs and durations 0 to 20 times the mean, shares and utilities
  0 to 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from sim.engine.draws import SharedDraws
from sim.execution.runner import CohortSpec, prepare_cohort, simulate_priced
from sim.model.params import Params
from sim.studies.economics import Course, STRUCTURES, course_of, price

__all__ = ["SensitivityTables", "sensitivity", "base_courses", "Priced", "THRESHOLD_INPUTS"]

THRESHOLD_INPUTS = ("test.ct_cap", "utility.recurrence")
"""Inputs whose threshold value is always reported (besides the widest swings)."""
TOP = 6
"""Inputs of the widest swings given a threshold analysis."""
GRID = 9
"""Points per input of the two-way analysis."""


@dataclass(frozen=True)
class SensitivityTables:
    """The deterministic analyses' frames (see the module's docstring) and the base-case cohort's
    size."""

    base: pd.DataFrame
    one_way: pd.DataFrame
    two_way: pd.DataFrame
    thresholds: pd.DataFrame
    patients: int


class Priced:
    """The base-case courses of every policy, priced on demand: `net(values)` is the (threshold,
    policy) matrix of mean net benefits."""

    def __init__(self, courses: dict[str, list[Course]], modalities: dict[str, list[str]],
                 economics, structure=STRUCTURES[0]):
        self.courses, self.modalities, self.economics = courses, modalities, economics
        self.structure = structure
        self.names = list(courses)
        self.thresholds = np.asarray(economics.thresholds, float)

    def columns(self, values: dict[str, float]) -> dict[str, dict[str, np.ndarray]]:
        """Every policy's patients' priced columns (chunks joined)."""
        out = {}
        for name, courses in self.courses.items():
            parts = [price(c, values, self.economics, self.modalities[name], self.structure)
                     for c in courses]
            out[name] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return out

    def means(self, values: dict[str, float]) -> pd.DataFrame:
        rows = []
        for name, columns in self.columns(values).items():
            cost = columns["cost_surveillance"] + columns["cost_treatment"]
            rows.append({"policy": name, "cost_total": cost.mean(),
                         "life_years": columns["life_years"].mean(),
                         "qalys": columns["qalys"].mean()})
        return pd.DataFrame(rows).set_index("policy")

    def net(self, values: dict[str, float]) -> np.ndarray:
        means = self.means(values)
        return (self.thresholds[:, None] * means["qalys"].to_numpy()[None]
                - means["cost_total"].to_numpy()[None])


def base_courses(params: Params, policies, economics, patients: int, seed: int, primary: str,
                 years, chunk: int = 50_000) -> dict[str, list[Course]]:
    """The base-case cohort's courses under every policy (the same patients: common random
    numbers), chunk by chunk."""
    lifetime = years == "lifetime"
    spec = CohortSpec(patients, seed, "lifetime" if lifetime else "horizon", primary,
                      10.0 if lifetime else float(years), replicate=999_999)
    courses = {p.name: [] for p in policies}
    for first in range(0, patients, chunk):
        count = min(chunk, patients - first)
        prepared = prepare_cohort(spec, params, first, count, 0.0)
        shared = SharedDraws()
        for policy in policies:
            table, events, _, discounted = simulate_priced(
                spec, params, policy, first, count, 0.0, economics.discount_costs, prepared,
                shared)
            courses[policy.name].append(course_of(
                table.select(["patient_id", "age_years", "sex", "first_symptom_months"])
                .to_pandas(), events.to_pandas(), discounted))
    return courses


def _domain(item) -> tuple[float, float]:
    if item.distribution == "beta" or item.name.startswith(("utility.", "probability.")):
        return 1e-6, 1.0 - 1e-6
    return 0.0, 20.0 * item.value


def sensitivity(priced: Priced, reference: str) -> SensitivityTables:
    """The deterministic analyses of the base-case courses (`Priced`) against `reference`."""
    economics = priced.economics
    means = economics.means
    names, thresholds = priced.names, priced.thresholds
    ref = names.index(reference)
    columns = priced.columns(means)
    base_rows = []
    ref_cost = columns[reference]["cost_surveillance"] + columns[reference]["cost_treatment"]
    for name in names:
        cost = columns[name]["cost_surveillance"] + columns[name]["cost_treatment"]
        qalys, life_years = columns[name]["qalys"], columns[name]["life_years"]
        row = {"policy": name, "cost_total": cost.mean(), "life_years": life_years.mean(),
               "qalys": qalys.mean(), "cost_difference": (cost - ref_cost).mean(),
               "qalys_difference": (qalys - columns[reference]["qalys"]).mean(),
               "life_years_difference": (life_years - columns[reference]["life_years"]).mean()}
        for t in thresholds:
            paired = t * (qalys - columns[reference]["qalys"]) - (cost - ref_cost)
            row[f"net_benefit_difference_at_{t:.0f}"] = paired.mean()
            row[f"net_benefit_difference_at_{t:.0f}_mcse"] = paired.std(ddof=1) / np.sqrt(
                len(paired))
        base_rows.append(row)
    base = pd.DataFrame(base_rows)

    varied = [item for name, item in economics.inputs.items()
              if not name.startswith("trial.") and item.high > item.low]
    base_net = priced.net(means)
    one_way = []
    for item in varied:
        row_sets = {}
        for end, value in (("low", item.low), ("high", item.high)):
            row_sets[end] = priced.net(means | {item.name: value})
        for p, name in enumerate(names):
            if p == ref:
                continue
            for t, threshold in enumerate(thresholds):
                one_way.append({
                    "input": item.name, "evidence": item.evidence, "policy": name,
                    "wtp": threshold, "low": item.low, "high": item.high, "base": item.value,
                    "net_benefit_difference_low": row_sets["low"][t, p] - row_sets["low"][t, ref],
                    "net_benefit_difference_high": (row_sets["high"][t, p]
                                                    - row_sets["high"][t, ref]),
                    "net_benefit_difference_base": base_net[t, p] - base_net[t, ref]})
    one_way = pd.DataFrame(one_way)
    if len(one_way):
        one_way["swing"] = (one_way["net_benefit_difference_high"]
                            - one_way["net_benefit_difference_low"]).abs()
        one_way = one_way.sort_values(["policy", "wtp", "swing"], ascending=[True, True, False],
                                      ignore_index=True)
    first = one_way[one_way["wtp"] == thresholds[0]] if len(one_way) else one_way
    ranked = list(dict.fromkeys(first["input"])) if len(first) else []

    two_way = pd.DataFrame()
    if len(ranked) >= 2:
        a, b = (economics.inputs[k] for k in ranked[:2])
        rows = []
        for x in np.linspace(a.low, a.high, GRID):
            for y in np.linspace(b.low, b.high, GRID):
                net = priced.net(means | {a.name: x, b.name: y})[0]
                best = int(np.argmax(net))
                rows += [{"input_x": a.name, "x": x, "input_y": b.name, "y": y,
                          "wtp": thresholds[0], "policy": name,
                          "net_benefit_difference": net[p] - net[ref],
                          "best_policy": names[best]} for p, name in enumerate(names)
                         if p != ref]
        two_way = pd.DataFrame(rows)

    threshold_rows = []
    for key in dict.fromkeys([*ranked[:TOP], *[k for k in THRESHOLD_INPUTS
                                                if k in economics.inputs]]):
        item = economics.inputs[key]
        lo, hi = _domain(item)
        grid = np.linspace(lo, hi, 25)
        nets = np.array([priced.net(means | {key: x}) for x in grid])   # (x, wtp, policy)
        for t, threshold in enumerate(thresholds):
            for p, name in enumerate(names):
                if p == ref:
                    continue

                def difference(x, t=t, p=p):
                    net = priced.net(means | {key: x})
                    return net[t, p] - net[t, ref]

                values = nets[:, t, p] - nets[:, t, ref]
                change = np.flatnonzero(np.sign(values[:-1]) != np.sign(values[1:]))
                found = (brentq(difference, grid[change[0]], grid[change[0] + 1],
                                xtol=1e-9 * max(hi, 1.0)) if len(change) else np.nan)
                threshold_rows.append({
                    "input": key, "policy": name, "wtp": threshold, "base": item.value,
                    "domain_low": lo, "domain_high": hi, "threshold_value": found,
                    "net_benefit_difference_base": base_net[t, p] - base_net[t, ref],
                    "changes": len(change)})
    return SensitivityTables(base, one_way, two_way, pd.DataFrame(threshold_rows),
                             sum(len(c.end) for c in priced.courses[names[0]]))
