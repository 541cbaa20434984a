"""The command line: `crlm-sim cohort ...`, `crlm-sim summarize DIR`.

Bad input ends with one line on stderr naming the field and what is allowed, exit status 2, no
traceback and nothing written.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

from sim.errors import InputError
from sim.execution.executor import add_execution_options, executor_from

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too otherwise)
        raise InputError(message)


def _default_policy() -> Path:
    return Path(str(resources.files("sim") / "scenarios" / "baseline.toml"))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crlm-sim", description="Patients after liver resection for colorectal "
                     "metastases: a discrete-event simulator calibrated to the Johns Hopkins series.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cohort = commands.add_parser("cohort", help="simulate a synthetic cohort to Parquet")
    cohort.add_argument("--n", type=_int, required=True, help="number of patients")
    cohort.add_argument("--seed", type=_int, default=20080101, help="root seed of the streams")
    cohort.add_argument("--design", default="paper", help="paper (the study's accrual and close) "
                        "or horizon (everyone followed --years)")
    cohort.add_argument("--years", type=_float, default=10.0, help="horizon in years (horizon design)")
    cohort.add_argument("--primary", default="rectum", help="rectum, colon or both (441:141)")
    cohort.add_argument("--policy", type=Path, default=None, help="surveillance policy TOML "
                        "(default: scenarios/baseline.toml)")
    cohort.add_argument("--params", type=Path, default=None, help="parameter TOML "
                        "(default: the package's parameter set)")
    cohort.add_argument("--replicate", type=_int, default=0, help="replicate number (a stream key)")
    cohort.add_argument("--chunk-size", type=_int, default=10_000, help="patients per SimPy "
                        "environment (does not change any result)")
    cohort.add_argument("--out", type=Path, required=True, help="new or empty output directory")
    add_execution_options(cohort)
    run = commands.add_parser("run", help="compare surveillance policies on the same patients")
    run.add_argument("file", type=Path, help="a comparison file (scenarios/comparisons/*.toml)")
    run.add_argument("--out", type=Path, default=None, help="new or empty output directory "
                     "(default: runs/NAME of the comparison)")
    add_execution_options(run)
    summarize = commands.add_parser("summarize", help="survival table and figure of a cohort")
    summarize.add_argument("directory", type=Path)
    from sim.cli_power import register_power  # noqa: PLC0415 - light: imports on use only

    register_power(commands)
    # Commands of other packages (calibration: calibrate, validate) come through entry points,
    # so that sim never imports them.
    for entry in entry_points(group="crlm_sim.commands"):
        entry.load()(commands)
    return parser


def _cohort(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.model.params import load_params  # noqa: PLC0415 - keep `crlm-sim --help` light
    from sim.model.policy import load_policy  # noqa: PLC0415
    from sim.execution.runner import CohortSpec, run_cohort  # noqa: PLC0415
    from sim.output.tally import render  # noqa: PLC0415

    spec = CohortSpec(args.n, args.seed, args.design, args.primary, args.years,
                      args.replicate).check()
    if args.chunk_size <= 0:
        raise InputError(f"--chunk-size: must be a positive number of patients (got {args.chunk_size})")
    params, _ = load_params(args.params)
    policy = load_policy(args.policy or _default_policy())
    manifest = {"command": shlex.join(["crlm-sim", *argv]),
                "policy_file": str(args.policy or "scenarios/baseline.toml"),
                "params_file": str(args.params or "sim/data/params.toml")}
    executor = executor_from(args)
    try:
        total = run_cohort(spec, params, policy, args.out, manifest, chunk_size=args.chunk_size,
                           executor=executor, resume=args.resume)
    finally:
        executor.close()
    print(render(total, args.out))
    return 0


def _run(args: argparse.Namespace) -> int:
    import shutil  # noqa: PLC0415

    from sim.studies.comparison import load_comparison, run_units  # noqa: PLC0415
    from sim.reports.comparison import write_outputs  # noqa: PLC0415
    from sim.execution.runner import finish, staging_for  # noqa: PLC0415

    comparison = load_comparison(args.file)
    out = args.out or Path("runs") / comparison.name.replace(" ", "-")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_for(out, {"file": args.file.read_text()}, args.resume,
                          ("patients", "departments"))
    executor = executor_from(args)
    try:
        run_units(comparison, staging, executor, terminal=None)
    finally:
        executor.close()
    c, u = comparison.cohort, comparison.uncertainty
    meta = {"name": comparison.name, "description": comparison.description,
            "reference": comparison.reference, "patients": c.patients, "primary": c.primary,
            "years": c.years, "draws": max(u.draws, 1)}
    write_outputs(staging, meta, [p.name for p in comparison.policies])
    shutil.rmtree(staging / "departments")
    finish(staging, out)
    print((out / "results.md").read_text())
    print(f"written to {out}")
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from sim.reports.summary import summarize  # noqa: PLC0415

    if not (args.directory / "patients.parquet").exists():
        raise InputError(f"DIR: {args.directory} holds no patients.parquet")
    for name, path in summarize(args.directory).items():
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = _parser().parse_args(argv)
        if args.command == "cohort":
            return _cohort(args, argv)
        if args.command == "summarize":
            return _summarize(args)
        if args.command == "run":
            return _run(args)
        return args.handler(args)
    except InputError as error:
        print(f"crlm-sim: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crlm-sim: interrupted; nothing was written to --out (where a command has --resume, "
              "the same command with --resume finishes the run)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
