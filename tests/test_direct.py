"""The direct path (`sim.engine.direct`) gives the SimPy engine's output byte for byte.

For every policy file without a capacity (the direct path runs no other), under every design
and for every primary site, with and without discounting, and on parameter sets from the
posterior sample, the patients and events tables are serialized and compared as bytes. A
parameter set that makes repeat surgery frequent reaches the last episode.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from conftest import ROOT
from sim.engine import simulate_chunk
from sim.execution.runner import CohortSpec, simulate_priced
from sim.model.cohort import PRIMARY_CHOICES, sample_cohort
from sim.model.design import DESIGNS, censoring
from sim.model.params import with_values
from sim.model.policy import load_policy
from sim.output.tables import events_table, patients_table
from sim.studies.comparison import draw_parameters

POLICY_FILES = sorted([*ROOT.glob("scenarios/*.toml"), *ROOT.glob("scenarios/trials/*.toml")])
WITHOUT_CAPACITY = [p for p in POLICY_FILES if not load_policy(p).has_capacity]


def _bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _both(params, policy, n, seed, design, primary, rate=None, replicate=0):
    """(SimPy, direct): each as (patients bytes, events bytes, discounted tests, work-ups)."""
    cohort = sample_cohort(params, primary, seed, replicate, 0, n)
    cohort["entry_months"] = cohort.pop("entry_fraction") * 0.0
    months, why = censoring(design, cohort, params, 10.0)
    out = []
    for engine in ("simpy", "direct"):
        result = simulate_chunk(params, policy, cohort, months, why, seed, replicate, rate,
                                engine=engine)
        out.append((_bytes(patients_table(cohort, result)),
                    _bytes(events_table(cohort, result, policy)),
                    *(result.patients[name].tobytes() for name in
                      ("discounted_tests", "discounted_workups") if rate is not None)))
    return out


@pytest.mark.parametrize("path", WITHOUT_CAPACITY, ids=lambda p: p.stem)
@pytest.mark.parametrize("design,primary", list(itertools.product(DESIGNS, PRIMARY_CHOICES)))
def test_direct_path_gives_the_simpy_output_on_every_scenario_file(params, path, design, primary):
    simpy, direct = _both(params, load_policy(path), 1200, 11, design, primary, rate=0.03)
    assert simpy[1] == direct[1], "events differ"
    assert simpy[0] == direct[0], "patients differ"
    assert simpy[2:] == direct[2:], "discounted examinations differ"


@pytest.mark.parametrize("draw", [0, 1, 2])
def test_direct_path_gives_the_simpy_output_on_posterior_draws(draw):
    params = draw_parameters(3)[draw]
    for name in ("baseline.toml", "intensive.toml", "symptoms-only.toml"):
        simpy, direct = _both(params, load_policy(ROOT / "scenarios" / name), 800, 5 + draw,
                              "horizon", "both", replicate=draw)
        assert simpy == direct, name


def test_direct_path_reaches_the_last_episode_as_simpy_does(params):
    # every resectable recurrence operated at once, and recurring again often: some patients
    # reach the last episode the streams provide for
    params = with_values(params, {"treatment.curative_prob_if_resectable": 1.0,
                                  "treatment.curative_max_sites": 4.0,
                                  "recurrence.rerecurrence_theta_multiplier": 30.0,
                                  "treatment.repeat_operative_death_prob": 0.0})
    policy = load_policy(ROOT / "scenarios" / "intensive.toml")
    simpy, direct = _both(params, policy, 1500, 3, "horizon", "rectum", rate=0.035)
    assert simpy == direct
    cohort = CohortSpec(1500, 3, "horizon", "rectum", 10.0)
    _, events, _, _ = simulate_priced(cohort, params, policy, 0, 1500, 0.0, None)
    curative = events.to_pandas().query("event == 'reoperation' and detail == 'curative'")
    assert curative.groupby("patient_id").size().max() >= 7   # the last episode was reached


def test_direct_path_refuses_a_capacity(params):
    policy = load_policy(ROOT / "scenarios" / "baseline-capacity.toml")
    cohort = sample_cohort(params, "rectum", 1, 0, 0, 10)
    months, why = censoring("horizon", cohort, params, 10.0)
    with pytest.raises(ValueError, match="capacity"):
        simulate_chunk(params, policy, cohort, months, why, 1, 0, engine="direct")


def test_policies_sharing_their_common_draws_give_what_each_gives_alone(params):
    # a comparison's unit runs every policy on one cohort and one SharedDraws (the natural
    # history and every stream's uniforms drawn once); each policy's output is unchanged by it
    from sim.engine.draws import SharedDraws
    from sim.execution.runner import prepare_cohort

    spec = CohortSpec(900, 13, "horizon", "both", 10.0, replicate=4)
    prepared = prepare_cohort(spec, params, 100, 900, 60.0)
    shared = SharedDraws()
    for name in ("symptoms-only.toml", "intensive.toml", "baseline-capacity.toml", "yearly.toml",
                 "cea-only.toml"):
        policy = load_policy(ROOT / "scenarios" / name)
        together = simulate_priced(spec, params, policy, 100, 900, 60.0, 0.03, prepared, shared)
        alone = simulate_priced(spec, params, policy, 100, 900, 60.0, 0.03)
        assert _bytes(together[0]) == _bytes(alone[0]), name
        assert _bytes(together[1]) == _bytes(alone[1]), name
        assert together[2] == alone[2], name
        for column in ("discounted_tests", "discounted_workups"):
            assert together[3][column].tobytes() == alone[3][column].tobytes(), name
    with pytest.raises(ValueError, match="SharedDraws"):
        simulate_priced(CohortSpec(900, 14, "horizon", "both", 10.0, replicate=4), params,
                        policy, 100, 900, 60.0, None, None, shared)


@pytest.mark.parametrize("path", WITHOUT_CAPACITY, ids=lambda p: p.stem)
def test_a_run_without_rows_gives_the_patient_columns_of_its_rows(params, path):
    # a probabilistic analysis whose patients are only digested records no event rows: each
    # patient's end and first onset, detection and curative reoperation give the same columns
    from sim.output.tables import WITHOUT_ROWS, patient_columns

    policy = load_policy(path)
    heavy = with_values(params, {"treatment.curative_prob_if_resectable": 0.9,
                                 "recurrence.rerecurrence_theta_multiplier": 5.0})
    for (design, primary), values in itertools.product(
            itertools.product(DESIGNS, PRIMARY_CHOICES), (params, heavy)):
        cohort = sample_cohort(values, primary, 8, 0, 0, 1500)
        cohort["entry_months"] = cohort.pop("entry_fraction") * 0.0
        months, why = censoring(design, cohort, values, 10.0)
        got = [patient_columns(cohort, simulate_chunk(values, policy, cohort, months, why, 8, 0,
                                                      rows=rows), WITHOUT_ROWS)
               for rows in (True, False)]
        assert got[1]["recurrence"].any() and not np.isnan(
            got[1]["curative_reoperation_months"]).all()
        for name in WITHOUT_ROWS:
            assert got[0][name].tobytes() == got[1][name].tobytes(), (design, primary, name)
    result = simulate_chunk(params, policy, cohort, months, why, 8, 0, rows=False)
    assert result.events is None
    with pytest.raises(ValueError, match="without event rows"):
        patient_columns(cohort, result, None)


def test_drawing_every_policy_at_once_gives_what_each_draws_alone(params):
    # a comparison's unit draws its policies episode by episode all at once (a later episode's
    # natural history made once for every policy that reaches it); each policy's output is the
    # same as when it is drawn and run alone
    from sim.engine.draws import SharedDraws, draw_chunks
    from sim.execution.runner import prepare_cohort

    frequent = with_values(params, {"treatment.curative_prob_if_resectable": 0.9,
                                    "recurrence.rerecurrence_theta_multiplier": 8.0})
    spec = CohortSpec(1200, 17, "horizon", "both", 10.0, replicate=2)
    prepared = prepare_cohort(spec, frequent, 0, 1200, 60.0)
    names = ("symptoms-only.toml", "intensive.toml", "baseline-capacity.toml", "yearly.toml",
             "cea-only.toml", "esmo.toml")
    policies = [load_policy(ROOT / "scenarios" / name) for name in names]
    shared = SharedDraws()
    drawn = draw_chunks(frequent, policies, prepared.cohort, prepared.censor_months,
                        prepared.censor_detail, 17, 2, shared)
    assert max(max(chunk.episodes) for chunk in drawn) >= 3      # later episodes were drawn
    for policy, chunk in zip(policies, drawn):
        together = simulate_priced(spec, frequent, policy, 0, 1200, 60.0, 0.03, prepared, shared,
                                   drawn=chunk)
        alone = simulate_priced(spec, frequent, policy, 0, 1200, 60.0, 0.03)
        assert _bytes(together[0]) == _bytes(alone[0]), policy.name
        assert _bytes(together[1]) == _bytes(alone[1]), policy.name
