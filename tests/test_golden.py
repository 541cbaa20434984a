"""Golden summaries of a few tiny runs: a change of behaviour shows here first.

Summaries, not event logs. They are regenerated only on purpose, after a change meant to alter
results (new parameters, a model change):  CRLM_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, simulate
from sim.model.policy import load_policy

GOLDEN = Path(__file__).parent / "golden"
CASES = {  # name: (policy file, design, primary)
    "baseline-paper-rectum": ("baseline.toml", "paper", "rectum"),
    "symptoms-only-horizon-both": ("symptoms-only.toml", "horizon", "both"),
    "intensive-capacity-horizon-colon": ("intensive-capacity.toml", "horizon", "colon"),
}


def _summary(patients, events) -> dict:
    p = patients.to_pandas()
    e = events.to_pandas()
    return {
        "patients": len(p),
        "deaths": int(p.death.sum()),
        "recurrences": int(p.recurrence.sum()),
        "curative_reoperations": int(p.curative_reoperation_months.notna().sum()),
        "pelvis_recurrences": int(p.pelvis_recurrence_months.notna().sum()),
        "scans": int(p.n_scans.sum()),
        "workups": int(p.n_workups.sum()),
        "events": len(e),
        "mean_os_months": round(float(p.os_months.mean()), 6),
        "mean_recurrence_months": round(float(np.nanmean(p.recurrence_months)), 6),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_summary(params, name):
    policy_file, design, primary = CASES[name]
    patients, events = simulate(params, load_policy(ROOT / "scenarios" / policy_file), n=300,
                                seed=2026, design=design, primary=primary)
    summary = _summary(patients, events)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("CRLM_REGENERATE_GOLDEN") == "1":
        path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    assert summary == json.loads(path.read_text())
