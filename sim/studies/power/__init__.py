"""Power and sample size by simulation, checked against the analytic formulas.

A design file (``scenarios/power/*.toml``: ``exponential``, ``trial`` or ``cohort``) is loaded and
checked (:func:`load_design`), replicate trials are simulated on the executor layer
(:func:`simulate_replicates`), every replicate is analysed as planned in one vectorized
`sim.analysis` call per sample size (:func:`power_curve`); `sim.reports.power` writes the curve. The formulas (Schoenfeld, Freedman, two proportions) are in
:mod:`sim.studies.power.formulas`.
"""

from sim.studies.power.curve import PowerCurve, crossing, power_curve, wilson_interval
from sim.studies.power.designs import CohortDesign, Design, ExponentialDesign, TrialDesign, load_design
from sim.studies.power.formulas import (
    event_probability_exponential,
    freedman_events,
    freedman_power,
    normal_power,
    sample_size,
    schoenfeld_events,
    schoenfeld_power,
    two_proportion_power,
)
from sim.studies.power.simulate import Replicates, simulate_replicates

__all__ = [
    "load_design",
    "Design",
    "ExponentialDesign",
    "TrialDesign",
    "CohortDesign",
    "simulate_replicates",
    "Replicates",
    "power_curve",
    "PowerCurve",
    "wilson_interval",
    "crossing",
    "schoenfeld_power",
    "schoenfeld_events",
    "freedman_power",
    "freedman_events",
    "two_proportion_power",
    "normal_power",
    "event_probability_exponential",
    "sample_size",
]
