"""Files named inside other files (a comparison's policies, a design's policy and parameters).

A name is a path relative to the naming file's folder, or the name of a packaged scenario
(`scenarios/`, e.g. ``"esmo.toml"`` or ``"trials/facs-ct.toml"``). Either way it must lead under
that folder or under the packaged scenarios once symlinks and ``..`` are resolved (the packaged
comparisons name ``"../esmo.toml"``): a file
handed to crlm-sim cannot make it read a file elsewhere (and echo what it found there).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sim.errors import InputError

__all__ = ["named_file", "packaged_scenarios"]


def packaged_scenarios() -> Path:
    """The folder of the scenarios shipped with the package."""
    return Path(str(resources.files("sim") / "scenarios")).resolve()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def named_file(source: Path, field: str, value: str, what: str = "file") -> Path:
    """The file `value` names in `source` (its `field`), resolved and confined; else one line."""
    folder, packaged = Path(source).resolve().parent, packaged_scenarios()
    for base in (folder, packaged):
        candidate = (base / value).resolve()
        if (_inside(candidate, folder) or _inside(candidate, packaged)) and candidate.is_file():
            return candidate
    raise InputError(f"{Path(source).name}: {field}: no {what} {value!r} under {folder} or among "
                     f"the packaged scenarios (a path relative to the file that stays under its "
                     f"folder, or a file of scenarios/)")
