"""Prefect tasks of the RPO flows: thin wrappers over :mod:`drkit.jobs.rpo` and :mod:`drkit.jobs.rpo_report`.

Retries happen only for :class:`~drkit.domain.errors.TransientError` (``retry_condition_fn``):
a sampler whose every site timed out is retried, a malformed configuration is not. Artifacts use
stable lowercase-dashed keys: ``rpo-current-lag``, ``rpo-sample-sites``, ``rpo-report-table``,
``rpo-report``, ``rpo-report-chart-<app>``, ``rpo-watch``.

The tasks take the run's :class:`~drkit.jobs.world.World` (built once by the flow with
:func:`tasks.world.world_for_run`): its sites' ``rbd`` and stores, built once, and each app's
placement, read once: the lag is measured from the current primary to the current secondary, and
the samples and charts go to the current secondary's store.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from drkit.adapters.clock import SystemClock
from drkit.adapters.rbd import RbdMirror
from drkit.jobs import rpo as jobs
from drkit.jobs import rpo_report as reports
from drkit.jobs import rpo_watch as watch_jobs
from drkit.jobs.requests import ExactMode, RpoReportRequest, RpoWatchRequest
from drkit.jobs.world import World
from drkit.views import rpo as views
from tasks.events import Event, rpo_event
from tasks.retrying import retry_transient

CLOCK = SystemClock()
"""The tasks' clock (the engine reads time only through the one it is given)."""


def _records(world: World) -> jobs.RpoRecords:
    stores = {name: b.store for name, b in world.sites.items()}
    return jobs.records_for(world.config, stores, placements=world.placements())


def _rbds(world: World) -> dict[str, RbdMirror]:
    return {name: b.rbd for name, b in world.sites.items()}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def sample_sites(world: World) -> tuple[jobs.SiteSampling, ...]:
    """One ``rbd mirror pool status --verbose`` per site; fails only when no site answers."""
    samplings = jobs.sample_sites(_rbds(world), world.config, clock=CLOCK)
    logger = get_run_logger()
    for s in samplings:
        if not s.valid:
            logger.warning("sample of %s invalid: `%s`: %s", s.site, s.command, s.error)
    create_table_artifact(
        table=views.sampling_rows(samplings),
        key="rpo-sample-sites",
        description="One pool-status call per site: valid or not, and why",
    )
    return samplings


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def measure_apps(
    world: World, samplings: tuple[jobs.SiteSampling, ...], exact: ExactMode, app: str | None
) -> tuple[jobs.AppReading, ...]:
    """Per-app lag of the current secondary; exact mode (snap ls on both sites) for the images that need it."""
    config = world.config
    known = jobs.known_points(_records(world), [a.name for a in config.apps if not app or a.name == app])
    readings = jobs.measure_apps(
        config,
        samplings,
        clock=CLOCK,
        rbds=_rbds(world),
        exact=exact,
        apps=[app] if app else None,
        known=known,
        placements=world.placements(),
    )
    create_table_artifact(
        table=views.reading_rows(readings),
        key="rpo-current-lag",
        description="Lag of each app image now, with its source (status, exact; journal-estimate: an"
        " estimate, in lag_estimate_seconds)",
    )
    return readings


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def record_samples(
    world: World, samplings: tuple[jobs.SiteSampling, ...], readings: tuple[jobs.AppReading, ...]
) -> list[str]:
    """Append this run's rows to each site's parquet partition of today."""
    return jobs.record(_records(world), samplings, readings, CLOCK.now())


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def compact_yesterday(world: World) -> list[str]:
    """Merge the parts of yesterday's partition of each site (no-op when already compacted)."""
    records = _records(world)
    day = (CLOCK.now() - timedelta(days=1)).date()
    return [k for site in records.stores if (k := records.compact(site, day))]


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def evaluate_breaches(world: World, readings: tuple[jobs.AppReading, ...]) -> list[Event]:
    """Breach hysteresis against the saved memory; returns the events to emit (once per crossing)."""
    return [rpo_event(a) for a in jobs.evaluate_and_remember(_records(world), readings)]


@task(cache_policy=NO_CACHE)
def emit_rpo_events(events: list[Event]) -> int:
    """Emit the events to Prefect; each one is also a log line (the fallback notification)."""
    logger = get_run_logger()
    for e in events:
        logger.warning("%s %s: %s", e.event, e.resource.get("prefect.resource.name"), e.payload.get("reason"))
        emit_event(event=e.event, resource=dict(e.resource), payload=dict(e.payload))
    return len(events)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def build_report(world: World, request: RpoReportRequest) -> reports.RpoReport:
    """Read the window back and compute the figures per app and image."""
    return reports.report(world.config, _records(world), request, clock=CLOCK, placements=world.placements())


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def store_charts(world: World, report: reports.RpoReport) -> dict[str, str]:
    """Render each app's lag chart (PNG), store it under the report keys; app -> S3 key."""
    charts = views.render_charts(report)
    stores = {name: b.store for name, b in world.sites.items()}
    keys = reports.store_charts(world.config, stores, report, charts, placements=world.placements())
    for app_name, key in keys.items():
        png = charts[app_name]
        # The lab's S3 is not browser-reachable: the artifact embeds the PNG as a data URL.
        create_image_artifact(
            image_url="data:image/png;base64," + base64.b64encode(png).decode(),
            key=f"rpo-report-chart-{app_name}",
            description=f"Lag of {app_name} over the window; stored at {key}",
        )
    return keys


@task(cache_policy=NO_CACHE)
def publish_report(report: reports.RpoReport, chart_keys: dict[str, str]) -> str:
    """Table and markdown artifacts of the report."""
    create_table_artifact(
        table=views.report_table(report),
        key="rpo-report-table",
        description="p50/p95/p99/max lag, % within target, per app and image",
    )
    markdown = views.report_markdown(report, chart_keys)
    create_markdown_artifact(markdown=markdown, key="rpo-report", description="RPO report")
    return markdown


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def watch_completions(world: World, request: RpoWatchRequest) -> dict[str, Any]:
    """List each protected image's snapshots on its secondary every ``every_seconds`` for ``minutes``.

    New completion points are appended to the secondary's parquet partition every minute and at the
    end (see :mod:`drkit.jobs.rpo_watch`).
    """
    logger = get_run_logger()

    def progress(watches: Any) -> None:
        for w in watches:
            logger.info(
                "%s: %d polls, %d failures, %d points written", w.label, w.polls, w.failures, w.written
            )

    report = watch_jobs.watch(
        world.config,
        _rbds(world),
        request,
        records=_records(world),
        clock=CLOCK,
        on_flush=progress,
        placements=world.placements(),
    )
    if report.slow_rounds:
        logger.warning(
            "%d rounds took longer than %ss: images are listed less often than asked",
            report.slow_rounds,
            request.every_seconds,
        )
    for image in report.images:
        if image["failures"]:
            logger.warning(
                "%s/%s: %s listings failed; last: %s",
                image["site"],
                image["image"],
                image["failures"],
                image["last_error"],
            )
    create_table_artifact(
        table=list(report.images),
        key="rpo-watch",
        description="Completion watcher: polls, failures and points per image",
    )
    return report.to_json()
