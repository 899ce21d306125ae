"""PNG charts with matplotlib (headless ``Agg`` backend): :func:`render_png`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def render_png(figsize: tuple[float, float], draw: Callable[[Figure, Axes], None]) -> bytes:
    """The PNG bytes of one figure of ``figsize`` inches (100 dpi) that ``draw(fig, ax)`` fills.

    The figure is closed afterwards, whether ``draw`` succeeds or raises.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=100)
    try:
        draw(fig, ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
