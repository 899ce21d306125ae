"""What the RPO commands and artifacts show: sampling and lag rows, the sampler's JSON, the
report's table, markdown and lag chart. Shapes only, of the records in
:mod:`drkit.domain.rpo_reading` and :mod:`drkit.domain.rpo_report`; the figures come from :mod:`drkit.jobs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drkit.domain.rpo_points import SyncedPoint
from drkit.domain.rpo_reading import AppReading, SampleRun, SiteSampling
from drkit.domain.rpo_report import AppReport, RpoReport, SeriesStats
from drkit.domain.rpo_sawtooth import BreachInterval, Sawtooth, Window
from drkit.views.charts import render_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def reading_rows(readings: Sequence[AppReading]) -> list[dict[str, Any]]:
    """One row per app image: what ``standby rpo sample`` prints and the flow's table shows.

    ``lag_seconds`` is a measure; a journal-mode image's figure is in ``lag_estimate_seconds``
    (``source`` ``journal-estimate``), with the ``entries_behind``, ``entries_per_second`` and
    ``status_age_seconds`` it is estimated from.
    """
    out = []
    for r in readings:
        for img in r.lag.images:
            out.append(
                {
                    "app": r.app,
                    "image": img.image,
                    "site": img.site,
                    "health": img.health,
                    "lag_seconds": _r(img.lag_seconds),
                    "source": img.source,
                    "target_seconds": r.target.total_seconds(),
                    "app_lag_seconds": _r(r.lag.lag_seconds),
                    "reason": img.reason,
                    "lag_estimate_seconds": _r(img.lag_estimate_seconds),
                    "entries_behind": img.entries_behind,
                    "entries_per_second": img.entries_per_second,
                    "status_age_seconds": _r(img.status_age_seconds),
                }
            )
    return out


def sampling_rows(samplings: Sequence[SiteSampling]) -> list[dict[str, Any]]:
    """One row per pool-status call: valid or not, and why."""
    return [
        {
            "site": s.site,
            "pool": s.pool,
            "valid": s.valid,
            "images": len(s.samples),
            "seconds": round(s.seconds, 3),
            "command": s.command,
            "reason": s.error or "; ".join(s.notes) or "ok",
        }
        for s in samplings
    ]


def sample_json(run: SampleRun) -> dict[str, Any]:
    """What ``standby rpo sample --json`` prints."""
    return {
        "at": run.at.isoformat(),
        "sites": sampling_rows(run.samplings),
        "apps": [
            {
                "app": r.app,
                "lag_seconds": r.lag.lag_seconds,
                "lag_estimate_seconds": r.lag.lag_estimate_seconds,
                "estimated": r.lag.estimated,
                "entries_behind": r.lag.entries_behind,
                "max_entries_behind": r.max_entries_behind,
                "target_seconds": r.target.total_seconds(),
                "source": r.lag.source,
                "worst_image": r.lag.worst_image,
                "reason": r.lag.reason,
                "images": reading_rows([r]),
            }
            for r in run.readings
        ],
        "alerts": [
            {"kind": a.kind, "app": a.app, "image": a.image, "payload": dict(a.payload)} for a in run.alerts
        ],
        "keys": list(run.keys),
    }


# ----------------------------------------------------------------------------------------- report


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _interval(b: BreachInterval) -> str:
    peak = "unknown" if b.peak is None else f"peak {b.peak.total_seconds():.0f}s"
    return f"{b.start:%m-%d %H:%M:%S}-{b.end:%H:%M:%S} ({b.duration.total_seconds():.0f}s, {peak})"


def report_table(report: RpoReport) -> list[dict[str, Any]]:
    """One row per app and per image (the table artifact, ``standby rpo report --json``); the
    journal-mode estimates' rows come last, ``estimated`` true, source ``journal-estimate``."""
    rows = []
    for a in report.apps:
        for s in [a.overall, *a.images, *a.estimated]:
            if s is None:
                continue
            rows.append(
                {
                    "app": a.app,
                    "series": s.name,
                    "estimated": s.estimated,
                    "source": s.source,
                    "p50_s": _r(s.p50),
                    "p95_s": _r(s.p95),
                    "p99_s": _r(s.p99),
                    "max_s": _r(s.max),
                    "within_target_pct": None if s.within_target is None else round(100 * s.within_target, 2),
                    "target_s": a.target.total_seconds(),
                    "longest_gap_s": _r(s.longest_gap),
                    "worst_interval": _interval(s.worst[0]) if s.worst else "",
                }
            )
    return rows


def report_markdown(report: RpoReport, chart_keys: Mapping[str, str] | None = None) -> str:
    """The markdown report."""
    lines = [
        "# RPO report",
        "",
        f"Window: {report.start:%Y-%m-%d %H:%M:%S}Z to {report.end:%Y-%m-%d %H:%M:%S}Z.",
        "Figures come from the sawtooth rebuilt from synced points (worst case between samples"
        " included); `source` says which points: `exact` (the sampler's snap ls), `watch` (the"
        " completion watcher's snap ls every second), `status` (pool status, at most one 30 s cadence"
        " behind) or `status-samples` (lag at sample times only). `longest gap` is the longest"
        " stretch with no observation (sample, point or watcher coverage): within it the lag is"
        " assumed to keep growing, an upper bound, so a long gap makes the figures pessimistic.",
        "Journal-mode images have no synced points: their figures are ESTIMATES (status age +"
        " entries behind / replay rate), in a table of their own, never mixed with the measures.",
        "",
    ]
    for a in report.apps:
        lines += [f"## {a.app} (target {a.target.total_seconds():.0f} s)", ""]
        if a.overall is None and not a.images and not a.estimated:
            lines += ["No samples in the window.", ""]
            continue
        measured = [s for s in [a.overall, *a.images] if s is not None]
        if measured:
            lines += _series_table(measured)
        if a.estimated:
            if measured:
                lines.append("")
            lines += ["Estimated lag (journal mode, at sample times; not a measure):", ""]
            lines += _series_table(a.estimated)
        if chart_keys and a.app in chart_keys:
            lines += ["", f"Chart: `{chart_keys[a.app]}`"]
        lines.append("")
    return "\n".join(lines)


def _series_table(series: Sequence[SeriesStats]) -> list[str]:
    lines = [
        "| series | source | p50 s | p95 s | p99 s | max s | within target | longest gap s | worst interval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in series:
        within = "-" if s.within_target is None else f"{100 * s.within_target:.2f} %"
        worst = _interval(s.worst[0]) if s.worst else "-"
        lines.append(
            f"| {s.name} | {s.source} | {_f(s.p50)} | {_f(s.p95)} | {_f(s.p99)} | {_f(s.max)}"
            f" | {within} | {_f(s.longest_gap)} | {worst} |"
        )
    return lines


def _sawtooth_xy(
    points: Sequence[SyncedPoint], start: datetime, end: datetime
) -> tuple[list[Any], list[float]]:
    xs: list[Any] = []
    ys: list[float] = []
    for seg in Sawtooth(points).segments(Window(start=start, end=end)):
        if seg.base is None:
            xs.append(seg.start)
            ys.append(math.nan)
            continue
        xs += [seg.start, seg.end]
        ys += [(seg.start - seg.base).total_seconds(), (seg.end - seg.base).total_seconds()]
    return xs, ys


def render_chart(section: AppReport, start: datetime, end: datetime) -> bytes:
    """A PNG of the app's lag over time: each image's sawtooth, status samples, the target line, and
    a journal-mode image's estimates as a dotted line of crosses labelled ESTIMATE."""

    def draw(fig: Figure, ax: Axes) -> None:
        for s in section.images:
            if s.points:
                xs, ys = _sawtooth_xy(s.points, s.start, s.end)
                ax.plot(xs, ys, linewidth=1.2, label=f"{s.name} ({s.source} sawtooth)")
            if s.samples:
                when: Any = [t for t, _ in s.samples]
                ax.scatter(
                    when, [v for _, v in s.samples], s=8, alpha=0.6, label=f"{s.name} (status at samples)"
                )
        for s in section.estimated:
            if s.name.startswith("app ") or not s.samples:
                continue  # each image's estimates are drawn; the app's is their max
            when = [t for t, _ in s.samples]
            ax.plot(
                when,
                [v for _, v in s.samples],
                linestyle=":",
                marker="x",
                markersize=4,
                linewidth=1,
                label=f"{s.name[: -len(' (estimated)')]} (journal ESTIMATE)",
            )
        ax.axhline(section.target.total_seconds(), color="red", linestyle="--", label="RPO target")
        ax.set_xlim(start, end)  # type: ignore[arg-type]
        ax.set_ylim(bottom=0)
        ax.set_ylabel("lag (s)")
        ax.set_title(f"{section.app}: replication lag")
        ax.legend(loc="upper left", fontsize=7)
        fig.autofmt_xdate()

    return render_png((10, 4), draw)


def render_charts(report: RpoReport) -> dict[str, bytes]:
    """A PNG per app that has figures in the report; app -> PNG."""
    return {
        a.app: render_chart(a, report.start, report.end)
        for a in report.apps
        if a.images or a.overall is not None or a.estimated
    }
