"""One naming rule for input files, on the command line, in the API and inside files.

- A path that leads to a file is that file (on the command line and in the API, relative to the
  working directory; inside a file, relative to that file's folder).
- Otherwise a bare name is a packaged scenario (`scenarios/`, shipped in the package): ``esmo``,
  ``trials/facs-ct``, ``comparisons/facs``, ``economics/us``, ``power/exponential``, with or
  without ``.toml``. A file copied elsewhere keeps working when it names packaged scenarios so.
- A miss is one line that lists the nearest packaged names.

Inside a file a name must lead under the file's folder or under the packaged scenarios once
symlinks and ``..`` are resolved (the packaged files name each other by bare name): a file handed
to crlm-sim cannot make it read a file elsewhere (and echo what it found there).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sim.errors import InputError

__all__ = ["named_file", "scenario_file", "packaged_scenarios", "packaged_names"]


def packaged_scenarios() -> Path:
    """The folder of the scenarios shipped with the package."""
    return Path(str(resources.files("sim") / "scenarios")).resolve()


@lru_cache(maxsize=1)
def packaged_names() -> tuple[str, ...]:
    """Every packaged scenario's name: its path under scenarios/ without .toml."""
    root = packaged_scenarios()
    return tuple(sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.toml")))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _packaged(value: str) -> Path | None:
    root = packaged_scenarios()
    for name in (value, f"{value}.toml"):
        candidate = (root / name).resolve()
        if _inside(candidate, root) and candidate.is_file():
            return candidate
    return None


def _nearest(value: str) -> str:
    stem = str(value).removesuffix(".toml").lstrip("./")
    near = difflib.get_close_matches(stem, packaged_names(), n=4, cutoff=0.4)
    if not near:
        near = [n for n in packaged_names() if Path(n).name == Path(stem).name][:4]
    return f"; nearest packaged names: {', '.join(near)}" if near else ""


def scenario_file(value: str | Path, what: str = "file") -> Path:
    """The file a command-line or API argument names: a path to a file, else a packaged
    scenario's name; a miss is one line listing the nearest packaged names."""
    path = Path(value)
    if path.is_file():
        return path
    packaged = _packaged(str(value))
    if packaged is not None:
        return packaged
    raise InputError(f"{value}: no such file (a {what}), and no packaged scenario of that name "
                     f"(a path, or a name of scenarios/ such as esmo, comparisons/facs, economics/us, "
                     f"power/exponential){_nearest(str(value))}")


def named_file(source: Path, field: str, value: str, what: str = "file") -> Path:
    """The file `value` names in `source` (its `field`), resolved and confined; else one line."""
    folder, root = Path(source).resolve().parent, packaged_scenarios()
    for name in (value, f"{value}.toml"):
        candidate = (folder / name).resolve()
        if (_inside(candidate, folder) or _inside(candidate, root)) and candidate.is_file():
            return candidate
    packaged = _packaged(value)
    if packaged is not None:
        return packaged
    raise InputError(f"{Path(source).name}: {field}: no {what} {value!r} under {folder} or among "
                     f"the packaged scenarios (a path relative to the file that stays under its "
                     f"folder, or a name of scenarios/ such as esmo or economics/us)"
                     f"{_nearest(value)}")
