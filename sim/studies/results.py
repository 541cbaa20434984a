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

from sim.studies.comparison import Comparison
from sim.studies.decision import DecisionTables, decision_tables
from sim.studies.economics import priced_columns
from sim.studies.digest import digest
from sim.studies.summaries import departments, summarise

__all__ = ["ComparisonResult", "analyse"]


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

    def _decision(self, name: str) -> pd.DataFrame | None:
        return None if self.decision is None else getattr(self.decision, name)

    economics = property(lambda self: self._decision("economics"),
                         doc="Per policy: costs, life-years, QALYs, net benefit (None: unpriced).")
    icers = property(lambda self: self._decision("icers"),
                     doc="The incremental analysis: dominance, extended dominance, ICERs.")
    ceac = property(lambda self: self._decision("ceac"),
                    doc="Acceptability curves and frontier by willingness to pay.")
    evppi = property(lambda self: self._decision("evppi"),
                     doc='EVPI (group "all parameters (EVPI)") and EVPPI by group of parameters.')

    def tables(self) -> dict[str, pd.DataFrame]:
        """The frames a run writes, by file name."""
        frames = {"results.csv": self.summary, "results_by_draw.csv": self.per_draw,
                  "capacity.csv": self.capacity,
                  "capacity_by_quarter.csv": self.capacity_by_quarter}
        if self.decision is not None:
            d = self.decision
            frames |= {"economics.csv": d.economics, "economics_by_draw.csv": d.by_draw,
                       "icers.csv": d.icers, "ceac.csv": d.ceac, "evppi.csv": d.evppi}
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
    decision = None
    if economics is not None:
        decision = decision_tables(digested.means, order, comparison.reference, economics,
                                   prices, draws if draws > 1 else 0)
    return ComparisonResult(comparison.name, comparison.description, comparison.reference,
                            tuple(order), c.patients, c.primary, c.years, draws, summary,
                            per_draw.reset_index(), digested.survival, overall, quarters,
                            decision)
