"""`crlm-sim power FILE --out DIR [--reps R] [--seed S] [--workers W]`: the power curve of a design.

`register_power(commands)` adds the subcommand to the subparsers of `crlm-sim`; its handler takes the
parsed arguments and returns the exit status. Heavy imports wait until the command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sim.errors import InputError
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
                                "size of its grid; write power.csv, power.md, power.png and power.json.")
    power.add_argument("file", type=Path, metavar="FILE", help="design file (scenarios/power/*.toml)")
    power.add_argument("--out", type=Path, required=True, help="new or empty output directory")
    power.add_argument("--reps", type=_int, default=None, help="replicate trials per sample size "
                       "(default: the design's replicates)")
    power.add_argument("--seed", type=_int, default=None, help="root seed (default: the design's seed)")
    add_execution_options(power, resume=False)
    power.set_defaults(handler=run_power)
    return power


def run_power(args: argparse.Namespace) -> int:
    """The handler of `crlm-sim power`."""
    from sim.studies.power.curve import power_curve  # noqa: PLC0415
    from sim.studies.power.designs import load_design  # noqa: PLC0415
    from sim.reports.power import describe_smallest, write_report  # noqa: PLC0415
    from sim.studies.power.simulate import simulate_replicates  # noqa: PLC0415

    if args.reps is not None and args.reps <= 0:
        raise InputError(f"--reps: must be a positive number of replicate trials (got {args.reps})")
    if args.seed is not None and args.seed < 0:
        raise InputError(f"--seed: must be a non-negative integer (got {args.seed})")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out: must be a new or empty directory ({out} exists and is not empty)")
    design = load_design(args.file)
    replicates = args.reps if args.reps is not None else design.replicates
    seed = args.seed if args.seed is not None else design.seed
    command = shlex.join(["crlm-sim", "power", str(args.file), "--out", str(out),
                          "--reps", str(replicates), "--seed", str(seed)])
    executor = executor_from(args)
    try:
        simulated = simulate_replicates(design, replicates, seed, executor, progress=sys.stderr.isatty())
    finally:
        executor.close()
    curve = power_curve(simulated)
    paths = write_report(curve, out, command)
    for line in describe_smallest(curve):
        print(line)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
