"""Flow ``rpo-watch``: time the secondary's completion of every mirror snapshot, within one poll."""

from __future__ import annotations

from prefect import flow

from drkit.jobs.requests import BusyPollSeconds, Minutes, PollSeconds, RpoWatchRequest, default, documented
from tasks import rpo
from tasks.world import world_for_run


@flow(name="rpo-watch", log_prints=True)
@documented(RpoWatchRequest)
def rpo_watch(
    config: str | None = None,
    app: str | None = default(RpoWatchRequest, "app"),
    minutes: Minutes = default(RpoWatchRequest, "minutes"),
    every_seconds: PollSeconds = default(RpoWatchRequest, "every_seconds"),
    busy_every_seconds: BusyPollSeconds = default(RpoWatchRequest, "busy_every_seconds"),
) -> dict[str, object]:
    """Watch the secondary complete each mirror snapshot, so the RPO report is exact within a poll.

    The secondary keeps only its newest complete snapshot, so `rpo-sample` (every few minutes)
    cannot see most consistency points; this flow can. Scheduled as overlapping runs (10.5 minutes
    every 10 minutes), it watches continuously; overlapping points merge (the tighter bound wins).

    1. Load the configuration (sites, apps, their images).
    2. For `minutes`, list each image's snapshots on its secondary every `every_seconds`
       (`rbd snap ls --all`; every `busy_every_seconds` while a sync is in progress); list the
       primary only when a new snapshot appears.
    3. Every minute, and at the end, append the new completion points to the secondary's parquet
       partition, where `rpo-report` reads them. Failed listings are counted; the run fails when
       an image still cannot be listed at its end, or when points could not be written.
    """
    request = RpoWatchRequest(
        app=app, minutes=minutes, every_seconds=every_seconds, busy_every_seconds=busy_every_seconds
    )
    world = world_for_run(config)
    return rpo.watch_completions(world, request)
