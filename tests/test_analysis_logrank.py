"""Log-rank tests of sim.analysis against lifelines and a loop oracle for strata."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifelines.datasets import load_gbsg2, load_kidney_transplant, load_lung, load_rossi, load_waltons
from lifelines.statistics import logrank_test, multivariate_logrank_test
from scipy import stats

from sim.analysis import logrank

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def lifelines_logrank(durations, observed, arm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return multivariate_logrank_test(np.asarray(durations, float), np.asarray(arm), np.asarray(observed))


def bundled_cases():
    waltons, rossi, lung = load_waltons(), load_rossi(), load_lung()
    gbsg2, kidney = load_gbsg2(), load_kidney_transplant()
    race = np.select([kidney["black_male"] == 1, kidney["white_male"] == 1, kidney["black_female"] == 1],
                     ["black male", "white male", "black female"], "white female")
    return {
        "waltons": (waltons["T"], waltons["E"], waltons["group"]),
        "rossi-fin": (rossi["week"], rossi["arrest"], rossi["fin"]),
        "rossi-prio": (rossi["week"], rossi["arrest"], rossi["prio"].clip(0, 3)),
        "lung-sex": (lung["time"], lung["status"], lung["sex"]),
        "gbsg2-grade": (gbsg2["time"], gbsg2["cens"], gbsg2["tgrade"]),
        "kidney-race": (kidney["time"], kidney["death"], race),
    }


@pytest.mark.parametrize("case", list(bundled_cases()))
def test_equals_lifelines_on_bundled_data(case):
    durations, observed, arm = bundled_cases()[case]
    result = logrank(durations, observed, arm)
    expected = lifelines_logrank(durations, observed, arm)
    close(result["statistic"], expected.test_statistic)
    close(result["p_value"], expected.p_value)
    assert result["df"].item() == expected.degrees_of_freedom


def test_two_arms_equal_logrank_test():
    rossi = load_rossi()
    a, b = rossi[rossi["fin"] == 0], rossi[rossi["fin"] == 1]
    expected = logrank_test(a["week"], b["week"], a["arrest"], b["arrest"])
    result = logrank(rossi["week"], rossi["arrest"], rossi["fin"])
    close(result["statistic"], expected.test_statistic)
    close(result["p_value"], expected.p_value)


@st.composite
def trials(draw, max_arms=3, max_groups=4):
    n = draw(st.integers(1, 40))
    durations = np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]), min_size=n, max_size=n)))
    observed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    arm = np.array(draw(st.lists(st.integers(0, max_arms - 1), min_size=n, max_size=n)))
    groups = np.array(draw(st.lists(st.integers(0, max_groups - 1), min_size=n, max_size=n)))
    strata = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return durations, observed, arm, groups, strata


@SETTINGS
@given(trials())
def test_each_group_equals_lifelines_on_tied_data(data):
    durations, observed, arm, groups, _ = data
    result = logrank(durations, observed, arm, groups=groups)
    assert result["group"].tolist() == sorted(set(groups.tolist()))
    for g, row in zip(result["group"], result.itertuples(), strict=True):
        mask = groups == g
        present = len(np.unique(arm[mask]))
        assert row.df == present - 1
        if present < 2:
            assert np.isnan(row.statistic) and np.isnan(row.p_value)
            continue
        expected = lifelines_logrank(durations[mask], observed[mask], arm[mask])
        close(row.statistic, expected.test_statistic)
        close(row.p_value, expected.p_value)


def loop_oracle(durations, observed, arm, strata):
    """Stratified log-rank by plain loops: O - E and V summed over strata and times."""
    arms = np.unique(arm)
    k = len(arms)
    z, v = np.zeros(k), np.zeros((k, k))
    for s in np.unique(strata):
        in_stratum = strata == s
        for t in np.unique(durations[in_stratum & observed]):
            at_risk = in_stratum & (durations >= t)
            dead = in_stratum & (durations == t) & observed
            n, d = at_risk.sum(), dead.sum()
            n_arm = np.array([(at_risk & (arm == a)).sum() for a in arms], dtype=float)
            d_arm = np.array([(dead & (arm == a)).sum() for a in arms], dtype=float)
            z += d_arm - n_arm * d / n
            if n > 1:
                v += d * (n - d) / (n - 1) * (np.diag(n_arm) / n - np.outer(n_arm, n_arm) / n**2)
    statistic = z[:-1] @ np.linalg.pinv(v[:-1, :-1]) @ z[:-1] if k >= 2 else np.nan
    return statistic, k - 1


@SETTINGS
@given(trials())
def test_stratified_equals_a_loop_over_strata(data):
    durations, observed, arm, groups, strata = data
    result = logrank(durations, observed, arm, groups=groups, strata=strata)
    for g, row in zip(result["group"], result.itertuples(), strict=True):
        mask = groups == g
        statistic, dof = loop_oracle(durations[mask], observed[mask], arm[mask], strata[mask])
        assert row.df == dof
        if dof < 1:
            assert np.isnan(row.statistic)
            continue
        close(row.statistic, statistic, atol=1e-10)
        close(row.p_value, stats.chi2.sf(statistic, dof), atol=1e-10)


@SETTINGS
@given(trials(max_arms=2, max_groups=1))
def test_one_stratum_is_the_unstratified_test(data):
    durations, observed, arm, _, _ = data
    stratified = logrank(durations, observed, arm, strata=np.zeros(len(durations), dtype=int))
    plain = logrank(durations, observed, arm)
    close(stratified["statistic"], plain["statistic"])


def test_many_trials_in_one_call_equal_a_lifelines_loop():
    rng = np.random.default_rng(20260103)
    n_trials, size = 50, 80
    arm = rng.integers(0, 2, n_trials * size)
    durations = np.round(rng.exponential(np.where(arm == 1, 12.0, 9.0)), 1)
    observed = rng.random(n_trials * size) < 0.8
    trial = np.repeat(np.arange(n_trials), size)
    result = logrank(durations, observed, arm, groups={"replicate": trial})
    expected = [lifelines_logrank(durations[trial == r], observed[trial == r], arm[trial == r])
                for r in range(n_trials)]
    close(result["statistic"], [e.test_statistic for e in expected])
    close(result["p_value"], [e.p_value for e in expected])
    assert result.columns.tolist() == ["replicate", "statistic", "df", "p_value"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(arm=[0, 1]), r"The 'arm' argument must have the same length as 'durations' \(3\); got 2\."),
        (dict(arm=[0, 1, 1], strata=[0]),
         r"The 'strata' argument must have the same length as 'durations' \(3\); got 1\."),
        (dict(arm=[0, 1, None]),
         r"The 'arm' argument must not contain missing values; got None at position 2\."),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        logrank([1.0, 2.0, 3.0], [1, 0, 1], **kwargs)


@pytest.mark.parametrize("ties", [False, True])
def test_trials_side_by_side_give_the_general_path_to_the_last_bit(ties):
    # equal-size trials stored one after another take a dense path (rows of a 2-D array); the
    # same rows shuffled take the general one. Both must give the same statistics, bit for bit;
    # with tied times the dense path steps aside
    rng = np.random.default_rng(8)
    trials, size = 300, 60
    trial = np.repeat(np.arange(trials), size)
    arm = rng.integers(0, 2, trials * size)
    time = rng.exponential(12.0, trials * size) * np.where(arm == 1, 1.4, 1.0)
    if ties:
        time = np.round(time)
    event = rng.random(trials * size) < 0.75
    event[trial == 3] = False                     # a trial without an event
    arm[trial == 5] = 0                           # a trial with one arm
    dense = logrank(time, event, arm, groups={"trial": trial})
    shuffle = rng.permutation(trials * size)
    general = logrank(time[shuffle], event[shuffle], arm[shuffle], groups={"trial": trial[shuffle]})
    pd.testing.assert_frame_equal(dense, general, check_exact=True)
    assert np.isnan(dense.loc[5, "statistic"]) and dense.loc[3, "statistic"] == 0.0
    # the dense path was taken without ties, and only then
    from sim.analysis._input import as_grouping
    from sim.analysis.logrank import _two_arms_side_by_side
    taken = _two_arms_side_by_side(time, event, arm, as_grouping({"trial": trial}, len(time)))
    assert (taken is None) == ties
