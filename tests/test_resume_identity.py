"""A run's identity is its content: `--resume` refuses, in one line, a run whose policy or
comparison files were edited since it was interrupted (even without a change of name); options
that cannot run are refused before anything is created."""

from __future__ import annotations

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
