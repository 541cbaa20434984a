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

import numpy as np

from sim.errors import InputError

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
    summarize = commands.add_parser("summarize", help="survival table and figure of a cohort")
    summarize.add_argument("directory", type=Path)
    # Commands of other packages (calibration: calibrate, validate) come through entry points,
    # so that sim never imports them.
    for entry in entry_points(group="crlm_sim.commands"):
        entry.load()(commands)
    return parser


def _summary(columns: dict[str, np.ndarray], out: Path) -> str:
    n = len(columns["os_months"])
    lines = [f"crlm-sim cohort written to {out}"]
    for site in ("rectum", "colon"):
        m = columns["primary_site"] == site
        if not m.any():
            continue
        k = int(m.sum())
        recurred = int(columns["recurrence"][m].sum())
        by_site = ", ".join(
            f"{s} {int((~np.isnan(columns[f'{s}_recurrence_months'][m])).sum())}"
            for s in ("pelvis", "liver", "lung", "other"))
        lines += [
            f"  {site}: {k} patients, {int(columns['death'][m].sum())} deaths "
            f"({100 * columns['death'][m].mean():.1f}%), median follow-up "
            f"{np.median(columns['os_months'][m]):.1f} months",
            f"    recurrences {recurred} ({100 * recurred / k:.1f}%); by site: {by_site}",
            f"    curative repeat operations {int((~np.isnan(columns['curative_reoperation_months'][m])).sum())}"
            f"; surveillance visits per patient {columns['n_scans'][m].mean():.1f}",
        ]
    lines.append(f"  total: {n} patients")
    return "\n".join(lines)


def _cohort(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.params import load_params  # noqa: PLC0415 - keep `crlm-sim --help` light
    from sim.policy import load_policy  # noqa: PLC0415
    from sim.runner import CohortSpec, run_cohort  # noqa: PLC0415

    spec = CohortSpec(args.n, args.seed, args.design, args.primary, args.years,
                      args.replicate).check()
    if args.chunk_size <= 0:
        raise InputError(f"--chunk-size: must be a positive number of patients (got {args.chunk_size})")
    params, _ = load_params(args.params)
    policy = load_policy(args.policy or _default_policy())
    manifest = {"command": shlex.join(["crlm-sim", *argv]),
                "policy_file": str(args.policy or "scenarios/baseline.toml"),
                "params_file": str(args.params or "sim/data/params.toml")}
    columns = run_cohort(spec, params, policy, args.out, manifest, chunk_size=args.chunk_size)
    print(_summary(columns, args.out))
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from sim.summary import summarize  # noqa: PLC0415

    if not (args.directory / "patients.parquet").is_file():
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
        return args.handler(args)
    except InputError as error:
        print(f"crlm-sim: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crlm-sim: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
