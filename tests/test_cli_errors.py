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
    (["--n", "0"], r"--n: must be a positive number of patients \(got 0\)"),
    (["--n", "-5"], r"--n: must be a positive number of patients \(got -5\)"),
    (["--n", "ten"], r"--n.*must be an integer \(got 'ten'\)"),
    (["--design", "trial"], r"--design: must be one of paper, horizon \(got 'trial'\)"),
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
    assert done.stderr.strip() == "crlm-sim: error: --n: must be a positive number of patients (got 0)"


def test_a_good_run_writes_everything(capsys, tmp_path):
    code, err, out = _run(capsys, tmp_path, "--primary", "both")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "manifest.json", "patients.parquet"]
    assert not list(tmp_path.glob(".*partial"))
    assert main(["summarize", str(out)]) == 0  # reads the dataset the cohort command wrote
    assert (out / "summary.md").stat().st_size > 500 and (out / "survival.png").exists()
