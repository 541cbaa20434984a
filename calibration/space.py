"""The calibrated parameters: which, on what scale, within what bounds.

Each free parameter is a dotted path into `sim.model.params.Params`, searched on an unbounded scale:
log for rates, scales and hazard ratios, logit for probabilities, linear for log2 burdens.
Bounds are those of plausibility (a hazard ratio between 1/10 and 10, a probability in (0, 1)),
not of the answer. Everything not listed keeps its value from the parameter file: cohort composition (sampled as reported), the
perioperative course (reported directly), test accuracy, the doubling time and the spreads of the
burden levels (external sources or assumptions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.model.params import Params, with_values

__all__ = ["Dimension", "SPACE", "get", "with_values", "to_unbounded", "from_unbounded"]


@dataclass(frozen=True)
class Dimension:
    path: str          # e.g. "recurrence.theta_liver"
    scale: str         # "log", "logit" or "linear"
    lower: float
    upper: float


def _log(path, lower, upper):
    return Dimension(path, "log", lower, upper)


def _logit(path, lower=0.001, upper=0.999):
    return Dimension(path, "logit", lower, upper)


def _linear(path, lower, upper):
    return Dimension(path, "linear", lower, upper)


SPACE: tuple[Dimension, ...] = (
    _log("recurrence.onset_weibull_shape", 0.5, 5.0),
    _log("recurrence.onset_weibull_scale_months", 3.0, 120.0),
    _log("recurrence.theta_pelvis", 0.001, 3.0),
    _log("recurrence.theta_liver", 0.01, 3.0),
    _log("recurrence.theta_lung", 0.001, 3.0),
    _log("recurrence.theta_other", 0.001, 3.0),
    _logit("recurrence.co_involvement_pelvis"),
    _logit("recurrence.co_involvement_liver"),
    _logit("recurrence.co_involvement_lung"),
    _logit("recurrence.co_involvement_other"),
    _log("recurrence.late_share", 0.001, 2.0),
    _log("recurrence.late_weibull_scale_months", 48.0, 240.0),
    _log("recurrence.spread_rate_per_month", 0.0005, 0.2),
    _linear("growth.symptom_log2_burden_mean", -2.0, 10.0),
    _linear("growth.resectable_log2_burden_mean", -3.0, 10.0),
    _logit("detection.marker_producing_share", 0.3, 0.999),
    _log("recurrence.rerecurrence_theta_multiplier", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.era_pre1994", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.tumor_gt_5cm", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.margin_positive", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.rfa", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.n2", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.cea_gt_200", 0.1, 10.0),
    _log("recurrence.hazard_ratio_all_sites.colon_primary", 0.1, 10.0),
    _log("recurrence.hazard_ratio_pelvis.cea_gt_200", 0.1, 10.0),
    _log("recurrence.hazard_ratio_pelvis.apr", 0.1, 10.0),
    _log("recurrence.hazard_ratio_pelvis.era_pre1994", 0.1, 10.0),
    _log("recurrence.hazard_ratio_pelvis.chemoradiation", 0.05, 10.0),
    _log("recurrence.hazard_ratio_liver.less_than_hemihepatectomy", 0.1, 10.0),
    _log("recurrence.hazard_ratio_liver.margin_positive", 0.1, 10.0),
    _log("recurrence.hazard_ratio_liver.rfa", 0.1, 10.0),
    _logit("treatment.curative_prob_if_resectable"),
    _logit("treatment.other_procedure_prob"),
    _log("cancer_death.weibull_shape", 0.5, 6.0),
    _log("cancer_death.weibull_scale_months", 3.0, 200.0),
    _log("cancer_death.hazard_ratio.multiple_sites", 0.2, 20.0),
    _log("cancer_death.hazard_ratio.cea_gt_200", 0.2, 20.0),
    _log("cancer_death.hazard_ratio.n2", 0.2, 20.0),
    _log("cancer_death.hazard_ratio.era_pre1994", 0.2, 5.0),
    _log("study.loss_to_follow_up_rate_per_month", 1e-5, 0.05),
)


def get(params: Params, path: str) -> float:
    node = params
    for part in path.split("."):
        node = getattr(node, part)
    return float(node)


def to_unbounded(values: np.ndarray, clip: bool = True) -> np.ndarray:
    """To the unbounded scale, after clipping to the bounds (unless `clip` is False)."""
    out = np.empty(len(SPACE))
    for i, (d, v) in enumerate(zip(SPACE, values)):
        v = min(max(v, d.lower), d.upper) if clip else v
        out[i] = (math.log(v) if d.scale == "log" else v if d.scale == "linear"
                  else math.log(v / (1 - v)))
    return out


def from_unbounded(x: np.ndarray, clip: bool = True) -> np.ndarray:
    """Back to the natural scale, clipped to the bounds (unless `clip` is False)."""
    out = np.empty(len(SPACE))
    for i, (d, u) in enumerate(zip(SPACE, x)):
        v = (math.exp(u) if d.scale == "log" else u if d.scale == "linear"
             else 1 / (1 + math.exp(-u)))
        out[i] = min(max(v, d.lower), d.upper) if clip else v
    return out
