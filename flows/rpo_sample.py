"""Flow ``rpo-sample``: measure the replication lag of every protected app, every few minutes."""

from __future__ import annotations

from prefect import flow

from drkit.jobs.requests import ExactMode, RpoSampleRequest, default, documented
from tasks import rpo
from tasks.world import world_for_run


@flow(name="rpo-sample", log_prints=True)
@documented(RpoSampleRequest)
def rpo_sample(
    config: str | None = None,
    app: str | None = default(RpoSampleRequest, "app"),
    exact: ExactMode = default(RpoSampleRequest, "exact"),
    compact: bool = default(RpoSampleRequest, "compact"),
) -> dict[str, object]:
    """Sample the mirror status of both sites and record each app's lag.

    1. Load the configuration (sites, apps and their RPO targets) once, and each app's placement:
       the lag is the current secondary's, measured from the current primary.
    2. Sample each site: ONE `rbd mirror pool status --verbose` per pool; a failed site is marked
       invalid with its reason, and the run fails only when no site answers.
    3. Measure each app's lag (its oldest image); exact mode (snap ls on both sites) when a breach
       is suspected, the status cannot give a figure, or `exact="always"`. A journal-mode image's
       lag is an ESTIMATE (status age + entries behind / replay rate), kept apart from the measures.
    4. Append the samples to today's parquet partition of each site; compact yesterday's.
    5. Evaluate breaches with hysteresis and emit `standby.rpo.breach` / `standby.rpo.recovered`
       once per crossing (the estimate counts against the target, and `rpo_max_entries_behind`
       bounds a journal-mode image's backlog; such a breach says "estimated"), and
       `standby.mirror.unhealthy` for down, error or split-brain images.
    """
    request = RpoSampleRequest(app=app, exact=exact, compact=compact)
    world = world_for_run(config)
    samplings = rpo.sample_sites(world)
    readings = rpo.measure_apps(world, samplings, request.exact, request.app)
    keys = rpo.record_samples(world, samplings, readings)
    if request.compact:
        rpo.compact_yesterday(world)
    events = rpo.evaluate_breaches(world, readings)
    rpo.emit_rpo_events(events)
    return {
        "apps": {r.app: r.lag.lag_seconds for r in readings},
        "estimated": {r.app: r.lag.lag_estimate_seconds for r in readings if r.lag.lag_estimate is not None},
        "invalid_sites": [s.site for s in samplings if not s.valid],
        "events": [e.event for e in events],
        "keys": keys,
    }
