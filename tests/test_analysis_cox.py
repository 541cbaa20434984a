"""Univariate Cox models of sim.analysis against lifelines' CoxPHFitter, a loop oracle of Efron's
partial likelihood, and a group-by-group loop."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifelines import CoxPHFitter
from lifelines.datasets import load_gbsg2, load_kidney_transplant, load_lung, load_rossi, load_waltons
from lifelines.exceptions import ConvergenceWarning

from sim.analysis import cox_univariate

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
# lifelines' default stopping rule (Newton decrement or step below 1e-7, or a relative change of the
# log-likelihood below 1e-9, reporting the point before that last step) leaves its coefficient about
# 1e-8..1e-6 from the maximum; with these options it iterates to rounding level, as we do.
TIGHT = dict(precision=1e-20, r_precision=1e-20, max_steps=200)
LIFELINES = ["coef", "exp(coef)", "se(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%", "p"]
OURS = ["coef", "hr", "se", "lower", "upper", "p_value"]


def close(actual, expected, rtol=1e-9, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def lifelines_cox(durations, observed, x, fit_options=TIGHT):
    frame = pd.DataFrame({"T": np.asarray(durations, float), "E": np.asarray(observed, int),
                          "x": np.asarray(x, float)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning: lifelines did not find the maximum, or doubts it
        fitter = CoxPHFitter().fit(frame, "T", "E", fit_options=fit_options)
    return fitter.summary.loc["x", LIFELINES].to_numpy(float)


def efron(beta, durations, observed, x):
    """Efron's partial log-likelihood, score and information, by loops over times and tied events."""
    loglik = score = information = 0.0
    for time in np.unique(durations[observed]):
        dead, risk = (durations == time) & observed, durations >= time
        d, shift = dead.sum(), (beta * x[risk]).max()  # the shift keeps exp() finite; it cancels
        sums = [(np.exp(beta * x[risk] - shift) * x[risk] ** k).sum() for k in range(3)]
        tied = [(np.exp(beta * x[dead] - shift) * x[dead] ** k).sum() for k in range(3)]
        loglik += beta * x[dead].sum()
        score += x[dead].sum()
        for rank in range(d):  # the rank-th of the d tied events takes rank / d of their weight away
            s0, s1, s2 = (sums[k] - rank / d * tied[k] for k in range(3))
            loglik -= np.log(s0) + shift
            score -= s1 / s0
            information += s2 / s0 - (s1 / s0) ** 2
    return loglik, score, information


def bundled_cases():
    waltons, rossi, lung = load_waltons(), load_rossi(), load_lung()
    gbsg2, kidney = load_gbsg2(), load_kidney_transplant()
    lung = lung.dropna(subset=["ph.ecog"])
    return {
        "rossi-age": (rossi["week"], rossi["arrest"], rossi["age"]),
        "rossi-prio": (rossi["week"], rossi["arrest"], rossi["prio"]),
        "rossi-fin": (rossi["week"], rossi["arrest"], rossi["fin"]),
        "lung-ecog": (lung["time"], lung["status"], lung["ph.ecog"]),
        "gbsg2-nodes": (gbsg2["time"], gbsg2["cens"], gbsg2["pnodes"]),
        "kidney-age": (kidney["time"], kidney["death"], kidney["age"]),
        "waltons-group": (waltons["T"], waltons["E"], (waltons["group"] == "miR-137").astype(float)),
    }


@pytest.mark.parametrize("case", list(bundled_cases()))
def test_equals_lifelines_on_bundled_data(case):
    durations, observed, x = bundled_cases()[case]
    result = cox_univariate(durations, observed, x)
    close(result[OURS].to_numpy()[0], lifelines_cox(durations, observed, x))


def test_lifelines_defaults_stop_short_of_the_maximum():
    rossi = load_rossi()
    result = cox_univariate(rossi["week"], rossi["arrest"], rossi["age"])
    default = lifelines_cox(rossi["week"], rossi["arrest"], rossi["age"], fit_options=None)
    close(result[OURS].to_numpy()[0], default, rtol=1e-6)


def test_groups_fit_in_one_pass_equal_lifelines_group_by_group():
    rossi = load_rossi()
    groups = {"fin": rossi["fin"], "race": rossi["race"]}
    result = cox_univariate(rossi["week"], rossi["arrest"], rossi["age"], groups=groups)
    assert result.columns.tolist() == ["fin", "race", *OURS]
    for _, row in result.iterrows():
        rows = rossi[(rossi["fin"] == row["fin"]) & (rossi["race"] == row["race"])]
        close(row[OURS].to_numpy(float), lifelines_cox(rows["week"], rows["arrest"], rows["age"]))


@st.composite
def cohorts(draw, max_groups=3):
    n = draw(st.integers(1, 50))
    times = st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0, 8.0])  # few values: heavy ties
    durations = np.array(draw(st.lists(times, min_size=n, max_size=n)))
    observed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.sampled_from([-1.5, 0.0, 0.0, 1.0, 2.5, 40.0]), min_size=n, max_size=n)))
    groups = np.array(draw(st.lists(st.integers(0, max_groups - 1), min_size=n, max_size=n)))
    return durations, observed, x, groups


@SETTINGS
@given(cohorts())
def test_each_group_is_the_maximum_and_equals_lifelines_where_it_converges(data):
    durations, observed, x, groups = data
    result = cox_univariate(durations, observed, x, groups=groups)
    for g, (_, row) in zip(np.unique(groups), result.iterrows(), strict=True):
        mask = groups == g
        if len(np.unique(x[mask])) < 2 or not observed[mask].any():
            assert row[OURS].isna().all()
            continue
        if np.isnan(row["coef"]):  # no finite maximum: the likelihood is monotone in the coefficient
            grid = np.linspace(-20, 20, 81) / x[mask].std()
            loglik = np.array([efron(b, durations[mask], observed[mask], x[mask])[0] for b in grid])
            steps = np.diff(loglik)
            assert (steps >= -1e-9).all() or (steps <= 1e-9).all()
            continue
        _, score, information = efron(row["coef"], durations[mask], observed[mask], x[mask])
        assert abs(score) <= 1e-8 * np.sqrt(information)  # the score vanishes: a maximum
        close(row["se"], 1 / np.sqrt(information))
        try:
            expected = lifelines_cox(durations[mask], observed[mask], x[mask])
        except Exception:  # lifelines did not converge (it fails where we do not, e.g. an outlier of x)
            continue
        close(row[OURS].to_numpy(float), expected, rtol=1e-8)


@SETTINGS
@given(cohorts(max_groups=6))
def test_grouped_result_is_the_group_by_group_result(data):
    durations, observed, x, groups = data
    result = cox_univariate(durations, observed, x, groups=groups)
    looped = pd.concat([cox_univariate(durations[groups == g], observed[groups == g], x[groups == g])
                        .assign(group=g) for g in np.unique(groups)], ignore_index=True)
    pd.testing.assert_frame_equal(result, looped[result.columns], check_exact=True)


def test_many_groups_with_known_effect():
    rng = np.random.default_rng(20260104)
    n_groups, size = 200, 300
    x = rng.normal(size=n_groups * size)
    durations = rng.exponential(np.exp(-0.5 * x))
    observed = rng.random(n_groups * size) < 0.8
    replicate = np.repeat(np.arange(n_groups), size)
    result = cox_univariate(durations, observed, x, groups={"replicate": replicate})
    z = (result["coef"] - 0.5) / result["se"]
    assert abs(z.mean()) < 4 / np.sqrt(n_groups)  # estimates centred on the truth, within 4 SE
    assert 0.8 < z.std() < 1.2  # and the standard errors are right
    for r in (0, 99):
        rows = replicate == r
        close(result[OURS].to_numpy()[r], lifelines_cox(durations[rows], observed[rows], x[rows]))


def test_finds_the_maximum_where_lifelines_does_not_converge():
    durations = np.array([2.0, 2.0, 5.0, 5.0, 5.0, 8.0, 1.0, 2.0, 3.0, 3.0, 3.0])
    observed = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1], dtype=bool)
    x = np.array([2.5, 0.0, 0.0, 1.0, 1.0, 2.5, 0.0, 40.0, -1.5, 0.0, 0.0])  # one outlier
    with pytest.warns(ConvergenceWarning):
        CoxPHFitter().fit(pd.DataFrame({"T": durations, "E": observed, "x": x}), "T", "E")
    row = cox_univariate(durations, observed, x).iloc[0]
    _, score, information = efron(row["coef"], durations, observed, x)
    assert abs(score) <= 1e-8 * np.sqrt(information)
    close(row["se"], 1 / np.sqrt(information))
    nearby = [efron(row["coef"] + h, durations, observed, x)[0] for h in (-1e-3, 1e-3)]
    assert efron(row["coef"], durations, observed, x)[0] > max(nearby)


def test_constant_covariate_no_event_or_separation_give_nan():
    result = cox_univariate([1.0, 2.0, 3.0, 1.0, 2.0, 1.0, 8.0, 3.0], [1, 0, 1, 0, 0, 1, 0, 1],
                            [1.0, 1.0, 1.0, 0.0, 2.0, 1.0, 0.0, 0.0], groups=[0, 0, 0, 1, 1, 2, 2, 2])
    assert result[OURS].isna().all().all()


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([1.0, np.nan, 2.0], r"The 'x' argument must be finite and not NaN; got nan at position 1\."),
        ([1.0, 2.0], r"The 'x' argument must have the same length as 'durations' \(3\); got 2\."),
        (["a", "b", "c"], r"The 'x' argument must be numeric; got dtype <U1\."),
    ],
)
def test_bad_covariate_names_the_argument(x, message):
    with pytest.raises(ValueError, match=message):
        cox_univariate([1.0, 2.0, 3.0], [1, 0, 1], x)


def test_unbalanced_groups_equal_group_by_group():
    """Groups of very different sizes (one large, many small) are padded by size class."""
    rng = np.random.default_rng(20260108)
    sizes = np.concatenate([[2000, 300], rng.integers(2, 6, 80)])
    groups = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    x = rng.normal(size=groups.size)
    durations = np.round(rng.exponential(np.exp(-0.5 * x)), 2)
    observed = rng.random(groups.size) < 0.7
    result = cox_univariate(durations, observed, x, groups=groups)
    looped = pd.concat([cox_univariate(durations[groups == g], observed[groups == g], x[groups == g])
                        .assign(group=g) for g in range(sizes.size)], ignore_index=True)
    pd.testing.assert_frame_equal(result, looped[result.columns], check_exact=True)
    assert result["coef"].notna().sum() > 20  # small groups are often separated: NaN
