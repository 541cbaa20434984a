"""Power and sample size by simulation, checked against the analytic formulas.

A design file (``scenarios/power/*.toml``: ``exponential``, ``trial`` or ``cohort``) is loaded and
checked (:func:`load_design`), replicate trials are simulated on the executor layer
(:func:`simulate_replicates`), every replicate is analysed as planned in one vectorized
`sim.analysis` call per sample size (:func:`power_curve`), and the curve is written
(:func:`write_report`). The formulas (Schoenfeld, Freedman, two proportions) are in
:mod:`sim.power.formulas`.
"""

from sim.power.cli import register_power
from sim.power.curve import PowerCurve, crossing, power_curve, wilson_interval
from sim.power.designs import CohortDesign, Design, ExponentialDesign, TrialDesign, load_design
from sim.power.formulas import (
    event_probability_exponential,
    freedman_events,
    freedman_power,
    normal_power,
    sample_size,
    schoenfeld_events,
    schoenfeld_power,
    two_proportion_power,
)
from sim.power.report import write_report
from sim.power.simulate import Replicates, simulate_replicates

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
    "write_report",
    "register_power",
    "schoenfeld_power",
    "schoenfeld_events",
    "freedman_power",
    "freedman_events",
    "two_proportion_power",
    "normal_power",
    "event_probability_exponential",
    "sample_size",
]
