"""Flow ``rpo-watch``: time the secondary's completion of every mirror snapshot, within one poll."""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from tasks import rpo


@flow(name="rpo-watch", log_prints=True)
def rpo_watch(
    config: Annotated[
        str | None,
        Field(description="Standby configuration file; $STANDBY_CONFIG or ./standby.yaml when empty"),
    ] = None,
    app: Annotated[str | None, Field(description="only this app; every app when empty")] = None,
    minutes: Annotated[float, Field(gt=0, le=24 * 60, description="how long this run watches")] = 10.0,
    every_seconds: Annotated[
        float, Field(ge=0.2, le=60, description="seconds between two listings of an image on its secondary")
    ] = 1.0,
    busy_every_seconds: Annotated[
        float, Field(ge=0.1, le=60, description="the same while a sync is in progress (its first 30 s)")
    ] = 0.25,
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
    cfg = rpo.load_standby_config(config)
    return rpo.watch_completions(cfg, minutes, every_seconds, busy_every_seconds, app)
