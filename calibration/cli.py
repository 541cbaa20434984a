"""`crlm-sim calibrate` and `crlm-sim validate`, registered with the `crlm-sim` command through the
entry-point group ``crlm_sim.commands`` (so that `sim` never imports `calibration`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sim.errors import InputError
from sim.execution.executor import add_execution_options, check_execution_options, executor_from

__all__ = ["register_calibrate", "register_validate"]


def register_calibrate(commands) -> None:
    parser = commands.add_parser("calibrate", help="refit the parameters to the study's and the "
                                 "external figures")
    parser.add_argument("--budget", type=int, default=600, help="objective evaluations of the search")
    parser.add_argument("--proposals", type=int, default=400, help="proposals of the posterior (SIR)")
    parser.add_argument("--posterior-size", type=int, default=1000,
                        help="distinct parameter sets kept in the posterior sample")
    parser.add_argument("--sampler", choices=("chains", "sir"), default="chains",
                        help="posterior sampler: random-walk Metropolis chains started from the "
                             "installed sample (default), or sampling-importance-resampling")
    parser.add_argument("--chains", type=int, default=10, help="Metropolis chains (--sampler chains)")
    parser.add_argument("--thin", type=int, default=5,
                        help="a draw every this many steps of each chain after the burn-in")
    parser.add_argument("--burn", type=int, default=40, help="burn-in steps of each chain")
    parser.add_argument("--posterior-only", action="store_true",
                        help="no search: sample the posterior around the starting parameter set "
                             "(--params, default the package's fitted set)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the search and the posterior")
    parser.add_argument("--sigma", type=float, default=0.08,
                        help="initial CMA-ES step on the log/logit scale")
    parser.add_argument("--params", type=Path, default=None,
                        help="parameter file to start from (default: the package's)")
    parser.add_argument("--rectal-studies", type=int, default=20,
                        help="the objective's cohort: this many studies of 141 rectal patients")
    parser.add_argument("--colon-studies", type=int, default=4,
                        help="the objective's cohort: this many studies of 441 colon patients")
    parser.add_argument("--external-patients", type=int, default=None,
                        help="patients in each cohort of the external targets (the 20-year cohort "
                             "and each FACS arm; default 6000 and 4000)")
    parser.add_argument("--out", type=Path, default=Path("calibration/runs/latest"),
                        help="directory of the fit's state, history and results")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted search in --out")
    parser.add_argument("--install", action="store_true",
                        help="make the fitted point the package's default parameter set and ship the "
                             "posterior sample beside it")
    add_execution_options(parser, resume=False)
    parser.set_defaults(handler=_calibrate)


def register_validate(commands) -> None:
    parser = commands.add_parser("validate", help="report of the model against every study "
                                 "figure and the external ones")
    parser.add_argument("--out", type=Path, default=Path("validation"),
                        help="directory of the report (report.html, report.md, figures)")
    parser.add_argument("--params", type=Path, default=None,
                        help="parameter file (default: the package's fitted set)")
    parser.add_argument("--policy", type=Path, default=None,
                        help="surveillance policy of the study's patients (default: scenarios/baseline.toml)")
    parser.add_argument("--seed", type=int, default=424242, help="root seed of the simulated cohorts")
    parser.add_argument("--rectal-studies", type=int, default=100,
                        help="pseudo-studies of 141 rectal patients")
    parser.add_argument("--colon-studies", type=int, default=30,
                        help="pseudo-studies of 441 colon patients")
    parser.add_argument("--external-patients", type=int, default=20_000,
                        help="patients in each cohort of the external figures (the 20-year "
                             "cohort and each FACS arm)")
    parser.set_defaults(handler=_validate)


def _chain_starts(chains: int):
    """(starts, covariance) of the Metropolis chains, on the unbounded scale: the first `chains`
    parameter sets of the installed posterior sample, and the covariance of all of it."""
    from importlib import resources  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from calibration.space import SPACE, to_unbounded  # noqa: PLC0415

    path = Path(str(resources.files("sim") / "data" / "posterior.csv"))
    sample = pd.read_csv(path) if path.exists() else pd.DataFrame()
    paths = [d.path for d in SPACE]
    if len(sample) < max(chains, len(paths) + 1) or not set(paths) <= set(sample.columns):
        raise InputError(f"--sampler chains: needs an installed posterior sample of at least "
                         f"{max(chains, len(paths) + 1)} parameter sets to start from and shape "
                         f"the proposals ({path}); run with --sampler sir first")
    points = np.array([to_unbounded(row) for row in sample[paths].to_numpy()])
    return points[:chains], np.cov(points, rowvar=False)


def _check_seed(value: int) -> None:
    if value < 0:
        raise InputError(f"--seed: must be a non-negative integer (got {value})")


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise InputError(f"--{name}: must be a positive integer (got {value})")


def _calibrate(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from sim.execution.staging import release  # noqa: PLC0415

    try:
        return _fit(args, argv)
    finally:
        release(args.out)    # the lock _fit took on --out (none if it stopped before)


def _fit(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from importlib import resources  # noqa: PLC0415

    from calibration.external import ExternalDesign  # noqa: PLC0415
    from calibration.fit import (ChainSettings, FitSettings, chain_diagnostics,  # noqa: PLC0415
                                 point_of, posterior_chains, posterior_sample, search)
    from calibration.objective import Objective, StudyDesign  # noqa: PLC0415
    from calibration.paramfile import write_values  # noqa: PLC0415
    from calibration.space import SPACE, from_unbounded, get, to_unbounded  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from calibration.targets import load_targets  # noqa: PLC0415
    from sim.model.params import default_params_path, load_params  # noqa: PLC0415
    from sim.execution.staging import check_out, hold_lock  # noqa: PLC0415
    from sim.model.policy import load_policy  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    check_execution_options(args)
    for name in ("budget", "proposals", "posterior_size", "rectal_studies", "colon_studies",
                 "chains", "thin", "burn"):
        _check_positive(name.replace("_", "-"), getattr(args, name))
    _check_seed(args.seed)
    external = ExternalDesign()
    if args.external_patients is not None:
        _check_positive("external-patients", args.external_patients)
        external = ExternalDesign(args.external_patients, args.external_patients)
    start_path = args.params or default_params_path()
    start, _ = load_params(start_path)
    policy = load_policy(Path(str(resources.files("sim") / "scenarios" / "baseline.toml")))
    if not 0 < args.sigma < 5:
        raise InputError(f"--sigma: must lie in (0, 5) (got {args.sigma})")
    settings = FitSettings(args.budget, args.proposals, args.posterior_size, args.seed,
                           sigma0=args.sigma)
    args.out = check_out(args.out)
    if args.out.exists() and any(p.name != ".lock" for p in args.out.iterdir()) and not args.resume:
        raise InputError(f"--out: must be a new or empty directory, or add --resume ({args.out})")
    args.out.mkdir(exist_ok=True)
    hold_lock(args.out)    # the search works in place: one calibration per --out at a time
    executor = executor_from(args)
    clock = time.perf_counter()
    design = StudyDesign(141 * args.rectal_studies, 441 * args.colon_studies)
    objective = Objective(start, policy, load_targets(), design, external_design=external)
    setup = time.perf_counter() - clock
    progress = tqdm if sys.stderr.isatty() else _LogLines
    chain_settings = ChainSettings(args.posterior_size, args.chains, args.burn, args.thin, args.seed)
    starts = _chain_starts(args.chains) if args.sampler == "chains" else None
    diagnostics = None
    try:
        if args.posterior_only:
            best = to_unbounded(np.array([get(start, d.path) for d in SPACE]))
            covariance = np.eye(len(SPACE)) * settings.sigma0 ** 2
        else:
            with progress(total=settings.budget, desc="search", unit="eval") as bar:
                best, covariance = search(objective, start, settings, args.out, executor,
                                          args.resume, bar)
        searched = time.perf_counter() - clock
        if args.sampler == "chains":
            total = args.chains * (args.burn + args.thin * -(-args.posterior_size // args.chains))
            with progress(total=total, desc="posterior", unit="eval") as bar:
                sample, history = posterior_chains(objective, start, *starts, chain_settings,
                                                   executor, args.out, bar)
            diagnostics = chain_diagnostics(history, chain_settings)
        else:
            with progress(total=settings.posterior_proposals, desc="posterior", unit="eval") as bar:
                sample = posterior_sample(objective, start, best, covariance, settings, executor, bar)
    finally:
        executor.close()
    fitted_values = {d.path: float(v) for d, v in zip(SPACE, from_unbounded(best))}
    fitted = point_of(best, start)
    one = time.perf_counter()
    table = objective.table(fitted)
    per_evaluation = time.perf_counter() - one
    text = write_values(start_path.read_text(), fitted_values)
    _write(args.out / "params.toml", text)
    _write(args.out / "posterior.csv", sample.to_csv(index=False))
    _write(args.out / "fit.csv", table.to_csv())
    if diagnostics is not None:
        _write(args.out / "diagnostics.csv", diagnostics.to_csv(index=False))
    summary = {
        "loss": objective.loss_of(table), "max_abs_z": float(table["z"].abs().max()),
        "posterior_size": len(sample), "seed": args.seed, "budget": args.budget,
        "sampler": args.sampler,
        **({"chains": args.chains, "thin": args.thin, "burn": args.burn,
            "acceptance": round(float(history.loc[history["step"] > args.burn, "accepted"].mean()), 3),
            "min_ess": round(float(diagnostics["ess"].min()), 1),
            "median_ess": round(float(diagnostics["ess"].median()), 1),
            "max_r_hat": round(float(diagnostics["r_hat"].max()), 3)}
           if diagnostics is not None else {}),
        "patients_per_evaluation": (objective.design.rectal_patients + objective.design.colon_patients
                                    + external.long_patients + 4 * external.arm_patients),
        "seconds_per_evaluation": round(per_evaluation, 3),
        "seconds_setup": round(setup, 1), "seconds_search": round(searched - setup, 1),
        "seconds_total": round(time.perf_counter() - clock, 1), "workers": executor.workers,
    }
    _write(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    _write(args.out / "manifest.json", _manifest(args, argv, "calibrate",
                                                 params_file=str(start_path)))
    if args.install:
        data = Path(str(resources.files("sim") / "data"))
        _write(data / "params.toml", text)
        _write(data / "posterior.csv", sample.to_csv(index=False))
        from calibration.modelcard import update_model_card  # noqa: PLC0415
        update_model_card(Path(str(resources.files("calibration") / "README.md")))
    print(table.round(3).to_string())
    print(json.dumps(summary))
    return 0


class _LogLines:
    """Progress off a terminal: a log line on stderr at most every 10% of the work (what tqdm
    shows on a terminal)."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit, self.done, self.shown = total, desc, unit, 0, 0
        self.started, self.postfix = time.perf_counter(), ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def update(self, count: int) -> None:
        self.done += count
        if self.done - self.shown >= max(1, self.total // 10) or self.done >= self.total:
            self.shown = self.done
            elapsed = time.perf_counter() - self.started
            print(f"crlm-sim calibrate: {self.desc} {self.done}/{self.total} {self.unit}s, "
                  f"{elapsed:,.0f} s{', ' + self.postfix if self.postfix else ''}",
                  file=sys.stderr, flush=True)


def _manifest(args: argparse.Namespace, argv: list[str] | None, command: str, **fields) -> str:
    import shlex  # noqa: PLC0415

    from sim.api import manifest  # noqa: PLC0415

    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
               if k != "handler"}
    line = shlex.join(["crlm-sim", *(argv or [command])])
    return json.dumps(manifest(command=line, options=options, **fields), indent=2,
                      sort_keys=True) + "\n"


def _write(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def _validate(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from calibration.report import write_report  # noqa: PLC0415
    from sim.execution.staging import check_out, discard, finish, staging_for  # noqa: PLC0415
    from sim.model.params import load_params  # noqa: PLC0415

    _check_positive("rectal-studies", args.rectal_studies)
    _check_positive("colon-studies", args.colon_studies)
    _check_positive("external-patients", args.external_patients)
    _check_seed(args.seed)

    out = check_out(args.out)
    # assembled beside --out (which must be new or empty) and renamed when complete
    staging = staging_for(out, {"command": "validate"}, False, ())
    try:
        written = write_report(staging, params_path=args.params, policy_path=args.policy,
                               seed=args.seed, rectal_studies=args.rectal_studies,
                               colon_studies=args.colon_studies,
                               external_patients=args.external_patients)
        _write(staging / "manifest.json", _manifest(
            args, argv, "validate", parameter_hash=load_params(args.params)[0].digest()))
    except BaseException:
        discard(staging)
        raise
    finish(staging, out)
    paths = {name: args.out / name for name in [*written, "manifest.json"]}
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


