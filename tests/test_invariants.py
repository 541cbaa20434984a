"""Invariants of every simulated history, on hypothesis-chosen seeds, designs and policies."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import simulate

TERMINAL = {"death", "censored"}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), design=st.sampled_from(["paper", "horizon"]),
       primary=st.sampled_from(["rectum", "colon", "both"]), years=st.floats(0.5, 30.0))
def test_every_history_is_well_formed(params, policy, seed, design, primary, years):
    patients, events = simulate(params, policy, n=150, seed=seed, design=design,
                                primary=primary, years=years)
    p = patients.to_pandas().set_index("patient_id")
    e = events.to_pandas()
    e["event"] = e["event"].astype(str)
    # rows sorted by patient then seq; seq runs 0..k-1; times never go back
    assert (np.diff(e["patient_id"]) >= 0).all()
    for pid, rows in e.groupby("patient_id", sort=False):
        assert list(rows["seq"]) == list(range(len(rows)))
        assert (np.diff(rows["time_months"].to_numpy()) >= 0).all(), pid
        kinds = rows["event"].tolist()
        assert kinds[0] == "hepatectomy"
        assert sum(k in TERMINAL for k in kinds) == 1 and kinds[-1] in TERMINAL, pid
        end = rows["time_months"].iloc[-1]
        assert end == p.loc[pid, "os_months"]
    assert (p["dfs_months"] <= p["os_months"]).all()
    assert (p["recurrence_months"].dropna() <= p.loc[p["recurrence"], "os_months"]).all()
    assert (p["recurrence_onset_months"].dropna() <= p["recurrence_months"].dropna()).all()
    colon = p["primary_site"] == "colon"
    assert p.loc[colon, "pelvis_recurrence_months"].isna().all()
    assert not e.loc[e["patient_id"].isin(p.index[colon]), "site"].fillna("").str.contains("pelvis").any()
    # an event after censoring is not observed
    for site in ("pelvis", "liver", "lung", "other"):
        t = p[f"{site}_recurrence_months"]
        assert (t.dropna() <= p.loc[t.notna(), "os_months"]).all()
    if design == "horizon":
        assert (p["os_months"] <= 12 * years + 1e-9).all()
    assert (p["n_recurrence_sites"] >= p["first_recurrence_sites"].fillna("").str.count(r"\w+")).all()
    assert set(p["death_cause"].dropna()) <= {"operative", "cancer", "background"}
    assert (p["death_cause"].notna() == p["death"]).all()
    assert (p["dfs_event"] == (p["recurrence"] | p["death"])).all()
