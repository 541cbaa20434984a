"""Issue 40: bad arguments to the Python API, refused at the door with the argument named, and
nothing simulated from impossible parameters; the comparison and economics files' last gaps.

Each call is the issue's, as written there; each asserts the exception's type and that its
message names the argument (or the key, or the field) and what is allowed."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

import sim
from conftest import ROOT
from sim.cli import main
from sim.errors import InputError

ECONOMIC = ROOT / "scenarios" / "comparisons" / "esmo-intensive-economics.toml"
US = ROOT / "scenarios" / "economics" / "us.toml"


@pytest.fixture(scope="module")
def params():
    return sim.load_params()


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Every test runs in an empty folder, so that a call that wrote `./42` would be seen."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


NOT_A_PATH = [
    ("policy", r"policy file.*Policy", lambda: sim.simulate_cohort(20, policy=None)),
    ("params", r"parameter file, a Params or None", lambda: sim.simulate_cohort(20, params=42)),
    ("comparison", r"comparison file.*Comparison", lambda: sim.compare(None)),
    ("path", r"parameter file or None", lambda: sim.load_params({})),
    ("policy", r"policy file", lambda: sim.load_policy(3.5)),
    ("path", r"comparison file", lambda: sim.load_comparison(42)),
    ("path", r"design file", lambda: sim.load_design(42)),
    ("out", r"directory path", lambda: sim.write_cohort(None, 20)),
    ("policy", r"policy file", lambda: sim.write_cohort("out", 20, policy=None)),
    ("economics", r"economics file or None", lambda: sim.compare("comparisons/facs", economics=7)),
    ("out", r"directory path or None", lambda: sim.power("power/exponential", out=42)),
]


@pytest.mark.parametrize("name, allowed, call", NOT_A_PATH)
def test_a_non_path_where_a_path_or_an_object_is_expected_is_named(name, allowed, call):
    with pytest.raises(TypeError, match=rf"^{name}: must be (a|an) .*{allowed}") as caught:
        call()
    assert isinstance(caught.value, InputError)     # one line on the command line too
    assert "expected str, bytes or os.PathLike" not in str(caught.value)


BAD_NUMBERS = [
    ("seed", "a non-negative integer", lambda: sim.simulate_cohort(20, seed="abc")),
    ("seed", "a non-negative integer", lambda: sim.simulate_cohort(20, seed=None)),
    ("years", "a positive number of years", lambda: sim.simulate_cohort(20, years="10")),
    ("replicate", "a non-negative integer", lambda: sim.simulate_cohort(20, replicate="x")),
    ("replicates", "a positive number of replicate trials",
     lambda: sim.power("power/exponential", replicates="5")),
    ("chunk_size", "a positive number of patients", lambda: sim.simulate_cohort(20, chunk_size=2.5)),
    ("replicates", "a positive number of replicate trials",
     lambda: sim.power("power/exponential", replicates=2.5)),
    ("seed", "a non-negative integer", lambda: sim.simulate_cohort(20, seed=1.5)),
    ("n", "a positive number of patients", lambda: sim.simulate_cohort(True)),
    ("seed", "a non-negative integer", lambda: sim.simulate_cohort(20, seed=True)),
    ("seed", "a non-negative integer", lambda: sim.power("power/exponential", seed=1.5)),
    ("workers", "a positive integer", lambda: sim.compare("comparisons/facs", workers=2.0)),
    ("n", "a positive number of patients", lambda: sim.write_cohort("out", 2.0)),
]


@pytest.mark.parametrize("name, allowed, call", BAD_NUMBERS)
def test_a_count_or_seed_of_the_wrong_kind_is_refused_not_truncated(name, allowed, call):
    with pytest.raises(TypeError, match=rf"^{name}: must be {allowed}.*\(got "):
        call()


@pytest.mark.parametrize("name, call", [
    ("years", lambda: sim.simulate_cohort(20, years=math.nan)),
    ("design", lambda: sim.simulate_cohort(20, design="forever")),
    ("seed", lambda: sim.simulate_cohort(20, seed=-1)),
    ("chunk_size", lambda: sim.simulate_cohort(20, chunk_size=0)),
])
def test_a_value_out_of_range_is_an_input_error_naming_the_argument(name, call):
    with pytest.raises(InputError, match=rf"^{name}: must be"):
        call()


@pytest.mark.parametrize("name, call", [
    ("resume", lambda: sim.write_cohort("out", 20, resume="yes")),
    ("progress", lambda: sim.compare("comparisons/facs", progress="yes")),
    ("keep_patients", lambda: sim.compare("comparisons/facs", keep_patients=1)),
    ("executor", lambda: sim.compare("comparisons/facs", executor=3)),
    ("command", lambda: sim.power("power/exponential", command=None)),
])
def test_the_options_of_a_run_are_checked_too(name, call):
    with pytest.raises(TypeError, match=rf"^{name}: must be"):
        call()


def test_a_float_seed_is_never_run_as_its_integer_part():
    with pytest.raises(TypeError, match=r"^seed: .*\(got 1\.5, float\)"):
        sim.simulate_cohort(20, seed=1.5)
    # a numpy integer is an integer, recorded as a Python int
    import numpy as np

    result = sim.simulate_cohort(5, seed=np.int64(3), years=10, design="horizon")
    assert type(result.manifest["seed"]) is int and result.manifest["seed"] == 3


def test_compare_out_42_writes_nothing(elsewhere):
    with pytest.raises(TypeError, match=r"^out: must be a directory path or None"):
        sim.compare("comparisons/facs", out=42)
    assert list(elsewhere.iterdir()) == []


def test_write_cohort_of_bad_arguments_creates_nothing(elsewhere):
    for call in (lambda: sim.write_cohort("out", 20, seed=1.5),
                 lambda: sim.write_cohort("out", 20, workers=0),
                 lambda: sim.write_cohort("out", 20, params=42)):
        with pytest.raises(InputError):
            call()
    assert list(elsewhere.iterdir()) == []


# with_values and the parameters' domains ---------------------------------------------------

def test_an_unknown_key_is_named_with_the_nearest_allowed_one(params):
    with pytest.raises(InputError, match=r"^values: 'no\.such\.key': not a numeric parameter; "
                                         r"the nearest is '[a-z_.]+'"):
        sim.with_values(params, {"no.such.key": 1.0})
    with pytest.raises(InputError, match=r"the nearest is 'recurrence\.theta_liver'"):
        sim.with_values(params, {"recurrence.theta_livr": 1.0})


def test_a_value_of_the_wrong_kind_names_its_key(params):
    with pytest.raises(TypeError, match=r"^values: recurrence\.theta_liver: must be a number "
                                        r"\(got 'x', str\)"):
        sim.with_values(params, {"recurrence.theta_liver": "x"})
    with pytest.raises(TypeError, match=r"^values: treatment\.curative_max_sites: must be an "
                                        r"integer"):
        sim.with_values(params, {"treatment.curative_max_sites": 2.5})


def test_with_values_of_no_mapping_or_no_params(params):
    with pytest.raises(TypeError, match=r"^values: must be a mapping of dotted parameter paths"):
        sim.with_values(params, None)
    with pytest.raises(TypeError, match=r"^params: must be a Params"):
        sim.with_values(None, {})


@pytest.mark.parametrize("key, value, message", [
    ("growth.doubling_time_median_months", -3.0, "greater than 0"),
    ("growth.doubling_time_median_months", math.nan, "finite number"),
    ("recurrence.theta_liver", -1.0, "greater than or equal to 0"),
    ("cohort.rectal_share", 1.5, "less than or equal to 1"),
    ("recurrence.onset_weibull_shape", 0.0, "greater than 0"),
    ("growth.symptom_log2_burden_mean", math.inf, "finite number"),
])
def test_impossible_parameters_are_refused_and_never_simulated(params, key, value, message):
    with pytest.raises(InputError, match=rf"^values: {re.escape(key)}: .*{message}"):
        sim.with_values(params, {key: value})


def test_a_rule_between_values_names_the_keys(params):
    with pytest.raises(InputError, match=r"^values: cohort\.age_min_years: age_min_years must be "
                                         r"below age_max_years"):
        sim.with_values(params, {"cohort.age_min_years": 95.0})


def test_a_good_change_keeps_its_type_and_leaves_the_original(params):
    changed = sim.with_values(params, {"growth.doubling_time_median_months": 3,
                                       "treatment.curative_max_sites": 2})
    assert changed.growth.doubling_time_median_months == 3.0
    assert type(changed.growth.doubling_time_median_months) is float
    assert changed.treatment.curative_max_sites == 2
    assert params.growth.doubling_time_median_months != 3.0


@pytest.mark.parametrize("key, value, message", [
    ("growth.doubling_time_median_months", "-3.0", "greater than 0"),
    ("growth.doubling_time_median_months", "nan", "finite number"),
    ("recurrence.theta_liver", "-1.0", "greater than or equal to 0"),
])
def test_load_params_refuses_the_same_values_in_a_file(tmp_path, key, value, message):
    text = (ROOT / "sim" / "data" / "params.toml").read_text()
    leaf = key.split(".")[-1]
    bad = tmp_path / "bad.toml"
    bad.write_text(re.sub(rf"^({leaf} = \{{ value = )[^,]+", rf"\g<1>{value}", text, count=1,
                          flags=re.MULTILINE))
    assert bad.read_text() != text
    with pytest.raises(InputError, match=rf"^bad\.toml: {re.escape(key)}: .*{message}"):
        sim.load_params(bad)


def test_the_calibrations_bounds_lie_in_the_parameters_domains():
    """The calibration's transforms (log: > 0, logit: in (0, 1)) search inside the domains
    with_values and the files enforce, so no draw of the posterior is refused."""
    from calibration.space import SPACE
    from sim.model.params import numeric_leaves

    leaves = numeric_leaves()
    for d in SPACE:
        _, adapter = leaves[d.path]
        for bound in (d.lower, d.upper):
            adapter.validate_python(float(bound))
        if d.scale == "logit":
            assert 0 < d.lower < d.upper < 1, d.path
        if d.scale == "log":
            assert 0 < d.lower < d.upper, d.path


# comparison and economics files -------------------------------------------------------------

def _comparison(tmp_path, text: str, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("draws", [0, 1, 2])
def test_a_trial_with_too_few_draws_is_refused(tmp_path, draws):
    text = ECONOMIC.read_text().replace("draws = 1000", f"draws = {draws}")
    path = _comparison(tmp_path, text)
    with pytest.raises(InputError, match=rf"^c\.toml: trial: .*at least 3 parameter draws "
                                         rf"\(uncertainty\.draws = {draws}\)"):
        sim.load_comparison(path)


def test_a_trial_without_an_economics_file_is_refused(tmp_path):
    text = ECONOMIC.read_text().replace('economics = "economics/us"\n', "")
    with pytest.raises(InputError, match=r"^c\.toml: trial: .*economics file"):
        sim.load_comparison(_comparison(tmp_path, text))


def test_a_comparison_object_with_a_trial_it_cannot_value_is_refused():
    import dataclasses

    comparison = sim.load_comparison(ECONOMIC)
    few = dataclasses.replace(comparison,
                              uncertainty=comparison.uncertainty.model_copy(update={"draws": 2}))
    with pytest.raises(InputError, match=r"^comparison: trial: .*at least 3 parameter draws"):
        sim.compare(few)


def test_a_run_with_a_trial_it_cannot_value_is_one_line(capsys, tmp_path):
    text = ECONOMIC.read_text().replace("draws = 1000", "draws = 0")
    code = main(["run", str(_comparison(tmp_path, text)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "trial:" in err[0] and "uncertainty.draws" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_horizon_names_what_is_allowed(tmp_path):
    text = ('name = "c"\nreference = "esmo"\npolicies = ["esmo", "intensive"]\n'
            '[cohort]\npatients = 100\nyears = "forever"\n')
    with pytest.raises(InputError, match=r'^c\.toml: cohort\.years: must be a number of years '
                                         r'above 0 and at most 20, or "lifetime".*forever'):
        sim.load_comparison(_comparison(tmp_path, text))
    with pytest.raises(InputError, match=r'^c\.toml: cohort\.years: .*"lifetime"'):
        sim.load_comparison(_comparison(tmp_path, text.replace('"forever"', "-1.0")))


def _economics(tmp_path, old, new):
    text = US.read_text()
    assert old in text
    path = tmp_path / "e.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_price_year_after_the_current_year_is_refused(tmp_path):
    from sim.model.economics import load_economics

    future = dt.date.today().year + 1
    path = _economics(tmp_path, "tumour-marker immunoassay\", price_year = 2024",
                      f"tumour-marker immunoassay\", price_year = {future}")
    with pytest.raises(InputError, match=rf"^e\.toml: test_cost\.cea\.price_year: must not be "
                                         rf"after the current year, {future - 1}"):
        load_economics(path)
    path = _economics(tmp_path, "price_year = 2024", f"price_year = {future}")
    with pytest.raises(InputError, match=r"^e\.toml: price_year: must not be after the current"):
        load_economics(path)


def test_a_missing_value_is_named_by_its_whole_path(tmp_path):
    from sim.model.economics import load_economics

    path = _economics(tmp_path, "cea = { value = 20.0, ", "cea = { ")
    with pytest.raises(InputError, match=r"^e\.toml: test_cost\.cea\.value: Field required"):
        load_economics(path)
