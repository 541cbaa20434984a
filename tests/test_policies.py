"""Surveillance-policy scenarios: common random numbers, detection only at symptoms without
sensitivity, denser imaging never finds later, capacity that never binds changes nothing, and
every comparison file runs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, simulate
from sim.cli import main
from sim.studies.comparison import draw_parameters, load_comparison, run_units
from sim.execution.executor import LocalExecutor
from sim.model.policy import load_policy

SCENARIOS = ROOT / "scenarios"


def _policy(name):
    return load_policy(SCENARIOS / name)


def _first_onsets(events):
    e = events.to_pandas()
    e = e[e["event"].astype(str) == "onset"]
    return e.groupby("patient_id")[["time_months", "site"]].first()


def test_natural_history_is_the_same_under_every_policy(params):
    onsets = [_first_onsets(simulate(params, _policy(name), n=400, seed=3)[1])
              for name in ("baseline.toml", "intensive.toml", "symptoms-only.toml", "cea-only.toml")]
    for other in onsets[1:]:
        pd.testing.assert_frame_equal(onsets[0], other)


def test_without_sensitivity_recurrences_are_found_at_symptoms(params, tmp_path):
    text = (SCENARIOS / "baseline.toml").read_text()
    for name in ("liver", "lung", "pelvis", "other", "patient"):
        text = text.replace(f"sensitivity.{name} = {{ value = 0.", f"sensitivity.{name} = {{ value = 0.0, x = 0.")
    text = text.replace(", x = 0.", "0, source = \"assumption: none\" } #")
    path = tmp_path / "blind.toml"
    path.write_text(text)
    blind = load_policy(path)
    assert not blind.site_sensitivity.any() and not blind.patient_sensitivity.any()
    patients, events = simulate(params, blind, n=400, seed=4)
    p = patients.to_pandas()
    recurred = p[p.recurrence]
    assert len(recurred) > 50
    assert np.allclose(recurred.recurrence_months, recurred.first_symptom_months)
    e = events.to_pandas()
    assert set(e.loc[e["event"].astype(str) == "detection", "modality"]) == {"symptoms"}


def test_denser_imaging_never_finds_a_recurrence_later(params, tmp_path):
    monthly = (SCENARIOS / "baseline.toml").read_text().replace("interval_months = 3", "interval_months = 1")
    monthly = monthly.replace("interval_months = 6", "interval_months = 1").replace("interval_months = 12", "interval_months = 1")
    (tmp_path / "monthly.toml").write_text(monthly)
    base = simulate(params, _policy("baseline.toml"), n=600, seed=5)[0].to_pandas()
    dense = simulate(params, load_policy(tmp_path / "monthly.toml"), n=600, seed=5)[0].to_pandas()
    early_base = base.recurrence_months < base.first_symptom_months
    early_dense = dense.recurrence_months < dense.first_symptom_months
    # the first episode is the same disease under both; found no later, so before symptoms too
    both = base.recurrence & dense.recurrence
    assert (dense.recurrence_onset_months[both] == base.recurrence_onset_months[both]).all()
    assert (dense.recurrence_months[both] <= base.recurrence_months[both] + 1e-9).all()
    assert (early_dense[both] >= early_base[both]).all()
    assert early_dense.mean() >= early_base.mean()


def test_capacity_that_never_binds_changes_nothing(params, tmp_path):
    text = (SCENARIOS / "baseline-capacity.toml").read_text()
    text = text.replace("imaging_slots_per_week = 23", "imaging_slots_per_week = 1000000")
    text = text.replace("operating_slots_per_week = 1", "operating_slots_per_week = 1000000")
    (tmp_path / "ample.toml").write_text(text)
    ample = dataclasses.replace(load_policy(tmp_path / "ample.toml"), name="baseline")
    assert ample.has_capacity
    free = simulate(params, _policy("baseline.toml"), n=500, seed=6)
    queued = simulate(params, ample, n=500, seed=6)
    assert free[0].equals(queued[0])
    assert free[1].equals(queued[1])


def test_a_binding_capacity_delays_detection(params):
    free = simulate(params, _policy("intensive.toml"), n=1000, seed=7)[0].to_pandas()
    tight = dataclasses.replace(_policy("intensive-capacity.toml"), imaging_slots_per_week=3.0)
    queued = simulate(params, tight, n=1000, seed=7)[0].to_pandas()
    assert queued.recurrence_months.mean() > free.recurrence_months.mean()
    assert queued.curative_reoperation_months.notna().mean() < free.curative_reoperation_months.notna().mean()


@pytest.mark.parametrize("path", sorted((SCENARIOS / "comparisons").glob("*.toml")), ids=lambda p: p.name)
def test_every_comparison_loads_and_runs(path, tmp_path):
    comparison = load_comparison(path)
    small = dataclasses.replace(
        comparison,
        cohort=comparison.cohort.model_copy(update={"patients": 60, "patients_per_department": 30}),
        uncertainty=comparison.uncertainty.model_copy(update={"draws": min(comparison.uncertainty.draws, 2)}))
    run_units(small, tmp_path, LocalExecutor(1))
    stored = pd.read_parquet(tmp_path / "patients")
    assert set(stored.scenario_id) == {p.name for p in comparison.policies}
    assert len(stored) == 60 * len(comparison.policies) * max(small.uncertainty.draws, 1)


def test_run_command_writes_tables_report_and_figures(tmp_path, capsys):
    spec = tmp_path / "mini.toml"
    spec.write_text(
        'name = "mini"\nreference = "baseline"\n'
        f'policies = ["{SCENARIOS / "baseline.toml"}", "{SCENARIOS / "yearly.toml"}", '
        f'"{SCENARIOS / "symptoms-only.toml"}"]\n'
        "[cohort]\npatients = 300\nprimary = \"both\"\nyears = 10\n"
        "[uncertainty]\ndraws = 3\nseed = 2\n")
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out   # plain text on the terminal, no Markdown
    assert "overall survival at 5 years" in printed
    assert not any(line.startswith(("|", "![", "#")) or "`" in line for line in printed.splitlines())
    for name in ("results.csv", "results.md", "report.html", "survival.png", "frontier.png",
                 "results_by_draw.csv", "manifest.json"):
        assert (out / name).stat().st_size > 100, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["comparison_file"] == str(spec) and manifest["draws"] == 3
    assert manifest["policies"] == ["baseline", "yearly", "symptoms-only"]
    assert manifest["command"].startswith("crlm-sim run ")
    results = pd.read_csv(out / "results.csv").set_index("policy")
    assert results.loc["baseline", "life_years_gained"] == 0
    assert results.loc["symptoms-only", "scans_per_patient"] == 0
    assert results.loc["baseline", "scans_per_patient"] > results.loc["yearly", "scans_per_patient"]
    # the reported survival is Kaplan-Meier of the stored patients, draw by draw, then averaged
    from sim.analysis import kaplan_meier, survival_at
    stored = pd.read_parquet(out / "patients")
    base = stored[stored.scenario_id == "baseline"]
    per = [survival_at(kaplan_meier(g.os_months, g.death), [60.0])["survival"].iloc[0]
           for _, g in base.groupby("draw")]
    assert results.loc["baseline", "os_60"] == pytest.approx(np.mean(per), abs=1e-12)


def test_bad_comparison_file(capsys, tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "x"\nreference = "nope"\npolicies = ["baseline.toml"]\n[cohort]\npatients = 10\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "reference: must be the name of one of the policies (baseline); got 'nope'" in capsys.readouterr().err
    spec.write_text('name = "x"\nreference = "baseline"\npolicies = ["baseline.toml"]\n[cohort]\npatients = -1\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "cohort.patients: Input should be greater than 0 (got -1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_posterior_draws_are_parameter_sets():
    draws = draw_parameters(3)
    assert len(draws) == 3 and draws[0] != draws[1]


def test_imaging_examinations_are_counted_by_modality(params):
    base = simulate(params, _policy("baseline.toml"), n=300, seed=8)[0].to_pandas()
    mri = simulate(params, _policy("baseline-pelvic-mri.toml"), n=300, seed=8)[0].to_pandas()
    cea = simulate(params, _policy("cea-only.toml"), n=300, seed=8)[0].to_pandas()
    assert (base.n_imaging == base.n_scans).all()           # one CT at each baseline visit
    # the MRI shares the CT visits: more examinations per visit, not more visits
    assert (mri.n_imaging >= mri.n_scans).all() and (mri.n_imaging > mri.n_scans).mean() > 0.5
    assert (cea.n_imaging == 0).all() and cea.n_scans.sum() > 0  # a blood test is no scan
    assert mri.surveillance_cost.mean() > base.surveillance_cost.mean()


def test_interrupted_comparison_resumes_to_the_same_results(tmp_path, monkeypatch):
    import sim.cli
    from sim.execution.executor import LocalExecutor as Local

    spec = tmp_path / "mini.toml"
    spec.write_text(
        'name = "mini"\nreference = "baseline"\n'
        f'policies = ["{SCENARIOS / "baseline.toml"}", "{SCENARIOS / "yearly.toml"}"]\n'
        "[cohort]\npatients = 200\npatients_per_department = 50\n[uncertainty]\ndraws = 2\nseed = 3\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "whole"), "--workers", "1"]) == 0

    class Interrupting(Local):
        def run(self, fn, units, on_result):
            for k, unit in enumerate(units):
                if k == 5:
                    raise KeyboardInterrupt
                on_result(fn(unit))

    monkeypatch.setattr(sim.cli, "executor_from", lambda args: Interrupting(1))
    assert main(["run", str(spec), "--out", str(tmp_path / "again")]) == 130
    # 5 units done of 8 (2 draws x 4 chunks), each writing both policies' partitions
    assert len(list((tmp_path / ".again.partial" / "patients").glob("*.parquet"))) == 10
    assert main(["run", str(spec), "--out", str(tmp_path / "again")]) == 2  # needs --resume
    monkeypatch.undo()
    assert main(["run", str(spec), "--out", str(tmp_path / "again"), "--resume", "--workers", "1"]) == 0
    whole = pd.read_csv(tmp_path / "whole" / "results.csv")
    again = pd.read_csv(tmp_path / "again" / "results.csv")
    pd.testing.assert_frame_equal(whole, again)


def _small_priced(per_unit: int):
    """The priced ESMO-like vs intensive comparison on 300 patients (units of `per_unit`) x 4 draws."""
    comparison = load_comparison(SCENARIOS / "comparisons" / "esmo-intensive-economics.toml")
    return dataclasses.replace(
        comparison,
        cohort=comparison.cohort.model_copy(update={"patients": 300, "patients_per_department": per_unit}),
        uncertainty=comparison.uncertainty.model_copy(update={"draws": 4}))


def test_analysis_in_batches_of_draws_gives_what_one_read_gives(tmp_path):
    # the analysis reads a few draws at a time (bounded memory); every summary is per
    # (policy, draw), so batches of one draw, on two workers, give exactly the tables of one read
    from sim.studies.digest import digest
    from sim.studies.economics import priced_columns
    PRICED_COLUMNS = priced_columns()

    run_units(_small_priced(per_unit=150), tmp_path, LocalExecutor(1))
    whole = digest(tmp_path, PRICED_COLUMNS, rows=10**9, reference="esmo")
    batched = digest(tmp_path, PRICED_COLUMNS, rows=1, executor=LocalExecutor(2),
                     reference="esmo")
    assert len(whole.metrics) == 2 * 4
    for name in ("metrics", "survival", "means"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(batched, name),
                                      check_exact=True)


def test_digest_statistics_equal_pandas_groupby_of_the_patients(tmp_path):
    # the digest takes its group statistics with numpy; pandas' groupby of the same patients,
    # read back from the partitions, is the independent reference (to rounding)
    import shutil

    import pyarrow.parquet as pq

    from sim.studies.digest import digest
    from sim.studies.economics import priced_columns

    run_units(_small_priced(per_unit=300), tmp_path, LocalExecutor(1))
    shutil.rmtree(tmp_path / "digests")
    result = digest(tmp_path, priced_columns(), reference="esmo")
    p = pd.concat([pq.read_table(path).to_pandas()
                   for path in sorted((tmp_path / "patients").glob("*.parquet"))])
    by = p.groupby(["scenario_id", "draw"])
    recurred = p[p.recurrence]
    lead = (recurred.first_symptom_months - recurred.recurrence_months).clip(lower=0)
    wait = recurred.recurrence_months - recurred.recurrence_onset_months
    keys = [recurred.scenario_id, recurred.draw]
    reference = p[p.scenario_id == "esmo"].set_index(["draw", "replicate", "patient_id"])
    paired = p.join(reference[["recurrence_months", "recurrence", "qalys", "cost_treatment",
                               "cost_surveillance"]], on=["draw", "replicate", "patient_id"],
                    rsuffix="_ref")
    both = paired[paired.recurrence & paired.recurrence_ref]
    advance = (both.recurrence_months_ref - both.recurrence_months).groupby(
        [both.scenario_id, both.draw])
    cost = (paired.cost_surveillance + paired.cost_treatment
            - paired.cost_surveillance_ref - paired.cost_treatment_ref)
    expected = pd.DataFrame({
        "curative_share": by.curative_reoperation_months.apply(lambda s: s.notna().mean()),
        "visits_per_patient": by.n_scans.mean(),
        "cost_per_patient": by.surveillance_cost.mean(),
        "found_before_symptoms": (lead > 1e-9).groupby(keys).mean(),
        "median_lead_months": lead.groupby(keys).median(),
        "onset_to_detection_months": wait.groupby(keys).mean(),
        "onset_to_detection_median_months": wait.groupby(keys).median(),
        "detection_advance_months": advance.mean(),
        "detection_advance_median_months": advance.median(),
        "detection_advance_q25_months": advance.quantile(0.25),
        "detection_advance_q75_months": advance.quantile(0.75)})
    pd.testing.assert_frame_equal(result.metrics[expected.columns], expected, rtol=1e-12,
                                  check_names=False)
    noise = pd.DataFrame({"noise_var_cost": cost.groupby([p.scenario_id, p.draw]).var(),
                          "qalys": by.qalys.mean()})
    pd.testing.assert_series_equal(result.means["noise_var_cost"], noise["noise_var_cost"],
                                   rtol=1e-9, check_names=False)
    pd.testing.assert_series_equal(result.means["qalys"], noise["qalys"], rtol=1e-12,
                                   check_names=False)


def test_draws_digested_where_they_were_simulated_give_what_reading_them_back_gives(tmp_path):
    # a unit holding every patient of its draw digests it before its patients leave memory; the
    # analysis then reads only the draws without a stored digest, and the tables are the same
    import shutil

    from sim.studies.digest import digest
    from sim.studies.economics import priced_columns
    PRICED_COLUMNS = priced_columns()

    run_units(_small_priced(per_unit=300), tmp_path, LocalExecutor(1))
    stored = sorted((tmp_path / "digests").iterdir())
    assert [p.name for p in stored] == ["0", "1", "2", "3"]
    from_units = digest(tmp_path, PRICED_COLUMNS, reference="esmo")
    shutil.rmtree(stored[1])
    shutil.rmtree(stored[3])
    mixed = digest(tmp_path, PRICED_COLUMNS, rows=1, executor=LocalExecutor(2), reference="esmo")
    shutil.rmtree(tmp_path / "digests")
    read_back = digest(tmp_path, PRICED_COLUMNS, reference="esmo")
    assert len(read_back.metrics) == 2 * 4
    for name in ("metrics", "survival", "means"):
        pd.testing.assert_frame_equal(getattr(from_units, name), getattr(read_back, name),
                                      check_exact=True)
        pd.testing.assert_frame_equal(getattr(mixed, name), getattr(read_back, name),
                                      check_exact=True)


def test_group_quantiles_are_numpys_bit_for_bit():
    # the digest's quantiles of every group at once repeat numpy's interpolation operation for
    # operation: each group's quantiles equal np.quantile's of its values, to the bit
    from sim.studies.digest import _Groups

    rng = np.random.default_rng(4)
    sizes = [1, 2, 3, 4, 5, 10, 97, 1000, 2, 1]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    values = np.round(rng.exponential(10.0, len(codes)), 1)          # ties
    values[rng.random(len(codes)) < 0.1] = np.nan                     # left out
    where = rng.random(len(codes)) < 0.9
    order = rng.permutation(len(codes))
    groups = _Groups(codes[order], np.zeros(len(codes), np.int64),
                     np.array([f"p{k}" for k in range(len(sizes))], dtype=object))
    qs = (0.5, 0.25, 0.75, 0.0, 1.0, 0.1)
    got = groups.quantiles(values[order], qs, where[order])
    for g in range(len(sizes)):
        kept = values[(codes == g) & where & ~np.isnan(values)]
        expected = np.quantile(kept, qs) if len(kept) else np.full(len(qs), np.nan)
        assert np.array([row[g] for row in got]).tobytes() == np.asarray(expected).tobytes()
