"""Flow ``rpo-report``: the RPO actually achieved over a window, daily or on demand."""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from tasks import rpo


@flow(name="rpo-report", log_prints=True)
def rpo_report(
    config: Annotated[
        str | None,
        Field(description="Standby configuration file; $STANDBY_CONFIG or ./standby.yaml when empty"),
    ] = None,
    since: Annotated[str, Field(description="window to report, ending now: e.g. 1h, 24h, 7d")] = "24h",
    app: Annotated[str | None, Field(description="only this app; every app when empty")] = None,
) -> str:
    """Report the measured lag over the last `since` (e.g. 24h, 7d).

    1. Load the configuration.
    2. Read the recorded samples of the window back from each site's parquet partitions.
    3. Per app and image: p50, p95, p99 and max lag, % of time within target and the worst
       intervals, from the sawtooth rebuilt from synced points (labelled by source).
    4. Render the lag-over-time chart with the target line; store it in S3 and show it as an
       image artifact (`rpo-report-chart-<app>`).
    5. Publish the table (`rpo-report-table`) and markdown (`rpo-report`) artifacts.
    """
    cfg = rpo.load_standby_config(config)
    report = rpo.build_report(cfg, since, app)
    chart_keys = rpo.store_charts(cfg, report)
    return rpo.publish_report(report, chart_keys)
