"""`crlm-sim power FILE --out DIR [--replicates R] [--seed S] [--workers W] [--resume]`: the power
curve of a design.

`register_power(commands)` adds the subcommand to the subparsers of `crlm-sim`; its handler takes the
parsed arguments and returns the exit status. Heavy imports wait until the command runs.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from sim.execution.executor import add_execution_options, executor_from

__all__ = ["register_power", "run_power"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None


def register_power(commands) -> argparse.ArgumentParser:
    """Add `power` to the subparsers `commands`; returns its parser."""
    power = commands.add_parser("power", help="power curve and sample size of a trial or cohort design",
                                description="Simulate replicate trials of a design (TOML) at every sample "
                                "size of its grid; write report.html (the whole report, one "
                                "self-contained page), power.csv, power.md, power.png (looks.png "
                                "for interim analyses), power.json and manifest.json.")
    power.add_argument("file", type=Path, metavar="FILE", help="design file (scenarios/power/*.toml)")
    power.add_argument("--out", type=Path, required=True, help="new or empty output directory")
    power.add_argument("--replicates", "--reps", dest="reps", type=_int, default=None,
                       help="replicate trials per sample size (default: the design's replicates; "
                       "--reps is the same)")
    power.add_argument("--seed", type=_int, default=None, help="root seed (default: the design's seed)")
    add_execution_options(power)
    power.set_defaults(handler=run_power)
    return power


def run_power(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """The handler of `crlm-sim power`."""
    from sim.api import power  # noqa: PLC0415
    from sim.reports.power import describe_smallest  # noqa: PLC0415

    executor = executor_from(args)
    try:
        curve = power(args.file, replicates=args.reps, seed=args.seed, out=args.out,
                      executor=executor, resume=args.resume, progress=None,
                      command=shlex.join(["crlm-sim", *(argv or ["power", str(args.file)])]))
    finally:
        executor.close()
    for line in describe_smallest(curve):
        print(line)
    for name in ("report.html", "power.csv", "power.md", "power.png", "looks.png", "power.json",
                 "manifest.json"):
        if (Path(args.out) / name).exists():
            print(f"{name}: {Path(args.out) / name}")
    return 0
