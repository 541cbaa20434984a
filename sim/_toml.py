"""Reading the TOML files people write (parameters, policies) into one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import InputError

__all__ = ["read_toml", "first_error", "validate_file"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file becomes an `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None


def first_error(path: str | Path, error: ValidationError, prefix: str = "") -> InputError:
    """The first pydantic error as one line: file, dotted field, what is allowed, what came."""
    detail = error.errors(include_url=False)[0]
    parts = [prefix] if prefix else []
    parts += [str(part) for part in detail["loc"] if part != "value"]
    field = ".".join(parts) or "(top)"
    message = detail["msg"]
    if detail["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "unknown key"
    received = detail.get("input")
    shown = "" if isinstance(received, dict) or received is None else f" (got {received!r})"
    return InputError(f"{Path(path).name}: {field}: {message}{shown}")


def validate_file(path: str | Path, model, tree: dict | None = None):
    """The file (or its already-read `tree`) validated by the pydantic `model`; the first error
    as one line."""
    tree = read_toml(path) if tree is None else tree
    try:
        return model.model_validate(tree)
    except ValidationError as error:
        raise first_error(path, error) from None
