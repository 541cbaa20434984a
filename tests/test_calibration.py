"""Calibration plumbing: the report from the installed defaults, its numbers against sim.analysis,
the parameter space and the writing of fitted values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calibration.objective import StudyDesign, simulate_study
from calibration.paramfile import write_values
from calibration.report import write_report
from calibration.space import SPACE, from_unbounded, get, to_unbounded, with_values
from sim.analysis import cox_univariate, kaplan_meier, median_survival, survival_at
from sim.model.params import default_params_path, load_params
from sim.model.policy import load_policy

from conftest import BASELINE


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    paths = write_report(out, seed=5, rectal_studies=6, colon_studies=3, external_patients=3000)
    return out, paths, pd.read_csv(paths["validation.csv"]).set_index("id")


def test_report_is_written_from_the_installed_defaults(report):
    out, paths, table = report
    for name in ("report.html", "report.md", "survival_rectum.png", "sites_rectum.png",
                 "hazard_ratios.png", "survival_colon.png", "long_term.png",
                 "posterior_coverage.png"):
        assert (out / name).stat().st_size > 1000, name
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "src=\"http" not in page
    assert "External figures" in page
    assert "installed default" in (out / "report.md").read_text()
    assert {"os_36", "dfs_60", "hr_os_n2", "colon_os_60", "median_os"} <= set(table.index)
    assert table.loc["median_os", "verdict"].startswith("prediction")
    external = table[table.group == "external"]
    assert {"tomlinson_os_120_1985_1994", "facs_curative_ratio_ct"} <= set(external.index)
    assert external.model.notna().all() and external.verdict.isin(["ok", "miss"]).all()
    aside = table[table.group == "kept aside"]
    assert {"curative_share_late", "curative_share_early", "advance_facs", "advance_trials",
            "os_120_1992_2004", "cancer_death_after_10"} <= set(aside.index)
    assert aside.model.notna().all() and aside.z.isna().all()     # beside, never scored
    shares = aside.drop(["advance_facs", "advance_trials"])
    assert ((shares.model >= 0) & (shares.model <= 1)).all()
    assert aside.loc["advance_facs", "model"] > 0       # intensive follow-up finds it earlier


def test_the_validation_report_reads_in_words(report):
    """Every figure by its label and the source's sentence, grouped by topic; no internal id or
    code verdict in the page a reader sees."""
    import html as markup

    from calibration.report import TOPICS

    out, _, table = report
    page = markup.unescape((out / "report.html").read_text())
    for figure in table.itertuples():
        assert figure.label in page and figure.quote in page, figure.Index
        assert f">{figure.Index}<" not in page
    for topic in TOPICS:
        assert f"<h2>{topic}</h2>" in page
    assert "ok (bound)" not in page and "first_includes_liver_of_recurred" not in page
    assert "hazard_ratios.png</h2>" not in page     # figure headings in words


def test_report_numbers_are_those_of_sim_analysis(report):
    _, _, table = report
    params, _ = load_params()
    patients = simulate_study(params, load_policy(BASELINE), StudyDesign(141 * 6, 441 * 3, 5))
    rectum = patients[patients.primary_site == "rectum"]
    os36 = survival_at(kaplan_meier(rectum.os_months, rectum.death), [36.0])["survival"].iloc[0]
    assert table.loc["os_36", "model"] == pytest.approx(os36, abs=1e-12)
    colon = patients[patients.primary_site == "colon"]
    dfs60 = survival_at(kaplan_meier(colon.dfs_months, colon.dfs_event), [60.0])["survival"].iloc[0]
    assert table.loc["colon_dfs_60", "model"] == pytest.approx(dfs60, abs=1e-12)
    n2 = cox_univariate(rectum.os_months, rectum.death, (rectum.n_stage == "N2").astype(float))
    assert table.loc["hr_os_n2", "model"] == pytest.approx(n2["hr"].iloc[0], rel=1e-12)
    assert table.loc["recurred_crude", "model"] == pytest.approx(rectum.recurrence.mean(), abs=1e-12)
    early = rectum[rectum.era_pre1994]
    median = median_survival(kaplan_meier(early.dfs_months, early.dfs_event))["median"].iloc[0]
    assert table.loc["median_dfs_pre1994", "model"] == pytest.approx(median, abs=1e-12)
    # z is the miss in units of the study-size spread (log scale for hazard ratios)
    row = table.loc["hr_os_n2"]
    assert row.z == pytest.approx(math.log(row.model / 2.61) / ((math.log(4.58) - math.log(1.49)) / 3.92))


def test_space_round_trip_and_replacement():
    params, _ = load_params()
    natural = np.array([get(params, d.path) for d in SPACE])
    assert np.allclose(from_unbounded(to_unbounded(natural)), natural)
    changed = with_values(params, {"recurrence.theta_liver": 0.3, "cancer_death.hazard_ratio.n2": 2.0})
    assert changed.recurrence.theta_liver == 0.3 and changed.cancer_death.hazard_ratio.n2 == 2.0
    assert params.recurrence.theta_liver != 0.3  # frozen: the original is untouched


def test_fitted_values_are_written_with_their_provenance(tmp_path):
    text = write_values(default_params_path().read_text(), {"recurrence.theta_liver": 0.3125})
    path = tmp_path / "params.toml"
    path.write_text(text)
    params, sources = load_params(path)
    assert params.recurrence.theta_liver == 0.3125
    assert sources["recurrence.theta_liver"].startswith("fitted: ")
    again = write_values(text, {"recurrence.theta_liver": 0.25})
    assert again.count("; was ") == text.count("; was ")  # provenance does not pile up
    with pytest.raises(KeyError, match="no.such"):
        write_values(text, {"no.such": 1.0})


def test_calibrate_command_runs_end_to_end(tmp_path):
    from sim.cli import main

    out = tmp_path / "fit"
    assert main(["calibrate", "--budget", "6", "--proposals", "4", "--posterior-size", "2",
                 "--sampler", "sir", "--workers", "1", "--rectal-studies", "3", "--colon-studies", "1",
                 "--external-patients", "500", "--out", str(out)]) == 0
    for name in ("params.toml", "posterior.csv", "fit.csv", "history.csv", "summary.json",
                 "manifest.json"):
        assert (out / name).exists(), name
    fitted, sources = load_params(out / "params.toml")
    assert all(sources[d.path].startswith("fitted: ") for d in SPACE)
    assert len(pd.read_csv(out / "history.csv")) >= 6
    assert main(["calibrate", "--budget", "6", "--out", str(out)]) == 2  # not empty, no --resume


def test_calibrate_resumes_from_its_history_without_pickle(tmp_path):
    """The search state is data only: --resume replays history.csv into a new search with the
    same seed (the points asked are checked against the file) and continues from there."""
    from sim.cli import main

    out = tmp_path / "fit"
    common = ["--proposals", "2", "--posterior-size", "1", "--sampler", "sir", "--workers", "1",
              "--rectal-studies", "2",
              "--colon-studies", "1", "--external-patients", "200", "--out", str(out)]
    assert main(["calibrate", "--budget", "6", *common]) == 0
    first = pd.read_csv(out / "history.csv")
    assert not list(out.glob("*.pkl"))
    assert main(["calibrate", "--budget", "30", "--resume", *common]) == 0
    both = pd.read_csv(out / "history.csv")
    assert len(both) > len(first) and both.generation.max() >= 2   # it went on from generation 1
    pd.testing.assert_frame_equal(both.head(len(first)), first)
    # the resumed search is the uninterrupted one, point for point
    fresh = tmp_path / "fresh"
    assert main(["calibrate", "--budget", "30", *common[:-1], str(fresh)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(fresh / "history.csv"), both)
    # a history that the same search could not have written is refused in one line
    tampered = both.copy()
    tampered.iloc[3, 2] *= 1.5
    tampered.to_csv(out / "history.csv", index=False)
    assert main(["calibrate", "--budget", "60", "--resume", *common]) == 2


class _GaussianObjective:
    """A stand-in objective whose loss is a sum of squares on the unbounded scale: the target of
    the chains is then a normal distribution with known mean and variance."""

    def __init__(self, centre, sd):
        self.centre, self.sd = centre, sd

    def table(self, params):
        from calibration.space import SPACE, get, to_unbounded
        x = to_unbounded(np.array([get(params, d.path) for d in SPACE]))
        return pd.DataFrame({"z": (x - self.centre) / self.sd})

    def loss_of(self, table):
        return float((table["z"] ** 2).sum())


def test_metropolis_chains_sample_a_known_normal_posterior(tmp_path, params):
    # z = (x - m) / s, likelihood exp(-sum z^2 / 2): the target is N(m, s^2) in each dimension
    # (truncated at |z| <= 1.96 by the consistency rule). Its mean is m and its variance
    # s^2 (1 - 2 c phi(c) / (2 Phi(c) - 1)) with c = 1.96 (the truncated normal's).
    from scipy.stats import norm

    from calibration.fit import ChainSettings, chain_diagnostics, posterior_chains
    from calibration.space import SPACE, get, to_unbounded
    from sim.execution.executor import LocalExecutor

    centre = to_unbounded(np.array([get(params, d.path) for d in SPACE]))
    sd = 0.05
    objective = _GaussianObjective(centre, sd)
    rng = np.random.default_rng(5)
    starts = centre + 0.5 * sd * rng.standard_normal((8, len(SPACE)))
    settings = ChainSettings(size=400, chains=8, burn=60, thin=2, seed=3)
    sample, history = posterior_chains(objective, params, starts, np.eye(len(SPACE)) * sd ** 2,
                                       settings, LocalExecutor(1), tmp_path)
    assert len(sample) == 400
    paths = [d.path for d in SPACE]
    x = np.array([to_unbounded(row) for row in sample[paths].to_numpy()])
    assert len(np.unique(x, axis=0)) == 400                      # distinct parameter sets
    c = 1.96
    variance = sd ** 2 * (1 - 2 * c * norm.pdf(c) / (2 * norm.cdf(c) - 1))
    diagnostics = chain_diagnostics(history, settings)
    ess = float(diagnostics["ess"].median())
    z_means = (x.mean(axis=0) - centre) / np.sqrt(variance / ess)
    assert np.sqrt(np.mean(z_means ** 2)) < 2.0                   # the means, in standard errors
    ratio = x.var(axis=0, ddof=1).mean() / variance              # pooled over 40 dimensions
    assert abs(ratio - 1) < 4 * np.sqrt(2 / ess / len(SPACE)) + 0.1
    assert (sample["max_abs_z"] <= 1.96).all()
    # resumed from chains.csv, the chains go on exactly as an uninterrupted run would, with the
    # proposals' shape they started with (proposal.csv), not the one the resume is handed
    more = ChainSettings(size=440, chains=8, burn=60, thin=2, seed=3)
    resumed, _ = posterior_chains(objective, params, starts, np.eye(len(SPACE)) * (3 * sd) ** 2,
                                  more, LocalExecutor(1), tmp_path)
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh, _ = posterior_chains(objective, params, starts, np.eye(len(SPACE)) * sd ** 2, more,
                                LocalExecutor(1), fresh_dir)
    pd.testing.assert_frame_equal(resumed, fresh)


def test_chain_diagnostics_match_the_autoregressive_formula():
    # chains of an AR(1) process with coefficient phi have an integrated autocorrelation time
    # of (1 + phi) / (1 - phi): the effective sample size is m n (1 - phi) / (1 + phi); the
    # R-hat of chains of one stationary process is near 1, and far above it when they disagree
    from calibration.fit import ChainSettings, chain_diagnostics

    rng = np.random.default_rng(11)
    m, n, phi = 8, 4000, 0.6
    noise = rng.standard_normal((m, n, len(SPACE)))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - phi ** 2)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    history = pd.DataFrame(x.reshape(m * n, len(SPACE)), columns=[d.path for d in SPACE])
    history.insert(0, "chain", np.repeat(np.arange(m), n))
    history.insert(0, "step", np.tile(np.arange(1, n + 1), m))
    table = chain_diagnostics(history, ChainSettings(burn=0))
    expected = m * n * (1 - phi) / (1 + phi)
    assert abs(table["ess"].median() / expected - 1) < 0.1
    assert table["r_hat"].max() < 1.01
    shifted = history.copy()
    shifted.loc[shifted["chain"] == 0, SPACE[0].path] += 3.0
    assert chain_diagnostics(shifted, ChainSettings(burn=0))["r_hat"].iloc[0] > 1.2
