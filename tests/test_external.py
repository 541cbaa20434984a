"""External targets: their spreads come from the published counts, their estimators do what the
acceptance check does, and the installed model holds them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calibration.external import (FACS_ARMS, ExternalDesign, external_figures,
                                  load_external_targets, simulate_external)


def test_spreads_are_derived_from_the_published_counts():
    targets = {t.id: t for t in load_external_targets()}
    # the five rows: FACS is one row of three ratios, the structural row is a check
    assert len([t for t in targets.values() if t.use == "fit"]) == 6
    for t in targets.values():
        if t.scale == "level" and t.count is not None:
            assert t.value == pytest.approx(t.count / t.n, abs=0.01)   # Viganò: about 3 of 21
            p = t.value
            assert t.standard_error == pytest.approx(math.sqrt(p * (1 - p) / t.n), rel=0.01)
        if t.scale == "log":
            p1, p0 = t.count / t.n, t.reference_count / t.reference_n
            assert t.value == pytest.approx(p1 / p0, rel=0.05)   # the paper's rounded shares
            delta = math.sqrt((1 - p1) / t.count + (1 - p0) / t.reference_count)
            assert t.standard_error == pytest.approx(delta, rel=0.01)
    # Cochrane: 71% (95% CI 64% to 76%)
    assert targets["nicholson_cea_per_patient"].standard_error == pytest.approx(0.12 / 3.92, rel=0.02)


def _patients(**columns):
    n = len(next(iter(columns.values())))
    base = {"os_months": np.full(n, 240.0), "hepatectomy_date": np.full(n, "1990-06-01"),
            "periop_death": np.zeros(n, bool), "recurrence": np.zeros(n, bool),
            "recurrence_months": np.full(n, np.nan), "curative_reoperation_months": np.full(n, np.nan),
            "first_symptom_months": np.full(n, np.nan), "death_cause": np.full(n, "")}
    base.update(columns)
    return pd.DataFrame(base)


def test_figures_on_a_table_no_simulation_made():
    long = _patients(
        os_months=np.array([240.0, 100.0, 130.0, 50.0, 240.0, 240.0]),
        hepatectomy_date=np.array(["1990-01-01", "1988-01-01", "1994-12-31", "1986-01-01",
                                   "2000-01-01", "1984-06-01"]),
        periop_death=np.array([False, False, False, True, False, False]),
        recurrence=np.array([False, True, True, False, True, True]),
        recurrence_months=np.array([np.nan, 70.0, 30.0, np.nan, 190.0, 61.0]))
    # 1985-1994 without perioperative death: rows 0, 1, 2 -> alive at 120: rows 0 and 2
    # disease-free at 60 and alive: rows 0, 1, 4, 5 -> later recurrence by 180: rows 1 and 5
    minimum = _patients(curative_reoperation_months=np.array([10.0, np.nan, 60.0, np.nan]),
                        recurrence=np.array([True, True, True, False]),
                        death_cause=np.array(["cancer", "cancer", "", "background"]))
    arm = _patients(curative_reoperation_months=np.array([10.0, 20.0, 53.0, np.nan]),
                    recurrence=np.array([True, True, True, True]),
                    recurrence_months=np.array([8.0, 18.0, 50.0, 70.0]),
                    first_symptom_months=np.array([20.0, 18.0, 60.0, 80.0]))
    arms = {name: arm for name in FACS_ARMS} | {"facs-minimum": minimum}
    figures = external_figures(long, arms)
    assert figures["tomlinson_os_120_1985_1994"] == pytest.approx(2 / 3)
    assert figures["vigano_late_recurrence"] == pytest.approx(2 / 4)
    assert figures["facs_curative_ratio_ct"] == pytest.approx((3 / 4) / (1 / 4))
    # diagnosed by month 53: rows 0, 1, 2; before symptoms: rows 0 and 2
    assert figures["nicholson_cea_per_patient"] == pytest.approx(2 / 3)
    assert figures["minimum_cancer_death_without_diagnosis"] == 0.0


@pytest.mark.slow
def test_the_installed_model_holds_the_published_figures(params):
    """Each external figure within 2.5 standard errors of the published value (the spread of
    the published figure; the simulated cohorts add a little of their own)."""
    figures = external_figures(*simulate_external(params, ExternalDesign(8000, 6000, seed=77)))
    for t in load_external_targets():
        assert abs(t.z(figures[t.id])) <= 2.5, (t.id, figures[t.id], t.value)
