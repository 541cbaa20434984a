"""One execution layer: local processes, a Dask cluster, interrupted and resumed runs all give
the same output, and no reader ever sees half a partition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import BASELINE

from sim.cli import main
from sim.model.params import load_params
from sim.model.policy import load_policy
from sim.execution.runner import CohortSpec, run_cohort

COMMAND = ["cohort", "--n", "3000", "--seed", "21", "--design", "paper", "--primary", "both",
           "--chunk-size", "400"]


def _parts(directory: Path) -> dict[str, bytes]:
    return {f"{table}/{p.name}": p.read_bytes() for table in ("patients.parquet", "events.parquet")
            for p in sorted((directory / table).glob("part-*.parquet"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main([*COMMAND, "--workers", "1", "--out", str(out)]) == 0
    return out


def test_two_local_workers_give_the_same_bytes(reference, tmp_path):
    assert main([*COMMAND, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    assert _parts(tmp_path / "two") == _parts(reference)
    for table in ("patients.parquet", "events.parquet"):
        assert pq.read_table(tmp_path / "two" / table).equals(pq.read_table(reference / table))


def test_dask_cluster_gives_the_same_bytes(reference, tmp_path):
    from dask import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main([*COMMAND, "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "cluster")]) == 0
    assert _parts(tmp_path / "cluster") == _parts(reference)
    assert main([*COMMAND, "--executor", "dask", "--workers", "2",
                 "--out", str(tmp_path / "local-cluster")]) == 0
    assert _parts(tmp_path / "local-cluster") == _parts(reference)


class _Interrupting:
    """An executor that stops (as Ctrl-C would) after a few units."""

    def __init__(self, units: int):
        self.units = units

    def run(self, fn, units, on_result):
        for k, unit in enumerate(units):
            if k == self.units:
                raise KeyboardInterrupt
            on_result(fn(unit))

    def close(self):
        pass


def test_interrupted_run_resumes_to_identical_output(reference, tmp_path):
    params, _ = load_params()
    policy = load_policy(BASELINE)
    spec = CohortSpec(3000, 21, "paper", "both")
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_cohort(spec, params, policy, out, {}, chunk_size=400, executor=_Interrupting(3))
    staging = tmp_path / ".run.partial"
    assert not out.exists() and len(list((staging / "patients.parquet").glob("part-*"))) == 3
    # the same command without --resume refuses to start over the interrupted run
    code = main([*COMMAND, "--workers", "1", "--out", str(out)])
    assert code == 2
    calls = []

    class Counting(_Interrupting):
        def run(self, fn, units, on_result):
            units = list(units)
            calls.extend(u.index for u in units)
            for unit in units:
                on_result(fn(unit))

    run_cohort(spec, params, policy, out, {}, chunk_size=400, executor=Counting(0), resume=True)
    assert calls == [3, 4, 5, 6, 7]  # only the missing units
    assert _parts(out) == _parts(reference)


def test_killed_run_resumes_and_never_shows_half_a_partition(reference, tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "sim", *COMMAND, "--workers", "1", "--out", str(out)]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = tmp_path / ".killed.partial" / "patients.parquet"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(staging.glob("part-*.parquet"))) < 2:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    for part in staging.glob("part-*.parquet"):  # every visible partition is whole
        assert pq.read_table(part).num_rows == 400
    assert main([*COMMAND, "--workers", "2", "--resume", "--out", str(out)]) == 0
    assert _parts(out) == _parts(reference)


def test_bad_execution_options(capsys, tmp_path):
    assert main([*COMMAND, "--workers", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--workers: must be a positive number of processes (got 0)" in capsys.readouterr().err
    assert main([*COMMAND, "--executor", "spark", "--out", str(tmp_path / "x")]) == 2
    assert "--executor: must be one of local, dask (got 'spark')" in capsys.readouterr().err


@pytest.mark.parametrize("per_unit", [200, 400])
def test_a_priced_comparison_is_the_same_on_one_worker_two_and_a_dask_cluster(tmp_path, monkeypatch,
                                                                              per_unit):
    # units of (draw, chunk) under every policy, and an analysis in batches of draws on the
    # workers (chunks of 200), or units of whole draws that digest themselves where they run
    # (400): neither the executor nor the number of workers changes a byte of the results
    import sim.studies.digest as digest

    monkeypatch.setattr(digest, "BATCH_ROWS", 700)      # several batches of draws
    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    spec = tmp_path / "priced.toml"
    spec.write_text(
        'name = "priced"\nreference = "esmo"\n'
        f'policies = ["{scenarios / "esmo.toml"}", "{scenarios / "intensive.toml"}"]\n'
        f'economics = "{scenarios / "economics" / "us.toml"}"\n'
        f"[cohort]\npatients = 400\npatients_per_department = {per_unit}\n[uncertainty]\ndraws = 5\n"
        "seed = 2\n")
    runs = {"one": ["--workers", "1"], "two": ["--workers", "2"],
            "dask": ["--executor", "dask", "--workers", "2"]}
    for name, options in runs.items():
        assert main(["run", str(spec), "--out", str(tmp_path / name), *options]) == 0
    files = ["results.csv", "results_by_draw.csv", "economics.csv", "icers.csv", "ceac.csv",
             "evppi.csv", *(f"patients/{p.name}" for p in (tmp_path / "one" / "patients").iterdir())]
    assert len(files) == 6 + 2 * 5 * (400 // per_unit)
    for name in ("two", "dask"):
        for file in files:
            assert (tmp_path / name / file).read_bytes() == (tmp_path / "one" / file).read_bytes(), (name, file)
