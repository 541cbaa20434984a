"""The bad-input suite: every fault of issue 12's probe, numbered as there, handled as promised.

The promise (README): bad input gets one line on stderr naming the field and what is allowed, exit
status 2, no traceback, and nothing written; a run is never mixed, never half-written, never left
running. A command added later must pass the parametrized tests here too (add it to COMMANDS).

Items tested in other files (kept there, beside the code they exercise; `test_every_item_is_tested`
fails if one of them disappears):
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import BASELINE, ROOT, packaged
from sim.cli import main

CRLM_SIM = str(Path(sys.executable).with_name("crlm-sim"))
EXPONENTIAL = ROOT / "scenarios" / "power" / "exponential.toml"

ELSEWHERE = {
    1: ["test_resume_identity.py::test_a_cohort_resumed_with_an_edited_policy_is_refused",
        "test_resume_identity.py::test_a_comparison_resumed_with_an_edited_policy_is_refused"],
    2: ["test_calibration.py::test_calibrate_resumes_from_its_history_without_pickle"],
    4: ["test_cli_errors.py::test_unreadable_input_files_get_one_line",
        "test_cli_errors.py::test_negative_seeds_and_replicates",
        "test_cli_errors.py::test_summarize_of_a_table_that_is_not_a_cohort"],
    5: ["test_power.py::test_a_null_design_rejects_at_alpha_and_reports_without_error"],
    6: ["test_resume_identity.py::test_power_output_is_staged_and_a_second_run_is_kept_out",
        "test_resume_identity.py::test_validate_refuses_a_non_empty_out"],
    7: ["test_resume_identity.py::test_too_many_draws_are_refused_before_anything_is_created"],
    11: ["test_cli_errors.py::test_a_comparison_name_never_sends_the_default_output_outside_runs"],
    12: ["test_cli_errors.py::test_nonsense_in_a_policy_is_refused_not_coerced",
         "test_cli_errors.py::test_nonsense_in_the_parameters_is_refused",
         "test_cli_errors.py::test_an_unbounded_horizon_is_refused"],
}
__doc__ += "".join(f"\n- item {item}: " + ", ".join(tests) for item, tests in ELSEWHERE.items())


def test_every_item_is_tested():
    for tests in ELSEWHERE.values():
        for reference in tests:
            module, name = reference.split("::")
            assert hasattr(importlib.import_module(module.removesuffix(".py")), name), reference


def _refused(capsys, argv, message, *absent):
    """`argv` exits 2 with one line matching `message`, and none of `absent` exists after."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    for path in absent:
        assert not Path(path).exists(), path
    return err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _comparison(folder: Path, patients=200, draws=0, replicates=1, extra="") -> Path:
    return _write(folder / "comparison.toml", f"""
name = "small"
reference = "baseline"
policies = ["baseline.toml", "yearly.toml"]
{extra}
[cohort]
patients = {patients}
years = 5
[uncertainty]
draws = {draws}
replicates = {replicates}
""")


def _edited(source: Path, old: str, new: str, target: Path) -> Path:
    text = source.read_text()
    assert old in text, old
    return _write(target, text.replace(old, new, 1))


# -- the commands and the least each needs, for the tests every command must pass ----------------

def _commands(tmp_path: Path) -> dict[str, list]:
    return {"cohort": ["cohort", "--n", "10"],
            "run": ["run", _comparison(tmp_path, patients=20)],
            "power": ["power", EXPONENTIAL, "--reps", "5"],
            "validate": ["validate", "--rectal-studies", "1", "--colon-studies", "1",
                         "--external-patients", "50"],
            "calibrate": ["calibrate", "--budget", "2", "--proposals", "2", "--posterior-size", "1",
                          "--rectal-studies", "1", "--colon-studies", "1",
                          "--external-patients", "50"]}


COMMANDS = ("cohort", "run", "power", "validate", "calibrate")


# -- item 3: sizes bounded before work starts ------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["cohort", "--n", "1000000000000"], r"--n: must be a positive number of patients, at most 100,000,000"),
    (["cohort", "--n", "100", "--chunk-size", "1000000000"], r"--chunk-size: .* at most 1,000,000"),
    (["power", EXPONENTIAL, "--reps", "1000000000000"], r"--replicates: .* at most 1,000,000 "),
    (["power", EXPONENTIAL, "--reps", "1e12"], r"--replicates(/--reps)?: .*must be an integer"),
])
def test_item_3_sizes_on_the_command_line(capsys, tmp_path, argv, message):
    out = tmp_path / "out"
    _refused(capsys, [*argv, "--out", out], message, out)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind, old, new, message", [
    ("policy", "interval_months = 3", "interval_months = 1e-9", r"phase: at most 480 scheduled visits"),
    ("policy", "interval_months = 3", "interval_months = 1e-4", r"phase: at most 480 scheduled visits"),
    ("design", "sample_sizes = [150, 200", "sample_sizes = [150, 1e12, 2e12",
     r"sample_sizes.1: Input should be a valid integer"),
    ("design", "sample_sizes = [150, 200", "sample_sizes = [150, 1000000000000",
     r"sample_sizes.1: Input should be less than or equal to 1000000"),
    ("design", "allocation = [1, 1]", "allocation = [1000000000, 1]",
     r"allocation.0: Input should be less than or equal to 100"),
    ("design", "sample_sizes = [150, 200, 250, 300, 350, 400, 450, 500]\nreplicates = 4000",
     "sample_sizes = [200000, 1000000]\nreplicates = 100000", r"--replicates: .* more than 10,000,000,000"),
])
def test_item_3_sizes_in_files(capsys, tmp_path, kind, old, new, message):
    out = tmp_path / "out"
    if kind == "policy":
        argv = ["cohort", "--n", "10", "--policy", _edited(BASELINE, old, new, tmp_path / "p.toml")]
    else:
        argv = ["power", _edited(EXPONENTIAL, old, new, tmp_path / "d.toml")]
    _refused(capsys, [*argv, "--out", out], message, out)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("patients, draws, replicates, message", [
    (1_000_000_000_000, 0, 1, r"cohort.patients: Input should be less than or equal to 10000000"),
    (10_000_000, 90, 1000, r"cohort.patients: .* patient-lives, more than 10,000,000,000"),
])
def test_item_3_sizes_of_a_comparison(capsys, tmp_path, patients, draws, replicates, message):
    file = _comparison(tmp_path, patients, draws, replicates)
    _refused(capsys, ["run", file, "--out", tmp_path / "out"], message, tmp_path / "out")


# -- item 4: one line, not a traceback, for every OS error --------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_item_4_out_under_a_regular_file(capsys, tmp_path, command):
    _write(tmp_path / "afile", "x")
    argv = [*_commands(tmp_path)[command], "--out", tmp_path / "afile" / "out"]
    _refused(capsys, argv, r"--out: .*afile exists and is not a directory")


@pytest.mark.parametrize("command", COMMANDS)
def test_item_4_out_whose_parent_cannot_be_created(capsys, tmp_path, command):
    argv = [*_commands(tmp_path)[command], "--out", "/proc/crlm-sim-test/out"]
    _refused(capsys, argv, r"--out: cannot create /proc/crlm-sim-test \(")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", COMMANDS)
def test_item_4_read_only_out(capsys, tmp_path, command):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    _refused(capsys, [*_commands(tmp_path)[command], "--out", folder / "out"],
             r"--out: cannot write in .*locked \(permission denied\)")


@pytest.mark.parametrize("address, message", [
    ("tcp://127.0.0.1", r"--scheduler: must be a scheduler address with its port"),
    ("garbage", r"--scheduler: must be a scheduler address with its port"),
    ("tcp://127.0.0.1:9", r"--scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9"),
])
def test_item_4_scheduler(capsys, tmp_path, address, message):
    out = tmp_path / "out"
    _refused(capsys, ["cohort", "--n", "10", "--scheduler", address, "--out", out], message, out)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("record", ["{not json", None])
def test_item_4_corrupt_run_record_on_resume(capsys, tmp_path, record):
    staging = tmp_path / ".out.partial"
    (staging / "patients.parquet").mkdir(parents=True)   # (an empty one would just be replaced)
    if record is not None:
        _write(staging / "run.json", record)
    _refused(capsys, ["cohort", "--n", "10", "--out", tmp_path / "out", "--resume"],
             r"--resume: .*run.json is missing or corrupt; remove")


# -- item 5: accepted, then a crash mid-run ---------------------------------------------------------

def _with_capacity(tmp_path: Path, slots: str) -> Path:
    text = BASELINE.read_text()
    first = text.index("[[phase")
    return _write(tmp_path / "p.toml", f"{text[:first]}[capacity]\nimaging_slots_per_week = {slots}"
                                       f"\n\n{text[first:]}")


@pytest.mark.parametrize("case", ["slots", "age", "accrual"])
def test_item_5_values_that_would_crash_mid_run(capsys, tmp_path, case):
    out = tmp_path / "out"
    if case == "slots":
        argv = ["cohort", "--n", "10", "--policy", _with_capacity(tmp_path, "inf")]
        message = r"capacity.imaging_slots_per_week: Input should be a finite number"
    elif case == "age":
        argv = ["cohort", "--n", "10", "--params", _edited(
            packaged("data/params.toml"), "age_mean_years = { value = 60.0",
            "age_mean_years = { value = 1e308", tmp_path / "params.toml")]
        message = r"cohort: age_mean_years"
    else:
        argv = ["power", _edited(EXPONENTIAL, "accrual_months = 24.0", "accrual_months = inf",
                                 tmp_path / "d.toml")]
        message = r"accrual_months: Input should be a finite number"
    _refused(capsys, [*argv, "--out", out], message, out)
    assert _leftovers(tmp_path) == []


# -- items 8 and 10: a live run is locked; workers end with the command ---------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_long_cohort(out: Path) -> tuple[subprocess.Popen, list[int]]:
    """A cohort too large to finish during the test, with its two workers started."""
    run = subprocess.Popen([CRLM_SIM, "cohort", "--n", "20000000", "--workers", "2", "--out",
                            str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [pid for pid in _children(run.pid) if "resource_tracker" not in
                   Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        if len(workers) >= 2 and (out.parent / f".{out.name}.partial" / "lock").exists():
            return run, workers
        time.sleep(0.2)
    run.kill()
    raise AssertionError("the workers did not start")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_items_8_and_10_a_live_run_is_locked_and_sigterm_ends_every_worker(capsys, tmp_path):
    out = tmp_path / "out"
    run, workers = _start_long_cohort(out)
    try:
        for extra in ([], ["--resume"]):   # item 8: refused, naming the running one
            _refused(capsys, ["cohort", "--n", "20000000", "--out", out, *extra],
                     rf"--out: another crlm-sim run \(pid {run.pid}, started .*\) is writing")
        run.send_signal(signal.SIGTERM)     # item 10
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("crlm-sim: interrupted")
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the command"
    # the interrupted run is resumable: the lock went with the process
    _refused(capsys, ["cohort", "--n", "20000000", "--out", out], r"was interrupted in .*add --resume")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_item_10_workers_end_when_the_command_is_killed(tmp_path):
    run, workers = _start_long_cohort(tmp_path / "out")
    run.kill()                               # SIGKILL: no handler runs in the command
    run.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the command"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_item_10_ctrl_c_under_dask_prints_one_line(tmp_path):
    # started as from a terminal, Ctrl-C not ignored: a test runner launched in the background
    # by a shell without job control (`cmd &`) would hand its children SIGINT ignored
    run = subprocess.Popen([CRLM_SIM, "cohort", "--n", "20000000", "--executor", "dask",
                            "--workers", "2", "--out", str(tmp_path / "out")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / ".out.partial").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)                           # units under way on the cluster
        os.killpg(run.pid, signal.SIGINT)       # what Ctrl-C on a terminal does
        _, err = run.communicate(timeout=90)
    finally:
        run.kill()
    lines = [line for line in err.splitlines() if not line.startswith("crlm-sim: unit ")]
    assert run.returncode == 130, err
    assert lines == [lines[-1]] and lines[-1].startswith("crlm-sim: interrupted"), err


# -- item 9: --out a symlink, '.', empty ----------------------------------------------------------

@pytest.mark.parametrize("name", [".", "", "..", "./"])
def test_item_9_out_dot_or_empty(capsys, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, ["cohort", "--n", "10", "--out", name], r"--out: must name a new or empty directory")
    assert list(tmp_path.iterdir()) == []


def test_item_9_out_the_working_directory_by_another_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    _refused(capsys, ["cohort", "--n", "10", "--out", "sub/.."],
             r"--out: must name a new or empty directory|--out: must not be the working directory")


def test_item_9_out_a_symlink_is_followed(capsys, tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert main(["cohort", "--n", "10", "--seed", "1", "--out", str(tmp_path / "link")]) == 0
    assert (tmp_path / "target" / "manifest.json").exists()
    assert (tmp_path / "link").is_symlink() and _leftovers(tmp_path) == []


# -- item 11: paths inside files stay under the file's folder or the packaged scenarios -----------

SECRET = "s3cr3t-TOKEN-123"


@pytest.fixture()
def secret(tmp_path) -> Path:
    outside = tmp_path / "private"
    outside.mkdir()
    return _write(outside / "secret.toml", f'api_token = "{SECRET}"\nname = "{SECRET}"\n')


@pytest.mark.parametrize("reach", ["../private/secret.toml", "ABSOLUTE"])
def test_item_11_a_comparison_cannot_reach_outside(capsys, tmp_path, secret, reach):
    folder = tmp_path / "study"
    folder.mkdir()
    name = str(secret) if reach == "ABSOLUTE" else reach
    file = _write(folder / "c.toml", _comparison(folder).read_text().replace(
        '"yearly.toml"', json.dumps(name)))
    err = _refused(capsys, ["run", file, "--out", tmp_path / "out"],
                   r"c.toml: policies: no policy file .* under .*study or among the packaged scenarios")
    assert SECRET not in err


@pytest.mark.parametrize("field", ["params", "control"])
def test_item_11_a_design_cannot_reach_outside(capsys, tmp_path, secret, field):
    folder = tmp_path / "study"
    folder.mkdir()
    text = (ROOT / "scenarios" / "power" / "trial.toml").read_text().replace('"../', '"')
    text = re.sub(rf"(?m)^{field} = .*$", "", text) + f'\n{field} = "../private/secret.toml"\n'
    err = _refused(capsys, ["power", _write(folder / "d.toml", text), "--out", tmp_path / "out"],
                   rf"d.toml: {field}: no file '../private/secret.toml' under")
    assert SECRET not in err


@pytest.mark.parametrize("option", ["--params", "--policy"])
def test_item_11_a_file_that_is_no_crlm_sim_file_is_never_echoed(capsys, tmp_path, secret, option):
    err = _refused(capsys, ["cohort", "--n", "10", option, secret, "--out", tmp_path / "out"],
                   r"secret.toml: api_token: unknown key")
    assert SECRET not in err


def test_item_11_a_design_of_no_kind_is_never_echoed(capsys, tmp_path):
    design = _write(tmp_path / "d.toml", f'kind = "{SECRET}"\n')
    err = _refused(capsys, ["power", design, "--out", tmp_path / "out"],
                   r"d.toml: kind: must be one of exponential, trial, cohort$")
    assert SECRET not in err


# -- item 12: nonsense in a design ---------------------------------------------------------------

@pytest.mark.parametrize("old, new, message", [
    ("hazard_ratio = 0.7", 'hazard_ratio = "0.7"', r"hazard_ratio: Input should be a valid number"),
    ("hazard_ratio = 0.7", "hazard_ratio = true", r"hazard_ratio: Input should be a valid number"),
    ("hazard_ratio = 0.7", "hazard_ratio = nan", r"hazard_ratio: Input should be a finite number"),
    ("replicates = 4000", "replicates = 4000.0", r"replicates: Input should be a valid integer"),
])
def test_item_12_nonsense_in_a_design(capsys, tmp_path, old, new, message):
    _refused(capsys, ["power", _edited(EXPONENTIAL, old, new, tmp_path / "d.toml"), "--out",
                      tmp_path / "out"], message, tmp_path / "out")


# -- item 13: summarize in bounded memory ----------------------------------------------------------

def test_item_13_summarize_memory_is_a_few_hundred_bytes_per_patient(tmp_path):
    """Python-side peak allocations (numpy included, tracemalloc) of summarize on 200,000
    synthetic patients stay under 400 bytes a patient (the string arrays of 2n rows took about
    6 KB); the benchmark measures the whole process at 10^6 (benchmarks/bench_summarize.py)."""
    from sim.reports.summary import REQUIRED, summarize  # noqa: PLC0415

    n, rng = 200_000, np.random.default_rng(5)
    os_months = rng.exponential(40.0, n)
    columns = {"primary_site": pa.array(np.where(rng.random(n) < 0.25, "rectum", "colon")),
               "os_months": os_months, "death": rng.random(n) < 0.6,
               "dfs_months": os_months * rng.random(n), "dfs_event": rng.random(n) < 0.7}
    for site in ("pelvis", "liver", "lung", "other"):
        columns[f"{site}_recurrence_months"] = np.where(rng.random(n) < 0.3,
                                                        os_months * rng.random(n), np.nan)
    assert set(columns) == set(REQUIRED)
    (tmp_path / "patients.parquet").mkdir()
    pq.write_table(pa.table(columns), tmp_path / "patients.parquet" / "part-000000.parquet")
    tracemalloc.start()
    try:
        summarize(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / n < 400, f"{peak / n:.0f} bytes a patient"


# -- item 14: what --chunk-size changes ----------------------------------------------------------

def test_item_14_chunk_size_says_it_changes_a_capacity(capsys):
    with pytest.raises(SystemExit):
        main(["cohort", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "changes no result, except for a policy with a capacity" in text
