"""Where a run's output is assembled: all or nothing, one run at a time, resumable by content.

Every command that writes a directory (`cohort`, `run`, `power`, `validate`) works the same way:

1. `check_out` turns `--out` into the directory it names, before anything is created: empty,
   ``.``, ``..``, the working directory or a folder above it are refused, a symlink is followed to
   its target, and a parent that cannot be created or written is one line, not a traceback.
2. `staging_for` assembles the run in a hidden directory beside it, ``.NAME.partial``, holding
   ``run.json`` (the run's identity: a description of everything that decides its result) and
   ``lock`` (the process that owns it). The staging directory is set up under a private name and
   renamed into place, so two runs starting together cannot both own it; the owner holds an
   exclusive `flock` on ``lock`` until the run ends (the kernel releases it when the process
   dies, so a crash never leaves a stale lock).
3. A second run finding a staging directory whose lock is held is refused with a line naming the
   running one. A staging directory whose lock is free is an interrupted run: continued only with
   ``--resume``, and only if its ``run.json`` equals the new run's identity.
4. `finish` renames the complete staging directory to `--out`; `discard` removes it after a
   failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from sim.errors import InputError

__all__ = ["check_out", "staging_for", "finish", "discard", "release", "hold_lock"]

_HELD: dict[Path, int] = {}   # staging directory -> the descriptor holding its lock


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def check_out(out: str | Path, option: str = "--out") -> Path:
    """The directory `out` names, resolved (symlinks followed), with its parent created; refused
    in one line if it cannot be a run's output directory."""
    text = str(out).strip()
    if text in ("", ".", "..") or Path(text).name in ("", ".", ".."):
        raise InputError(f"{option}: must name a new or empty directory, not {text or 'empty'!r}")
    try:
        resolved = Path(text).expanduser().resolve()
        cwd = Path.cwd().resolve()
    except (OSError, RuntimeError) as error:   # RuntimeError: a symlink loop
        raise InputError(f"{option}: cannot be resolved ({error})") from None
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(f"{option}: must not be the working directory or a folder above it "
                         f"(got {text!r}, which is {resolved})")
    for place in (resolved, *resolved.parents):
        if place.exists() and not place.is_dir():
            raise InputError(f"{option}: {place} exists and is not a directory")
    try:
        resolved.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{option}: cannot create {resolved.parent} ({_reason(error)})") from None
    if not os.access(resolved.parent, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write in {resolved.parent} (permission denied)")
    return resolved


def _try_lock(path: Path) -> int | None:
    """An exclusive lock on `path` (created if missing): its descriptor, or None if another
    process holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def _stamp(descriptor: int) -> None:
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "started": time.strftime(
        "%Y-%m-%d %H:%M:%S")}).encode(), 0)


def _holder(lock: Path) -> str:
    try:
        owner = json.loads(lock.read_text())
        return f"pid {int(owner['pid'])}, started {str(owner['started'])[:19]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


def hold_lock(directory: Path, option: str = "--out") -> None:
    """Take the lock of a directory a command works in place (calibrate), or refuse in one line."""
    lock = directory / ".lock"
    descriptor = _try_lock(lock)
    if descriptor is None:
        raise InputError(f"{option}: another crlm-sim run ({_holder(lock)}) is writing to "
                         f"{directory}; wait for it to end, or stop it")
    _stamp(descriptor)
    _HELD[directory] = descriptor


def release(staging: Path) -> None:
    """The lock on `staging` given up (an interrupted run stays there, for --resume)."""
    descriptor = _HELD.pop(staging, None)
    if descriptor is not None:
        os.close(descriptor)


def staging_for(out: Path, run: dict, resume: bool, folders: tuple[str, ...]) -> Path:
    """The hidden directory beside `out` (already through `check_out`) in which a run is
    assembled, locked by this process. `out` must be new or empty; an interrupted run found there
    is continued only with `resume`, and only if it was started with the same `run` identity."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out: must be a new or empty directory ({out} exists and is not empty)")
    staging = out.parent / f".{out.name}.partial"
    private = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        shutil.rmtree(private, ignore_errors=True)
        private.mkdir()
        for folder in folders:
            (private / folder).mkdir()
        (private / "run.json").write_text(json.dumps(run, sort_keys=True))
        descriptor = _try_lock(private / "lock")
        _stamp(descriptor)
    except OSError as error:
        shutil.rmtree(private, ignore_errors=True)
        raise InputError(f"--out: cannot write in {out.parent} ({_reason(error)})") from None
    try:
        os.rename(private, staging)    # fails if a staging directory is already there
    except OSError:
        os.close(descriptor)
        shutil.rmtree(private, ignore_errors=True)
    else:
        _HELD[staging] = descriptor
        return staging
    return _continue(staging, run, resume, out)


def _continue(staging: Path, run: dict, resume: bool, out: Path) -> Path:
    """A staging directory already there: a live run (refused), or an interrupted one."""
    lock = staging / "lock"
    try:
        descriptor = _try_lock(lock)
    except OSError as error:
        raise InputError(f"--out: cannot lock {staging} ({_reason(error)})") from None
    if descriptor is None:
        raise InputError(f"--out: another crlm-sim run ({_holder(lock)}) is writing {out} in "
                         f"{staging}; wait for it to end, or stop it")
    if not resume:
        os.close(descriptor)
        raise InputError(f"--out: a run of {out} was interrupted in {staging}; add --resume "
                         "(where the command has it) to finish it, or remove that directory")
    try:
        recorded = json.loads((staging / "run.json").read_text())
    except (OSError, ValueError):
        os.close(descriptor)
        raise InputError(f"--resume: {staging}/run.json is missing or corrupt; remove {staging} "
                         "and start again") from None
    if recorded != run:
        os.close(descriptor)
        raise InputError(f"--resume: the run in {staging} was started with other options or "
                         "files; repeat its command with the same files, or remove that directory")
    _stamp(descriptor)
    _HELD[staging] = descriptor
    return staging


def finish(staging: Path, out: Path) -> None:
    """The complete run takes its final name (the lock goes with the process)."""
    (staging / "run.json").unlink()
    (staging / "lock").unlink(missing_ok=True)
    if out.exists():
        out.rmdir()
    os.replace(staging, out)
    release(staging)


def discard(staging: Path) -> None:
    """A failed run that cannot be resumed: its staging directory removed, its lock released."""
    shutil.rmtree(staging, ignore_errors=True)
    release(staging)
