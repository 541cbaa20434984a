"""Figures as PNG bytes, with matplotlib's non-interactive backend imported only when drawn."""

from __future__ import annotations

import io
from collections.abc import Callable

__all__ = ["png_bytes"]


def png_bytes(draw: Callable) -> bytes:
    """Call ``draw(pyplot)``, which returns a figure, and return the figure as PNG bytes."""
    import matplotlib  # noqa: PLC0415 - keep `import sim` light

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure = draw(plt)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
