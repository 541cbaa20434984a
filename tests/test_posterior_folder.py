"""Issue 40: `crlm-sim posterior` refuses what cannot run, and every folder or file it would
resume from that is not its own, at the door: one line, exit status 2, no traceback, and no file
of --out changed. One run at the smallest settings the check accepts (about 10 s) makes the
folder the tests damage, each in its own copy."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from sim.cli import main

TINY = ["--design", "5", "--noise-studies", "2", "--studies", "1", "--chains", "1",
        "--steps", "1", "--posterior-size", "1", "--workers", "1"]


def _posterior(capsys, out, *extra) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["posterior", *TINY, "--out", str(out), *extra])
    return code, capsys.readouterr().err.strip().splitlines()


def _snapshot(folder):
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run at the smallest settings that run (they are the ones accepted)."""
    out = tmp_path_factory.mktemp("posterior") / "run"
    assert main(["posterior", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _refused(capsys, out, flag, *extra):
    """The command refused in one line naming `flag`, and nothing in `out` changed."""
    before = _snapshot(out) if out.exists() else None
    code, err = _posterior(capsys, out, *extra)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("crlm-sim: error: ") and flag in err[0], err
    assert "Traceback" not in err[0]
    assert (_snapshot(out) if out.exists() else None) == before
    return err[0]


def test_the_smallest_settings_run_and_are_recorded(finished):
    record = json.loads((finished / "run.json").read_text())
    assert {k: record[k] for k in ("seed", "design", "noise_studies", "studies", "chains",
                                    "steps")} == {"seed": 1, "design": 5, "noise_studies": 2,
                                                  "studies": 1, "chains": 1, "steps": 1}
    assert len(record["parameters"]) == 40
    assert len(pd.read_csv(finished / "posterior.csv")) == 1


@pytest.mark.parametrize("flag, value, allowed", [
    ("--design", "1", "at least 5"), ("--design", "2", "at least 5"),
    ("--design", "4", "at least 5"), ("--noise-studies", "1", "at least 2"),
    ("--seed", "-1", "non-negative"), ("--studies", "0", "positive"),
    ("--chains", "0", "positive"), ("--steps", "0", "positive"),
    ("--posterior-size", "0", "positive"), ("--posterior-size", "2", "--chains x --steps"),
])
def test_settings_that_cannot_run_are_refused_before_anything_is_made(capsys, tmp_path, flag,
                                                                      value, allowed):
    out = tmp_path / "new"
    line = _refused(capsys, out, flag, flag, value)
    assert allowed in line
    assert not out.exists()


def test_a_finished_seed_1_folder_is_not_reused_by_seed_2(capsys, copy):
    line = _refused(capsys, copy, "--seed", "--seed", "2")
    assert "made with --seed 1 (got 2)" in line and "--resume" in line
    # asking to resume it does not change its seed either
    _refused(capsys, copy, "--seed", "--seed", "2", "--resume")
    _refused(capsys, copy, "--design", "--design", "6")


def test_resume_continues_a_run_with_its_own_settings(capsys, copy):
    design = (copy / "design.csv").read_bytes()
    capsys.readouterr()
    assert main(["posterior", "--resume", "--posterior-size", "1", "--workers", "1",
                 "--out", str(copy)]) == 0
    assert (copy / "design.csv").read_bytes() == design
    assert json.loads((copy / "summary.json").read_text())["design"] == 5


def test_resume_of_nothing_is_refused(capsys, tmp_path):
    _refused(capsys, tmp_path / "none", "--resume", "--resume")
    assert not (tmp_path / "none").exists()


def _foreign_table(path):
    path.write_text("a,b\n1,2\n")


def _empty(path):
    path.write_bytes(b"")


def _damaged(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00\xff garbage")


def _other_seed(path):
    frame = pd.read_csv(path)
    frame.iloc[0, 1] += 0.5      # a parameter set that is not the prior's draw at this seed
    frame.to_csv(path, index=False)


def _duplicate_study(path):
    frame = pd.read_csv(path)
    frame["study"] = 0
    frame.to_csv(path, index=False)


def _other_chains(path):
    frame = pd.read_parquet(path)
    pd.concat([frame, frame.assign(chain=1)]).to_parquet(path, index=False)


def _no_parameter(path):
    pd.read_parquet(path).drop(columns=["recurrence.theta_liver"]).to_parquet(path, index=False)


@pytest.mark.parametrize("name, damage", [
    ("design.csv", _empty), ("design.csv", _damaged), ("design.csv", _foreign_table),
    ("design.csv", _other_seed),
    ("noise.csv", _empty), ("noise.csv", _damaged), ("noise.csv", _foreign_table),
    ("noise.csv", _duplicate_study),
    ("studies.csv", _empty), ("studies.csv", _damaged), ("studies.csv", _foreign_table),
    ("chains.parquet", _empty), ("chains.parquet", _damaged), ("chains.parquet", _foreign_table),
    ("chains.parquet", _other_chains), ("chains.parquet", _no_parameter),
])
def test_a_damaged_empty_or_foreign_state_file_is_refused_before_anything_is_written(
        capsys, copy, name, damage):
    damage(copy / name)
    line = _refused(capsys, copy, name)
    assert "--out" in line


def test_a_folder_without_its_record_is_refused(capsys, copy, tmp_path):
    (copy / "run.json").unlink()
    assert "no run.json" in _refused(capsys, copy, "--out")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "design.csv").write_text("point\n0\n")
    _refused(capsys, foreign, "--out")


def test_a_damaged_record_is_refused(capsys, copy):
    (copy / "run.json").write_text("{not json")
    _refused(capsys, copy, "run.json")
    (copy / "run.json").write_text(json.dumps({"seed": "one"}))
    _refused(capsys, copy, "run.json")


def test_a_sample_is_thinned_even_when_no_chain_moved():
    """At one step a chain may reject its only proposal: the sample is then its first state
    (it used to divide by the number of chains that moved, zero)."""
    from calibration.posterior_cli import _thinned
    from calibration.space import SPACE

    chains = pd.DataFrame({"chain": [0, 0, 1, 1], "step": [0, 1, 0, 1],
                           "accepted": [True, False, True, False],
                           "log_posterior": [0.0] * 4,
                           **{d.path: [1.0, 1.0, 2.0, 2.0] for d in SPACE}})
    sample = _thinned(chains, 2, seed=1)
    assert sorted(sample[SPACE[0].path]) == [1.0, 2.0] and set(sample["step"]) == {0}
