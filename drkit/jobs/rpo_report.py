"""The RPO report over a window: p50/p95/p99/max lag, % within target and the worst intervals,
per app and image, from the rows in the :class:`~drkit.adapters.rpo_store.SampleStore`.

Figures come from the sawtooth rebuilt from synced points (exact, watch and status points merged,
:func:`~drkit.domain.rpo_points.tighten`), so the worst case between samples counts; with no point in the
window they fall back to the status lags at sample times (``status-samples``). A journal-mode image
has no synced points: its ESTIMATES (``lag_estimate_seconds``) make separate series, named
``(estimated)``, whose percentiles never mix with the measured ones. Tables, markdown and charts are
in :mod:`drkit.views.rpo`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from drkit.adapters.clock import Clock
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.rpo_store import SampleStore
from drkit.domain.durations import parse_window
from drkit.domain.layout import StoreLayout
from drkit.domain.models import StandbyConfig
from drkit.domain.placement import Placement, roles
from drkit.domain.rpo_points import SyncedPoint, latest_instant, tighten
from drkit.domain.rpo_report import AppReport, SeriesStats
from drkit.domain.rpo_report import RpoReport as RpoReport  # re-exported: the report type the jobs return
from drkit.domain.rpo_sawtooth import (
    Sawtooth,
    Window,
    percentiles,
    time_within_target,
    worst_intervals,
    worst_lag,
)
from drkit.jobs.requests import RpoReportRequest

# --------------------------------------------------------------------------------------- figures


def image_points(
    rows: pd.DataFrame, secondary: str, image: str, tz: str | None = None
) -> tuple[list[SyncedPoint], str]:
    """Synced points of ``image`` from exact rows and from the status rows of ``secondary`` (the
    app's current secondary site); and the label.

    ``tz`` is the secondary's zone, in which rbd printed ``last_update`` (see
    :func:`~drkit.domain.rpo_points.latest_instant`: the bound must hold in a DST fall-back hour too).
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
        & (rows["site"] == secondary)
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
    name: str,
    points: Sequence[SyncedPoint],
    source: str,
    start: datetime,
    end: datetime,
    target: timedelta,
    samples: Sequence[tuple[datetime, float]] = (),
) -> SeriesStats | None:
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


def estimate_stats(
    name: str, rows: pd.DataFrame, target: timedelta, observed: Sequence[datetime]
) -> SeriesStats | None:
    """Figures of the journal-mode ESTIMATES in ``rows`` (their ``lag_estimate_seconds``), a series
    of its own (``estimated``, source ``journal-estimate``); ``None`` when no row has one.

    The percentiles are over the estimates at sample times only: journal mode has no synced points
    to rebuild a sawtooth from.
    """
    column = rows["lag_estimate_seconds"] if "lag_estimate_seconds" in rows else pd.Series(dtype="float64")
    samples = [
        (t.to_pydatetime(), float(v)) for t, v in zip(rows["sampled_at"], column, strict=True) if pd.notna(v)
    ]
    if not samples:
        return None
    s = pd.Series([v for _, v in samples])
    start, end = samples[0][0], samples[-1][0]
    return SeriesStats(
        name=name,
        source="journal-estimate",
        start=start,
        end=end,
        p50=float(s.quantile(0.5)),
        p95=float(s.quantile(0.95)),
        p99=float(s.quantile(0.99)),
        max=float(s.max()),
        within_target=float((s <= target.total_seconds()).mean()),
        samples=tuple(samples),
        longest_gap=longest_gap(observed, start, end) if end > start else None,
        estimated=True,
    )


def _sec(v: timedelta | None) -> float | None:
    return None if v is None else v.total_seconds()


def build_report(
    config: StandbyConfig,
    records: SampleStore,
    start: datetime,
    end: datetime,
    *,
    apps: Sequence[str] | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> RpoReport:
    """The report over ``[start, end]`` from the recorded samples of each app's current secondary
    (its ``placements``; the home's other site without one)."""
    rows = records.read(start, end)
    report = RpoReport(start=start, end=end, apps=[], stamp=f"{end.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    for app in config.apps:
        if apps and app.name not in apps:
            continue
        section = AppReport(app=app.name, target=app.rpo_target, overall=None)
        all_points: list[list[SyncedPoint]] = []
        labels = set()
        ends: list[datetime] = []
        secondary = roles(app, placements)[1]
        estimated: list[SeriesStats] = []
        journal = 0
        for volume in app.volumes:
            points, label = image_points(rows, secondary, volume.image, config.site(secondary).timezone)
            st = rows[
                (rows["kind"] == "status") & (rows["image"] == volume.image) & (rows["site"] == secondary)
            ]
            samples = [
                (t.to_pydatetime(), float(v) if pd.notna(v) else math.nan)
                for t, v in zip(st["sampled_at"], st["lag_seconds"], strict=True)
            ]
            seen = rows[(rows["image"] == volume.image) & rows["kind"].isin(["status", "point", "watch"])][
                "sampled_at"
            ]
            last = min(end, seen.max().to_pydatetime()) if len(seen) else end  # no figures past the data
            observed = [t.to_pydatetime() for t in seen]
            stats = series_stats(volume.image, points, label, start, last, app.rpo_target, samples)
            if stats is not None:
                stats = replace(stats, longest_gap=longest_gap(observed, stats.start, stats.end))
                section.images.append(stats)
            guess = estimate_stats(f"{volume.image} (estimated)", st, app.rpo_target, observed)
            if guess is not None:
                estimated.append(guess)
            if guess is not None and not points:
                journal += 1  # journal mode: no measured series to combine into the app's
                continue
            ends.append(last)
            all_points.append(points)
            labels.add(label)
        if all_points and all(all_points):
            section.overall = series_stats(
                f"app {app.name}" + (" (measured images)" if journal else ""),
                app_points(all_points),
                "+".join(sorted(labels)),
                start,
                min(ends),
                app.rpo_target,
            )
            gaps = [i.longest_gap for i in section.images if i.longest_gap is not None]
            if section.overall is not None and gaps:
                section.overall = replace(section.overall, longest_gap=max(gaps))
        app_rows = rows[(rows["kind"] == "app") & (rows["app"] == app.name)]
        overall_guess = estimate_stats(
            f"app {app.name} (estimated)",
            app_rows,
            app.rpo_target,
            [t.to_pydatetime() for t in app_rows["sampled_at"]],
        )
        section.estimated = [g for g in (overall_guess, *estimated) if g is not None]
        report.apps.append(section)
    return report


def report(
    config: StandbyConfig,
    records: SampleStore,
    request: RpoReportRequest,
    *,
    clock: Clock,
    placements: Mapping[str, Placement] | None = None,
) -> RpoReport:
    """The report use case (flow and CLI): the window ``request.since`` ending now."""
    window = parse_window(request.since)
    end = clock.now()
    apps = [request.app] if request.app else None
    return build_report(config, records, end - window, end, apps=apps, placements=placements)


def store_charts(
    config: StandbyConfig,
    stores: Mapping[str, ObjectStore],
    report: RpoReport,
    charts: Mapping[str, bytes],
    *,
    placements: Mapping[str, Placement] | None = None,
) -> dict[str, str]:
    """Store each app's chart (PNG) in its current secondary's store (its ``placements``), under the
    report's keys; app -> key."""
    keys = {}
    for app_name, png in charts.items():
        site = config.site(roles(config.app(app_name), placements)[1])
        key = StoreLayout(site.s3.prefix).rpo_report_key(app_name, report.stamp, "lag.png")
        stores[site.name].put(key, png, content_type="image/png")
        keys[app_name] = key
    return keys
