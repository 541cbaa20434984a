"""The parameter file and the policies: every number has a source; every scenario loads and runs."""

from __future__ import annotations

import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from conftest import ROOT, packaged, simulate
from sim.model.params import SOURCE_PREFIXES, load_params
from sim.model.policy import load_policy


def _leaves(tree, prefix=""):
    for key, node in tree.items():
        if isinstance(node, dict) and "value" in node:
            yield f"{prefix}{key}", node
        elif isinstance(node, dict):
            yield from _leaves(node, f"{prefix}{key}.")


def _count_values(obj) -> int:
    return sum(_count_values(getattr(obj, f.name)) if is_dataclass(getattr(obj, f.name)) else 1
               for f in fields(obj))


def test_every_number_has_a_source():
    with packaged("data/params.toml").open("rb") as handle:
        tree = tomllib.load(handle)
    params, sources = load_params()
    leaves = dict(_leaves({k: v for k, v in tree.items() if k != "meta"}))
    assert set(sources) == set(leaves)
    assert all(s.startswith(SOURCE_PREFIXES) and len(s) > 15 for s in sources.values())
    # every value of the frozen parameters came from a sourced leaf (meta holds only text)
    assert _count_values(params) - len(tree["meta"]) == len(leaves)


def test_parameters_are_frozen():
    params, _ = load_params()
    with pytest.raises(AttributeError):
        params.cohort.male_share = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("path", sorted([*(ROOT / "scenarios").glob("*.toml"),
                                         *(ROOT / "scenarios").glob("trials/*.toml")]),
                         ids=lambda p: p.name)
def test_every_scenario_loads_and_runs(params, path: Path):
    policy = load_policy(path)
    assert policy.visit_months.ndim == 1 and (policy.site_sensitivity <= 1).all()
    patients, events = simulate(params, policy, n=40, seed=1)
    assert patients.num_rows == 40 and events.num_rows >= 80


def test_facs_arms_follow_the_published_schedules():
    """Primrose 2014: CEA every 3 months for 2 years, then every 6 months to 5 years; CT every 6
    months for 2 years, then yearly to 5 years; both; neither."""
    cea = [3, 6, 9, 12, 15, 18, 21, 24, 30, 36, 42, 48, 54, 60]
    ct = [6, 12, 18, 24, 36, 48, 60]
    arms = {name: load_policy(ROOT / "scenarios" / "trials" / f"facs-{name}.toml")
            for name in ("minimum", "cea", "ct", "cea-ct")}
    assert arms["minimum"].n_visits == 0
    assert arms["cea"].visit_months.tolist() == cea and set(arms["cea"].modalities) == {"cea"}
    assert arms["ct"].visit_months.tolist() == ct and set(arms["ct"].modalities) == {"ct_cap"}
    both = arms["cea-ct"]
    assert both.visit_months.tolist() == sorted(set(cea) | set(ct))
    assert [m for m, label in zip(both.visit_months, both.modalities) if "ct_cap" in label] == ct


def test_baseline_schedule_is_the_assumed_study_follow_up():
    policy = load_policy(ROOT / "scenarios" / "baseline.toml")
    assert policy.visit_months[:8].tolist() == [3, 6, 9, 12, 15, 18, 21, 24]
    assert policy.visit_months[8:14].tolist() == [30, 36, 42, 48, 54, 60]
    assert policy.visit_months[14:].tolist() == [72, 84, 96, 108, 120]
