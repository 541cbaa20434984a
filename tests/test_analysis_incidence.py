"""Aalen–Johansen cumulative incidence of sim.analysis against lifelines, Kaplan–Meier and loop
oracles."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifelines import AalenJohansenFitter

from sim.analysis import cumulative_incidence, cumulative_incidence_at, kaplan_meier

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def lifelines_aj(durations, event_type, cause):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a jitter warning would make the comparison moot
        fitter = AalenJohansenFitter(calculate_variance=True)
        return fitter.fit(durations, event_type, event_of_interest=cause)


def check_against_lifelines(rows, fitter):
    times = rows["time"].to_numpy()
    close(rows["cumulative_incidence"], fitter.cumulative_density_.iloc[:, 0].loc[times])
    variance = fitter.variance_.loc[times].to_numpy()
    # once everyone at risk has an event lifelines' variance is NaN (infinite weight times zero): skip
    defined = np.isfinite(variance)
    # compare variances: near 0 the square root turns rounding of the expanded sums into 1e-9 noise
    close(rows["se"].to_numpy()[defined] ** 2, variance[defined], atol=1e-15)
    bounds = fitter.confidence_interval_.loc[times].to_numpy()
    finite = defined & np.isfinite(bounds).all(axis=1)
    # lifelines labels its columns the other way round (its "upper" column holds the lower bound)
    close(rows["lower"].to_numpy()[finite], bounds.min(axis=1)[finite])
    close(rows["upper"].to_numpy()[finite], bounds.max(axis=1)[finite])


def rows_of(table, **labels):
    mask = np.ones(len(table), dtype=bool)
    for column, value in labels.items():
        mask &= table[column].to_numpy() == value
    return table[mask].reset_index(drop=True)


@st.composite
def untied_causes(draw, max_groups=3):
    """Event times distinct across causes (lifelines would jitter them), with ties within a cause and
    censoring at event times."""
    n = draw(st.integers(1, 40))
    slots = draw(st.lists(st.integers(1, 25), min_size=n, max_size=n))
    event_type = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    cause_of_slot = {}
    for i, slot in enumerate(slots):  # the first cause seen at a time owns it; others there are censored
        if event_type[i]:
            event_type[i] = cause_of_slot.setdefault(slot, event_type[i])
            if event_type[i] != cause_of_slot[slot]:
                event_type[i] = 0
    groups = np.array(draw(st.lists(st.integers(0, max_groups - 1), min_size=n, max_size=n)))
    return np.array(slots, dtype=float) / 2, event_type, groups


@st.composite
def tied_causes(draw, max_groups=3):
    n = draw(st.integers(1, 40))
    durations = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 1.5, 2.0, 4.0]), min_size=n, max_size=n)))
    event_type = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    groups = np.array(draw(st.lists(st.integers(0, max_groups - 1), min_size=n, max_size=n)))
    return durations, event_type, groups


@SETTINGS
@given(untied_causes())
def test_each_group_and_cause_equals_lifelines_without_ties_between_causes(data):
    durations, event_type, groups = data
    table = cumulative_incidence(durations, event_type, groups=groups)
    for g in np.unique(groups):
        mask = groups == g
        for cause in np.unique(event_type[event_type > 0]):
            fitter = lifelines_aj(durations[mask], event_type[mask], cause)
            check_against_lifelines(rows_of(table, group=g, cause=cause), fitter)


def test_equals_lifelines_on_a_larger_untied_cohort():
    rng = np.random.default_rng(20260102)
    durations = rng.permutation(np.arange(1, 601)) / 10.0
    durations[:100] = durations[100:200]  # ties: same cause, or censored against an event
    event_type = rng.integers(0, 4, 600)
    event_type[:100] = np.where(rng.random(100) < 0.5, 0, event_type[100:200])
    table = cumulative_incidence(durations, event_type)
    for cause in (1, 2, 3):
        check_against_lifelines(rows_of(table, cause=cause), lifelines_aj(durations, event_type, cause))
    at = cumulative_incidence_at(table, [0.0, 5.05, 30.0, 100.0])
    for cause in (1, 2, 3):
        fitter = lifelines_aj(durations, event_type, cause)
        expected = [fitter.predict(t) for t in (0.0, 5.05, 30.0, 100.0)]
        close(rows_of(at, cause=cause)["cumulative_incidence"], expected)


@SETTINGS
@given(tied_causes())
def test_causes_add_up_to_one_minus_kaplan_meier_with_ties(data):
    """Exact for tied times of different causes: nothing is jittered."""
    durations, event_type, groups = data
    table = cumulative_incidence(durations, event_type, groups=groups)
    km = kaplan_meier(durations, event_type > 0, groups=groups)
    total = table.groupby(["group", "time"], sort=True)["cumulative_incidence"].sum()
    if len(table):
        close(total.to_numpy(), 1 - km["survival"].to_numpy(), atol=1e-14)
        assert (table["cumulative_incidence"].between(0, 1)).all()
        assert (table.groupby(["group", "cause"])["cumulative_incidence"].diff().dropna() >= 0).all()


@SETTINGS
@given(tied_causes(max_groups=2))
def test_one_cause_is_one_minus_kaplan_meier_with_greenwood_variance(data):
    durations, event_type, groups = data
    observed = event_type > 0
    if not observed.any():
        return
    table = cumulative_incidence(durations, observed.astype(int), groups=groups)
    km = kaplan_meier(durations, observed, groups=groups)
    close(table["cumulative_incidence"], 1 - km["survival"], atol=1e-14)
    close(table["se"] ** 2, km["se"] ** 2, atol=1e-14)


@SETTINGS
@given(tied_causes(max_groups=5))
def test_grouped_result_is_the_group_by_group_result(data):
    durations, event_type, groups = data
    table = cumulative_incidence(durations, event_type, groups=groups)
    causes = np.unique(event_type[event_type > 0])
    pieces = []
    for g in np.unique(groups):
        mask = groups == g
        piece = cumulative_incidence(durations[mask], event_type[mask])
        missing = np.setdiff1d(causes, piece["cause"].unique())  # causes absent from this group: 0 throughout
        if missing.size:
            km = kaplan_meier(durations[mask], event_type[mask] > 0)
            zero = pd.DataFrame({"time": km["time"], "at_risk": km["at_risk"], "events": 0,
                                 "cumulative_incidence": 0.0, "se": 0.0, "lower": 0.0, "upper": 0.0})
            piece = pd.concat([piece] + [zero.assign(cause=c) for c in missing])
            piece = piece.sort_values(["cause", "time"], kind="stable")
        pieces.append(piece.assign(group=g))
    expected = pd.concat(pieces, ignore_index=True)[table.columns]
    pd.testing.assert_frame_equal(table, expected, check_exact=True, check_dtype=False)


def test_causes_are_those_present_and_absent_causes_are_zero():
    table = cumulative_incidence([1.0, 2.0, 3.0, 4.0], [0, 3, 1, 3], groups=[0, 0, 1, 1])
    assert sorted(table["cause"].unique()) == [1, 3]
    assert (rows_of(table, group=0, cause=1)["cumulative_incidence"] == 0).all()
    close(rows_of(table, group=1, cause=3)["cumulative_incidence"], [0.0, 0.5])


NON_NEGATIVE = r"The 'event_type' argument must hold non-negative integers \(0 = censored, 1\.\.K = cause\)"


@pytest.mark.parametrize(
    ("event_type", "message"),
    [
        ([0, 1, 1.5], NON_NEGATIVE + r"; got 1\.5 at position 2\."),
        ([0, 1, -1], NON_NEGATIVE + r"; got -1 at position 2\."),
        ([0, 1, np.nan], NON_NEGATIVE + r"; got nan at position 2\."),
        (["a", "b", "c"], r"The 'event_type' argument must hold integers \(0 = censored, 1\.\.K = cause\); "
                          r"got dtype <U1\."),
        ([0, 1], r"The 'event_type' argument must have the same length as 'durations' \(3\); got 2\."),
    ],
)
def test_bad_event_type_names_the_argument(event_type, message):
    with pytest.raises(ValueError, match=message):
        cumulative_incidence([1.0, 2.0, 3.0], event_type)
