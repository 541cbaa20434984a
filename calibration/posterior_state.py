"""The folder of a `crlm-sim posterior` run: the settings it was made with and the files it
resumes from, checked before anything is written.

``run.json`` records the seed and the sizes the run was made with, and what its files hold (the
calibrated parameters' names, the figures' names, digests of the prior, the starting parameters,
the policy and the study's figures). A rerun of the same command continues the run; a command
with other settings is refused, unless ``--resume`` asks to continue the run with its own
settings (those recorded); a folder of other inputs, or one that holds files but no record, is
refused. Every file a rerun resumes from (design.csv, noise.csv, studies.csv, chains.parquet) is
read and checked first (columns, types, which rows, and that the design's parameter sets are the
prior's draws at the recorded seed): a damaged, empty or foreign file is refused in one line,
with nothing written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

__all__ = ["RECORD", "SETTINGS", "DEFAULTS", "MINIMUM", "RunInputs", "settings_for",
           "check_files", "write_record"]

RECORD = "run.json"
SETTINGS = ("seed", "design", "noise_studies", "studies", "chains", "steps")
"""What a run's files depend on, besides its inputs (the posterior size only thins the chains)."""

DEFAULTS = {"seed": 1, "design": 1600, "noise_studies": 400, "studies": 250, "chains": 4,
            "steps": 2500}

MINIMUM = {"seed": (0, "a non-negative integer"),
           "design": (5, "an integer of at least 5 (the emulator's 5-fold cross-validation)"),
           "noise_studies": (2, "an integer of at least 2 (a covariance of the residuals)"),
           "studies": (1, "a positive integer"), "chains": (1, "a positive integer"),
           "steps": (1, "a positive integer"), "posterior_size": (1, "a positive integer")}
"""The smallest value of each option that runs, and the words for it."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class RunInputs:
    """What the run's files are made from, besides its settings."""

    parameters: tuple[str, ...]    # the calibrated parameters, in the files' order
    figures: tuple[str, ...]       # the fitted figures' ids, in the files' order
    digests: dict                  # prior, starting parameters, policy, the study's figures

    def record(self) -> dict:
        return {"parameters": list(self.parameters), "figures": list(self.figures),
                "digests": self.digests}


def digest(value) -> str:
    """A short hash of anything JSON can hold (NaN included)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_record(out: Path) -> dict | None:
    """The folder's record; None for a new or empty folder; one line for anything else."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file, not a directory")
    if not out.exists() or not any(out.iterdir()):
        return None
    path = out / RECORD
    if not path.is_file():
        raise InputError(f"--out: {out} holds files but no {RECORD}: not the folder of a "
                         f"posterior run (or of one made before {RECORD} was kept); give a new "
                         f"or empty --out")
    try:
        record = json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise InputError(f"--out: {path} cannot be read ({type(error).__name__}); give a new "
                         f"or empty --out") from None
    if not isinstance(record, dict) or not all(isinstance(record.get(name), int)
                                               for name in SETTINGS):
        raise InputError(f"--out: {path} is not the record of a posterior run (it needs "
                         f"{', '.join(SETTINGS)}); give a new or empty --out")
    return record


def settings_for(args, out: Path, inputs: RunInputs) -> dict:
    """The run's settings: those given, else (with --resume) the folder's, else the defaults;
    the smallest that run (`MINIMUM`) checked first; a folder made with other settings or from
    other inputs is refused in one line."""
    for name, (low, what) in MINIMUM.items():
        value = getattr(args, name)
        if value is not None and value < low:
            raise InputError(f"{_flag(name)}: must be {what} (got {value})")
    record = _read_record(out)
    if record is None and args.resume:
        raise InputError(f"--resume: {out} holds no posterior run to resume")
    if record is not None:
        if {k: record.get(k) for k in ("parameters", "figures", "digests")} != inputs.record():
            changed = [k for k in ("parameters", "figures") if record.get(k) != inputs.record()[k]]
            what = ", ".join(changed) or "the prior, the parameters, the policy or the targets"
            raise InputError(f"--out: {out} holds a run made from other inputs ({what} changed "
                             f"since); give a new --out")
    base = record if record is not None and args.resume else DEFAULTS
    settings = {name: getattr(args, name) if getattr(args, name) is not None else base[name]
                for name in SETTINGS}
    if record is not None:
        for name in SETTINGS:
            if settings[name] != record[name]:
                hint = "" if args.resume else (" or add --resume to continue that run with its "
                                               "own settings")
                raise InputError(f"{_flag(name)}: {out} holds a run made with {_flag(name)} "
                                 f"{record[name]} (got {settings[name]}); give a new --out{hint}")
    if settings["chains"] * settings["steps"] < args.posterior_size:
        raise InputError("--posterior-size: must be at most --chains x --steps "
                         f"({settings['chains'] * settings['steps']}; got {args.posterior_size})")
    return settings


def write_record(out: Path, settings: dict, inputs: RunInputs) -> None:
    """``out/run.json`` (written once, under a temporary name and renamed)."""
    path = out / RECORD
    if path.exists():
        return
    partial = out / f".{RECORD}.partial"
    partial.write_text(json.dumps({**settings, **inputs.record()}, indent=2) + "\n")
    partial.replace(path)


def _refuse(path: Path, reason: str):
    raise InputError(f"--out: {path.name} in {path.parent}: {reason}; remove it to make that "
                     f"stage again, or give a new --out")


def _read_csv(path: Path):
    import pandas as pd  # noqa: PLC0415 - `crlm-sim --help` stays light

    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as error:       # empty, damaged, not text
        _refuse(path, f"cannot be read as a table ({type(error).__name__})")


def _numeric(path: Path, frame, columns) -> None:
    for column in columns:
        kind = frame[column].dtype.kind
        if kind not in "iuf":
            _refuse(path, f"column {column!r} holds something other than numbers")


def _columns(path: Path, frame, expected: list[str]) -> None:
    if list(frame.columns) == expected:
        return
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    reason = (f"no column {missing[0]!r}" if missing else
              f"a column {extra[0]!r} of no run" if extra else "its columns in another order")
    _refuse(path, f"not a file of this run ({len(frame.columns)} columns where "
                  f"{len(expected)} are expected: {reason})")


def _check_design(path: Path, settings: dict, inputs: RunInputs, prior) -> None:
    import numpy as np  # noqa: PLC0415
    frame = _read_csv(path)
    _columns(path, frame, ["point", *inputs.parameters, *inputs.figures,
                           "lyg_intensive_over_esmo"])
    _numeric(path, frame, frame.columns)
    if len(frame) > settings["design"] or frame["point"].tolist() != list(range(len(frame))):
        _refuse(path, f"its points are not 0, 1, ... up to at most {settings['design'] - 1}")
    drawn = prior.draw(settings["design"], settings["seed"])[:len(frame)]   # unbounded scale
    if not np.allclose(frame[list(inputs.parameters)].to_numpy(float), drawn, rtol=1e-12,
                       atol=1e-12):
        _refuse(path, f"its parameter sets are not the prior's draws at --seed "
                      f"{settings['seed']} (made with another seed or prior)")


def _check_studies(path: Path, count: int, option: str, inputs: RunInputs) -> None:
    frame = _read_csv(path)
    _columns(path, frame, ["study", *inputs.figures])
    _numeric(path, frame, frame.columns)
    studies = frame["study"]
    if (studies.dtype.kind not in "iu" or studies.duplicated().any()
            or not studies.between(0, count - 1).all()):
        _refuse(path, f"its studies are not distinct numbers from 0 to {count - 1} "
                      f"({option} {count})")


def _check_chains(path: Path, settings: dict, inputs: RunInputs) -> None:
    import pandas as pd  # noqa: PLC0415
    import pyarrow  # noqa: PLC0415

    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, ValueError, OSError) as error:
        _refuse(path, f"cannot be read as a Parquet table ({type(error).__name__})")
    _columns(path, frame, ["chain", "step", "accepted", "log_posterior", *inputs.parameters])
    if frame["accepted"].dtype.kind != "b":
        _refuse(path, "column 'accepted' is not true/false")
    _numeric(path, frame, [c for c in frame.columns if c != "accepted"])
    chains, steps = settings["chains"], settings["steps"]
    expected = pd.MultiIndex.from_product([range(chains), range(steps + 1)])
    if not pd.MultiIndex.from_frame(frame[["chain", "step"]]).equals(expected):
        _refuse(path, f"not {chains} chains of steps 0 to {steps} (--chains {chains} "
                      f"--steps {steps})")


def check_files(out: Path, settings: dict, inputs: RunInputs, prior) -> None:
    """Every file the run would resume from, read and checked; one line for the first wrong."""
    if (out / "design.csv").exists():
        _check_design(out / "design.csv", settings, inputs, prior)
    for name, option in (("noise.csv", "noise_studies"), ("studies.csv", "studies")):
        if (out / name).exists():
            _check_studies(out / name, settings[option], _flag(option), inputs)
    if (out / "chains.parquet").exists():
        _check_chains(out / "chains.parquet", settings, inputs)
