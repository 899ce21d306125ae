"""Flow ``rpo-sample``: measure the replication lag of every protected app, every few minutes."""

from __future__ import annotations

from typing import Annotated, Literal

from prefect import flow
from pydantic import Field

from tasks import rpo


@flow(name="rpo-sample", log_prints=True)
def rpo_sample(
    config: Annotated[
        str | None,
        Field(description="Standby configuration file; $STANDBY_CONFIG or ./standby.yaml when empty"),
    ] = None,
    app: Annotated[str | None, Field(description="only this app; every app when empty")] = None,
    exact: Annotated[
        Literal["auto", "always", "never"],
        Field(description="exact mode (rbd snap ls): when a breach is suspected, always, or never"),
    ] = "auto",
    compact: Annotated[bool, Field(description="compact yesterday's parquet parts into one")] = True,
) -> dict[str, object]:
    """Sample the mirror status of both sites and record each app's lag.

    1. Load the configuration (sites, apps and their RPO targets).
    2. Sample each site: ONE `rbd mirror pool status --verbose` per pool; a failed site is marked
       invalid with its reason, and the run fails only when no site answers.
    3. Measure each app's lag (its oldest image); exact mode (snap ls on both sites) when a breach
       is suspected, the status cannot give a figure, or `exact="always"`.
    4. Append the samples to today's parquet partition of each site; compact yesterday's.
    5. Evaluate breaches with hysteresis and emit `standby.rpo.breach` / `standby.rpo.recovered`
       once per crossing, and `standby.mirror.unhealthy` for down, error or split-brain images.
    """
    cfg = rpo.load_standby_config(config)
    samplings = rpo.sample_sites(cfg)
    readings = rpo.measure_apps(cfg, samplings, exact, app)
    keys = rpo.record_samples(cfg, samplings, readings)
    if compact:
        rpo.compact_yesterday(cfg)
    events = rpo.evaluate_breaches(cfg, readings)
    rpo.emit_rpo_events(events)
    return {
        "apps": {r.app: r.lag.lag_seconds for r in readings},
        "invalid_sites": [s.site for s in samplings if not s.valid],
        "events": [e.event for e in events],
        "keys": keys,
    }
