"""The result of a comparison, in memory: every table the comparison writes, as pandas frames.

`analyse` turns a comparison's written units (`sim.studies.comparison.run_units`) into a
`ComparisonResult`: the digest of every (policy, draw) (`sim.studies.digest`), the summaries and
paired differences (`sim.studies.summaries`), the departments' waits and, with an economics
file, the decision analysis (`sim.studies.decision`). The CSV files of a run are these frames
as `ComparisonResult.csv_files` writes them; the report renders them (`sim.reports.comparison`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.execution.executor import LocalExecutor
from sim.model.params import load_params
from sim.studies.comparison import Comparison, draw_parameters
from sim.studies.decision import (ALL, INFORMED, DecisionTables, decision_tables, estimate_at,
                                  priced_arrays, value_points)
from sim.studies.evsi import TrialUnit, evsi_table, simulate_trials
from sim.studies.sensitivity import Priced, SensitivityTables, base_courses, sensitivity
from sim.studies.economics import priced_columns
from sim.studies.digest import digest
from sim.studies.summaries import departments, summarise

__all__ = ["ComparisonResult", "analyse", "value_of_information_violations"]


@dataclass(frozen=True)
class ComparisonResult:
    """A comparison of policies over the parameter draws.

    - `summary`: one row per policy, each metric's mean and 95% interval over the draws and its
      paired difference from the reference (`results.csv`);
    - `per_draw`: one row per (policy, draw) (`results_by_draw.csv`);
    - `survival`: overall survival of every (policy, draw) by month, 0 to 120;
    - `capacity`, `capacity_by_quarter`: the departments' waits and utilisation, for policies
      with a capacity (`capacity.csv`, `capacity_by_quarter.csv`);
    - `decision`: with an economics file, the decision analysis (`economics.csv`,
      `economics_by_draw.csv`, `icers.csv`, `ceac.csv`, `evppi.csv`), else None;
    - `sensitivity`: with an economics file, the deterministic analyses of a base-case cohort
      (`deterministic.csv`, `one_way.csv`, `two_way.csv`, `thresholds.csv`);
    - `evsi`, `evsi_checks`, `trials`: with a proposed trial (``[trial]``) and draws, the value
      of sample information by trial size and willingness to pay (`evsi.csv`, `evsi_checks.csv`)
      and each draw's simulated trial statistics (`trial_statistics.csv`);
    - `inputs`: the economics file's inputs with their distributions and sources (`inputs.csv`);
    - the comparison's facts: `name`, `description`, `reference`, `policies` (names, in the
      file's order), `patients` per policy and draw, `primary`, `years`, `draws` (1: the point
      estimate); and `out`, where the files are (None: not kept).
    """

    name: str
    description: str
    reference: str
    policies: tuple[str, ...]
    patients: int
    primary: str
    years: float
    draws: int
    summary: pd.DataFrame
    per_draw: pd.DataFrame
    survival: pd.DataFrame
    capacity: pd.DataFrame
    capacity_by_quarter: pd.DataFrame
    decision: DecisionTables | None = None
    out: Path | None = None
    sensitivity: SensitivityTables | None = None
    evsi: pd.DataFrame | None = None
    evsi_checks: pd.DataFrame | None = None
    inputs: pd.DataFrame | None = None
    trials: pd.DataFrame | None = None

    def _decision(self, name: str) -> pd.DataFrame | None:
        return None if self.decision is None else getattr(self.decision, name)

    economics = property(lambda self: self._decision("economics"),
                         doc="Per policy: costs, life-years, QALYs, net benefit (None: unpriced).")
    icers = property(lambda self: self._decision("icers"),
                     doc="The incremental analysis: dominance, extended dominance, ICERs.")
    ceac = property(lambda self: self._decision("ceac"),
                    doc="Acceptability curves and frontier by willingness to pay.")
    evppi = property(lambda self: self._decision("evppi"),
                     doc='EVPI (group "EVPI": each draw\'s net benefit; "all parameters": the '
                         'parameters\' alone) and EVPPI by group, with standard errors.')
    evppi_checks = property(lambda self: self._decision("evppi_checks"),
                            doc="Nested groups: the inner's EVPPI at most the outer's, within "
                                "2 standard errors.")

    structures = property(lambda self: self._decision("structures"),
                          doc="The base-case results under every structural scenario.")
    evppi_ranking = property(lambda self: self._decision("evppi_ranking"),
                             doc="EVPPI of every parameter alone, ranked at each value point.")
    monte_carlo_error = property(lambda self: self._decision("monte_carlo"),
                                 doc="Monte Carlo error of every incremental result.")

    def _sensitivity(self, name: str) -> pd.DataFrame | None:
        return None if self.sensitivity is None else getattr(self.sensitivity, name)

    deterministic = property(lambda self: self._sensitivity("base"),
                             doc="The deterministic base case (its cohort at the point estimate).")
    one_way = property(lambda self: self._sensitivity("one_way"),
                       doc="One-way analysis: every input at both ends of its interval.")
    two_way = property(lambda self: self._sensitivity("two_way"),
                       doc="Two-way analysis of the two inputs of the widest swing.")
    thresholds = property(lambda self: self._sensitivity("thresholds"),
                          doc="The input values at which the decision changes.")

    def tables(self) -> dict[str, pd.DataFrame]:
        """The frames a run writes, by file name."""
        frames = {"results.csv": self.summary, "results_by_draw.csv": self.per_draw,
                  "capacity.csv": self.capacity,
                  "capacity_by_quarter.csv": self.capacity_by_quarter}
        if self.decision is not None:
            d = self.decision
            frames |= {"economics.csv": d.economics, "economics_by_draw.csv": d.by_draw,
                       "icers.csv": d.icers, "ceac.csv": d.ceac, "evppi.csv": d.evppi,
                       "structures.csv": d.structures}
            if d.evppi_ranking is not None:
                frames["evppi_ranking.csv"] = d.evppi_ranking
            if d.monte_carlo is not None:
                frames["monte_carlo_error.csv"] = d.monte_carlo
            if d.evppi_checks is not None:
                frames["evppi_checks.csv"] = d.evppi_checks
        if self.inputs is not None:
            frames["inputs.csv"] = self.inputs
        if self.sensitivity is not None:
            s = self.sensitivity
            frames |= {"deterministic.csv": s.base, "one_way.csv": s.one_way,
                       "two_way.csv": s.two_way, "thresholds.csv": s.thresholds}
        if self.evsi is not None:
            frames |= {"evsi.csv": self.evsi, "evsi_checks.csv": self.evsi_checks,
                       "trial_statistics.csv": self.trials}
        return frames

    def csv_files(self) -> dict[str, bytes]:
        """The frames as the CSV files of a run (no index; floats as pandas writes them, which
        read back to the same values)."""
        return {name: frame.to_csv(index=False).encode() for name, frame in self.tables().items()}


def analyse(staging: Path, comparison: Comparison, prices: list[dict] | None = None,
            executor=None) -> ComparisonResult:
    """The result of the comparison whose units are written in `staging`; `prices`: each draw's
    priced parameters (with an economics file); `executor`: the digest's workers."""
    order = [policy.name for policy in comparison.policies]
    economics, u, c = comparison.economics, comparison.uncertainty, comparison.cohort
    draws = max(u.draws, 1)
    digested = digest(staging, priced_columns() if economics is not None else (),
                      executor=executor, reference=comparison.reference)
    summary, per_draw = summarise(digested.metrics, comparison.reference, order)
    overall, quarters = departments(staging)
    decision = sensitivity = value = checks = inputs = trials = None
    if economics is not None:
        decision = decision_tables(digested.means, order, comparison.reference, economics,
                                   prices, draws if draws > 1 else 0)
        sensitivity = _sensitivity(comparison)
        inputs = input_table(economics)
        if comparison.trial is not None and draws > 2:
            value, checks, trials = _sample_information(staging, comparison, decision, prices,
                                                        draws, executor)
    return ComparisonResult(comparison.name, comparison.description, comparison.reference,
                            tuple(order), c.patients, c.primary, c.years, draws, summary,
                            per_draw.reset_index(), digested.survival, overall, quarters,
                            decision, None, sensitivity, value, checks, inputs, trials)


def value_of_information_violations(checks: pd.DataFrame | None,
                                    evsi_checks: pd.DataFrame | None) -> list[str]:
    """Every check of the value of information that fails, one sentence each: a group's EVPPI
    above that of a group holding it (`checks`, `DecisionTables.evppi_checks`), an EVSI above
    the EVPPI of what the trial informs, or falling with n (`evsi_checks`), each by more than 2
    standard errors."""
    out = []
    if checks is not None:
        out += [f"at {r.wtp:,.0f} per QALY the EVPPI of {r.inner} ({r.inner_evppi:,.2f}) exceeds "
                f"that of {r.outer} ({r.outer_evppi:,.2f}) by more than 2 standard errors "
                f"({r.tolerance:,.2f})" for r in checks.itertuples() if not r.holds]
    if evsi_checks is not None:
        for r in evsi_checks.itertuples():
            for column, text in (("evsi_within_evppi", "EVSI exceeds the EVPPI of what the "
                                                       "trial informs"),
                                 ("evppi_within_evpi", "the EVPPI of what the trial informs "
                                                       "exceeds the parameters' EVPI"),
                                 ("evsi_non_negative", "an EVSI is negative"),
                                 ("evsi_grows_with_n", "EVSI falls with the trial's size")):
                if not getattr(r, column):
                    out.append(f"at {r.wtp:,.0f} per QALY {text}, by more than 2 standard errors")
    return out


def input_table(economics) -> pd.DataFrame:
    """The economics file's inputs: value, distribution and its parameters, one-way interval,
    evidence, source, price year and conversion."""
    return pd.DataFrame([{
        "input": item.name, "value": item.value, "distribution": item.distribution,
        "se": item.se, "low": item.low, "high": item.high, "evidence": item.evidence,
        "source": item.source, "se_basis": item.se_basis, "price_year": item.price_year,
        "conversion": item.conversion} for item in economics.inputs.values()])


def _sensitivity(comparison: Comparison) -> SensitivityTables:
    params, _ = load_params()
    c = comparison.cohort
    courses = base_courses(params, comparison.policies, comparison.economics,
                           comparison.sensitivity.patients or c.patients,
                           comparison.uncertainty.seed,
                           c.primary, c.years)
    priced = Priced(courses, {p.name: p.modality_names for p in comparison.policies},
                    comparison.economics)
    return sensitivity(priced, comparison.reference)


def _sample_information(staging: Path, comparison: Comparison, decision: DecisionTables,
                        prices: list[dict], draws: int, executor):
    """The trial's EVSI by size and its checks, from each draw's simulated trial."""
    trial, economics = comparison.trial, comparison.economics
    by_name = {p.name: p for p in comparison.policies}
    units = [TrialUnit(d, params, by_name[trial.policies[0]], by_name[trial.policies[1]],
                       tuple(sorted(set(trial.per_arm))), trial.follow_up_years,
                       comparison.cohort.primary, comparison.uncertainty.seed, str(staging))
             for d, params in enumerate(draw_parameters(draws))]
    statistics = simulate_trials(units, staging, executor or LocalExecutor(1))
    thresholds = value_points(economics)
    cost, qalys = priced_arrays(decision.by_draw.set_index(["scenario_id", "draw"]),
                                list(decision.economics["policy"]))
    informed = [estimate_at(decision.evppi, INFORMED, w) for w in thresholds]
    perfect = [estimate_at(decision.evppi, ALL, w) for w in thresholds]
    means = economics.means
    table, checks = evsi_table(cost, qalys, thresholds, statistics, decision.population,
                               means["trial.fixed"], means["trial.per_patient"], informed, perfect)
    table.insert(0, "control", trial.policies[0])
    table.insert(1, "experimental", trial.policies[1])
    table.insert(2, "follow_up_years", trial.follow_up_years)
    return table, checks, statistics
