"""Write fitted values into a parameter file, keeping its comments, order and sources."""

from __future__ import annotations

import re

__all__ = ["write_values", "FITTED"]

FITTED = "fitted: CMA-ES fit to the study's and five external figures (calibration/README.md)"
_LEAF = re.compile(r'^(?P<key>\w+) = \{ value = (?P<value>[^,]+), source = "(?P<source>.*)" \}\s*$')


def _original(source: str) -> str:
    """The source a value had before any fit."""
    return source.split("; was ", 1)[1] if source.startswith("fitted:") and "; was " in source else source


def write_values(text: str, values: dict[str, float], name: str = "fitted") -> str:
    """`text` (a parameter file) with each dotted path's value replaced and its source marked."""
    remaining = dict(values)
    section = ""
    lines = []
    for line in text.splitlines():
        header = re.match(r"^\[([\w.]+)\]\s*$", line)
        if header:
            section = header.group(1)
        leaf = _LEAF.match(line)
        if leaf and f"{section}.{leaf['key']}" in remaining:
            value = remaining.pop(f"{section}.{leaf['key']}")
            source = f"{FITTED}; was {_original(leaf['source'])}"
            line = f'{leaf["key"]} = {{ value = {value:.6g}, source = "{source}" }}'
        if section == "meta" and line.startswith("name = "):
            line = f'name = "{name}"'
        lines.append(line)
    if remaining:
        raise KeyError(f"not in the parameter file: {', '.join(sorted(remaining))}")
    return "\n".join(lines) + "\n"
