"""The command line: `crlm-sim cohort`, `run`, `power`, `summarize` (and `calibrate`, `validate`
from the calibration package). Each command calls the public API (`sim.api`) and prints a short
summary; every option's default shows in `--help`.

Bad input ends with one line on stderr naming the field and what is allowed, exit status 2, no
traceback and nothing written.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import sys
import threading
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

from sim.errors import InputError
from sim.execution.executor import add_execution_options, executor_from

__all__ = ["main"]


class _Help(argparse.HelpFormatter):
    """Every option's default in `--help`: appended as "(default: X)", or, where the default is
    None (an option left out), said by the help text itself."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.required or action.default in (None, False, argparse.SUPPRESS)
                or "%(default)" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """One-line errors (argparse prints usage too otherwise) and every default in `--help`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, exit 2
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
    cohort.add_argument("--seed", type=_int, default=20080101, help="root seed of the random streams")
    cohort.add_argument("--design", default="paper", help="paper (the study's accrual and close), "
                        "horizon (everyone followed --years) or lifetime (to death or age 100)")
    cohort.add_argument("--years", type=_float, default=10.0, help="horizon in years (horizon design)")
    cohort.add_argument("--primary", default="both", help="rectum, colon or both (the study's "
                        "141:441 mix)")
    cohort.add_argument("--policy", default="baseline", help="surveillance policy: a TOML file or "
                        "a packaged scenario's name (scenarios/)")
    cohort.add_argument("--params", type=Path, default=None, help="parameter TOML (default: the "
                        "package's fitted set, sim/data/params.toml)")
    cohort.add_argument("--replicate", type=_int, default=0, help="replicate number (a stream key)")
    cohort.add_argument("--chunk-size", type=_int, default=10_000, help="patients per SimPy "
                        "environment; changes no result, except for a policy with a capacity, "
                        "where a chunk is one department sharing its slots")
    cohort.add_argument("--out", type=Path, required=True, help="new or empty output directory")
    add_execution_options(cohort)
    run = commands.add_parser("run", help="compare surveillance policies on the same patients")
    run.add_argument("file", type=Path, help="a comparison file (scenarios/comparisons/*.toml)")
    run.add_argument("--out", type=Path, default=None, help="new or empty output directory "
                     "(default: runs/NAME of the comparison)")
    run.add_argument("--economics", type=Path, default=None, help="an economics file "
                     "(scenarios/economics/): a cost-effectiveness analysis with it, in place of "
                     "the file the comparison names (default: the comparison's, if any)")
    run.add_argument("--no-patients", action="store_true", help="remove the patient tables once "
                     "summarised (a probabilistic analysis need not keep millions of rows)")
    add_execution_options(run)
    summarize = commands.add_parser("summarize", help="survival table and figure of a cohort")
    summarize.add_argument("directory", type=Path, help="a cohort written by `crlm-sim cohort`")
    from sim.cli_power import register_power  # noqa: PLC0415 - light: imports on use only

    register_power(commands)
    # Commands of other packages (calibration: calibrate, validate) come through entry points,
    # so that sim never imports them.
    for entry in entry_points(group="crlm_sim.commands"):
        entry.load()(commands)
    return parser


def _cohort(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.api import write_cohort  # noqa: PLC0415 - keep `crlm-sim --help` light
    from sim.output.tally import render  # noqa: PLC0415

    executor = executor_from(args)
    try:
        total = write_cohort(args.out, args.n, seed=args.seed, design=args.design,
                             primary=args.primary, years=args.years, policy=args.policy,
                             params=args.params, replicate=args.replicate,
                             chunk_size=args.chunk_size, executor=executor, resume=args.resume,
                             command=shlex.join(["crlm-sim", *argv]))
    finally:
        executor.close()
    print(render(total, args.out))
    return 0


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from sim.api import compare  # noqa: PLC0415
    from sim.studies.comparison import load_comparison  # noqa: PLC0415

    comparison = load_comparison(args.file, args.economics)
    # the default stays under runs/, whatever the comparison's name holds ("../x", "/x")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", comparison.name).strip(".-") or "comparison"
    out = args.out or Path("runs") / safe
    executor = executor_from(args)
    try:
        compare(args.file, out=out, executor=executor, resume=args.resume, progress=None,
                keep_patients=not args.no_patients, command=shlex.join(["crlm-sim", *argv]),
                economics=args.economics)
    finally:
        executor.close()
    print(_plain(_without((out / "results.md").read_text(), ("Policies", "Figures", "Glossary"))))
    manifest = json.loads((out / "manifest.json").read_text())
    for text in (manifest.get("patient_noise_warnings", [])
                 + manifest.get("value_of_information_violations", [])):
        print(f"crlm-sim: warning: {text}", file=sys.stderr)
    print(f"\nwritten to {out}: report.html (the policies' schedules, every result with its "
          "interval, figures, a glossary), results.md, results.csv and the figures")
    return 0


def _without(markdown: str, sections: tuple[str, ...]) -> str:
    """Markdown without the `## ` sections named (what reads well on paper, not on a terminal)."""
    kept, skipping = [], False
    for line in markdown.splitlines():
        if line.startswith("## "):
            skipping = line[3:].strip() in sections
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _plain(markdown: str) -> str:
    """Markdown as plain text for a terminal: headings without #, tables as aligned columns,
    no image links or backticks (the figures are in the report)."""
    lines, table = [], []

    def flush():
        if table:
            widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
            lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                         for row in table)
            table.clear()

    for line in markdown.replace("`", "").splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-:") for cell in cells):
                table.append(cells)
            continue
        flush()
        if not line.startswith("!["):
            lines.append(line.lstrip("#").strip())
    flush()
    return "\n".join(lines).strip()


def _summarize(args: argparse.Namespace) -> int:
    import pyarrow  # noqa: PLC0415

    from sim.reports.summary import summarize  # noqa: PLC0415

    if not (args.directory / "patients.parquet").exists():
        raise InputError(f"DIR: {args.directory} holds no patients.parquet")
    try:
        paths = summarize(args.directory)
    except (ValueError, OSError, pyarrow.ArrowException) as error:
        reason = " ".join(str(error).split())[:200]
        raise InputError(f"DIR: {args.directory}/patients.parquet is not a cohort written by "
                         f"crlm-sim cohort ({reason})") from None
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (workers end, locks free)."""


def _terminated(signum, frame):
    raise _Terminated()


_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(message: str) -> str:
    """A message kept to one line whatever a file put in it: control characters and line
    breaks (a key named "\\r") shown escaped."""
    return _BREAKS.sub(lambda match: repr(match.group())[1:-1], message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if on_main_thread else None
    try:
        return _command(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _command(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "cohort":
            return _cohort(args, argv)
        if args.command == "summarize":
            return _summarize(args)
        if args.command == "run":
            return _run(args, argv)
        return args.handler(args, argv)
    except InputError as error:
        print(f"crlm-sim: error: {_one_line(_as_flag(str(error)))}", file=sys.stderr)
        return 2
    except (OSError, UnicodeError) as error:   # the disk, not the code: one line all the same
        where = getattr(error, "filename", None)
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        print(f"crlm-sim: error: {_one_line(f'{where}: {reason}' if where else reason)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("crlm-sim: interrupted; nothing was written to --out (where a command has --resume, "
              "the same command with --resume finishes the run)", file=sys.stderr)
        return 143 if isinstance(stop, _Terminated) else 130


_FLAGS = {"n": "--n", "seed": "--seed", "replicate": "--replicate", "design": "--design",
          "primary": "--primary", "years": "--years", "chunk_size": "--chunk-size",
          "replicates": "--replicates"}
"""The API's argument names in its errors, and the command line's flags for them."""


def _as_flag(message: str) -> str:
    """An error that names an argument of the API (`n: ...`) names the flag instead."""
    name, colon, rest = message.partition(":")
    return f"{_FLAGS[name]}:{rest}" if colon and name in _FLAGS else message


if __name__ == "__main__":
    sys.exit(main())
