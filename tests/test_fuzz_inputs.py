"""Hypothesis-generated policy, parameter, comparison and design files never produce a traceback.

Each example starts from a real file (so that most of it is valid and the fault sits deep in it)
and changes it at random: a key's value replaced by a value of any TOML type (huge, negative,
infinite, NaN, strings, booleans, arrays, tables), a key removed, or an unknown key added; or the
file is replaced by arbitrary text. The command then either runs (exit 0) or refuses in one line
(exit 2), and nothing else: any other exception fails the test.
"""

from __future__ import annotations

import json
import math
import tempfile
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BASELINE, ROOT, packaged
from sim.cli import main
from sim.errors import InputError
from sim.studies.comparison import load_comparison

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])  # capsys: read per call

_INT64 = 2 ** 63 - 1
_scalars = st.one_of(
    st.integers(-_INT64, _INT64),
    st.sampled_from([0, 1, -1, 2, 10 ** 12, 0.0, -0.0, 1e-9, 1e308, -1e308, math.inf, -math.inf,
                     math.nan, 0.5, 1.5, 480.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["", "0.9", "true", "baseline", "../x.toml", "/etc/passwd", "ct_cap"]),
)
_numbers = st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 1e4), st.floats(-1e6, 1e300),
                     st.sampled_from([0.0, 1e-300, 1e-9, 1.0, 1e6, 1e300]))
_counts = st.one_of(st.integers(0, 100), st.integers(-10, 10 ** 9))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)),
    max_leaves=6)


def _toml(value) -> str:
    """A value as TOML (inline tables and arrays; every key quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"


def _document(tree: dict) -> str:
    return "".join(f"{json.dumps(str(key))} = {_toml(value)}\n" for key, value in tree.items())


def _paths(tree, prefix=()):
    """Every (path to a key or item) in a parsed TOML tree."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, (dict, list)):
            yield from _paths(value, (*prefix, key))


def _at(tree, path):
    for part in path:
        tree = tree[part]
    return tree


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@st.composite
def _mutated(draw, source: Path) -> str:
    if draw(st.integers(0, 9)) == 0:           # sometimes: arbitrary text
        return draw(st.text(max_size=200))
    tree = tomllib.loads(source.read_text())
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(tree))
        numbers = [p for p in paths if _is_number(_at(tree, p))]
        action = draw(st.sampled_from(["number"] * 3 * bool(numbers) + ["replace", "remove", "add"]))
        *parents, last = draw(st.sampled_from(numbers if action == "number" else paths))
        node = _at(tree, parents)
        if action == "number":               # valid in type, often in range, sometimes extreme
            node[last] = draw(_numbers if isinstance(node[last], float) else _counts)
        elif action == "replace":
            node[last] = draw(_values)
        elif action == "remove":
            del node[last]
        elif isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=10))] = draw(_values)
    return _document(tree)


def _runs_or_refuses(capsys, argv_of) -> None:
    with tempfile.TemporaryDirectory() as folder:
        code = main([str(a) for a in argv_of(Path(folder))])
        err = capsys.readouterr().err
        assert code in (0, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert len(err.strip().splitlines()) == 1, err
            assert not (Path(folder) / "out").exists()


@_SETTINGS
@given(text=_mutated(BASELINE))
def test_a_mutated_policy_runs_or_is_refused_in_one_line(capsys, text):
    def argv(folder):
        (folder / "p.toml").write_text(text)
        return ["cohort", "--n", "5", "--seed", "1", "--policy", folder / "p.toml", "--out",
                folder / "out"]
    _runs_or_refuses(capsys, argv)


@_SETTINGS
@given(text=_mutated(packaged("data/params.toml")))
def test_mutated_parameters_run_or_are_refused_in_one_line(capsys, text):
    def argv(folder):
        (folder / "params.toml").write_text(text)
        return ["cohort", "--n", "5", "--seed", "1", "--params", folder / "params.toml", "--out",
                folder / "out"]
    _runs_or_refuses(capsys, argv)


_SMALL_COMPARISON = ROOT / "scenarios" / "comparisons" / "rectal-pelvis.toml"


def _size(text: str) -> float:
    """Patient-lives a comparison would simulate (inf where it cannot tell)."""
    try:
        tree = tomllib.loads(text)
        cohort, uncertainty = tree.get("cohort", {}), tree.get("uncertainty", {})
        return (float(cohort.get("patients", math.inf)) * len(tree.get("policies", []))
                * max(float(uncertainty.get("draws", 0)), 1) * float(uncertainty.get("replicates", 1)))
    except (tomllib.TOMLDecodeError, TypeError, ValueError, AttributeError):
        return math.inf


@settings(_SETTINGS, max_examples=30)
@given(text=_mutated(_SMALL_COMPARISON))
def test_a_mutated_comparison_runs_or_is_refused_in_one_line(capsys, text):
    small = text.replace("6000", "40").replace('"../', '"')   # a few patients, packaged paths

    def argv(folder):
        (folder / "c.toml").write_text(small)
        return ["run", folder / "c.toml", "--out", folder / "out"]
    if _size(small) <= 20_000:        # a valid file this large would run for minutes: load only
        _runs_or_refuses(capsys, argv)
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "c.toml").write_text(small)
        try:
            load_comparison(Path(folder) / "c.toml")
        except InputError as error:
            assert len(str(error).splitlines()) == 1


@settings(_SETTINGS, max_examples=30)
@given(text=_mutated(ROOT / "scenarios" / "power" / "exponential.toml"))
def test_a_mutated_design_runs_or_is_refused_in_one_line(capsys, text):
    def argv(folder):
        (folder / "d.toml").write_text(text)
        return ["power", folder / "d.toml", "--reps", "3", "--out", folder / "out"]
    _runs_or_refuses(capsys, argv)


@settings(_SETTINGS, max_examples=12)
@given(text=_mutated(ROOT / "scenarios" / "economics" / "us.toml"))
def test_a_mutated_economics_file_runs_or_is_refused_in_one_line(capsys, text):
    def argv(folder):
        (folder / "e.toml").write_text(text)
        (folder / "c.toml").write_text(
            'name = "c"\nreference = "esmo"\npolicies = ["esmo.toml", "intensive.toml"]\n'
            "[cohort]\npatients = 30\nyears = 5\n[uncertainty]\ndraws = 2\n")
        return ["run", folder / "c.toml", "--economics", folder / "e.toml", "--out", folder / "out"]
    _runs_or_refuses(capsys, argv)
