"""The public API's arguments, checked at the door, as the command line checks its options.

Each check names the argument, says what is allowed and shows what came, in one line; a value of
the wrong kind raises `ArgumentTypeError` (both an `InputError` and a `TypeError`), a value of
the right kind out of its range an `InputError` (a `ValueError`). Booleans are not integers or
numbers, a float is not an integer (a seed of 1.5 is refused, never run as 1), and a number is
finite. The checked value comes back, numpy scalars as Python ones.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from sim.errors import InputError

__all__ = ["ArgumentTypeError", "integer", "number", "choice", "path", "source", "flag",
           "optional_flag", "text", "workers", "executor", "out_path"]


class ArgumentTypeError(InputError, TypeError):
    """An argument of the wrong kind: a `TypeError` to Python, one line to the command line."""


def _got(value) -> str:
    return f"got {value!r}, {type(value).__name__}" if not isinstance(value, str) else f"got {value!r}"


def integer(name: str, value, *, low: int = 0, high: int | None = None,
            what: str | None = None) -> int:
    """`value` as an int in [low, high]; a bool, a float or a string is refused."""
    what = what or ("a non-negative integer" if low == 0 else "a positive integer" if low == 1
                    else f"an integer of at least {low:,}")
    limit = f", at most {high:,}" if high is not None else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name}: must be {what}{limit} ({_got(value)})")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}: must be {what}{limit} (got {value})")
    return value


def number(name: str, value, *, above: float | None = None, high: float | None = None,
           what: str = "a number") -> float:
    """`value` as a finite real number, above `above` (exclusive) and at most `high`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name}: must be {what} ({_got(value)})")
    if (not math.isfinite(value) or (above is not None and not value > above)
            or (high is not None and not value <= high)):
        raise InputError(f"{name}: must be {what} (got {value})")
    return value if type(value) in (int, float) else float(value)


def choice(name: str, value, allowed: tuple[str, ...]) -> str:
    """One of `allowed` (strings)."""
    if not isinstance(value, str) or value not in allowed:
        kind = InputError if isinstance(value, str) else ArgumentTypeError
        raise kind(f"{name}: must be one of {', '.join(allowed)} ({_got(value)})")
    return value


def path(name: str, value, what: str = "a path") -> str | os.PathLike:
    """A path: a string or an `os.PathLike` (a number is not a file name)."""
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name}: must be {what} (a str or pathlib.Path; {_got(value)})")
    return value


def source(name: str, value, kinds: tuple[type, ...], what: str, *, none: bool = False):
    """A file (a path) or an object of one of `kinds` (or None when `none`)."""
    if (value is None and none) or isinstance(value, (str, os.PathLike, *kinds)):
        return value
    raise ArgumentTypeError(f"{name}: must be {what} ({_got(value)})")


def flag(name: str, value) -> bool:
    """True or False (not 0, 1 or "yes")."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name}: must be True or False ({_got(value)})")
    return value


def optional_flag(name: str, value) -> bool | None:
    """True, False or None."""
    if value is not None and not isinstance(value, bool):
        raise ArgumentTypeError(f"{name}: must be True, False or None ({_got(value)})")
    return value


def text(name: str, value) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name}: must be a string ({_got(value)})")
    return value


def workers(value) -> int:
    """Local worker processes: 1 by default (None), else a positive integer."""
    return 1 if value is None else integer("workers", value, low=1)


def executor(value):
    """None, or an executor: an object with `run(fn, units, on_result)` (the caller closes it)."""
    if value is not None and not callable(getattr(value, "run", None)):
        raise ArgumentTypeError(f"executor: must be None or an executor with run(fn, units, "
                                f"on_result), such as sim.execution.executor.LocalExecutor "
                                f"({_got(value)})")
    return value


def out_path(name: str, value) -> Path | None:
    """An output directory or None."""
    return None if value is None else Path(path(name, value, "a directory path or None"))
