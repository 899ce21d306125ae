"""The drill's timeline as a PNG: a Gantt chart of the steps (seconds since the drill start)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drkit.domain.drill import DrillReport
from drkit.views.charts import render_png
from drkit.views.drill_report import TIMELINE_CHART, secs, verdict, when

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TIMELINE_CHART", "timeline_png"]


def timeline_png(report: DrillReport) -> bytes:
    """A Gantt chart of the steps (seconds since the drill start), by phase, failed steps in red."""
    from matplotlib.patches import Patch

    colors = {"drill": "#4c72b0", "cleanup": "#8c8c8c", "failed": "#d62728"}
    steps = list(report.steps)
    t0 = report.started_at
    ends = [(s.ended_at - t0).total_seconds() for s in steps if s.ended_at is not None]
    span = max([*ends, 1.0])

    def draw(fig: Figure, ax: Axes) -> None:
        for y, s in enumerate(steps):
            color = colors["failed"] if s.outcome == "failed" else colors[s.phase]
            if s.started_at is None:
                ax.text(0, y, f"  {s.outcome}", va="center", fontsize=8, color="#57606a")
                continue
            start = (s.started_at - t0).total_seconds()
            end = (s.ended_at - t0).total_seconds() if s.ended_at is not None else span
            width = max(end - start, span / 400)  # an instant step stays visible
            ax.barh(y, width, left=start, height=0.6, color=color, edgecolor="none")
            label = secs(s.seconds) if s.seconds is not None else s.outcome
            if s.outcome not in ("done", "failed"):
                label += f" ({s.outcome})"
            ax.text(start + width + span / 200, y, label, va="center", fontsize=8)
        ax.set_yticks(range(len(steps)), [s.name for s in steps], fontsize=9)
        ax.set_ylim(len(steps) - 0.5, -0.5)  # first step on top
        ax.set_xlim(0, span * 1.15)
        ax.set_xlabel(f"seconds since the drill start ({when(t0)})")
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title(f"{report.app} drill ({report.mode}): {verdict(report)}\n{report.drill_id}", fontsize=11)
        handles = [
            Patch(color=colors["drill"], label="drill phase"),
            Patch(color=colors["cleanup"], label="cleanup phase"),
            Patch(color=colors["failed"], label="failed step"),
        ]
        # below the axis, where no bar can hide behind it
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=3,
            fontsize=8,
            frameon=False,
        )
        fig.tight_layout()

    return render_png((10, max(3.0, 0.42 * len(steps) + 1.6)), draw)
