"""The natural history that holds beyond the study: growing disease, death only after it has
presented, lead time that buys no life without curative treatment, size-dependent tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT, simulate
from sim.model.detection import sensitivity_at, visit_hazard
from sim.model.natural_history import log2_burden, time_to_burden
from sim.model.params import with_values
from sim.model.policy import load_policy

SCENARIOS = ROOT / "scenarios"
POLICIES = ("symptoms-only.toml", "cea-only.toml", "yearly.toml", "baseline.toml",
            "intensive.toml", "trials/facs-minimum.toml", "trials/facs-cea.toml",
            "trials/facs-ct.toml", "trials/facs-cea-ct.toml", "baseline-capacity.toml")
_sites = st.lists(st.one_of(st.floats(0.0, 120.0), st.just(math.inf)), min_size=4, max_size=4)


@pytest.mark.parametrize("name", POLICIES)
def test_no_cancer_death_without_a_diagnosed_recurrence_before_it(params, name):
    _, events = simulate(params, load_policy(SCENARIOS / name), n=1500, seed=11, primary="both",
                         years=20)
    e = events.to_pandas()
    e["event"], e["detail"] = e["event"].astype(str), e["detail"].astype(str)
    deaths = e[(e.event == "death") & (e.detail == "cancer")].set_index("patient_id").time_months
    assert len(deaths) > 100
    first = e[e.event == "detection"].groupby("patient_id").time_months.min()
    diagnosed = first.reindex(deaths.index)
    assert diagnosed.notna().all()
    assert (diagnosed < deaths).all()


def test_earlier_detection_without_curative_surgery_changes_no_death(params):
    """Lead time alone does not lengthen life: with curative surgery switched off, intensive
    follow-up and symptoms-only give every patient the same death time and cause."""
    off = with_values(params, {"treatment.curative_prob_if_resectable": 0.0})
    runs = [simulate(off, load_policy(SCENARIOS / name), n=2000, seed=3, primary="both",
                     years=20)[0].to_pandas() for name in ("symptoms-only.toml", "intensive.toml")]
    late, early = runs
    assert (early.recurrence_months <= late.recurrence_months + 1e-9).sum() == late.recurrence.sum()
    assert (early.recurrence_months < late.recurrence_months).sum() > 200   # lead time exists
    assert np.array_equal(early.os_months.to_numpy(), late.os_months.to_numpy())
    assert (early.death_cause.astype(str) == late.death_cause.astype(str)).all()


@given(_sites, st.floats(0.3, 30.0), st.lists(st.floats(0.0, 240.0), min_size=2, max_size=12))
def test_burden_never_decreases_on_its_own(params, involved, doubling, times):
    times = np.sort(np.array(times))[None, :]
    burden = log2_burden(times, np.array([involved]), np.array([doubling]), params)[0]
    assert np.all(burden[1:] >= burden[:-1])


@given(_sites, st.floats(0.3, 30.0), st.floats(-4.0, 12.0))
def test_the_burden_reaches_its_level_at_the_time_found(params, involved, doubling, level):
    """time_to_burden inverts log2_burden: at the time found the level is reached, just before
    it is not (the burden jumps when a site joins)."""
    at = time_to_burden(np.array([level]), np.array([involved]), np.array([doubling]), params)[0]
    if not any(math.isfinite(t) for t in involved):
        assert math.isinf(at)
        return
    here = log2_burden(np.array([[at, at - 1e-7]]), np.array([involved]), np.array([doubling]),
                       params)[0]
    assert here[0] >= level - 1e-9
    assert at == min(t for t in involved if math.isfinite(t)) or here[1] < level + 1e-6


@given(st.floats(0.0, 0.999), st.lists(st.floats(0.1, 200.0), min_size=2, max_size=10),
       st.floats(0.5, 4.0))
def test_sensitivity_never_falls_as_the_lesion_grows(reference, diameters, exponent):
    values = sensitivity_at(reference, np.sort(diameters), exponent)
    assert np.all(np.diff(values) >= -1e-15)
    assert sensitivity_at(reference, 10.0, exponent) == pytest.approx(reference, abs=1e-12)


@given(_sites, st.floats(0.3, 30.0), st.booleans(),
       st.lists(st.floats(0.0, 240.0), min_size=2, max_size=12))
def test_a_visit_finds_growing_disease_no_less_often(params, involved, doubling, producer, times):
    policy = load_policy(SCENARIOS / "baseline.toml")
    times = np.sort(np.array(times))
    k = len(times)   # the same examinations of one episode, held later and later
    hazard = visit_hazard(times, np.zeros(k, int), np.tile(involved, (k, 1)), np.full(k, doubling),
                          np.full(k, producer), policy, params)
    assert np.all(hazard[1:] >= hazard[:-1])


def test_a_marker_never_finds_a_recurrence_that_does_not_produce_it(params):
    policy = load_policy(SCENARIOS / "cea-only.toml")
    involved = np.tile([0.0, 0.0, np.inf, np.inf], (3, 1))
    times = np.array([3.0, 30.0, 60.0])
    silent = visit_hazard(times, np.arange(3), involved, np.full(3, 3.0), np.zeros(3, bool),
                          policy, params)
    producing = visit_hazard(times, np.arange(3), involved, np.full(3, 3.0), np.ones(3, bool),
                             policy, params)
    assert np.all(silent == 0) and np.all(np.diff(producing) > 0)
