"""Numbers as a reader sees them in the reports' tables."""

from __future__ import annotations

__all__ = ["number"]


def number(value: float, spec: str) -> str:
    """`value` formatted by the format `spec` (".3f", ",.0f", ".3g"), never as a negative zero:
    "-0.000" is shown "0.000"."""
    text = format(value, spec)
    digits = text.lstrip("-").replace(",", "").replace(".", "").rstrip("0%")
    if text.startswith("-") and (not digits or set(digits) <= {"0"}):
        return text[1:]
    return text
