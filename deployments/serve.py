"""`make up`: serve every Standby deployment from one process against the local Prefect server.

The schedules match ``deployments/prefect.yaml``; ``serve`` needs no work pool or worker. The
``relocate``, ``failover`` and ``failback`` deployments have no schedule: they are started from
the UI and pause for a typed approval. On SIGTERM the deployments stay active
(``pause_on_shutdown=False``), so the UI keeps its schedules. Before serving, the
``standby-rpo-breach`` automation is (re)created (see :func:`install_breach_automation`).
"""

from __future__ import annotations

import os

from prefect import serve
from prefect.automations import Automation
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments.runner import RunnerDeployment

from flows.automations import ensure_drill_automations, ensure_rpo_breach_automation, rpo_breach_notice
from flows.backup import backup
from flows.drill import drill, drill_cleanup_flow
from flows.operations import failback, failover, relocate
from flows.restore import restore
from flows.rpo_report import rpo_report
from flows.rpo_sample import rpo_sample
from flows.rpo_watch import rpo_watch
from flows.verify_backup import verify_backup

CONFIG = os.environ.get("STANDBY_CONFIG", "standby.yaml")
KEY = "secret:standby-backup-key"
TZ = os.environ.get("STANDBY_TIMEZONE", "UTC")
OPERATION_TAGS = ["standby", "dr", "operation"]
"""Tags of the on-demand DR operations (``relocate``, ``failover``, ``failback``)."""
DRILL_TAGS = ["standby", "dr", "drill"]


def deployments() -> list[RunnerDeployment]:
    """Every Standby deployment, as ``deployments/prefect.yaml`` declares them."""
    return [
        backup.to_deployment(
            name="nightly",
            parameters={"app": "nexus", "config": CONFIG, "key_source": KEY},
            schedules=[CronSchedule(cron="30 1 * * *", timezone=TZ)],
            concurrency_limit=1,
        ),
        verify_backup.to_deployment(
            name="verify",
            parameters={"app": "nexus", "config": CONFIG, "key_source": KEY},
            schedules=[CronSchedule(cron="30 3 * * *", timezone=TZ)],
        ),
        rpo_sample.to_deployment(
            name="sampler",
            parameters={"config": CONFIG},
            schedules=[IntervalSchedule(interval=300)],
            concurrency_limit=1,
        ),
        rpo_watch.to_deployment(
            name="watcher",
            parameters={"config": CONFIG, "minutes": 10.5},
            schedules=[IntervalSchedule(interval=600)],
            concurrency_limit=2,
        ),
        rpo_report.to_deployment(
            name="daily",
            parameters={"config": CONFIG, "since": "24h"},
            schedules=[CronSchedule(cron="0 6 * * *", timezone=TZ)],
        ),
        restore.to_deployment(
            name="on-demand",
            parameters={
                "app": "nexus",
                "config": CONFIG,
                "target_site": "site-b",
                "dry_run": True,
                "key_source": KEY,
            },
        ),
        rpo_breach_notice.to_deployment(name="log"),
        # DR operations: on demand only, one at a time; each publishes its plan and waits for the
        # typed approval before changing anything (dry_run false: the approval gate protects).
        relocate.to_deployment(
            name="relocate",
            description="Planned move of the app to its other site (no data loss), after a typed approval.",
            tags=OPERATION_TAGS,
            parameters={
                "app": "nexus",
                "to": "site-b",
                "config": CONFIG,
                "dry_run": False,
                "key_source": KEY,
            },
            concurrency_limit=1,
        ),
        failover.to_deployment(
            name="failover",
            description="Disaster move to the other site (unsynced writes lost), after a typed approval.",
            tags=OPERATION_TAGS,
            parameters={
                "app": "nexus",
                "to": "site-b",
                "config": CONFIG,
                "dry_run": False,
                "key_source": KEY,
            },
            concurrency_limit=1,
        ),
        failback.to_deployment(
            name="failback",
            description="Bring the app home after a failover (resync, relocate), after a typed approval.",
            tags=OPERATION_TAGS,
            parameters={"app": "nexus", "config": CONFIG, "dry_run": False, "key_source": KEY},
            concurrency_limit=1,
        ),
        # The monthly drill needs no approval: it never touches production routing or data.
        drill.to_deployment(
            name="monthly",
            description="Monthly DR drill: prove Nexus and its data on the secondary, then clean up.",
            tags=DRILL_TAGS,
            parameters={"app": "nexus", "config": CONFIG, "mode": "isolated", "key_source": KEY},
            schedules=[CronSchedule(cron="0 3 1 * *", timezone=TZ)],
            concurrency_limit=1,
        ),
        drill_cleanup_flow.to_deployment(
            name="drill-cleanup",
            description="Return the secondary to a healthy replica after a drill; safe to run again.",
            tags=DRILL_TAGS,
            parameters={"app": "nexus", "config": CONFIG, "key_source": KEY},
            concurrency_limit=1,
        ),
    ]


def install_breach_automation(notice: RunnerDeployment) -> Automation:
    """(Re)create the ``standby-rpo-breach`` automation.

    It notifies through the Prefect notification block named by ``$STANDBY_NOTIFICATION_BLOCK``
    (e.g. ``slack-webhook/dr-oncall``); without one it runs ``notice`` (the ``rpo-breach-notice``
    deployment, registered here first because the automation needs its id), which writes one
    WARNING line per breach.
    """
    block = os.environ.get("STANDBY_NOTIFICATION_BLOCK") or None
    if block is None:
        notice.apply()
    return ensure_rpo_breach_automation(
        notification_block=block, notice_deployment=None if block else f"rpo-breach-notice/{notice.name}"
    )


def main() -> None:
    """Register the deployments, install the RPO breach automation, and serve the runs here."""
    items = deployments()
    automation = install_breach_automation(next(d for d in items if d.name == "log"))
    print(f"automation {automation.name}: {type(automation.actions[0]).__name__}", flush=True)
    for made in ensure_drill_automations(os.environ.get("STANDBY_NOTIFICATION_BLOCK") or None):
        print(f"automation {made.name}: {type(made.actions[0]).__name__}", flush=True)
    serve(*items, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
