"""The RPO report over a window: figures per app and image, a lag chart, table and markdown.

Every figure comes from the **sawtooth** rebuilt from synced points (:class:`~drkit.domain.rpo.Sawtooth`),
so the worst case between samples is exact, not the lag at sample times. The points are:

* ``exact``: the complete non-primary snapshots listed in exact mode (snap ls on both sites);
* ``status``: each status sample's ``local_snapshot_time``, complete at the latest by the status's
  ``last_update`` + 1 s (printed truncated; an upper bound of the completion, so the lag can only be
  over-stated).

A point is also complete no later than any newer point (B syncs in order): :func:`~drkit.domain.rpo.tighten`.

Both are merged; the ``source`` column says which ones were used (``exact``, ``status`` or
``exact+status``). When no point exists in the window (for example the status never had a
timestamp), the figures fall back to the lag values of the status samples at their sample times,
labelled ``status-samples``: that naive view misses peaks between samples.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from drkit.adapters.objectstore import ObjectStore
from drkit.domain.errors import ConfigError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import ProtectedApp, StandbyConfig
from drkit.domain.rpo import (
    BreachInterval,
    Sawtooth,
    SyncedPoint,
    Window,
    latest_instant,
    percentiles,
    tighten,
    time_within_target,
    worst_intervals,
    worst_lag,
)
from drkit.jobs.rpo import RpoRecords

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> timedelta:
    """``"24h"``, ``"90m"``, ``"7d"`` as a window length; :class:`ConfigError` otherwise."""
    match = _SINCE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--since {text!r} is not a duration", hint="write it like 24h, 90m or 7d")
    return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])


@dataclass(frozen=True)
class SeriesStats:
    """Figures of one lag series (an image, or the app) over the window."""

    name: str
    source: str
    start: datetime
    end: datetime
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    within_target: float | None
    worst: tuple[BreachInterval, ...] = ()
    points: tuple[SyncedPoint, ...] = ()
    samples: tuple[tuple[datetime, float], ...] = ()
    longest_gap: float | None = None
    """Seconds of the longest stretch with no observation (in which the lag is assumed to grow)."""


@dataclass
class AppReport:
    """One app's section of the report."""

    app: str
    target: timedelta
    overall: SeriesStats | None
    images: list[SeriesStats] = field(default_factory=list)


@dataclass
class RpoReport:
    """The report: window, per-app sections and their PNG charts."""

    start: datetime
    end: datetime
    apps: list[AppReport]
    charts: dict[str, bytes] = field(default_factory=dict)
    stamp: str = ""

    def table(self) -> list[dict[str, Any]]:
        """One row per app and per image (the table artifact)."""
        rows = []
        for a in self.apps:
            for s in [a.overall, *a.images]:
                if s is None:
                    continue
                rows.append(
                    {
                        "app": a.app,
                        "series": s.name,
                        "source": s.source,
                        "p50_s": _r(s.p50),
                        "p95_s": _r(s.p95),
                        "p99_s": _r(s.p99),
                        "max_s": _r(s.max),
                        "within_target_pct": None
                        if s.within_target is None
                        else round(100 * s.within_target, 2),
                        "target_s": a.target.total_seconds(),
                        "longest_gap_s": _r(s.longest_gap),
                        "worst_interval": _interval(s.worst[0]) if s.worst else "",
                    }
                )
        return rows

    def markdown(self, chart_keys: Mapping[str, str] | None = None) -> str:
        """The markdown report."""
        lines = [
            "# RPO report",
            "",
            f"Window: {self.start:%Y-%m-%d %H:%M:%S}Z to {self.end:%Y-%m-%d %H:%M:%S}Z.",
            "Figures come from the sawtooth rebuilt from synced points (worst case between samples"
            " included); `source` says which points: `exact` (the sampler's snap ls), `watch` (the"
            " completion watcher's snap ls every second), `status` (pool status, at most one 30 s cadence"
            " behind) or `status-samples` (lag at sample times only). `longest gap` is the longest"
            " stretch with no observation (sample, point or watcher coverage): within it the lag is"
            " assumed to keep growing, an upper bound, so a long gap makes the figures pessimistic.",
            "",
        ]
        for a in self.apps:
            lines += [f"## {a.app} (target {a.target.total_seconds():.0f} s)", ""]
            if a.overall is None and not a.images:
                lines += ["No samples in the window.", ""]
                continue
            lines += [
                "| series | source | p50 s | p95 s | p99 s | max s | within target | longest gap s | worst interval |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for s in [a.overall, *a.images]:
                if s is None:
                    continue
                within = "-" if s.within_target is None else f"{100 * s.within_target:.2f} %"
                worst = _interval(s.worst[0]) if s.worst else "-"
                lines.append(
                    f"| {s.name} | {s.source} | {_f(s.p50)} | {_f(s.p95)} | {_f(s.p99)} | {_f(s.max)}"
                    f" | {within} | {_f(s.longest_gap)} | {worst} |"
                )
            if chart_keys and a.app in chart_keys:
                lines += ["", f"Chart: `{chart_keys[a.app]}`"]
            lines.append("")
        return "\n".join(lines)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _interval(b: BreachInterval) -> str:
    peak = "unknown" if b.peak is None else f"peak {b.peak.total_seconds():.0f}s"
    return f"{b.start:%m-%d %H:%M:%S}-{b.end:%H:%M:%S} ({b.duration.total_seconds():.0f}s, {peak})"


# --------------------------------------------------------------------------------------- figures


def image_points(
    rows: pd.DataFrame, app: ProtectedApp, image: str, tz: str | None = None
) -> tuple[list[SyncedPoint], str]:
    """Synced points of ``image`` from exact rows and from the secondary's status rows; and the label.

    ``tz`` is the secondary's zone, in which rbd printed ``last_update`` (see
    :func:`~drkit.domain.rpo.latest_instant`: the bound must hold in a DST fall-back hour too).
    """
    found: list[tuple[datetime, datetime]] = []
    kinds = set()
    exact = rows[(rows["kind"] == "point") & (rows["image"] == image)]
    for data, done, source in zip(exact["data_time"], exact["completed_at"], exact["source"], strict=True):
        if pd.notna(data) and pd.notna(done):
            found.append((data.to_pydatetime(), done.to_pydatetime()))
            kinds.add(str(source) if pd.notna(source) else "exact")  # exact (sampler) or watch (watcher)
    status = rows[
        (rows["kind"] == "status")
        & (rows["image"] == image)
        & (rows["site"] == app.secondary_site)
        & rows["local_snapshot_time"].notna()
        & rows["health"].isin(["ok", "syncing"])
    ]
    for data, upd, at in zip(
        status["local_snapshot_time"], status["last_update"], status["sampled_at"], strict=True
    ):
        done = at.to_pydatetime()
        if pd.notna(upd):  # the point was complete when the status was written
            done = min(done, latest_instant(upd.to_pydatetime(), tz))
        found.append((data.to_pydatetime(), done))
        kinds.add("status")
    # tighten: the smallest bound per point, never before its data time, and no point completes
    # after a newer one
    return list(tighten(found)), "+".join(sorted(kinds))


def app_points(per_image: Sequence[Sequence[SyncedPoint]]) -> list[SyncedPoint]:
    """Points of the app's lag ``max_i L_i(t)``: at each completion, the oldest image base."""
    saws = [Sawtooth(p) for p in per_image]
    times = sorted({p.completed_at for pts in per_image for p in pts if p.completed_at is not None})
    out = []
    for t in times:
        bases = [s.base_at(t) for s in saws]
        if all(b is not None for b in bases):
            out.append(SyncedPoint(data_time=min(b for b in bases if b is not None), completed_at=t))
    return out


def series_stats(
    name: str, points: Sequence[SyncedPoint], source: str, start: datetime, end: datetime, target: timedelta,
    samples: Sequence[tuple[datetime, float]] = (),
) -> SeriesStats | None:  # fmt: skip
    """Figures of one series; ``None`` when there is nothing to measure."""
    completed = [p.completed_at for p in points if p.completed_at is not None]
    if completed:
        first = max(start, min(completed))
        if first >= end:
            return None
        window = Window(start=first, end=end)
        q = percentiles(points, window, (50, 95, 99))
        worst = worst_lag(points, first, end)
        return SeriesStats(
            name=name,
            source=source,
            start=first,
            end=end,
            p50=_sec(q[50]),
            p95=_sec(q[95]),
            p99=_sec(q[99]),
            max=_sec(worst),
            within_target=time_within_target(points, window, target),
            worst=tuple(worst_intervals(points, window, target, k=3)),
            points=tuple(points),
            samples=tuple(samples),
        )
    values = [v for _, v in samples if not math.isnan(v)]
    if not values:
        return None
    s = pd.Series(values)
    return SeriesStats(
        name=name,
        source="status-samples",
        start=samples[0][0],
        end=samples[-1][0],
        p50=float(s.quantile(0.5)),
        p95=float(s.quantile(0.95)),
        p99=float(s.quantile(0.99)),
        max=float(s.max()),
        within_target=float((s <= target.total_seconds()).mean()),
        samples=tuple(samples),
    )


def longest_gap(observed: Sequence[datetime], start: datetime, end: datetime) -> float | None:
    """Seconds of the longest stretch of ``[start, end]`` with no time of ``observed`` in it."""
    if end <= start:
        return None
    inside = sorted(t for t in observed if start < t < end)
    edges = [start, *inside, end]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(edges))


def _sec(v: timedelta | None) -> float | None:
    return None if v is None else v.total_seconds()


def build_report(
    config: StandbyConfig,
    records: RpoRecords,
    start: datetime,
    end: datetime,
    *,
    apps: Sequence[str] | None = None,
    charts: bool = True,
) -> RpoReport:
    """The report over ``[start, end]`` from the recorded samples."""
    rows = records.read(start, end)
    report = RpoReport(start=start, end=end, apps=[], stamp=f"{end.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    for app in config.apps:
        if apps and app.name not in apps:
            continue
        section = AppReport(app=app.name, target=app.rpo_target, overall=None)
        all_points: list[list[SyncedPoint]] = []
        labels = set()
        ends: list[datetime] = []
        for volume in app.volumes:
            points, label = image_points(rows, app, volume.image, config.site(app.secondary_site).timezone)
            st = rows[
                (rows["kind"] == "status")
                & (rows["image"] == volume.image)
                & (rows["site"] == app.secondary_site)
            ]
            samples = [
                (t.to_pydatetime(), float(v) if pd.notna(v) else math.nan)
                for t, v in zip(st["sampled_at"], st["lag_seconds"], strict=True)
            ]
            seen = rows[(rows["image"] == volume.image) & rows["kind"].isin(["status", "point", "watch"])][
                "sampled_at"
            ]
            last = min(end, seen.max().to_pydatetime()) if len(seen) else end  # no figures past the data
            ends.append(last)
            stats = series_stats(volume.image, points, label, start, last, app.rpo_target, samples)
            if stats is not None:
                stats = replace(
                    stats, longest_gap=longest_gap([t.to_pydatetime() for t in seen], stats.start, stats.end)
                )
                section.images.append(stats)
            all_points.append(points)
            labels.add(label)
        if all(all_points):
            section.overall = series_stats(
                f"app {app.name}",
                app_points(all_points),
                "+".join(sorted(labels)),
                start,
                min(ends),
                app.rpo_target,
            )
            gaps = [i.longest_gap for i in section.images if i.longest_gap is not None]
            if section.overall is not None and gaps:
                section.overall = replace(section.overall, longest_gap=max(gaps))
        report.apps.append(section)
        if charts and (section.images or section.overall):
            report.charts[app.name] = render_chart(section, start, end)
    return report


# ----------------------------------------------------------------------------------------- chart


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
    """A PNG of the app's lag over time: each image's sawtooth, status samples, the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        for s in section.images:
            if s.points:
                xs, ys = _sawtooth_xy(s.points, s.start, s.end)
                ax.plot(xs, ys, linewidth=1.2, label=f"{s.name} ({s.source} sawtooth)")
            if s.samples:
                when: Any = [t for t, _ in s.samples]
                ax.scatter(
                    when, [v for _, v in s.samples], s=8, alpha=0.6, label=f"{s.name} (status at samples)"
                )
        ax.axhline(section.target.total_seconds(), color="red", linestyle="--", label="RPO target")
        ax.set_xlim(start, end)  # type: ignore[arg-type]
        ax.set_ylim(bottom=0)
        ax.set_ylabel("lag (s)")
        ax.set_title(f"{section.app}: replication lag")
        ax.legend(loc="upper left", fontsize=7)
        fig.autofmt_xdate()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def store_charts(
    config: StandbyConfig, stores: Mapping[str, ObjectStore], report: RpoReport
) -> dict[str, str]:
    """Store each chart in the app's secondary-site store; app -> key."""
    keys = {}
    for app_name, png in report.charts.items():
        site = config.site(config.app(app_name).secondary_site)
        key = StoreLayout(site.s3.prefix).rpo_report_key(app_name, report.stamp, "lag.png")
        stores[site.name].put(key, png, content_type="image/png")
        keys[app_name] = key
    return keys
