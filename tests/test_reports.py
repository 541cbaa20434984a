"""Reports a reader can use: every policy's schedule and every metric's definition in the page,
costs that count every test and work-up, paired differences that are the differences of the
levels draw by draw, and the draws a ratio leaves out counted and said."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

import sim
from sim.reports.comparison import _schedule, _spread
from sim.studies.summaries import METRICS, PAIRED

POLICIES = ("baseline", "cea-only", "symptoms-only", "intensive")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    spec = folder / "comparison.toml"
    names = ", ".join(f'"{name}.toml"' for name in POLICIES)
    spec.write_text(f'name = "report-test"\ndescription = "Four policies, a few patients"\n'
                    f'reference = "baseline"\npolicies = [{names}]\n'
                    "[cohort]\npatients = 400\nyears = 10\n[uncertainty]\ndraws = 4\nseed = 3\n")
    sim.compare(spec, out=folder / "out")
    out = folder / "out"
    return {"out": out, "summary": pd.read_csv(out / "results.csv").set_index("policy"),
            "by_draw": pd.read_csv(out / "results_by_draw.csv"),
            "page": html.unescape((out / "report.html").read_text()),
            "markdown": (out / "results.md").read_text()}


def test_the_cost_counts_every_marker_test_and_work_up(run):
    """CEA-only has no imaging, yet costs its CEA tests ($30 each, one a visit) and the work-up of
    each false positive ($900): the frontier's axis, so it is not at zero."""
    cea = run["summary"].loc["cea-only"]
    assert cea["scans_per_patient"] == 0 and cea["cost_per_patient"] > 0
    by_draw = run["by_draw"][run["by_draw"]["scenario_id"] == "cea-only"]
    expected = 30.0 * by_draw["visits_per_patient"] + 900.0 * by_draw["workups_per_patient"]
    np.testing.assert_allclose(by_draw["cost_per_patient"], expected, rtol=1e-12)
    assert run["summary"].loc["symptoms-only", "cost_per_patient"] == 0


def test_paired_differences_are_the_differences_of_the_levels_draw_by_draw(run):
    by_draw = run["by_draw"].set_index(["scenario_id", "draw"])
    reference = by_draw.xs("baseline", level="scenario_id")
    for name in POLICIES:
        values = by_draw.xs(name, level="scenario_id")
        for metric in PAIRED:
            difference = (values[metric] - reference.loc[values.index, metric]).dropna()
            row = run["summary"].loc[name]
            if not len(difference):
                continue
            assert row[f"{metric}_difference"] == pytest.approx(difference.mean(), abs=1e-12)
            assert row[f"{metric}_difference_lower"] == pytest.approx(
                np.percentile(difference, 2.5), abs=1e-12)
            assert row[f"{metric}_difference_upper"] == pytest.approx(
                np.percentile(difference, 97.5), abs=1e-12)
    assert (run["summary"].loc["baseline", [f"{m}_difference" for m in PAIRED]] == 0).all()


def test_draws_left_out_of_the_ratio_are_counted_and_said(run):
    summary = run["summary"]
    counts = summary[["ratio_draws_used", "ratio_draws_no_additional_reresection",
                      "ratio_draws_no_additional_imaging"]]
    for name in POLICIES[1:]:
        assert counts.loc[name].sum() == summary.loc[name, "draws"] == 4
    # symptoms-only and CEA-only never buy re-resections with more imaging: every draw left out
    assert summary.loc["symptoms-only", "ratio_draws_used"] == 0
    assert np.isnan(summary.loc["symptoms-only", "scans_per_additional_curative"])
    assert re.search(r"symptoms-only: imaging per additional curative re-resection over 0 of 4 "
                     r"draws; left out \d+ draw\(s\) with no more curative re-resections than "
                     r"baseline and \d+ with no more imaging", run["page"])
    # where it is formed, the ratio is the mean over the draws used, of the per-draw ratios
    intensive = run["by_draw"][run["by_draw"]["scenario_id"] == "intensive"]
    used = intensive["scans_per_additional_curative"].dropna()
    assert len(used) == summary.loc["intensive", "ratio_draws_used"]
    if len(used):
        assert summary.loc["intensive", "scans_per_additional_curative"] == pytest.approx(used.mean())


def test_the_report_names_every_schedule_and_defines_every_metric(run):
    for name in POLICIES:
        policy = sim.load_policy(name)
        assert _schedule(policy) in run["page"], name
        assert _schedule(policy) in run["markdown"], name
    for label, unit, definition, _ in METRICS.values():
        for text in (run["page"], run["markdown"]):
            assert label in text and definition in text
    for text in (run["page"], run["markdown"]):
        assert "2.5th to the 97.5th percentile over those 4 draws" in text
        assert "common random numbers" in text
        assert "USD, price year not stated" in text
    assert "`" not in run["page"]                 # no Markdown leaking into the page
    assert "-0.000" not in run["page"] and "-0.00 " not in run["page"]
    assert "survival.png" not in re.sub(r'src="[^"]*"', "", run["page"])   # headings in words


@pytest.mark.parametrize("positions", [[0.5, 0.5, 0.5, 0.5], [0.0, 0.01, 0.99, 1.0],
                                       [0.9, 0.95, 0.97, 0.99, 1.0, 0.2]])
def test_frontier_labels_never_overlap(positions):
    placed = _spread(np.array(positions), 0.075)
    ordered = np.sort(placed)
    assert np.all(np.diff(ordered) >= 0.075 - 1e-12)
    assert ordered[-1] <= 1.0 + 1e-12


@pytest.mark.parametrize("design", ["paper", "horizon"])
def test_the_cohort_summary_reports_follow_up_by_reverse_kaplan_meier(design):
    """The printed median follow-up is lifelines' reverse Kaplan–Meier median (death censors),
    to the tally's 0.01-month bins; the median observed time is printed apart, labelled."""
    from lifelines import KaplanMeierFitter

    from sim.output.tally import _reverse_km_median, render, tally_of
    import pyarrow as pa

    cohort = sim.simulate_cohort(3000, seed=4, design=design, years=10)
    tally = tally_of(pa.Table.from_pandas(cohort.patients))
    for site, rows in cohort.patients.groupby("primary_site"):
        fitter = KaplanMeierFitter().fit(rows["os_months"], ~rows["death"])
        ours = _reverse_km_median(tally[site]["followup_histogram"], tally[site]["censored_histogram"])
        assert ours == pytest.approx(fitter.median_survival_time_, abs=0.0101), site
    text = render(tally, "x")
    assert "(reverse Kaplan–Meier); median observed time" in text
