"""Flow ``rpo-report``: the RPO actually achieved over a window, daily or on demand."""

from __future__ import annotations

from prefect import flow

from drkit.jobs.requests import RpoReportRequest, default, documented
from tasks import rpo
from tasks.world import world_for_run


@flow(name="rpo-report", log_prints=True)
@documented(RpoReportRequest)
def rpo_report(
    config: str | None = None,
    since: str = default(RpoReportRequest, "since"),
    app: str | None = default(RpoReportRequest, "app"),
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
    request = RpoReportRequest(since=since, app=app)
    world = world_for_run(config)
    report = rpo.build_report(world, request)
    chart_keys = rpo.store_charts(world, report)
    return rpo.publish_report(report, chart_keys)
