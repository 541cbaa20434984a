"""Kaplan–Meier, values at times, median and RMST of sim.analysis against lifelines and loop oracles."""

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_gbsg2, load_kidney_transplant, load_lung, load_rossi, load_waltons
from lifelines.exceptions import StatError
from lifelines.utils import median_survival_times, restricted_mean_survival_time

from sim.analysis import kaplan_meier, median_survival, rmst, survival_at

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TIMES = [0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 7.0]  # few distinct values: heavy ties


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def lifelines_km(durations, observed, entry=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KaplanMeierFitter().fit(np.asarray(durations, float), np.asarray(observed), entry=entry)


def check_against_lifelines(table, kmf):
    """Every row of one group's table equals lifelines at that time."""
    times = table["time"].to_numpy()
    survival = kmf.survival_function_.iloc[:, 0]
    events = kmf.event_table.loc[times]
    close(table["survival"], survival.loc[times])
    variance = kmf._cumulative_sq_.loc[times].to_numpy()
    # with delayed entry a time can have fewer rows at risk than events (rows entering at their event
    # time); lifelines' variance then takes a negative or -inf term (an unsigned subtraction gone
    # negative) and its interval becomes 1; ours leaves the variance unchanged: compare before that
    at_risk, deaths = table["at_risk"].to_numpy(), table["events"].to_numpy()
    defined = np.cumsum((at_risk < deaths) | (at_risk == 0)) == 0
    close(table["se"][defined], (survival.loc[times] * np.sqrt(variance))[defined])
    assert np.isfinite(table["se"]).all()
    close(table["lower"][defined], kmf.confidence_interval_.iloc[:, 0].loc[times][defined])
    close(table["upper"][defined], kmf.confidence_interval_.iloc[:, 1].loc[times][defined])
    np.testing.assert_array_equal(table["events"], events["observed"])
    np.testing.assert_array_equal(table["censored"], events["censored"])
    if kmf.entry is None:
        np.testing.assert_array_equal(table["at_risk"], events["at_risk"])


def bundled_cases():
    waltons, rossi, lung = load_waltons(), load_rossi(), load_lung()
    gbsg2, kidney = load_gbsg2(), load_kidney_transplant()
    return {
        "waltons": (waltons["T"], waltons["E"], waltons["group"]),
        "rossi": (rossi["week"], rossi["arrest"], [rossi["fin"], rossi["race"]]),
        "lung": (lung["time"], lung["status"], lung["sex"]),
        "gbsg2": (gbsg2["time"], gbsg2["cens"], {"horTh": gbsg2["horTh"], "menostat": gbsg2["menostat"]}),
        "kidney": (kidney["time"], kidney["death"], None),
    }


def split_groups(durations, observed, groups):
    """(group columns dict, mask) for every group, by a plain loop: the oracle's view of ``groups``."""
    if groups is None:
        yield {}, np.ones(len(durations), dtype=bool)
        return
    if isinstance(groups, dict):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in groups.items()})
    elif isinstance(groups, list):
        frame = pd.DataFrame({f"group_{i}": np.asarray(v) for i, v in enumerate(groups)})
    else:
        frame = pd.DataFrame({"group": np.asarray(groups)})
    for key, rows in frame.groupby(list(frame.columns), sort=True).groups.items():
        labels = key if isinstance(key, tuple) else (key,)
        mask = np.zeros(len(durations), dtype=bool)
        mask[np.asarray(rows)] = True
        yield dict(zip(frame.columns, labels, strict=True)), mask


def rows_of(table, labels):
    mask = np.ones(len(table), dtype=bool)
    for column, value in labels.items():
        mask &= table[column].to_numpy() == value
    return table[mask].reset_index(drop=True)


@pytest.mark.parametrize("case", ["waltons", "rossi", "lung", "gbsg2", "kidney"])
def test_kaplan_meier_equals_lifelines_on_bundled_data(case):
    durations, observed, groups = bundled_cases()[case]
    table = kaplan_meier(durations, observed, groups=groups)
    medians = median_survival(table)
    areas = rmst(table, horizon=float(np.median(durations)))
    n_groups = 0
    for labels, mask in split_groups(durations, observed, groups):
        n_groups += 1
        kmf = lifelines_km(np.asarray(durations)[mask], np.asarray(observed)[mask])
        check_against_lifelines(rows_of(table, labels), kmf)
        median = rows_of(medians, labels)
        interval = median_survival_times(kmf.confidence_interval_)
        assert median["median"].item() == kmf.median_survival_time_
        assert median["lower"].item() == interval.iloc[0, 0]
        assert median["upper"].item() == interval.iloc[0, 1]
        area = rows_of(areas, labels)
        close(area["rmst"], restricted_mean_survival_time(kmf, t=float(np.median(durations))))
    assert len(medians) == n_groups


def test_group_columns_are_named_by_the_form_of_groups():
    t, e = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 1])
    a, b = np.array(["x", "x", "y", "y"]), np.array([2, 1, 2, 1])
    assert list(kaplan_meier(t, e).columns[:1]) == ["time"]
    assert list(kaplan_meier(t, e, groups=a).columns[:2]) == ["group", "time"]
    assert list(kaplan_meier(t, e, groups=(a, b)).columns[:3]) == ["group_0", "group_1", "time"]
    table = kaplan_meier(t, e, groups={"site": a, "replicate": b})
    assert list(table.columns[:3]) == ["site", "replicate", "time"]
    keys = table[["site", "replicate"]].drop_duplicates().to_numpy().tolist()
    assert keys == [["x", 1], ["x", 2], ["y", 1], ["y", 2]]
    frame = pd.DataFrame({"site": a, "replicate": b})
    pd.testing.assert_frame_equal(kaplan_meier(t, e, groups=frame), table)


def test_inputs_may_be_series_or_arrow_columns():
    waltons = load_waltons()
    durations, observed, groups = (waltons[c].to_numpy() for c in ("T", "E", "group"))
    expected = kaplan_meier(durations, observed, groups=groups)
    arrow = pa.table(waltons)
    pd.testing.assert_frame_equal(kaplan_meier(arrow["T"], arrow["E"], groups=arrow["group"]), expected)
    series = kaplan_meier(waltons["T"], waltons["E"].astype(bool), groups=waltons["group"])
    pd.testing.assert_frame_equal(series, expected)


@st.composite
def survival_data(draw, max_groups=4, zero_times=True):
    n = draw(st.integers(1, 40))
    times = TIMES if zero_times else TIMES[1:]
    durations = np.array(draw(st.lists(st.sampled_from(times), min_size=n, max_size=n)))
    observed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    groups = np.array(draw(st.lists(st.integers(0, max_groups - 1), min_size=n, max_size=n)))
    return durations, observed, groups


@SETTINGS
@given(survival_data())
@example((np.array([2.0, 2.0, 2.0, 1.0, 4.0, 4.0, 0.0]), np.array([True, False, True, False, True, True, False]),
          np.array([0, 0, 0, 0, 0, 0, 1])))  # censored at event times; a group of one row
def test_each_group_equals_lifelines_on_tied_data(data):
    durations, observed, groups = data
    table = kaplan_meier(durations, observed, groups=groups)
    medians = median_survival(table)
    for g in np.unique(groups):
        mask = groups == g
        kmf = lifelines_km(durations[mask], observed[mask])
        check_against_lifelines(rows_of(table, {"group": g}), kmf)
        interval = median_survival_times(kmf.confidence_interval_)
        median = rows_of(medians, {"group": g})
        assert (median["median"].item(), median["lower"].item(), median["upper"].item()) == (
            kmf.median_survival_time_, interval.iloc[0, 0], interval.iloc[0, 1])


@SETTINGS
@given(survival_data(max_groups=6))
def test_grouped_result_is_the_group_by_group_result(data):
    """One pass over all groups gives exactly (bit for bit) what one call per group gives."""
    durations, observed, groups = data
    table = kaplan_meier(durations, observed, groups=groups)
    pieces = [kaplan_meier(durations[groups == g], observed[groups == g]).assign(group=g)
              for g in np.unique(groups)]
    expected = pd.concat(pieces, ignore_index=True)[table.columns]
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    for readout in (median_survival, lambda t: rmst(t, 3.0), lambda t: survival_at(t, [0.0, 1.0, 2.2, 9.0])):
        one_pass = readout(table)
        looped = pd.concat([readout(piece.drop(columns="group")).assign(group=g)
                            for g, piece in zip(np.unique(groups), pieces, strict=True)], ignore_index=True)
        pd.testing.assert_frame_equal(one_pass, looped[one_pass.columns], check_exact=True)


@SETTINGS
@given(survival_data(), st.lists(st.sampled_from([*TIMES, 0.2, 2.7, 100.0]), min_size=1, max_size=5))
def test_survival_at_is_lifelines_step_function(data, times):
    durations, observed, groups = data
    table = kaplan_meier(durations, observed, groups=groups)
    values = survival_at(table, times)
    for g in np.unique(groups):
        mask = groups == g
        kmf = lifelines_km(durations[mask], observed[mask])
        got = rows_of(values, {"group": g})
        close(got["survival"], [kmf.predict(t) for t in times])
        bounds = kmf.confidence_interval_
        close(got["lower"], [bounds.iloc[:, 0].asof(t) for t in times])
        close(got["upper"], [bounds.iloc[:, 1].asof(t) for t in times])
        np.testing.assert_array_equal(got["at_risk"], [(durations[mask] >= t).sum() for t in times])


def exact_restricted_moments(kmf, horizon):
    """Integrals of S and of 2 t S over [0, horizon] of lifelines' own step curve, exactly."""
    curve = kmf.survival_function_.iloc[:, 0]
    knots = curve.index.to_numpy()
    inside = knots < horizon
    edges = np.append(knots[inside], horizon)
    heights = curve.to_numpy()[inside]
    start = edges[0]  # lifelines' curve starts at time 0 (S = 1 before)
    mean = start + np.sum(heights * np.diff(edges))
    second = start**2 + np.sum(heights * np.diff(edges**2))
    return mean, second - mean**2


def greenwood_rmst_variance(table, horizon):
    """Var of the area under the curve from the Greenwood covariance of S at every pair of times."""
    t, s = table["time"].to_numpy(), table["survival"].to_numpy()
    n, d = table["at_risk"].to_numpy(float), table["events"].to_numpy(float)
    terms = np.where(n > d, d / (n * np.where(n > d, n - d, 1)), 0.0)
    cumulative = np.cumsum(terms)
    edges = np.minimum(np.append(t, np.inf), horizon)
    widths = np.diff(edges)
    total = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            total += widths[i] * widths[j] * s[i] * s[j] * cumulative[min(i, j)]
    return total


@SETTINGS
@given(survival_data(max_groups=1), st.sampled_from([0.7, 2.0, 3.5, 10.0]))
def test_rmst_against_lifelines_and_a_covariance_oracle(data, horizon):
    durations, observed, _ = data
    table = kaplan_meier(durations, observed)
    result = rmst(table, horizon)
    kmf = lifelines_km(durations, observed)
    mean, variance = exact_restricted_moments(kmf, horizon)
    close(result["rmst"], restricted_mean_survival_time(kmf, t=horizon))
    close(result["rmst"], mean)
    close(result["restricted_time_variance"], variance, atol=1e-10)
    close(result["se"] ** 2, greenwood_rmst_variance(table, horizon), atol=1e-12)


def test_rmst_variance_of_lifelines_is_its_quadrature_of_the_same_quantity():
    # lifelines integrates t S(t) with scipy's quad, which does not converge on the jumps of a step
    # function (it reports an error estimate near 1 here): agreement is limited to about 1e-2.
    waltons = load_waltons()
    kmf = lifelines_km(waltons["T"], waltons["E"])
    result = rmst(kaplan_meier(waltons["T"], waltons["E"]), 50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, variance = restricted_mean_survival_time(kmf, t=50.0, return_variance=True)
    close(result["rmst"], mean)
    close(result["restricted_time_variance"], variance, rtol=1e-2)


def test_rmst_standard_error_without_censoring_is_that_of_a_sample_mean():
    rng = np.random.default_rng(20260101)
    durations = np.round(rng.exponential(5.0, 200)) + 1
    result = rmst(kaplan_meier(durations, np.ones(200, dtype=bool)), 8.0)
    close(result["se"] ** 2, result["restricted_time_variance"] / 200)
    close(result["restricted_time_variance"], np.var(np.minimum(durations, 8.0)))


@st.composite
def truncated_data(draw):
    durations, observed, groups = draw(survival_data(max_groups=3, zero_times=False))
    fraction = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.3, 0.5, 1.0]), min_size=len(durations),
                                      max_size=len(durations))))
    return durations, observed, groups, np.round(durations * fraction, 1)


@SETTINGS
@given(truncated_data())
def test_delayed_entry_equals_lifelines(data):
    durations, observed, groups, entry = data
    table = kaplan_meier(durations, observed, groups=groups, entry=entry)
    for g in np.unique(groups):
        mask = groups == g
        try:
            kmf = lifelines_km(durations[mask], observed[mask], entry=entry[mask])
        except StatError:  # lifelines refuses when the risk set empties early; nothing to compare
            assume(False)
        rows = rows_of(table, {"group": g})
        check_against_lifelines(rows, kmf)
        at_risk = kmf.event_table["at_risk"].loc[rows["time"]].to_numpy()
        entrants = kmf.event_table["entrance"].loc[rows["time"]].to_numpy()
        first_row = rows["time"].to_numpy() == kmf.event_table.index[0]
        # lifelines counts entrants at a time among those at risk at that time; only the first
        # time's entrants are at risk then (its own estimate subtracts the later ones)
        np.testing.assert_array_equal(rows["at_risk"], np.where(first_row, at_risk, at_risk - entrants))


@SETTINGS
@given(survival_data(max_groups=3))
def test_survival_is_a_non_increasing_probability(data):
    durations, observed, groups = data
    table = kaplan_meier(durations, observed, groups=groups)
    for _, rows in table.groupby("group"):
        survival = rows["survival"].to_numpy()
        assert np.all((survival >= 0) & (survival <= 1))
        assert np.all(np.diff(survival) <= 0)
        assert np.all((rows["lower"] <= survival + 1e-15) & (survival <= rows["upper"] + 1e-15))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(durations=[1.0, 2.0, 3.0, -1.0], event_observed=[1, 1, 0, 1]),
         r"The 'durations' argument must be non-negative and not NaN; got -1\.0 at position 3\."),
        (dict(durations=[1.0, np.nan], event_observed=[1, 1]),
         r"The 'durations' argument must be non-negative and not NaN; got nan at position 1\."),
        (dict(durations=[1.0, np.inf], event_observed=[1, 1]),
         r"The 'durations' argument must be finite; got inf at position 1\."),
        (dict(durations=["a", "b"], event_observed=[1, 1]),
         r"The 'durations' argument must be numeric; got dtype <U1\."),
        (dict(durations=[], event_observed=[]), r"The 'durations' argument must not be empty\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 0, 1]),
         r"The 'event_observed' argument must have the same length as 'durations' \(2\); got 3\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 2]),
         r"The 'event_observed' argument must be boolean or 0/1; got 2 at position 1\."),
        (dict(durations=[1.0, 2.0], event_observed=[0.5, 1.0]),
         r"The 'event_observed' argument must be boolean or 0/1; got 0\.5 at position 0\."),
        (dict(durations=[1.0, 2.0], event_observed=["yes", "no"]),
         r"The 'event_observed' argument must be boolean or 0/1; got dtype <U3\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 1], groups=[1, 2, 3]),
         r"The 'groups' argument must have the same length as 'durations' \(2\); got 3\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 1], groups={"site": ["a", None]}),
         r"The 'groups\['site'\]' argument must not contain missing values; got None at position 1\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 1], entry=[0.0, 3.0]),
         r"The 'entry' argument must not exceed 'durations'; got entry 3\.0 > duration 2\.0 at position 1\."),
        (dict(durations=[1.0, 2.0], event_observed=[1, 1], entry=[-0.5, 0.0]),
         r"The 'entry' argument must be non-negative and not NaN; got -0\.5 at position 0\."),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kaplan_meier(**kwargs)


def test_bad_horizon_and_table():
    table = kaplan_meier([1.0, 2.0], [1, 0])
    message = r"The 'horizon' argument must be finite and non-negative; got -1\.0\."
    with pytest.raises(ValueError, match=message):
        rmst(table, -1.0)
    with pytest.raises(ValueError, match=r"The table argument must be a non-empty table"):
        median_survival(pd.DataFrame({"x": [1]}))


def test_unbalanced_groups_equal_group_by_group():
    """Groups of very different sizes (one large, many of one row) are padded by size class."""
    rng = np.random.default_rng(20260107)
    sizes = np.concatenate([[3000, 700, 33], rng.integers(1, 4, 120)])
    groups = rng.permutation(np.repeat(np.arange(sizes.size), sizes))  # rows not grouped in the input
    durations = np.round(rng.exponential(10.0, groups.size), 1)
    observed = rng.random(groups.size) < 0.7
    table = kaplan_meier(durations, observed, groups=groups)
    pieces = [kaplan_meier(durations[groups == g], observed[groups == g]).assign(group=g)
              for g in range(sizes.size)]
    expected = pd.concat(pieces, ignore_index=True)[table.columns]
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    one_pass = rmst(table, 12.0)
    looped = pd.concat([rmst(piece.drop(columns="group"), 12.0).assign(group=g)
                        for g, piece in enumerate(pieces)], ignore_index=True)
    pd.testing.assert_frame_equal(one_pass, looped[one_pass.columns], check_exact=True)
