"""The power report says which power belongs to which design, prints the boundaries as values of
one statistic with one sign, and draws every point it shows whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from sim.reports.power import _x_limit, display_table, render_markdown, which_power
from sim.studies.power import load_design, power_curve, simulate_replicates

EXPONENTIAL = ROOT / "scenarios" / "power" / "exponential.toml"
# Lan-DeMets O'Brien-Fleming-type efficacy boundaries, one-sided alpha 0.025, at information
# 0.5, 0.75 and 1 (as gsDesign's sfLDOF gives them, to 3 decimals)
OBRIEN_FLEMING_ONE_SIDED = [2.963, 2.359, 2.014]


@pytest.fixture(scope="module")
def noninferiority():
    design = load_design(EXPONENTIAL).model_copy(update=dict(
        hazard_ratio=1.0, hypothesis="non_inferiority", margin=1.3, alpha=0.025,
        looks=[0.5, 0.75, 1.0], futility="obrien-fleming", sample_sizes=[300, 500]))
    return power_curve(simulate_replicates(design, 40, 11))


def _looks_rows(markdown: str) -> list[list[str]]:
    lines = markdown.split("## Analyses")[1].splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| endpoint"))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[header:]
            if line.startswith("|")]


def test_boundaries_are_values_of_z_with_one_sign(noninferiority):
    markdown = render_markdown(noninferiority)
    rows = _looks_rows(markdown)
    header, body = rows[0], rows[2:]
    efficacy = header.index("efficacy boundary: success if z ≤")
    futility = header.index("futility boundary: stop if z ≥")
    assert "(-z)" not in markdown and "z = (log HR - log margin) / se" in markdown
    # success when z = (log HR - log margin) / se is low: the boundaries are negative z values
    first = [float(row[efficacy]) for row in body[:3]]
    np.testing.assert_allclose(first, [-b for b in OBRIEN_FLEMING_ONE_SIDED], atol=5e-4)
    # the futility boundary on the same z: above the efficacy one at the interim looks, and the
    # same value at the final analysis, where a trial either succeeds or does not
    table = noninferiority.table
    shown = [float(row[futility]) for row in body[:3]]
    np.testing.assert_allclose(shown, [-table.iloc[0][f"look{k}_futility_z"] for k in (1, 2, 3)],
                               atol=5e-4)
    assert shown[0] > first[0] and shown[1] > first[1] and shown[2] == pytest.approx(first[2], abs=1e-3)


def test_each_power_is_named_for_its_design(noninferiority):
    lines = which_power(noninferiority)
    assert len(lines) == 1 and "with 3 analyses" in lines[0]
    assert "power, one analysis (Schoenfeld) is that of the same trial analysed once" in lines[0]
    shown = display_table(noninferiority.table, noninferiority.design)
    assert "power, one analysis (Schoenfeld)" in shown.columns
    assert "power (Freedman)" not in shown.columns     # no value for a sequential test
    # the one-analysis power is above the three analyses' (their futility stops cost power)
    table = noninferiority.table
    assert (table["schoenfeld_power"] > table["analytic_power"]).all()
    assert "(cox_noninferiority, 3 analyses)" in render_markdown(noninferiority)


def test_the_axis_draws_the_last_point_whole():
    part = pd.DataFrame({"n": [100, 200, 300], "power": [0.3, 0.6, 0.8],
                         "analytic_power": [0.3, 0.6, 0.8]})
    shown, right = _x_limit(part)
    assert shown == 300 and right > 300
    # where the power has levelled off the axis stops at a simulated size, padded beyond it
    part = pd.DataFrame({"n": [100, 200, 300, 1000, 2000], "power": [0.5, 0.995, 1.0, 1.0, 1.0],
                         "analytic_power": [0.5, 0.992, 0.999, 1.0, 1.0]})
    shown, right = _x_limit(part)
    assert shown == 200 and right > 200
