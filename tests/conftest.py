"""Shared fixtures: the installed defaults and small simulated cohorts."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw their examples deterministically (fixed seeds, never a random seed
# per run) and keep no example database in the tree.
settings.register_profile("crlm", derandomize=True, database=None, deadline=None)
settings.load_profile("crlm")

from sim.model.params import load_params
from sim.model.policy import load_policy
from sim.execution.runner import CohortSpec, simulate_tables

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"


@pytest.fixture(scope="session")
def params():
    return load_params()[0]


@pytest.fixture(scope="session")
def policy():
    return load_policy(BASELINE)


def simulate(params, policy, n=300, seed=7, design="horizon", primary="rectum", years=10.0,
             first=0, chunk=None):
    """(patients, events) as pandas frames for patients first .. first + n - 1."""
    spec = CohortSpec(n, seed, design, primary, years)
    chunk = chunk or n
    frames = [simulate_tables(spec, params, policy, start, min(chunk, first + n - start))
              for start in range(first, first + n, chunk)]
    import pyarrow as pa
    patients = pa.concat_tables([f[0] for f in frames])
    events = pa.concat_tables([f[1] for f in frames])
    return patients, events


def packaged(name: str) -> Path:
    return Path(str(resources.files("sim") / name))
