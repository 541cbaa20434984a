"""Reading the TOML files people write (parameters, policies) into one-line errors."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else str(error)
        raise InputError(f"{path}: not valid TOML ({reason})") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None


def _fields(kind) -> dict[str, Any]:
    """The keys a model (pydantic or a pydantic dataclass) allows, with their types."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {name: f.annotation for name, f in kind.model_fields.items()}
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind, include_extras=True)   # resolves string annotations
        return {f.name: hints[f.name] for f in dataclasses.fields(kind)}
    return {}


def _inner(kind):
    """The model inside Optional[...], Annotated[...], list[...] or dict[str, ...]."""
    while True:
        origin = typing.get_origin(kind)
        if origin is None:
            return kind
        arguments = [a for a in typing.get_args(kind) if a is not type(None)]
        if origin in (typing.Union, types.UnionType, typing.Annotated):
            kind = arguments[0]
        elif origin in (list, tuple):
            kind = arguments[0]
        elif origin is dict:
            kind = arguments[-1]
        else:
            return kind


def allowed_keys(model, location: tuple) -> list[str]:
    """The keys allowed in the table at `location` (a pydantic error's loc) of `model`."""
    kind = model
    for part in location:
        fields = _fields(_inner(kind))
        if isinstance(part, str) and part in fields:
            kind = fields[part]
        elif not fields:           # a list index or a dict key: step into the item type
            kind = _inner(kind)
        # else: a key of dict[str, Model] (e.g. a modality's name): stay on the item type
    return sorted(_fields(_inner(kind)))


def first_error(path: str | Path, error: ValidationError, prefix: str = "", model=None) -> InputError:
    """The first pydantic error as one line: file, dotted field, what is allowed, what came. An
    unknown key comes first (a misspelt key is also a missing one) and is named with the nearest
    allowed key when `model` is given."""
    details = error.errors(include_url=False)
    unknown = [d for d in details if d["type"] in ("extra_forbidden", "unexpected_keyword_argument")]
    detail = (unknown or details)[0]
    parts = [prefix] if prefix else []
    # a leaf's "value" is its number (named by the leaf), unless it is the key that is missing
    parts += [str(part) for part in detail["loc"] if part != "value" or detail["type"] == "missing"]
    field = ".".join(parts) or "(top)"
    message = detail["msg"].removeprefix("Value error, ")
    if unknown:
        message = "unknown key"
        if model is not None:
            allowed = allowed_keys(model, tuple(detail["loc"][:-1]))
            near = difflib.get_close_matches(str(detail["loc"][-1]), allowed, n=1)
            message += (f"; did you mean {near[0]!r}?" if near else "") + (
                f" (allowed: {', '.join(allowed)})" if allowed else "")
        return InputError(f"{Path(path).name}: {field}: {message}")
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
        raise first_error(path, error, model=model) from None
