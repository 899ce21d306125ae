"""Flow ``status``: every app's status as one table, every five minutes (the UI's at-a-glance page)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from drkit.jobs.requests import StatusRequest, default, documented
from tasks.status import STATUS_ARTIFACT, publish_status, read_status
from tasks.world import world_for_run


@flow(name="status")
@documented(StatusRequest)
def status(
    config: str | None = None,
    app: str | None = default(StatusRequest, "app"),
    key_source: str = default(StatusRequest, "key_source"),
) -> dict[str, Any]:
    """What `standby status` prints, published as the table artifact `standby-status`.

    1. Load the configuration and the key (which checks the placement records).
    2. Per app: the home site, the placement record's primary, the primary the sites report, each
       site's mirroring, the secondary's lag, the newest complete backup in any site's store and
       its age, the last operation; what could not be read is a warning, not a failure.
    3. Publish one row per app (the warnings in the artifact's description).
    """
    request = StatusRequest(app=app, key_source=key_source)
    world = world_for_run(config, key_source=request.key_source)
    cfg = world.config
    names = [cfg.app(request.app).name] if request.app else [a.name for a in cfg.apps]
    statuses = [read_status(world, name) for name in names]
    publish_status(statuses)
    return {"artifact": STATUS_ARTIFACT, "apps": {st.app: st.as_json() for st in statuses}}
