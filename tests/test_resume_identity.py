"""Runs that stay whole. A run's identity is its content: `--resume` refuses, in one line, a run
whose policy or comparison files were edited since it was interrupted (even without a change of
name); options that cannot run are refused before anything is created; `power` and `validate`
write all or nothing and keep a second run out."""

from __future__ import annotations

import fcntl
import shutil

import pytest

import sim
from conftest import BASELINE
from sim.errors import InputError


class _StopAfterOneUnit:
    """An executor that computes one unit, then is interrupted (as Ctrl-C would)."""

    workers = 1

    def run(self, fn, units, on_result):
        on_result(fn(next(iter(units))))
        raise KeyboardInterrupt

    def close(self):
        pass


def _edited_policy(tmp_path, interval: str):
    path = tmp_path / "policy.toml"
    path.write_text(BASELINE.read_text().replace("interval_months = 3", f"interval_months = {interval}"))
    return path


def test_a_cohort_resumed_with_an_edited_policy_is_refused(tmp_path):
    policy, out = _edited_policy(tmp_path, "3"), tmp_path / "cohort"
    with pytest.raises(KeyboardInterrupt):
        sim.write_cohort(out, 30, seed=1, policy=policy, chunk_size=10, executor=_StopAfterOneUnit())
    _edited_policy(tmp_path, "4")   # same name, another schedule
    with pytest.raises(InputError, match=r"^--resume: the run in .* was started with other options"):
        sim.write_cohort(out, 30, seed=1, policy=policy, chunk_size=10, resume=True)
    _edited_policy(tmp_path, "3")   # the original file: the run finishes
    sim.write_cohort(out, 30, seed=1, policy=policy, chunk_size=10, resume=True)
    assert (out / "manifest.json").exists()


def test_a_comparison_resumed_with_an_edited_policy_is_refused(tmp_path):
    policy = _edited_policy(tmp_path, "3")
    spec = tmp_path / "comparison.toml"
    spec.write_text(f'name = "c"\nreference = "baseline"\npolicies = ["{policy}", "symptoms-only.toml"]\n'
                    "[cohort]\npatients = 40\npatients_per_department = 20\n")
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        sim.compare(spec, out=out, executor=_StopAfterOneUnit())
    _edited_policy(tmp_path, "4")
    with pytest.raises(InputError, match=r"^--resume: the run in .* was started with other options"):
        sim.compare(spec, out=out, resume=True)


def test_too_many_draws_are_refused_before_anything_is_created(tmp_path):
    spec = tmp_path / "comparison.toml"
    spec.write_text('name = "c"\nreference = "baseline"\npolicies = ["baseline.toml"]\n'
                    "[cohort]\npatients = 40\n[uncertainty]\ndraws = 100000\n")
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"^uncertainty.draws: at most \d+ \(the posterior sample's size\)"):
        sim.compare(spec, out=out)
    assert list(tmp_path.iterdir()) == [spec]


class _Failing:
    workers = 1

    def run(self, fn, units, on_result):
        raise KeyboardInterrupt

    def close(self):
        pass


def test_power_output_is_staged_and_a_second_run_is_kept_out(tmp_path):
    from conftest import ROOT

    design = ROOT / "scenarios" / "power" / "exponential.toml"
    out = tmp_path / "power"
    with pytest.raises(KeyboardInterrupt):
        sim.power(design, replicates=20, out=out, executor=_Failing())
    staging = tmp_path / ".power.partial"            # nothing half-written in --out: the
    assert [p.name for p in tmp_path.iterdir()] == [staging.name]   # run waits for --resume
    (staging / "lock").write_text('{"pid": 4242, "started": "2026-01-01 00:00:00"}')
    with open(staging / "lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match=r"^--out: another crlm-sim run \(pid 4242, started "
                                             r"2026-01-01 00:00:00\) is writing"):
            sim.power(design, replicates=20, out=out)
    with pytest.raises(InputError, match=r"^--out: a run of .* was interrupted"):  # lock free
        sim.power(design, replicates=20, out=out)
    shutil.rmtree(staging)
    sim.power(design, replicates=20, out=out)
    assert {p.name for p in out.iterdir()} == {"power.csv", "power.md", "power.png", "power.json",
                                               "report.html", "manifest.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["power"]


def test_an_interrupted_power_run_resumes_to_the_same_bytes(tmp_path):
    """A power run interrupted after one unit of replicates, then resumed, simulates only the
    units it had not kept and writes the files of an uninterrupted run, byte for byte; resumed
    with another seed, or without resume, it is refused."""
    from conftest import ROOT

    design = ROOT / "scenarios" / "power" / "noninferiority.toml"   # interim looks: looks.png
    options = dict(replicates=6, seed=5)
    whole = tmp_path / "whole"
    sim.power(design, out=whole, **options)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        sim.power(design, out=out, executor=_StopAfterOneUnit(), **options)
    kept = sorted(p.name for p in (tmp_path / ".resumed.partial" / "replicates").iterdir())
    assert len(kept) == 1 and not out.exists()
    with pytest.raises(InputError, match=r"^--out: a run of .* was interrupted in .*add --resume"):
        sim.power(design, out=out, **options)
    with pytest.raises(InputError, match=r"^--resume: the run in .* was started with other options"):
        sim.power(design, out=out, resume=True, replicates=6, seed=6)
    calls = []

    class Counting:
        def run(self, fn, units, on_result):
            for unit in units:
                calls.append(unit.first)
                on_result(fn(unit))

    sim.power(design, out=out, executor=Counting(), resume=True, **options)
    assert len(calls) >= 1 and 0 not in calls          # the kept unit is read, not simulated
    names = {p.name for p in whole.iterdir()}
    assert names == {p.name for p in out.iterdir()} and "looks.png" in names
    for name in sorted(names):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_validate_refuses_a_non_empty_out(tmp_path, capsys):
    from sim.cli import main

    out = tmp_path / "validation"
    out.mkdir()
    (out / "old.txt").write_text("")
    assert main(["validate", "--out", str(out), "--rectal-studies", "2", "--colon-studies", "1",
                 "--external-patients", "100"]) == 2
    assert "--out: must be a new or empty directory" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["old.txt"]
