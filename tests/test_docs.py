"""The repository stands alone: the generated reference is current, the public API is listed and
documented, the README's example runs, and no file sends a reader outside the repository."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sim
from conftest import ROOT
from sim.reports.reference import inputs_reference, outputs_reference


@pytest.mark.parametrize("name, make", [("inputs.md", inputs_reference), ("outputs.md", outputs_reference)])
def test_the_reference_is_current(name, make):
    """Regenerate with: python -m sim.reports.reference docs/"""
    assert (ROOT / "docs" / name).read_text() == make(), f"docs/{name} is stale"


def test_the_reference_names_every_key_of_the_files_people_write():
    text = inputs_reference()
    for key in ("`growth.doubling_time_median_months`", "`phase[].interval_months`",
                "`modality.NAME.sensitivity.liver.value`", "`uncertainty.draws`", "`hazard_ratio`"):
        assert key in text, key


def test_the_public_api_is_listed_and_documented():
    assert {"simulate_cohort", "compare", "power", "load_params", "load_policy"} <= set(sim.__all__)
    for name in sim.__all__:
        if name == "Design":   # a union of the three design classes, each documented
            continue
        item = getattr(sim, name)
        assert item.__doc__ and item.__doc__.strip() and not item.__doc__.startswith(name + "("), name
    assert "simulate_cohort" in dir(sim)


def test_the_example_runs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--small"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "facs-minimum" in done.stdout and "schoenfeld_power" in done.stdout


def test_no_file_sends_a_reader_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    outside = []
    for name in tracked:
        # test_targets.py checks the targets' quotes against the paper when the paper is there
        if name.endswith((".md", ".toml", ".py")) and name not in ("tests/test_targets.py",
                                                                   "tests/test_docs.py"):
            text = (ROOT / name).read_text()
            if "../shared" in text or "DESIGN.md" in text or "STYLE.md" in text:
                outside.append(name)
    assert outside == []


def test_the_architecture_page_names_the_functions_that_hold_each_rule():
    # docs/architecture.md says which module holds which rule: every function it names exists
    import importlib
    import re

    rows = re.findall(r"^\| [^|]+ \| ([^|]+) \| `(sim/[\w/]+)\.py` \|$",
                      (ROOT / "docs" / "architecture.md").read_text(), flags=re.M)
    assert len(rows) >= 15
    for functions, path in rows:
        module = importlib.import_module(path.replace("/", "."))
        for name in re.findall(r"`(\w+)`", functions):
            assert callable(getattr(module, name, None)), f"{path}.py has no {name}"
