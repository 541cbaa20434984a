"""Bad input: one line naming the field and what is allowed, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import BASELINE, packaged
from sim.cli import main


def _run(capsys, tmp_path, *args):
    out = tmp_path / "out"
    code = main(["cohort", "--n", "20", "--seed", "1", "--out", str(out), *args])
    err = capsys.readouterr().err
    return code, err, out


def _edited(tmp_path, source, old, new, name="edited.toml"):
    text = source.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], r"--n: must be a positive number of patients, at most 100,000,000 \(got 0\)"),
    (["--n", "-5"], r"--n: must be a positive number of patients, at most 100,000,000 \(got -5\)"),
    (["--n", "ten"], r"--n.*must be an integer \(got 'ten'\)"),
    (["--design", "trial"], r"--design: must be one of paper, horizon, lifetime \(got 'trial'\)"),
    (["--primary", "anus"], r"--primary: must be one of rectum, colon, both \(got 'anus'\)"),
    (["--years", "-1", "--design", "horizon"], r"--years: must be a positive number of years"),
    (["--policy", "no/such/file.toml"], r"no/such/file.toml: no such file"),
    (["--params", "missing.toml"], r"missing.toml: no such file"),
    (["--chunk-size", "0"], r"--chunk-size: must be a positive number"),
])
def test_bad_option(capsys, tmp_path, args, message):
    code, err, out = _run(capsys, tmp_path, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_probability_above_one(capsys, tmp_path):
    params = _edited(tmp_path, packaged("data/params.toml"), "complication_prob = { value = 0.199",
                     "complication_prob = { value = 1.5")
    code, err, out = _run(capsys, tmp_path, "--params", str(params))
    assert code == 2 and not out.exists()
    assert "perioperative.complication_prob: Input should be less than or equal to 1 (got 1.5)" in err


def test_negative_interval(capsys, tmp_path):
    policy = _edited(tmp_path, BASELINE, "interval_months = 3", "interval_months = -3")
    code, err, out = _run(capsys, tmp_path, "--policy", str(policy))
    assert code == 2 and not out.exists()
    assert "phase.0.interval_months: Input should be greater than 0 (got -3)" in err


def test_unknown_key(capsys, tmp_path):
    policy = _edited(tmp_path, BASELINE, "[[phase]]", "colour = 'blue'\n\n[[phase]]")
    code, err, _ = _run(capsys, tmp_path, "--policy", str(policy))
    assert code == 2 and "colour: unknown key" in err
    params = _edited(tmp_path, packaged("data/params.toml"), "[treatment]",
                     "[treatment]\nmagic = { value = 1, source = \"assumption: x\" }", "p.toml")
    code, err, _ = _run(capsys, tmp_path, "--params", str(params))
    assert code == 2 and "treatment.magic: unknown key" in err


@pytest.mark.parametrize("old, new, message", [
    ("interval_months = 3", "interval_month = 3",
     "phase.0.interval_month: unknown key; did you mean 'interval_months'? (allowed: from_months, "
     "interval_months, modalities, to_months)"),
    ("specificity = { value = 0.95", "specificty = { value = 0.95",
     "modality.ct_cap.specificty: unknown key; did you mean 'specificity'?"),
])
def test_a_misspelt_key_is_named_with_the_nearest_allowed_one(capsys, tmp_path, old, new, message):
    policy = _edited(tmp_path, BASELINE, old, new)
    code, err, out = _run(capsys, tmp_path, "--policy", str(policy))
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert message in err, err
    params = _edited(tmp_path, packaged("data/params.toml"), "late_share =", "late_shar =", "p.toml")
    code, err, _ = _run(capsys, tmp_path, "--params", str(params))
    assert "recurrence.late_shar: unknown key; did you mean 'late_share'?" in err, err


@pytest.mark.parametrize("command", ["cohort", "run", "power", "summarize", "calibrate", "validate"])
def test_help_shows_every_default(capsys, command):
    """Every option has a text, and every default shows: appended as "(default: X)", or, where
    the default is None (the option left out), said by the text itself."""
    import argparse

    from sim.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    with pytest.raises(SystemExit):
        sub.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for action in sub._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, action.dest
        if action.default not in (None, False) and not action.required:
            assert f"(default: {action.default})" in text, action.dest
        elif action.default is None and not action.required:
            assert "default" in " ".join(action.help.split()), action.dest


def test_missing_key_and_missing_source(capsys, tmp_path):
    params = _edited(tmp_path, packaged("data/params.toml"), "death_90d_prob = {", "# death_90d_prob = {")
    code, err, _ = _run(capsys, tmp_path, "--params", str(params))
    assert code == 2 and "perioperative.death_90d_prob: Field required" in err
    params = _edited(tmp_path, packaged("data/params.toml"), 'source = "study: \'the perioperative',
                     'source = "I think: \'the perioperative', "q.toml")
    code, err, _ = _run(capsys, tmp_path, "--params", str(params))
    assert code == 2 and "complication_prob.source" in err and "must start with one of" in err


def test_malformed_toml(capsys, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'x'\n[[phase]\n")
    code, err, out = _run(capsys, tmp_path, "--policy", str(broken))
    assert code == 2 and "broken.toml: not valid TOML" in err and not out.exists()


def test_unknown_modality(capsys, tmp_path):
    policy = _edited(tmp_path, BASELINE, 'modalities = ["ct_cap", "cea"]', 'modalities = ["mri"]')
    code, err, _ = _run(capsys, tmp_path, "--policy", str(policy))
    assert code == 2 and "unknown modality 'mri' (defined: cea, ct_cap)" in err


def test_existing_non_empty_out(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err, _ = _run(capsys, tmp_path)
    assert code == 2 and "--out: must be a new or empty directory" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sim", "cohort", "--n", "0", "--out",
                           str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "crlm-sim: error: --n: must be a positive number of patients, at most 100,000,000 (got 0)"


def test_a_good_run_writes_everything(capsys, tmp_path):
    code, err, out = _run(capsys, tmp_path, "--primary", "both")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "manifest.json", "patients.parquet"]
    assert not list(tmp_path.glob(".*partial"))
    assert main(["summarize", str(out)]) == 0  # reads the dataset the cohort command wrote
    assert (out / "summary.md").stat().st_size > 500 and (out / "survival.png").exists()


@pytest.mark.parametrize("old, new, message", [
    ('adherence = { value = 0.90', 'adherence = { value = "0.9"', r"adherence: Input should be a valid number"),
    ('adherence = { value = 0.90', 'adherence = { value = true', r"adherence: Input should be a valid number"),
    ("interval_months = 3", "interval_months = inf", r"phase.0.interval_months: Input should be a finite number"),
    ("cost = { value = 450.0", "cost = { value = inf", r"modality.ct_cap.cost: Input should be a finite number"),
])
def test_nonsense_in_a_policy_is_refused_not_coerced(capsys, tmp_path, old, new, message):
    code, err, out = _run(capsys, tmp_path, "--policy", str(_edited(tmp_path, BASELINE, old, new)))
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err


@pytest.mark.parametrize("old, new, message", [
    ("age_min_years = { value = 25.0", "age_min_years = { value = 90.0",
     "cohort: age_min_years must be below age_max_years"),
    ('accrual_end = { value = "2005-12-31"', 'accrual_end = { value = "1980-01-01"',
     "cohort: accrual_start must come before accrual_end"),
    ("complication_prob = { value = 0.199", 'complication_prob = { value = "0.199"',
     "perioperative.complication_prob: Input should be a valid number"),
    ("spread_rate_per_month = { value = ", "spread_rate_per_month = { value = inf, x = ",
     "spread_rate_per_month"),
])
def test_nonsense_in_the_parameters_is_refused(capsys, tmp_path, old, new, message):
    params = _edited(tmp_path, packaged("data/params.toml"), old, new, "p.toml")
    code, err, out = _run(capsys, tmp_path, "--params", str(params))
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert message in err, err


@pytest.mark.parametrize("years", ["inf", "nan", "1000"])
def test_an_unbounded_horizon_is_refused(capsys, tmp_path, years):
    code, err, out = _run(capsys, tmp_path, "--design", "horizon", "--years", years)
    assert code == 2 and not out.exists()
    assert "--years: must be a positive number of years, at most 100" in err, err


def test_unreadable_input_files_get_one_line(capsys, tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    code, err, out = _run(capsys, tmp_path, "--policy", str(binary))
    assert code == 2 and "binary.toml: not valid TOML (not UTF-8 text)" in err and not out.exists()
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    code, err, out = _run(capsys, tmp_path, "--params", str(folder))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["cohort", "--n", "10", "--replicate", "-1"], "--replicate: must be a non-negative integer (got -1)"),
    (["validate", "--seed", "-1"], "--seed: must be a non-negative integer (got -1)"),
    (["calibrate", "--seed", "-1"], "--seed: must be a non-negative integer (got -1)"),
])
def test_negative_seeds_and_replicates(capsys, tmp_path, argv, message):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_summarize_of_a_table_that_is_not_a_cohort(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cases = {"empty": b"", "corrupt": bytes(range(200))}
    for name, data in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "patients.parquet").write_bytes(data)
    (tmp_path / "columnless").mkdir()
    pq.write_table(pa.table({}), tmp_path / "columnless" / "patients.parquet")
    (tmp_path / "zero").mkdir()
    pq.write_table(pa.table({c: pa.array([], t) for c, t in (
        ("primary_site", pa.string()), ("os_months", pa.float64()), ("death", pa.bool_()),
        ("dfs_months", pa.float64()), ("dfs_event", pa.bool_()))}),
        tmp_path / "zero" / "patients.parquet")
    for name in ("empty", "corrupt", "columnless", "zero"):
        assert main(["summarize", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "is not a cohort written by crlm-sim" in err, err


@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", ".."])
def test_a_comparison_name_never_sends_the_default_output_outside_runs(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "c.toml"
    spec.write_text(f'name = "{name}"\nreference = "baseline"\npolicies = ["baseline.toml"]\n'
                    "[cohort]\npatients = 20\n")
    assert main(["run", str(spec), "--workers", "1"]) == 0
    written = [p for p in (tmp_path / "runs").iterdir()]
    assert len(written) == 1 and (written[0] / "results.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "runs"]
