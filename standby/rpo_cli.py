"""``standby rpo``: RPO commands.

``standby rpo parse`` reads ``rbd mirror image status --format json`` or
``rbd mirror pool status --verbose --format json`` on stdin and prints one JSON object on stdout:

    {"images": [{"image": "...", "health": "ok", "lag_seconds": 12.0, "reason": "...",
                 "source": "status", "state": "up+replaying", "role": "secondary"}]}

``lag_seconds`` is ``null`` when the lag is unknown. A journal-mode image has no measured lag
(``lag_seconds`` null, ``source`` ``journal-estimate``): its object adds the ESTIMATE and what it
comes from, ``lag_estimate_seconds`` (status age + entries behind / replay rate; ``null`` when it
cannot be estimated), ``entries_behind``, ``entries_per_second`` and ``status_age_seconds``.
Unparseable input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from drkit.domain.errors import ConfigError, ParseError
from drkit.domain.rbd_readers import zone
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER, parse_status
from drkit.domain.rpo import image_lag
from drkit.jobs.requests import RpoReportRequest, RpoSampleRequest, RpoWatchRequest, default, describe
from standby.common import (
    ConfigOption,
    JsonAlias,
    OutputOption,
    command_world,
    duration,
    emit,
    fail,
    group,
    guarded,
    option_duration,
    output_of,
)

if TYPE_CHECKING:
    from drkit.jobs.world import World

T = TypeVar("T")


def _world(config: Path | None, app: str | None = None) -> World:
    """The command's one World (:func:`~standby.common.command_world`); each app's placement is
    read once, when first needed."""
    world: World = command_world(config, app=app)
    return world


def _stores(world: World) -> dict[str, Any]:
    return {name: b.store for name, b in world.sites.items()}


rpo_app = group("Replication lag (RPO) of mirrored images.")


@rpo_app.callback()
def _group() -> None:
    """Replication lag (RPO) of mirrored images."""


def parse_report(
    text: str, *, now: datetime, tz: str, site: str = "", pool: str = "", stale_after: timedelta
) -> dict[str, Any]:
    """The JSON object ``rpo parse`` prints, from status JSON ``text``."""
    samples = parse_status(text, now=now, tz=zone(tz), site=site, pool=pool, stale_after=stale_after)
    images = []
    for sample in samples:
        lag = image_lag(sample, now, stale_after=stale_after)
        image: dict[str, Any] = {
            "image": lag.image,
            "health": lag.health,
            "lag_seconds": lag.lag_seconds,
            "reason": lag.reason,
            "source": lag.source,
            "state": lag.raw_state,
            "role": lag.role,
        }
        if lag.mode == "journal":  # an estimate, labelled as one; never in lag_seconds
            image |= {
                "lag_estimate_seconds": lag.lag_estimate_seconds,
                "entries_behind": lag.entries_behind,
                "entries_per_second": lag.entries_per_second,
                "status_age_seconds": lag.status_age_seconds,
            }
        images.append(image)
    return {"images": images}


@rpo_app.command("parse")
def parse_cmd(
    now: Annotated[
        float | None,
        typer.Option("--now", help="evaluate at this UNIX time", show_default="the current time"),
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", help="IANA zone rbd printed last_update in (the Ceph host's zone)")
    ] = "UTC",
    site: Annotated[str, typer.Option("--site", "-s", help="name of the site the status was read on")] = "",
    pool: Annotated[str, typer.Option("--pool", help="pool name, for the record")] = "",
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after",
            parser=duration,
            metavar="DURATION",
            help="age after which a status is stale, e.g. 10m (a bare number is seconds)",
            show_default=option_duration(DEFAULT_STALE_AFTER.total_seconds()),
        ),
    ] = DEFAULT_STALE_AFTER.total_seconds(),
) -> None:
    """Read image or pool status JSON on stdin; print each image's health and lag as one JSON object."""
    when = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    text = sys.stdin.read()
    try:
        report = parse_report(
            text, now=when, tz=tz, site=site, pool=pool, stale_after=timedelta(seconds=stale_after)
        )
    except (ParseError, ConfigError) as exc:
        raise fail(f"error: {exc}", 2) from None
    typer.echo(json.dumps(report))


AppOpt = Annotated[
    str | None, typer.Option("--app", "-a", help="only this app", show_default="every app", metavar="APP")
]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


@rpo_app.command("sample")
def sample_cmd(
    config: ConfigOption = None,
    app: AppOpt = None,
    exact: Annotated[
        str, typer.Option("--exact", help=describe(RpoSampleRequest, "exact"), metavar="[auto|always|never]")
    ] = default(RpoSampleRequest, "exact"),
    output: OutputOption = None,
    as_json: JsonAlias = False,
    record: Annotated[
        bool, typer.Option("--record", help="also append to S3 and update the breach state (no events)")
    ] = False,
) -> None:
    """Sample both sites once and print each app image's lag (one pool-status call per site)."""
    from drkit.adapters.clock import SystemClock
    from drkit.jobs import rpo as jobs
    from drkit.views import rpo as views

    if exact not in ("auto", "always", "never"):
        raise fail(
            f"error: --exact must be auto, always or never, not {exact!r} (next: leave it out for auto)", 2
        )
    request = guarded(lambda: RpoSampleRequest(app=app, exact=exact))  # type: ignore[arg-type]

    def run() -> jobs.SampleRun:
        world = _world(config, app)
        cfg, placements = world.config, world.placements()
        rbds = {name: b.rbd for name, b in world.sites.items()}
        records = jobs.records_for(cfg, _stores(world), placements=placements) if record else None
        return jobs.run_sample(
            cfg,
            rbds,
            clock=SystemClock(),
            records=records,
            exact=request.exact,
            apps=[app] if app else None,
            placements=placements,
        )

    result = guarded(run)
    fmt = output_of(output, as_json)
    if fmt != "table":
        emit(fmt, views.sample_json(result), str)
        return
    for s in views.sampling_rows(result.samplings):
        if not s["valid"]:
            typer.echo(f"warning: {s['site']}: `{s['command']}`: {s['reason']}", err=True)
    rows = views.reading_rows(result.readings)
    columns = ["app", "image", "site", "health", "lag_seconds", "source", "target_seconds", "reason"]
    if any(r["source"] == "journal-estimate" for r in rows):  # journal mode: the estimate, apart
        columns[5:5] = ["lag_estimate_seconds", "entries_behind", "status_age_seconds"]
    typer.echo(_table(rows, columns))


@rpo_app.command("watch")
def watch_cmd(
    config: ConfigOption = None,
    app: AppOpt = None,
    for_: Annotated[
        float | None,
        typer.Option(
            "--for",
            parser=duration,
            metavar="DURATION",
            help="how long this run watches, e.g. 10m",
            show_default=option_duration(60 * default(RpoWatchRequest, "minutes")),
        ),
    ] = None,
    every: Annotated[
        float,
        typer.Option(
            "--every",
            parser=duration,
            metavar="DURATION",
            help="time between two listings of an image on its secondary (a bare number is seconds)",
            show_default=option_duration(default(RpoWatchRequest, "every_seconds")),
        ),
    ] = default(RpoWatchRequest, "every_seconds"),
    busy_every: Annotated[
        float,
        typer.Option(
            "--busy-every",
            parser=duration,
            metavar="DURATION",
            help="time between two listings while a sync is in progress (its first 30 s)",
            show_default=option_duration(default(RpoWatchRequest, "busy_every_seconds")),
        ),
    ] = default(RpoWatchRequest, "busy_every_seconds"),
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="append the completion points to S3")
    ] = True,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    minutes: Annotated[float | None, typer.Option("--minutes", hidden=True, help="deprecated: --for")] = None,
) -> None:
    """Time each snapshot's completion on the secondary (a listing every --every) for the --for duration."""
    if minutes is None:  # --minutes: the deprecated spelling
        minutes = default(RpoWatchRequest, "minutes") if for_ is None else for_ / 60
    from drkit.adapters.clock import SystemClock
    from drkit.jobs import rpo as jobs
    from drkit.jobs import rpo_watch

    request = guarded(
        lambda: RpoWatchRequest(app=app, minutes=minutes, every_seconds=every, busy_every_seconds=busy_every)
    )

    def run() -> rpo_watch.WatchReport:
        world = _world(config, app)
        cfg, placements = world.config, world.placements()
        rbds = {name: b.rbd for name, b in world.sites.items()}
        records = jobs.records_for(cfg, _stores(world), placements=placements) if record else None
        return rpo_watch.watch(
            cfg, rbds, request, records=records, clock=SystemClock(), placements=placements
        )

    result = guarded(run)
    fmt = output_of(output, as_json)
    if fmt != "table":
        emit(fmt, result.to_json(), str)
        return
    typer.echo(
        _table(
            list(result.images),
            [
                "app",
                "image",
                "site",
                "polls",
                "failures",
                "points_written",
                "newest_point",
                "newest_completed_by",
            ],
        )
    )


@rpo_app.command("report")
def report_cmd(
    config: ConfigOption = None,
    since: Annotated[str, typer.Option("--since", help=describe(RpoReportRequest, "since"))] = default(
        RpoReportRequest, "since"
    ),
    app: AppOpt = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="also write the chart PNG here (one app: this file)")
    ] = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
) -> None:
    """Report p50/p95/p99/max lag and % within target over the window, from the recorded samples."""
    from drkit.adapters.clock import SystemClock
    from drkit.domain.durations import parse_window
    from drkit.jobs import rpo as jobs
    from drkit.jobs import rpo_report as reports
    from drkit.views import rpo as views

    def run() -> reports.RpoReport:
        parse_window(since)  # a bad window is named before any credentials are read
        request = RpoReportRequest(since=since, app=app)
        world = _world(config, app)
        cfg, placements = world.config, world.placements()
        records = jobs.records_for(cfg, _stores(world), placements=placements)
        return reports.report(cfg, records, request, clock=SystemClock(), placements=placements)

    report = guarded(run)
    if chart is not None:
        charts = views.render_charts(report)
        for name, png in charts.items():
            target = chart if len(charts) == 1 else chart.with_name(f"{chart.stem}-{name}{chart.suffix}")
            target.write_bytes(png)
            typer.echo(f"chart of {name}: {target}", err=True)
    emit(output_of(output, as_json), views.report_table(report), lambda: views.report_markdown(report))


if __name__ == "__main__":  # pragma: no cover
    rpo_app()
