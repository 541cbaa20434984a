"""The public API: the simulator's three jobs as functions, for notebooks and scripts.

>>> import sim
>>> cohort = sim.simulate_cohort(2000, seed=1, design="horizon", policy="intensive")
>>> cohort.patients.os_months.median()                                    # doctest: +SKIP
>>> result = sim.compare("scenarios/comparisons/facs.toml")               # doctest: +SKIP
>>> curve = sim.power("scenarios/power/exponential.toml", replicates=200)  # doctest: +SKIP

Inputs are files or objects: a policy is a file, the name of a packaged scenario ("baseline",
"trials/facs-ct") or a `Policy`; parameters are a file or a `Params` (change a value with
`sim.with_values(params, {"growth.doubling_time_median_months": 3.0})`). The command line calls
exactly these functions; it adds the one-line errors and the printed summaries.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sim import checks
from sim._paths import scenario_file
from sim.errors import InputError
from sim.execution.executor import LocalExecutor
from sim.execution.runner import CohortSpec, run_cohort, simulate_tables, versions
from sim.limits import MAX_CHUNK, MAX_PATIENTS, MAX_POWER_PATIENT_LIVES, MAX_POWER_REPLICATES
from sim.execution.staging import check_out, discard, finish, release, staging_for
from sim.model.cohort import PRIMARY_CHOICES
from sim.model.design import DESIGNS
from sim.model.params import Params, default_params_path, with_values
from sim.model.params import load_params as _load_params
from sim.model.policy import Policy
from sim.model.policy import load_policy as _load_policy
from sim.studies.comparison import Comparison, check_trial, draw_parameters, economic_draws
from sim.studies.comparison import load_comparison as _load_comparison
from sim.studies.comparison import run_units
from sim.studies.power.curve import PowerCurve, power_curve
from sim.studies.decision import noisy
from sim.studies.results import ComparisonResult, analyse, value_of_information_violations
from sim.studies.power.designs import Design
from sim.studies.power.designs import load_design as _load_design
from sim.studies.power.simulate import inputs_identity, simulate_replicates

__all__ = ["simulate_cohort", "write_cohort", "compare", "power", "load_params", "load_policy",
           "load_comparison", "load_design", "with_values", "CohortResult", "ComparisonResult",
           "Params", "Policy", "Comparison", "Design", "PowerCurve", "InputError"]

DEFAULT_SEED = 20080101

_POLICY = ("a policy file, the name of a packaged scenario (\"baseline\", \"trials/facs-ct\") "
           "or a Policy")
_PARAMS = "a parameter file, a Params or None (the package's fitted set)"


def load_params(path: str | Path | None = None) -> Params:
    """The parameter set of a file (default: the package's fitted parameters), checked."""
    checks.source("path", path, (), "a parameter file or None (the package's fitted set)",
                  none=True)
    return _load_params(path)[0]


def load_policy(policy: str | Path | Policy = "baseline") -> Policy:
    """A surveillance policy: a `Policy`, a TOML file, or the name of a packaged scenario
    (``"baseline"``, ``"symptoms-only"``, ``"trials/facs-ct"``; see `scenarios/`)."""
    if isinstance(checks.source("policy", policy, (Policy,), _POLICY), Policy):
        return policy
    return _load_policy(scenario_file(policy, "policy file"))


def load_comparison(path: str | Path, economics: str | Path | None = None) -> Comparison:
    """A comparison file (or the name of a packaged one, ``"comparisons/facs"``) and the policy
    and economics files it names, checked; `economics` replaces the economics file it names."""
    checks.path("path", path, "a comparison file or the name of a packaged one "
                "(\"comparisons/facs\")")
    checks.source("economics", economics, (), "an economics file or None", none=True)
    return _load_comparison(path, economics)


def load_design(path: str | Path) -> Design:
    """A power design file (or the name of a packaged one, ``"power/exponential"``), checked."""
    checks.path("path", path, "a design file or the name of a packaged one "
                "(\"power/exponential\")")
    return _load_design(path)


def _params(params: str | Path | Params | None) -> Params:
    return params if isinstance(params, Params) else load_params(params)


def _cohort_arguments(n, seed, design, primary, years, replicate, chunk_size, policy,
                      params) -> CohortSpec:
    """The arguments shared by `simulate_cohort` and `write_cohort`, checked at the door (in
    the order of the signature)."""
    spec = CohortSpec(
        checks.integer("n", n, low=1, high=MAX_PATIENTS, what="a positive number of patients"),
        checks.integer("seed", seed), checks.choice("design", design, DESIGNS),
        checks.choice("primary", primary, PRIMARY_CHOICES),
        checks.number("years", years, above=0, high=100,
                      what="a positive number of years, at most 100"),
        checks.integer("replicate", replicate))
    checks.integer("chunk_size", chunk_size, low=1, high=MAX_CHUNK,
                   what="a positive number of patients")
    checks.source("policy", policy, (Policy,), _POLICY)
    checks.source("params", params, (Params,), _PARAMS, none=True)
    return spec.check()


def _run_options(workers, executor, resume, progress, command) -> None:
    """The options of a run that writes to disk, checked at the door."""
    checks.workers(workers)
    checks.executor(executor)
    checks.flag("resume", resume)
    checks.optional_flag("progress", progress)
    checks.text("command", command)


def _file_digest(path) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(Path(str(path)).read_bytes()).hexdigest()[:16]


def manifest(**fields) -> dict:
    """What a run was made from: its fields, plus the package versions."""
    return {**fields, "versions": versions()}


def write_manifest(directory: Path, **fields) -> Path:
    """`directory`/manifest.json: `manifest(**fields)` as indented, sorted JSON."""
    path = Path(directory) / "manifest.json"
    path.write_text(json.dumps(manifest(**fields), indent=2, sort_keys=True) + "\n")
    return path


@dataclass(frozen=True)
class CohortResult:
    """A simulated cohort in memory: one row per patient, one row per event (columns and units:
    docs/outputs.md), and the manifest of the run."""

    patients: pd.DataFrame
    events: pd.DataFrame
    manifest: dict


def simulate_cohort(n: int, *, seed: int = DEFAULT_SEED, design: str = "paper",
                    primary: str = "both", years: float = 10.0,
                    policy: str | Path | Policy = "baseline",
                    params: str | Path | Params | None = None, replicate: int = 0,
                    chunk_size: int = 10_000) -> CohortResult:
    """Simulate `n` patients in memory (for millions, `write_cohort` writes them to disk).

    design: "paper" (the study's accrual and close) or "horizon" (everyone followed `years`);
    primary: "rectum", "colon" or "both" (the study's 141:441 mix). The same arguments give the
    same patients, whatever `chunk_size`.
    """
    spec = _cohort_arguments(n, seed, design, primary, years, replicate, chunk_size, policy,
                             params)
    model, surveillance = _params(params), load_policy(policy)
    n, chunk_size = spec.n, int(chunk_size)
    tables = [simulate_tables(spec, model, surveillance, first, min(chunk_size, n - first))
              for first in range(0, n, chunk_size)]
    patients = pa.concat_tables([t[0] for t in tables]).to_pandas()
    events = pa.concat_tables([t[1] for t in tables]).to_pandas()
    return CohortResult(patients, events, manifest(
        n=n, seed=spec.seed, design=design, primary=primary, years=spec.years,
        replicate=spec.replicate, policy=surveillance.name, parameter_hash=model.digest(),
        parameter_set=model.meta.name))


def write_cohort(out: str | Path, n: int, *, seed: int = DEFAULT_SEED, design: str = "paper",
                 primary: str = "both", years: float = 10.0,
                 policy: str | Path | Policy = "baseline",
                 params: str | Path | Params | None = None, replicate: int = 0,
                 chunk_size: int = 10_000, workers: int | None = None, executor=None,
                 resume: bool = False, progress: bool | None = None, command: str = "") -> dict:
    """Simulate `n` patients unit by unit into `out` (partitioned Parquet and manifest.json,
    all or nothing, resumable); returns the run's tally (counts for the one-screen summary)."""
    out = Path(checks.path("out", out, "a directory path"))
    spec = _cohort_arguments(n, seed, design, primary, years, replicate, chunk_size, policy,
                             params)
    _run_options(workers, executor, resume, progress, command)
    model, surveillance = _params(params), load_policy(policy)
    fields = {"command": command,
              "policy_file": str(policy) if not isinstance(policy, Policy) else "(object)",
              "params_file": (str(params) if isinstance(params, (str, Path))
                              else "(object)" if params is not None else str(default_params_path()))}
    executor = executor or LocalExecutor(checks.workers(workers))
    return run_cohort(spec, model, surveillance, out, fields, chunk_size=int(chunk_size),
                      executor=executor, resume=resume, progress=progress)


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Each file under a temporary name, then renamed: none is ever half-written."""
    for name, data in files.items():
        partial = folder / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(folder / name)


def compare(comparison: str | Path | Comparison, *, out: str | Path | None = None,
            workers: int | None = None, executor=None, resume: bool = False,
            progress: bool | None = False, keep_patients: bool = True, command: str = "",
            economics: str | Path | None = None) -> ComparisonResult:
    """Run every policy of a comparison on the same patients over the parameter draws.

    `comparison` is a file (`scenarios/comparisons/*.toml`) or a `Comparison`; `economics`, an
    economics file, replaces the one the comparison names (a cost-effectiveness analysis is made
    when there is one). Returns a `ComparisonResult`: every table of the comparison as a
    pandas frame (the summaries, the per-draw outcomes, the departments' waits and, with an
    economics file, the decision analysis: `result.icers`, `result.ceac`, `result.evppi`,
    `result.evppi_ranking`, `result.structures`, `result.monte_carlo_error`, the deterministic
    analyses `result.one_way`, `result.two_way`, `result.thresholds`, and with a proposed trial
    `result.evsi`).
    With `out`, the tables (the same frames as CSV), report.html, figures, every patient table
    and manifest.json are written there (new or empty; an interrupted run is finished with
    ``resume=True``); without, in a temporary directory that is removed at the end.
    `workers`: local processes (default 1; or give an `executor`, e.g. Dask's); `progress`:
    False (default) writes nothing to stderr, True or None a bar on a terminal and a few lines
    otherwise; `keep_patients` False: the patient tables are removed once summarised (a
    probabilistic analysis need not keep millions of rows).
    """
    from sim.reports.comparison import render  # noqa: PLC0415 - matplotlib on use only

    checks.source("comparison", comparison, (Comparison,),
                  "a comparison file, the name of a packaged one (\"comparisons/facs\") or a "
                  "Comparison")
    out = checks.out_path("out", out)
    _run_options(workers, executor, resume, progress, command)
    checks.flag("keep_patients", keep_patients)
    checks.source("economics", economics, (), "an economics file or None", none=True)
    source = None if isinstance(comparison, Comparison) else Path(comparison)
    if source is None and economics is not None:
        raise InputError("economics: only with a comparison file; a Comparison carries its own "
                         "(dataclasses.replace(comparison, economics=sim.model.economics."
                         "load_economics(FILE)))")
    loaded = comparison if source is None else _load_comparison(source, economics)
    if source is None:
        check_trial(loaded, "comparison")
    draw_parameters(loaded.uncertainty.draws)   # checked before anything is created
    scratch = None
    if out is None:
        scratch = Path(tempfile.mkdtemp(prefix="crlm-compare-"))
        target = scratch / "run"
    else:
        target = check_out(out)
    # the run's identity is its content: the comparison, every policy it names, the parameters
    # and the posterior sample, so that --resume never mixes units of edited files
    identity = {"comparison": repr((loaded.name, loaded.reference, loaded.cohort,
                                    loaded.uncertainty, loaded.trial, loaded.sensitivity)),
                "policies": [p.digest() for p in loaded.policies],
                "parameter_hash": load_params().digest(),
                "posterior": _file_digest(resources.files("sim") / "data" / "posterior.csv"),
                "economics": loaded.economics.digest() if loaded.economics else None,
                "keep_patients": keep_patients,
                "versions": versions()}
    staging = staging_for(target, identity, resume, ("patients", "departments"))
    executor = executor or LocalExecutor(checks.workers(workers))
    try:
        run_units(loaded, staging, executor, progress=progress, keep_patients=keep_patients)
    except BaseException:
        release(staging)      # the units done stay, for --resume
        raise
    u = loaded.uncertainty
    prices = (economic_draws(loaded.economics, u.seed, u.draws) if loaded.economics else None)
    result = analyse(staging, loaded, prices, executor)
    _write_files(staging, {**result.csv_files(),
                          **render(result, loaded.policies, loaded.economics)})
    working = ("departments", "digests", "trials") + (() if keep_patients else ("patients",))
    for folder in working:      # the run's working records (and the patients, if not kept)
        shutil.rmtree(staging / folder, ignore_errors=True)
    params = load_params()
    write_manifest(staging, command=command, comparison_file=str(source) if source else "(object)",
                   policies=[p.name for p in loaded.policies], seed=u.seed, draws=u.draws,
                   replicates=u.replicates, parameter_hash=params.digest(),
                   posterior_sample="sim/data/posterior.csv" if u.draws else None,
                   economics_file=loaded.economics.path if loaded.economics else None,
                   params_file=str(default_params_path()),
                   horizon=("lifetime (to death or age 100)" if loaded.cohort.years == "lifetime"
                            else f"{loaded.cohort.years:g} years"),
                   **_economic_manifest(result))
    finish(staging, target)
    result = replace(result, out=None if scratch else target)
    if scratch is not None:
        shutil.rmtree(scratch)
    return result


def _economic_manifest(result: ComparisonResult) -> dict:
    """The economic evaluation's Monte Carlo error and checks, for the manifest."""
    if result.decision is None:
        return {}
    out = {}
    error = result.decision.monte_carlo
    if error is not None:
        out["monte_carlo_error"] = [
            {"policy": r.policy, "measure": r.measure, "mean": r.mean, "mcse": r.mcse_of_mean,
             "patient_noise_share_of_psa_variance": r.noise_share} for r in error.itertuples()]
    if result.sensitivity is not None:
        out["deterministic_patients"] = result.sensitivity.patients
    if result.evsi_checks is not None:
        out["evsi_checks"] = result.evsi_checks.to_dict(orient="records")
    out["value_of_information_violations"] = value_of_information_violations(
        result.decision.evppi_checks, result.evsi_checks)
    out["patient_noise_warnings"] = noisy(result.decision.monte_carlo)
    return out


def power(design: str | Path | Design, *, replicates: int | None = None, seed: int | None = None,
          out: str | Path | None = None, workers: int | None = None, executor=None,
          resume: bool = False, progress: bool | None = False, command: str = "") -> PowerCurve:
    """The power curve of a design (`scenarios/power/*.toml`, or a loaded `Design`): power by
    simulation at every sample size of its grid, the formulas beside it; `curve.table` is the
    DataFrame. With `out` (new or empty), power.csv, power.md, power.png, report.html,
    power.json and manifest.json (and looks.png for interim analyses) are written there, all at
    once: the run is assembled beside it, its replicates kept as they are simulated, and renamed;
    an interrupted run is finished with ``resume=True``, which simulates only the replicates not
    kept and gives the same files."""
    if not isinstance(design, (str, os.PathLike, *Design.__args__)):
        raise checks.ArgumentTypeError(
            f"design: a design file, the name of a packaged design (\"power/exponential\") or "
            f"a loaded Design; got {type(design).__name__}")
    out = checks.out_path("out", out)
    _run_options(workers, executor, resume, progress, command)
    source = None if not isinstance(design, (str, os.PathLike)) else Path(design)
    loaded = _load_design(source) if source is not None else design
    # the arguments, else the design's own values, checked alike
    replicates = checks.integer("replicates", loaded.replicates if replicates is None
                                else replicates, low=1, high=MAX_POWER_REPLICATES,
                                what="a positive number of replicate trials")
    seed = checks.integer("seed", loaded.seed if seed is None else seed)
    lives = replicates * sum(loaded.sample_sizes)
    if lives > MAX_POWER_PATIENT_LIVES:
        raise InputError(f"replicates: {replicates:,} replicates of sample sizes summing to "
                         f"{sum(loaded.sample_sizes):,} make {lives:,} simulated patients, more "
                         f"than {MAX_POWER_PATIENT_LIVES:,}; use fewer replicates or sizes")
    staging = None
    if out is not None:   # staged beside `out` (its presence keeps a second run out) and renamed
        out = check_out(out)
        # the run's identity is its content: the design, the parameters and policies it names
        identity = {"design": repr(loaded), "replicates": replicates, "seed": seed,
                    **inputs_identity(loaded), "versions": versions()}
        staging = staging_for(out, identity, resume, ("replicates",))
    try:
        curve = power_curve(simulate_replicates(loaded, replicates, seed,
                                                executor or LocalExecutor(checks.workers(workers)),
                                                progress=progress,
                                                saved=staging / "replicates" if staging else None))
        if staging is not None:
            from sim.reports.power import write_report  # noqa: PLC0415 - matplotlib on use only

            shutil.rmtree(staging / "replicates")   # the run's working records
            write_report(curve, staging, command)
            write_manifest(staging, command=command,
                           design_file=str(source) if source else "(object)",
                           replicates=replicates, seed=seed, parameter_hash=load_params().digest(),
                           params_file=str(default_params_path()))
            finish(staging, out)
    except InputError:
        if staging is not None:
            discard(staging)    # bad input: nothing is left behind
        raise
    except BaseException:
        if staging is not None:
            release(staging)    # the replicates kept stay, for resume=True
        raise
    return curve
