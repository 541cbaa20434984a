"""The detection advance of a policy over another is what the schedule gives, patient by patient.

Under a policy whose examination never misses disease that is present (sensitivity 1 at every
site, every visit attended), a first recurrence is found at the first visit on or after its
onset, or at its symptoms if they come first. Against symptoms-only follow-up (detection at the
symptoms) the advance of each patient is therefore known in closed form from its onset and its
symptoms: max(0, symptoms - first visit on or after the onset). The comparison's paired advance
must be exactly the mean, median and quartiles of that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from conftest import ROOT
from sim.model.policy import load_policy

PERFECT = """
name = "perfect-quarterly"
description = "an examination that misses nothing present, every 3 months, every visit attended"
adherence = { value = 1.0, source = "assumption: a test" }
workup_cost = { value = 0.0, source = "assumption: a test" }

[[phase]]
from_months = 0
to_months = 240
interval_months = 3
modalities = ["scan"]

[modality.scan]
label = "a perfect scan"
sensitivity.liver = { value = 1.0, source = "assumption: a test" }
sensitivity.lung = { value = 1.0, source = "assumption: a test" }
sensitivity.pelvis = { value = 1.0, source = "assumption: a test" }
sensitivity.other = { value = 1.0, source = "assumption: a test" }
cost = { value = 0.0, source = "assumption: a test" }
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("advance")
    (folder / "perfect.toml").write_text(PERFECT)
    spec = folder / "comparison.toml"
    spec.write_text(f'name = "advance"\nreference = "symptoms-only"\n'
                    f'policies = ["{ROOT / "scenarios" / "symptoms-only.toml"}", '
                    f'"{folder / "perfect.toml"}"]\n'
                    "[cohort]\npatients = 3000\nyears = 20\n")
    result = sim.compare(spec, out=folder / "out")
    patients = pd.read_parquet(folder / "out" / "patients")
    return result, patients, load_policy(folder / "perfect.toml")


def test_the_advance_over_symptoms_is_the_closed_form_of_a_perfect_schedule(run):
    result, patients, perfect = run
    reference = patients[patients.scenario_id == "symptoms-only"].set_index("patient_id")
    policy = patients[patients.scenario_id == "perfect-quarterly"].set_index("patient_id")
    both = reference.recurrence & policy.recurrence
    onset = reference.recurrence_onset_months[both].to_numpy()
    symptoms = reference.recurrence_months[both].to_numpy()
    visits = perfect.visit_months
    first_visit = visits[np.searchsorted(visits, onset, side="left")]
    expected = np.maximum(0.0, symptoms - first_visit)
    # the same first recurrence, the same onset, under both policies
    assert np.array_equal(onset, policy.recurrence_onset_months[both].to_numpy())
    np.testing.assert_allclose(policy.recurrence_months[both].to_numpy(), symptoms - expected,
                               rtol=0, atol=1e-9)
    row = result.per_draw.set_index("scenario_id").loc["perfect-quarterly"]
    assert row.detection_advance_months == pytest.approx(expected.mean(), abs=1e-9)
    assert row.detection_advance_median_months == pytest.approx(np.median(expected), abs=1e-9)
    assert row.detection_advance_q25_months == pytest.approx(np.quantile(expected, 0.25),
                                                             abs=1e-9)
    assert row.detection_advance_q75_months == pytest.approx(np.quantile(expected, 0.75),
                                                             abs=1e-9)
    # and the wait from onset to detection is at most one interval before the symptoms
    waits = policy.recurrence_months[policy.recurrence] - policy.recurrence_onset_months[
        policy.recurrence]
    assert row.onset_to_detection_months == pytest.approx(waits.mean(), abs=1e-9)
    assert (waits <= 3.0 + 1e-9).mean() > 0.95


def test_the_reference_advances_nothing_over_itself_and_the_report_says_it(run):
    result, _, _ = run
    row = result.per_draw.set_index("scenario_id").loc["symptoms-only"]
    assert row.detection_advance_months == 0.0
    page = (result.out / "results.md").read_text()
    assert "detection advance over the reference" in page
