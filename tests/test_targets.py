"""The study's targets file: it loads, is complete, and every figure is traceable to the paper."""

import math
import re
from pathlib import Path

import pytest

from calibration.targets import (
    PROPORTION_ESTIMATORS,
    Target,
    load_targets,
    log_hr_standard_error,
    study_standard_error,
)

REPO = Path(__file__).resolve().parents[1]
TARGETS_TOML = REPO / "calibration" / "targets.toml"
PAPER_CANDIDATES = (
    Path("/work/shared/paper/study.txt"),
    REPO.parent / "shared" / "paper" / "study.txt",
)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def targets() -> list[Target]:
    return load_targets()


@pytest.fixture(scope="module")
def paper_sections() -> dict[str, str]:
    """The paper's text by section: 'abstract' before the first heading, then each heading."""
    path = next((p for p in PAPER_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("paper/study.txt is not available at this path")
    sections, name, lines = {}, "abstract", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            sections[name] = normalise("\n".join(lines))
            name, lines = line[3:].strip().lower(), []
        else:
            lines.append(line)
    sections[name] = normalise("\n".join(lines))
    return sections


def test_packaged_file_loads(targets):
    assert len(targets) > 50
    assert targets == load_targets(TARGETS_TOML)


def test_ids_are_unique(targets):
    ids = [t.id for t in targets]
    assert len(ids) == len(set(ids))


def test_fit_targets_have_value_estimator_and_n(targets):
    for t in targets:
        if t.use == "fit":
            assert t.value is not None and t.estimator is not None and t.n is not None, t.id


def test_withheld_targets_have_no_value(targets):
    withheld = [t for t in targets if t.use == "withheld"]
    assert withheld
    assert all(t.value is None for t in withheld)


def test_shares_are_proportions(targets):
    for t in targets:
        if t.value is not None and t.estimator in PROPORTION_ESTIMATORS:
            assert 0 <= t.value <= 1, t.id


def test_hazard_ratios_lie_inside_their_ci(targets):
    hrs = [t for t in targets if t.estimator == "cox_univariate"]
    assert len(hrs) == 12
    for t in hrs:
        assert 0 < t.lo <= t.value <= t.hi, t.id


def test_counts_agree_with_values(targets):
    for t in targets:
        if t.count is not None:
            assert t.value == pytest.approx(t.count / t.n, abs=5e-5), t.id


def test_ids_of_the_acceptance_check_are_kept(targets):
    ids = {t.id for t in targets}
    for kept in ("os_12", "os_36", "os_60", "dfs_12", "dfs_36", "dfs_60", "pelvic_60",
                 "liver_60", "recurred_crude", "pelvic_crude", "liver_crude",
                 "curative_reop_of_recurred", "any_reop_of_recurred",
                 "first_includes_pelvis_of_recurred", "median_followup", "periop_death",
                 "periop_complication", "los_median", "era_pre1994_share",
                 "chemoradiation_share", "margin_r1_share", "synchronous_share",
                 "median_dfs_pre1994", "median_dfs_1994_on", "median_os_pre1994",
                 "median_os_1994_on", "median_os_one_site", "median_os_multi_site",
                 "hr_os_cea", "hr_os_n2", "hr_pelvic_cea", "hr_pelvic_apr", "hr_pelvic_era",
                 "hr_pelvic_crt", "hr_liver_less_than_hemi", "hr_liver_margin", "hr_liver_rfa",
                 "hr_dfs_margin", "hr_dfs_rfa", "colon_dfs_60", "colon_os_60"):
        assert kept in ids


def test_quotes_appear_verbatim_in_their_section(targets, paper_sections):
    whole = " ".join(paper_sections.values())
    for t in targets:
        assert normalise(t.quote) in paper_sections[t.section], (t.id, t.section)
        for other in t.other_quotes:
            assert normalise(other) in whole, (t.id, other)


def test_every_withheld_figure_of_the_paper_is_listed(targets, paper_sections):
    whole = " ".join(paper_sections.values())
    covered = set()
    for t in targets:
        if t.use != "withheld":
            continue
        for quote in (t.quote, *t.other_quotes):
            start = whole.find(normalise(quote))
            while start != -1:
                covered.update(range(start, start + len(normalise(quote))))
                start = whole.find(normalise(quote), start + 1)
    missing = [m.start() for m in re.finditer(r"\[withheld\]", whole) if m.start() not in covered]
    assert not missing, [whole[max(0, i - 80): i + 10] for i in missing]


def test_results_are_frozen(targets):
    with pytest.raises(Exception):
        targets[0].value = 0.5


def test_standard_errors(targets):
    by_id = {t.id: t for t in targets}
    cea = by_id["hr_os_cea"]
    assert log_hr_standard_error(cea) == pytest.approx((math.log(3.83) - math.log(1.18)) / 3.92)
    assert study_standard_error(by_id["os_60"]) == pytest.approx(
        math.sqrt(0.364 * 0.636 / 141)
    )
    assert study_standard_error(by_id["curative_reop_of_recurred"]) == pytest.approx(
        math.sqrt(0.2875 * 0.7125 / 80)
    )
    with pytest.raises(ValueError, match="estimator 'cox_univariate'"):
        study_standard_error(cea)
    with pytest.raises(ValueError, match="field 'lo'"):
        log_hr_standard_error(by_id["os_60"])


GOOD = """
[about]
description = "test"

[[target]]
id = "os_60"
use = "fit"
group = "rectum"
estimator = "km"
duration = "os_months"
event = "death"
at_months = 60
value = 0.364
n = 141
quote = "36.4%"
section = "overall survival"
"""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("value = 0.364", 'value = "a lot"'), "value"),
        (("value = 0.364", "value = 1.4"), "value"),
        (("n = 141\n", ""), "n"),
        (('estimator = "km"', 'estimator = "kaplan"'), "estimator"),
        (('duration = "os_months"\n', ""), "duration"),
        (('use = "fit"', 'use = "withheld"'), "value"),
        (('section = "overall survival"', 'section = "results"'), "section"),
        (('id = "os_60"', 'id = "OS 60"'), "id"),
        (("at_months = 60", "at_months = 60\nlo = 1.0\nhi = 2.0"), "lo"),
        (("n = 141", "n = 141\ncolour = 1"), "colour"),
        (("n = 141", "n = 141\ncount = 50"), "value"),
    ],
)
def test_malformed_entry_names_the_field(tmp_path, change, field):
    path = tmp_path / "targets.toml"
    path.write_text(GOOD.replace(*change), encoding="utf-8")
    expected = rf"target #1 \('(os_60|OS 60)'\): field '{field}'"
    with pytest.raises(ValueError, match=expected) as info:
        load_targets(path)
    assert "\n" not in str(info.value)


def test_hazard_ratio_outside_its_ci_is_rejected(tmp_path):
    km = 'estimator = "km"\nduration = "os_months"\nevent = "death"\nat_months = 60'
    cox = (
        'estimator = "cox_univariate"\nendpoint = "os"\ncovariate = "cea_gt_200"\n'
        "lo = 1.18\nhi = 3.83"
    )
    entry = GOOD.replace(km, cox)
    path = tmp_path / "targets.toml"
    path.write_text(entry.replace("value = 0.364", "value = 4.2"), encoding="utf-8")
    with pytest.raises(ValueError, match="field 'value': the hazard ratio 4.2 lies outside"):
        load_targets(path)


def test_duplicate_ids_are_rejected(tmp_path):
    path = tmp_path / "targets.toml"
    path.write_text(GOOD + GOOD.split("\n", 4)[-1], encoding="utf-8")
    with pytest.raises(ValueError, match=r"target #2 \('os_60'\): field 'id': duplicate"):
        load_targets(path)


def test_invalid_toml_is_one_line(tmp_path):
    path = tmp_path / "targets.toml"
    path.write_text("[[target]\nid = ", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML") as info:
        load_targets(path)
    assert "\n" not in str(info.value)
