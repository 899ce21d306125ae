"""Flow ``rpo-sample``: measure the replication lag of every protected app, every few minutes."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from tasks import rpo


@flow(name="rpo-sample", log_prints=True)
def rpo_sample(
    config_path: str | None = None,
    app: str | None = None,
    exact: Literal["auto", "always", "never"] = "auto",
    compact: bool = True,
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
    config = rpo.load_standby_config(config_path)
    samplings = rpo.sample_sites(config)
    readings = rpo.measure_apps(config, samplings, exact, app)
    keys = rpo.record_samples(config, samplings, readings)
    if compact:
        rpo.compact_yesterday(config)
    events = rpo.evaluate_breaches(config, readings)
    rpo.emit_rpo_events(events)
    return {
        "apps": {r.app: r.lag.lag_seconds for r in readings},
        "invalid_sites": [s.site for s in samplings if not s.valid],
        "events": [e.event for e in events],
        "keys": keys,
    }
