"""``standby rpo``: RPO commands.

``standby rpo parse`` reads ``rbd mirror image status --format json`` or
``rbd mirror pool status --verbose --format json`` on stdin and prints one JSON object on stdout:

    {"images": [{"image": "...", "health": "ok", "lag_seconds": 12.0, "reason": "...",
                 "source": "status", "state": "up+replaying", "role": "secondary"}]}

``lag_seconds`` is ``null`` when the lag is unknown. Unparseable input ends with one line on stderr
and exit status 2.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from drkit.config import load_config
from drkit.domain.errors import ConfigError, ParseError
from drkit.domain.rbd_readers import zone
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER, parse_status
from drkit.domain.rpo import image_lag
from drkit.jobs.requests import RpoReportRequest, RpoSampleRequest, RpoWatchRequest, default, describe
from standby.common import ConfigOption, fail, guarded

T = TypeVar("T")

rpo_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Replication lag (RPO) of mirrored images."
)


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
        images.append(
            {
                "image": lag.image,
                "health": lag.health,
                "lag_seconds": lag.lag_seconds,
                "reason": lag.reason,
                "source": lag.source,
                "state": lag.raw_state,
                "role": lag.role,
            }
        )
    return {"images": images}


@rpo_app.command("parse")
def parse_cmd(
    now: Annotated[
        float | None, typer.Option("--now", help="evaluate at this UNIX time [default: the current time]")
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", help="IANA zone rbd printed last_update in (the Ceph host's zone)")
    ] = "UTC",
    site: Annotated[str, typer.Option("--site", help="name of the site the status was read on")] = "",
    pool: Annotated[str, typer.Option("--pool", help="pool name, for the record")] = "",
    stale_after: Annotated[
        float,
        typer.Option("--stale-after", help="seconds after which a status is stale"),
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


AppOpt = Annotated[str | None, typer.Option("--app", help="only this app [default: every app]")]


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
        str, typer.Option("--exact", help=describe(RpoSampleRequest, "exact"))
    ] = default(RpoSampleRequest, "exact"),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    record: Annotated[
        bool, typer.Option("--record", help="also append to S3 and update the breach state (no events)")
    ] = False,
) -> None:
    """Sample both sites once and print each app image's lag (one pool-status call per site)."""
    from drkit.adapters.clock import SystemClock
    from drkit.jobs import rpo as jobs
    from drkit.jobs.sites import rbd_for, store_for
    from drkit.jobs.world import load_placed_config
    from drkit.views import rpo as views

    if exact not in ("auto", "always", "never"):
        raise fail(
            f"error: --exact must be auto, always or never, not {exact!r} (next: leave it out for auto)", 2
        )
    request = guarded(lambda: RpoSampleRequest(app=app, exact=exact))  # type: ignore[arg-type]

    def run() -> jobs.SampleRun:
        cfg = load_placed_config(config)
        if app:
            cfg.app(app)  # an unknown app is a ConfigError naming the known ones
        rbds = {s.name: rbd_for(s) for s in cfg.sites}
        records = jobs.records_for(cfg, {s.name: store_for(s) for s in cfg.sites}) if record else None
        return jobs.run_sample(
            cfg, rbds, clock=SystemClock(), records=records, exact=request.exact, apps=[app] if app else None
        )

    result = guarded(run)
    if as_json:
        typer.echo(json.dumps(views.sample_json(result)))
        return
    for s in views.sampling_rows(result.samplings):
        if not s["valid"]:
            typer.echo(f"warning: {s['site']}: `{s['command']}`: {s['reason']}", err=True)
    rows = views.reading_rows(result.readings)
    typer.echo(
        _table(rows, ["app", "image", "site", "health", "lag_seconds", "source", "target_seconds", "reason"])
    )


@rpo_app.command("watch")
def watch_cmd(
    config: ConfigOption = None,
    app: AppOpt = None,
    minutes: Annotated[
        float, typer.Option("--minutes", help=describe(RpoWatchRequest, "minutes"))
    ] = default(RpoWatchRequest, "minutes"),
    every: Annotated[
        float, typer.Option("--every", help=describe(RpoWatchRequest, "every_seconds"))
    ] = default(RpoWatchRequest, "every_seconds"),
    busy_every: Annotated[
        float, typer.Option("--busy-every", help=describe(RpoWatchRequest, "busy_every_seconds"))
    ] = default(RpoWatchRequest, "busy_every_seconds"),
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="append the completion points to S3")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Time each snapshot's completion on the secondary (snap ls every --every s) for --minutes."""
    from drkit.adapters.clock import SystemClock
    from drkit.jobs import rpo as jobs
    from drkit.jobs import rpo_watch
    from drkit.jobs.sites import rbd_for, store_for
    from drkit.jobs.world import load_placed_config

    request = guarded(
        lambda: RpoWatchRequest(app=app, minutes=minutes, every_seconds=every, busy_every_seconds=busy_every)
    )

    def run() -> rpo_watch.WatchReport:
        if app:
            load_config(config).app(app)  # an unknown app is named before any credentials are read
        cfg = load_placed_config(config)
        rbds = {s.name: rbd_for(s) for s in cfg.sites}
        records = jobs.records_for(cfg, {s.name: store_for(s) for s in cfg.sites}) if record else None
        return rpo_watch.watch(cfg, rbds, request, records=records, clock=SystemClock())

    result = guarded(run)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
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
    since: Annotated[
        str, typer.Option("--since", help=describe(RpoReportRequest, "since"))
    ] = default(RpoReportRequest, "since"),
    app: AppOpt = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="also write the chart PNG here (one app: this file)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the table as JSON")] = False,
) -> None:
    """Report p50/p95/p99/max lag and % within target over the window, from the recorded samples."""
    from drkit.adapters.clock import SystemClock
    from drkit.domain.durations import parse_window
    from drkit.jobs import rpo as jobs
    from drkit.jobs import rpo_report as reports
    from drkit.jobs.sites import store_for
    from drkit.jobs.world import load_placed_config
    from drkit.views import rpo as views

    def run() -> reports.RpoReport:
        parse_window(since)  # a bad window is named before any credentials are read
        request = RpoReportRequest(since=since, app=app)
        if app:
            load_config(config).app(app)  # an unknown app is named before any credentials are read
        cfg = load_placed_config(config)
        records = jobs.records_for(cfg, {s.name: store_for(s) for s in cfg.sites})
        return reports.report(cfg, records, request, clock=SystemClock())

    report = guarded(run)
    if chart is not None:
        charts = views.render_charts(report)
        for name, png in charts.items():
            target = (
                chart if len(charts) == 1 else chart.with_name(f"{chart.stem}-{name}{chart.suffix}")
            )
            target.write_bytes(png)
            typer.echo(f"chart of {name}: {target}", err=True)
    typer.echo(json.dumps(views.report_table(report)) if as_json else views.report_markdown(report))


if __name__ == "__main__":  # pragma: no cover
    rpo_app()
