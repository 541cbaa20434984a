"""sim.reports.summary.summarize on a patient table made by hand (no simulation), against lifelines."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.utils import median_survival_times

from sim.reports.summary import summarize

SITES = ("pelvis", "liver", "lung", "other")


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def make_patients(n=500, seed=20260105) -> pd.DataFrame:
    """Continuous times (no ties), recurrences before death or censoring, some sites never involved."""
    rng = np.random.default_rng(seed)
    site = np.where(rng.random(n) < 0.35, "rectum", "colon")
    death_time = rng.exponential(np.where(site == "rectum", 50.0, 65.0))
    censor = rng.uniform(6.0, 150.0, n)
    os_months, death = np.minimum(death_time, censor), death_time <= censor
    recurrence = rng.exponential(30.0, n)
    recurred = recurrence < os_months
    columns = {"patient_id": np.arange(n), "primary_site": site, "age_years": rng.normal(60, 10, n),
               "os_months": os_months, "death": death,
               "dfs_months": np.where(recurred, recurrence, os_months), "dfs_event": recurred | death}
    for name in SITES:
        possible = (site == "rectum") | (name != "pelvis") | (rng.random(n) < 0.2)  # pelvis: mostly rectum
        involved = recurred & possible & (rng.random(n) < 0.4)
        delay = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.0, 1.0, n) * (os_months - recurrence))
        columns[f"{name}_recurrence_months"] = np.where(involved, recurrence + delay, np.nan)
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def summarized(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    patients = make_patients()
    patients.to_parquet(directory / "patients.parquet")
    paths = summarize(directory)
    return directory, patients, paths, pd.read_csv(paths["csv"])


def subsets(patients):
    yield "all", patients
    for site in ("colon", "rectum"):
        yield site, patients[patients["primary_site"] == site]


def lifelines_km(durations, observed):
    return KaplanMeierFitter().fit(np.asarray(durations, float), np.asarray(observed, bool))


def rows(table, **labels):
    mask = np.ones(len(table), dtype=bool)
    for column, value in labels.items():
        mask &= table[column].to_numpy() == value
    return table[mask].reset_index(drop=True)


def test_writes_three_files_and_no_temporary(summarized):
    directory, _, paths, _ = summarized
    assert set(paths) == {"csv", "markdown", "figure"}
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["patients.parquet", "summary.csv", "summary.md", "survival.png"]
    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


ENDPOINTS = [("overall_survival", "os_months", "death"), ("disease_free_survival", "dfs_months", "dfs_event")]


@pytest.mark.parametrize(("endpoint", "duration", "event"), ENDPOINTS)
def test_survival_at_years_and_medians_equal_lifelines(summarized, endpoint, duration, event):
    _, patients, _, table = summarized
    for label, subset in subsets(patients):
        kmf = lifelines_km(subset[duration], subset[event])
        got = rows(table, primary_site=label, endpoint=endpoint, quantity="survival")
        months = [12.0, 36.0, 60.0, 120.0]
        np.testing.assert_array_equal(got["time_months"], months)
        close(got["estimate"], [kmf.predict(m) for m in months])
        close(got["lower"], [kmf.confidence_interval_.iloc[:, 0].asof(m) for m in months])
        close(got["upper"], [kmf.confidence_interval_.iloc[:, 1].asof(m) for m in months])
        np.testing.assert_array_equal(got["at_risk"], [(subset[duration] >= m).sum() for m in months])
        median = rows(table, primary_site=label, endpoint=endpoint, quantity="median_months")
        interval = median_survival_times(kmf.confidence_interval_)
        close(median[["estimate", "lower", "upper"]].to_numpy()[0],
              [kmf.median_survival_time_, interval.iloc[0, 0], interval.iloc[0, 1]])


def test_site_recurrence_at_five_years_equals_lifelines(summarized):
    _, patients, _, table = summarized
    for label, subset in subsets(patients):
        for site in SITES:
            detected_at = subset[f"{site}_recurrence_months"].to_numpy()
            detected = ~np.isnan(detected_at)
            time = np.where(detected, detected_at, subset["os_months"])
            kmf = lifelines_km(time, detected)
            got = rows(table, primary_site=label, endpoint=f"{site}_recurrence", quantity="one_minus_km")
            close(got["estimate"], 1 - kmf.predict(60.0))
            close(got["lower"], 1 - kmf.confidence_interval_.iloc[:, 1].asof(60.0))
            close(got["upper"], 1 - kmf.confidence_interval_.iloc[:, 0].asof(60.0))
            cause = np.where(detected, 1, np.where(subset["death"], 2, 0))
            got = rows(table, primary_site=label, endpoint=f"{site}_recurrence",
                       quantity="cumulative_incidence")
            if not detected.any():
                assert got["estimate"].item() == 0.0
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # no tied times of different causes: no jitter
                fitter = AalenJohansenFitter(calculate_variance=True).fit(time, cause, event_of_interest=1)
            close(got["estimate"], fitter.predict(60.0))
            bounds = fitter.confidence_interval_.asof(60.0).to_numpy()
            close(got[["lower", "upper"]].to_numpy()[0], [bounds.min(), bounds.max()])
            assert got["estimate"].item() <= rows(table, primary_site=label, endpoint=f"{site}_recurrence",
                                                  quantity="one_minus_km")["estimate"].item()


def test_markdown_holds_the_table(summarized):
    _, patients, paths, table = summarized
    text = paths["markdown"].read_text()
    headings = ("Overall and disease-free survival", "Median survival", "Recurrence by site at 60 months")
    for heading in headings:
        assert f"\n## {heading}\n" in text
    first = rows(table, primary_site="all", endpoint="overall_survival", quantity="survival").iloc[0]
    interval = f"{first.estimate:.3f} ({first.lower:.3f}–{first.upper:.3f})"
    assert f"| all | Overall survival | 12 | {interval} | {int(first.at_risk)} |" in text
    assert f"{len(patients)} patients" in text


def test_figure_is_an_image(summarized):
    from matplotlib.image import imread

    height, width, _ = imread(summarized[2]["figure"]).shape
    assert width > 1000 and height > 500


def test_rerun_replaces_the_files(summarized):
    directory, _, _, table = summarized
    again = summarize(directory)
    pd.testing.assert_frame_equal(pd.read_csv(again["csv"]), table)
    assert len(list(directory.iterdir())) == 4


def test_missing_columns_are_named(tmp_path):
    patients = make_patients(20).drop(columns=["dfs_event", "lung_recurrence_months"])
    patients.to_parquet(tmp_path / "patients.parquet")
    message = r"patients\.parquet lacks the column\(s\) dfs_event, lung_recurrence_months\."
    with pytest.raises(ValueError, match=message):
        summarize(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patients.parquet"]


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, sim.reports.summary; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
