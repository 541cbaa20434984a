"""The package as a user meets it: one naming rule, quiet when asked, errors in the API's words."""

from __future__ import annotations

import shutil

import pytest

import sim
from conftest import ROOT
from sim.errors import InputError
from sim.execution.executor import Progress
from sim.model.economics import load_economics


def test_packaged_scenarios_are_named_alike_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # nothing of the repository under the cwd
    assert sim.load_comparison("comparisons/facs").name == "facs"
    assert sim.load_comparison("comparisons/facs.toml").name == "facs"
    assert sim.load_design("power/exponential").kind == "exponential"
    assert load_economics("economics/us").currency == "USD"
    assert sim.load_policy("trials/facs-ct").name == "facs-ct"
    # a packaged comparison copied elsewhere keeps working: it names its policies by name
    shutil.copy(ROOT / "scenarios" / "comparisons" / "esmo-intensive-economics.toml", "copy.toml")
    copied = sim.load_comparison("copy.toml")
    assert [p.name for p in copied.policies] == ["esmo", "intensive"]
    assert copied.economics.name == "us"
    # a file's own folder comes first, then the packaged scenarios, with or without .toml
    (tmp_path / "mine.toml").write_text((ROOT / "scenarios" / "yearly.toml").read_text()
                                        .replace('name = "yearly"', 'name = "mine"'))
    (tmp_path / "c.toml").write_text('name = "c"\nreference = "esmo"\n'
                                     'policies = ["esmo", "mine", "intensive.toml"]\n'
                                     "[cohort]\npatients = 10\n")
    assert [p.name for p in sim.load_comparison("c.toml").policies] == [
        "esmo", "mine", "intensive"]


def test_a_miss_lists_the_nearest_packaged_names():
    with pytest.raises(InputError, match=r"^comparisons/fac: no such file .*nearest packaged "
                                         r"names: comparisons/facs"):
        sim.load_comparison("comparisons/fac")
    with pytest.raises(InputError, match=r"nearest packaged names: esmo"):
        sim.load_policy("esm")


def test_api_errors_name_the_api_arguments():
    with pytest.raises(InputError, match=r"^n: must be a positive number of patients"):
        sim.simulate_cohort(-5)
    with pytest.raises(InputError, match=r"^replicates: must be a positive number"):
        sim.power("power/exponential", replicates=0)
    with pytest.raises(TypeError, match=r"^design: a design file"):
        sim.power(None)
    with pytest.raises(InputError, match=r"^workers: must be a positive integer"):
        sim.compare("comparisons/facs", workers=0)


def test_the_command_line_names_its_flags_for_the_same_errors(capsys):
    from sim.cli import main

    assert main(["cohort", "--n", "0", "--out", "unused"]) == 2
    assert "crlm-sim: error: --n: must be a positive number" in capsys.readouterr().err


def _tiny(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\nreference = "esmo"\npolicies = ["esmo", "intensive"]\n'
                    "[cohort]\npatients = 300\npatients_per_department = 100\n"
                    "[uncertainty]\ndraws = 3\n")
    return spec


def test_compare_is_silent_when_asked_and_the_same_on_two_workers(tmp_path, capfd):
    one = sim.compare(_tiny(tmp_path), out=tmp_path / "one", progress=False)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    two = sim.compare(_tiny(tmp_path), out=tmp_path / "two", workers=2, keep_patients=False)
    assert capfd.readouterr().err == ""
    for name in one.tables():
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "one" / "patients").is_dir() and not (tmp_path / "two" / "patients").exists()


def test_progress_off_a_terminal_is_a_few_lines(capsys, monkeypatch):
    # a 1,000-unit run, a unit a second: at most a line per tenth of the units and per 30 s,
    # and one at the end
    clock = iter(float(t) for t in range(10_000))
    monkeypatch.setattr("sim.execution.executor.time.perf_counter", lambda: next(clock))
    bar = Progress(100_000, 1000, None)
    for _ in range(1000):
        bar.update(100)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert 2 <= len(lines) <= 11
    assert lines[-1].startswith("crlm-sim: unit 1000/1000, 100,000 patients")
    quiet = Progress(100, 10, False)
    for _ in range(10):
        quiet.update(10)
    assert capsys.readouterr().err == ""
