"""Power by simulation (`sim.studies.power`): the textbook case against Schoenfeld's formula, the formulas
against lifelines and published numbers, the curve's search, bad design files, and the command.

Statistical checks use fixed seeds and the Monte-Carlo (Wilson) interval of the simulated power
as their tolerance, taken at 3 standard errors (level 0.9973) so that a correct simulation fails
one seed in 370, not one in 20 as the reported 95% interval would.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr, ndtri
from scipy.stats import binomtest

from conftest import ROOT
from sim.errors import InputError
from sim.execution.executor import LocalExecutor
from sim.studies.power import (
    crossing,
    event_probability_exponential,
    freedman_events,
    freedman_power,
    load_design,
    power_curve,
    sample_size,
    schoenfeld_events,
    schoenfeld_power,
    simulate_replicates,
    two_proportion_power,
    wilson_interval,
)
from sim.studies.power.designs import ExponentialDesign
from sim.cli_power import register_power

DESIGNS = ROOT / "scenarios" / "power"
EXPONENTIAL = DESIGNS / "exponential.toml"
SEED = 20240607


def _textbook(**changes) -> ExponentialDesign:
    """The scenario file's textbook design (HR 0.7, 1:1, alpha 0.05) with some fields changed."""
    design = load_design(EXPONENTIAL)
    assert (design.hazard_ratio, design.allocation, design.alpha) == (0.7, (1, 1), 0.05)
    return design.model_copy(update=changes)


def _curve(design, replicates, seed=SEED, executor=None):
    return power_curve(simulate_replicates(design, replicates, seed, executor))


THREE_SE = 0.9973


def _interval(row, level=THREE_SE):
    """Wilson interval of a row's simulated power at ``level``."""
    rejected = round(row["power"] * row["replicates"])
    return wilson_interval(rejected, row["replicates"], level)


# --- the three statistical checks of the issue --------------------------------------------------

def test_247_events_give_80_percent_power():
    """Event-driven analysis at the 247th event: Schoenfeld's 80% lies in the simulated interval."""
    assert math.ceil(schoenfeld_events(0.7, power=0.8, alpha=0.05)) == 247
    assert schoenfeld_power(247, 0.7) == pytest.approx(0.8003, abs=1e-4)
    design = _textbook(accrual_months=0.0, follow_up_months=None, events=247, sample_sizes=[500])
    row = _curve(design, 4000).table.iloc[0]
    assert row["events"] == 247  # every replicate analysed at exactly its 247th event
    lower, upper = _interval(row)
    assert lower <= 0.80 <= upper, row.to_dict()
    assert row["power_upper"] - row["power_lower"] < 0.026  # the 95% interval of 4,000 replicates


def test_power_rises_with_n_and_crosses_where_the_formula_says():
    """The scenario file (fixed n and follow-up): power rises with n, the events follow the
    closed-form probability of an event, and the simulated n for 80% brackets the formula's 370."""
    design = load_design(EXPONENTIAL)
    curve = _curve(design, design.replicates, seed=design.seed)
    table = curve.table
    assert (np.diff(table["power"]) > 0).all(), table["power"].tolist()
    probability = event_probability_exponential(np.log(2) / 12, 0.7, 0.5, 24.0, 12.0)
    per_patient = table["events"] / table["n"]
    standard_error = np.sqrt(probability * (1 - probability) / (table["n"] * design.replicates))
    assert (np.abs(per_patient - probability) < 4 * standard_error).all()
    best = curve.smallest.iloc[0]
    assert best["analytic_n"] == math.ceil(sample_size(schoenfeld_events(0.7), probability)) == 370
    assert best["n_lower"] <= best["analytic_n"] <= best["n_upper"], best.to_dict()
    inside = (table["power_lower"] <= table["schoenfeld_power"]) & (table["schoenfeld_power"] <= table["power_upper"])
    assert inside.mean() >= 0.75  # pointwise 95% intervals: the formula sits inside nearly all


def test_power_at_hazard_ratio_one_is_alpha():
    design = _textbook(hazard_ratio=1.0, accrual_months=0.0, follow_up_months=None, sample_sizes=[247])
    row = _curve(design, 4000).table.iloc[0]
    lower, upper = _interval(row)
    assert lower <= 0.05 <= upper, row.to_dict()
    assert row["analytic_power"] == pytest.approx(0.05, abs=1e-12)


# --- formulas -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_exp, n_con, p_exp, p_con, hazard_ratio", [
    (150, 150, 0.6, 0.7, 0.7), (200, 100, 0.3, 0.4, 0.75), (80, 160, 0.5, 0.45, 1.3), (421, 421, 0.25, 0.35, 0.7),
])
def test_freedman_power_is_lifelines_power_under_cph(n_exp, n_con, p_exp, p_con, hazard_ratio):
    """lifelines keeps the near tail only; adding the far tail Phi(-x - z) gives ours exactly."""
    from lifelines.statistics import power_under_cph

    theirs = power_under_cph(n_exp, n_con, p_exp, p_con, hazard_ratio, alpha=0.05)
    z = ndtri(0.975)
    far_tail = ndtr(-ndtri(theirs) - 2 * z)
    events = n_exp * p_exp + n_con * p_con
    ours = freedman_power(events, hazard_ratio, alpha=0.05, allocation=n_exp / (n_exp + n_con))
    assert ours == pytest.approx(theirs + far_tail, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("ratio, p_exp, p_con, hazard_ratio, power", [
    (1.0, 0.25, 0.35, 0.7, 0.8), (2.0, 0.3, 0.4, 0.75, 0.9), (0.5, 0.5, 0.45, 1.3, 0.8),
])
def test_freedman_sample_size_is_lifelines(ratio, p_exp, p_con, hazard_ratio, power):
    from lifelines.statistics import sample_size_necessary_under_cph

    theirs = sample_size_necessary_under_cph(power, ratio, p_exp, p_con, hazard_ratio, alpha=0.05)
    share = ratio / (1 + ratio)
    events = freedman_events(hazard_ratio, power, 0.05, share)
    total = sample_size(events, share * p_exp + (1 - share) * p_con)
    assert (math.ceil(total * share), math.ceil(total * (1 - share))) == theirs


def test_published_numbers():
    # lifelines' documented example of sample_size_necessary_under_cph: (421, 421)
    total = sample_size(freedman_events(0.7, 0.8, 0.05, 0.5), 0.5 * 0.25 + 0.5 * 0.35)
    assert math.ceil(total / 2) == 421
    # Schoenfeld (1983): 4 (z_0.975 + z_0.8)^2 / log(0.7)^2 = 246.8 events (the 247)
    assert schoenfeld_events(0.7) == pytest.approx(4 * (1.959964 + 0.841621) ** 2 / np.log(0.7) ** 2, rel=1e-6)
    # two-sided 5%, 90% power, HR 0.5: 87.4 events (88 in the usual tables)
    assert math.ceil(schoenfeld_events(0.5, power=0.9)) == 88
    # the two formulas' events differ by ((1 + HR) / (1 - HR))^2 log(HR)^2 / 4 (1:1)
    assert freedman_events(0.7) / schoenfeld_events(0.7) == pytest.approx(
        (1.7 / 0.3) ** 2 / 4 * np.log(0.7) ** 2, rel=1e-12)


def test_formulas_at_the_null_and_edges():
    assert schoenfeld_power(100, 1.0) == pytest.approx(0.05, abs=1e-15)
    assert freedman_power(100, 1.0) == pytest.approx(0.05, abs=1e-15)
    assert two_proportion_power(0.2, 0.2, 500) == pytest.approx(0.05, abs=1e-12)
    assert two_proportion_power(0.10, 0.15, 10_000) > 0.999
    # unequal allocation costs events: 2:1 needs 9/8 of the 1:1 events
    assert schoenfeld_events(0.7, allocation=2 / 3) / schoenfeld_events(0.7) == pytest.approx(9 / 8)
    # no censoring: every event observed; instant analysis: none
    assert event_probability_exponential(0.1, 0.7, follow_up_months=None) == 1.0
    assert event_probability_exponential(0.1, 0.7, follow_up_months=1e-12) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="'allocation'"):
        schoenfeld_power(100, 0.7, allocation=1.0)


def test_wilson_interval_is_scipy_wilson():
    for successes, trials in [(0, 10), (5, 10), (3200, 4000), (4000, 4000), (17, 250)]:
        lower, upper = wilson_interval(successes, trials)
        expected = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
        assert (lower, upper) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_crossing_is_exact_on_a_normal_power_curve():
    """Probit-linear in sqrt(n): the search recovers the formula's n from a coarse grid."""
    slope = (ndtri(0.975) + ndtri(0.8)) / np.sqrt(370.3)
    n = np.array([100, 200, 300, 400, 500])
    power = ndtr(slope * np.sqrt(n) - ndtri(0.975))
    assert crossing(n, power, 0.8) == (371.0, "inside")
    assert crossing(n, power, 0.1) == (100.0, "at_or_below")
    assert math.isnan(crossing(n, power, 0.99)[0]) and crossing(n, power, 0.99)[1] == "beyond"


# --- replicates: independent of workers and batching; trials and cohorts ------------------------

def test_replicates_do_not_depend_on_workers():
    design = _textbook(sample_sizes=[40, 80])
    one = simulate_replicates(design, 12, SEED)
    two = simulate_replicates(design, 12, SEED, LocalExecutor(2))
    for name in one.columns:
        np.testing.assert_array_equal(one.columns[name], two.columns[name])
    # a smaller run is the first replicates and patients of a larger one
    small = simulate_replicates(design.model_copy(update={"sample_sizes": [30]}), 5, SEED)
    np.testing.assert_array_equal(small.columns["time_months"], one.columns["time_months"][:5, :30])


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


_TRIAL = f"""
kind = "trial"
name = "tiny trial"
control = "{ROOT / 'scenarios' / 'yearly.toml'}"
experimental = "{ROOT / 'scenarios' / 'baseline.toml'}"
accrual_months = 12.0
follow_up_months = 12.0
dropout_per_year = 0.05
sample_sizes = [20, 40]
replicates = 3
"""


def test_trial_replicates_do_not_depend_on_workers(tmp_path):
    design = load_design(_write(tmp_path, "trial.toml", _TRIAL))
    one = simulate_replicates(design, 3, SEED)
    two = simulate_replicates(design, 3, SEED, LocalExecutor(2))
    for name in one.columns:
        np.testing.assert_array_equal(one.columns[name], two.columns[name])
    arm = one.columns["arm"]
    assert (arm[:, :40].sum(axis=1) == 20).all()  # permuted blocks of 2: exactly 1:1
    table = power_curve(one).table
    assert set(table["endpoint"]) == {"os", "rmst", "reresection", "dfs"}
    assert table["power"].between(0, 1).all()
    # a log-rank test is always defined; an RMST difference is not where an arm has no death yet
    assert (table.loc[table["test"] == "logrank", "failed"] == 0).all()


# --- bad design files -----------------------------------------------------------------------------

_EXPONENTIAL = """
kind = "exponential"
name = "x"
hazard_ratio = 0.7
sample_sizes = [100, 200]
"""


@pytest.mark.parametrize("old, new, message", [
    ('kind = "exponential"', 'kind = "survey"', r"kind: must be one of exponential, trial, cohort$"),
    ('kind = "exponential"', 'kind = "exponental"', r"kind: must be one of exponential, trial, cohort; did you mean 'exponential'\?$"),
    ("hazard_ratio = 0.7", "hazard_ratio = -0.7", r"hazard_ratio: Input should be greater than 0 \(got -0.7\)"),
    ("hazard_ratio = 0.7", "hazard_ratio = 0.7\nhazard = 2", r"hazard: unknown key"),
    ("[100, 200]", "[200, 100]", r"sample_sizes: .*must be strictly increasing"),
    ("[100, 200]", "[1, 200]", r"sample_sizes.0: Input should be greater than or equal to 2 \(got 1\)"),
    ('name = "x"', 'name = "x"\nalpha = 1.5', r"alpha: Input should be less than 1 \(got 1.5\)"),
    ('name = "x"', 'name = "x"\nevents = 150', r"events: must not exceed the smallest sample size 100 \(got 150\)"),
    ('name = "x"', 'name = "x"\naccrual_months = 12', r"accrual_months: needs follow_up_months"),
    ('name = "x"', 'name = "x"\nallocation = [1, 0]', r"allocation.1: Input should be greater than 0"),
])
def test_bad_exponential_design(tmp_path, old, new, message):
    assert old in _EXPONENTIAL
    path = _write(tmp_path, "bad.toml", _EXPONENTIAL.replace(old, new, 1))
    with pytest.raises(InputError, match=r"^bad.toml: " + message):
        load_design(path)


_COHORT = """
kind = "cohort"
name = "x"
covariate = "chemoradiation"
endpoint = "pelvis"
sample_sizes = [50, 100]
"""


@pytest.mark.parametrize("old, new, message", [
    ('"chemoradiation"', '"radiotherapy"',
     r"covariate: must be a column of the patient table \(.*\); got 'radiotherapy'"),
    ('"chemoradiation"', '"primary_operation"', r"equals: is needed for the text column 'primary_operation'"),
    ('"chemoradiation"', '"age_years"', r"above: is needed for a log-rank test on the numeric column 'age_years'"),
    ('"pelvis"', '"bone"',
     r"endpoint: Input should be 'os', 'dfs', 'pelvis', 'liver', 'lung' or 'other' \(got 'bone'\)"),
    ('name = "x"', 'name = "x"\npolicy = "no-such-policy.toml"', r"policy: no file 'no-such-policy.toml' under .* or among the packaged scenarios"),
    ('name = "x"', 'name = "x"\ntests = ["wilcoxon"]',
     r"tests.0: Input should be 'logrank' or 'cox' \(got 'wilcoxon'\)"),
])
def test_bad_cohort_design(tmp_path, old, new, message):
    path = _write(tmp_path, "bad.toml", _COHORT.replace(old, new, 1))
    with pytest.raises(InputError, match=r"^bad.toml: " + message):
        load_design(path)


@pytest.mark.parametrize("path", sorted(DESIGNS.glob("*.toml")), ids=lambda p: p.name)
def test_every_power_design_loads_and_runs_on_a_few_patients(path):
    design = load_design(path)
    small = design.model_copy(update={"sample_sizes": [20, 30]})
    table = power_curve(simulate_replicates(small, 2, SEED)).table
    assert list(table["n"].unique()) == [20, 30] and table["power"].between(0, 1).all()


def test_the_example_designs_are_there():
    assert {p.name for p in DESIGNS.glob("*.toml")} >= {"exponential.toml", "trial.toml", "cohort-chemoradiation.toml"}


# --- the command ------------------------------------------------------------------------------------

def _command(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register_power(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["power", *argv])
    return args.handler(args)


def test_command_writes_csv_markdown_and_figure(tmp_path, capsys):
    design = _write(tmp_path, "cohort.toml", _COHORT.replace("[50, 100]", "[40, 80]"))
    out = tmp_path / "out"
    assert _command(str(design), "--out", str(out), "--reps", "4", "--seed", "3", "--workers", "1") == 0
    assert {p.name for p in out.iterdir()} == {"power.csv", "power.md", "power.png", "power.json",
                                               "report.html", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["replicates"] == 4 and manifest["design_file"] == str(design)
    assert len(manifest["parameter_hash"]) == 16 and "numpy" in manifest["versions"]
    table = pd.read_csv(out / "power.csv")
    assert {"n", "events", "power", "power_lower", "power_upper", "analytic_power"} <= set(table.columns)
    assert list(table["n"]) == [40, 80, 40, 80] and list(table["test"]) == ["logrank"] * 2 + ["cox"] * 2
    assert (out / "power.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "power.md").read_text()
    assert "| endpoint | test | patients |" in markdown and "Smallest sample size" in markdown
    assert "power (Schoenfeld)" not in markdown      # the formula's column already, not twice
    assert "pelvis (logrank, one analysis): 80% power " in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "Smallest sample size reaching the target" in page
    assert "-0.000" not in page and "-0.000" not in markdown


def test_command_rejects_bad_options(tmp_path):
    with pytest.raises(InputError, match=r"^replicates: must be a positive number of replicate trials, at most 1,000,000 \(got 0\)"):
        _command(str(EXPONENTIAL), "--out", str(tmp_path / "a"), "--reps", "0")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InputError, match=r"^--out: must be a new or empty directory"):
        _command(str(EXPONENTIAL), "--out", str(tmp_path / "full"))
    with pytest.raises(InputError, match=r"no-such.toml: no such file"):
        _command(str(tmp_path / "no-such.toml"), "--out", str(tmp_path / "b"))


def test_a_null_design_rejects_at_alpha_and_reports_without_error(tmp_path):
    """Hazard ratio 1: the simulated rejection rate is the type I error, inside its Monte Carlo
    interval around alpha; the formula needs infinitely many patients and says so."""
    import re

    import sim
    from sim.reports.power import describe_smallest

    text = re.sub(r"(?m)^hazard_ratio = .*$", "hazard_ratio = 1.0", EXPONENTIAL.read_text())
    text = re.sub(r"(?m)^sample_sizes = .*$", "sample_sizes = [100, 200]", text)
    design = _write(tmp_path, "null.toml", text)
    curve = sim.power(design, replicates=400, seed=SEED)
    table = curve.table
    assert ((table.power_lower <= 0.05) & (0.05 <= table.power_upper)).all(), table
    lines = describe_smallest(curve)
    assert lines and all("formula: not reached" in line for line in lines)


def test_power_help_names_every_output_and_resume(capsys):
    with pytest.raises(SystemExit):
        _command("--help")
    text = " ".join(capsys.readouterr().out.split())
    for name in ("report.html", "power.csv", "power.md", "power.png", "looks.png", "power.json",
                 "manifest.json", "--resume"):
        assert name in text, name
