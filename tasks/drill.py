"""Prefect tasks of the drill: plan, start, report artifacts and events; the flow's drill hooks.

* ``drill-plan-<app>`` (markdown), ``drill-report-<app>`` (markdown), ``drill-history-<app>``
  (table of earlier drills), ``drill-timeline-<app>`` (image: the per-step chart as a data URL).
* Events ``standby.drill.passed`` and ``standby.drill.failed`` about ``standby.app.<app>``, with the
  drill id, the verdict's reason and the report's key in the payload (never a secret).
* :class:`FlowDrillHooks`: the flow's side of :func:`drkit.jobs.drill_runbook.run_drill_runbook`.
"""

from __future__ import annotations

import base64

from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from drkit.domain import crypto
from drkit.domain.drill import DrillReport, Mode
from drkit.domain.operations import Approval, Journal, Plan
from drkit.jobs.drill import DrillOutcome, prepare_drill, start_drill
from drkit.jobs.drill_report import drill_reports
from drkit.jobs.drill_runbook import DrillHooks
from drkit.jobs.operations import Changed, Executor, Prepared
from drkit.jobs.world import World
from drkit.views.drill_chart import timeline_png
from drkit.views.drill_report import history_rows, report_markdown
from drkit.views.operations import plan_markdown
from tasks.events import DRILL_FAILED_EVENT, DRILL_PASSED_EVENT, app_resource
from tasks.operations import FlowHooks, run_step
from tasks.retrying import retry_transient


@task(
    name="plan-drill",
    retries=2,
    retry_delay_seconds=[2.0, 10.0],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def plan_drill(world: World, app: str, mode: Mode, key: crypto.MasterKey | None = None) -> Prepared:
    """Observe both sites and make the drill's plan (the backup key tried); publish it as ``drill-plan-<app>``."""
    prepared = prepare_drill(world, app, mode, key=key)
    create_markdown_artifact(
        markdown=plan_markdown(prepared.plan), key=f"drill-plan-{app}", description=f"drill plan of {app}"
    )
    return prepared


@task(
    name="start-drill",
    retries=2,
    retry_delay_seconds=[2.0, 10.0],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def begin_drill(
    world: World, prepared: Prepared, approval: Approval | None = None, typed_app: str = ""
) -> Journal:
    """Take the app and write the journal (a refused plan is journaled as refused); a promote-mode
    drill needs its typed approval (see :func:`drkit.jobs.drill.start_drill`)."""
    return start_drill(world, prepared, approval, typed_app)


def emit_drill_event(report: DrillReport, report_key: str) -> None:
    """``standby.drill.passed`` or ``standby.drill.failed`` about ``standby.app.<app>``."""
    failed = [c.name for c in report.checks if not c.ok]
    reason = report.refused or (
        f"failed step {report.failed_step}" if report.failed_step else "; ".join(failed)
    )
    emit_event(
        event=DRILL_PASSED_EVENT if report.passed else DRILL_FAILED_EVENT,
        resource=app_resource(report.app, report.secondary),
        payload={
            "drill_id": report.drill_id,
            "mode": report.mode,
            "reason": reason or "passed",
            "rto_s": report.rto_promotion_to_writable_s,
            "rpo_s": report.rpo_achieved_s,
            "report": report_key,
        },
    )


def publish_report(outcome: DrillOutcome, history: list[DrillReport]) -> None:
    """The report, history and timeline artifacts of a finished drill."""
    report = outcome.report
    app = report.app
    create_markdown_artifact(
        markdown=report_markdown(report, history),
        key=f"drill-report-{app}",
        description=f"drill {report.drill_id}: {'passed' if report.passed else 'FAILED'}",
    )
    create_table_artifact(
        table=history_rows([*history, report]),
        key=f"drill-history-{app}",
        description=f"drills of {app}, newest last",
    )
    png = base64.b64encode(timeline_png(report)).decode()
    create_image_artifact(
        image_url=f"data:image/png;base64,{png}",
        key=f"drill-timeline-{app}",
        description=f"per-step timeline of drill {report.drill_id}",
    )


class FlowDrillHooks(DrillHooks):
    """The flow's side of :func:`~drkit.jobs.drill_runbook.run_drill_runbook`: the plan and the start
    as tasks (the plan published as ``drill-plan-<app>``), the approval form's pause, one task per
    step, then the report's artifacts and event, and the run's log."""

    refusal_hint = "see the drill-plan artifact"

    def __init__(self, world: World, approval_timeout: int, flow_run_url: str = "") -> None:
        self.world = world
        self.approver = FlowHooks(world, approval_timeout)  # the operations' approval form
        self.flow_run_url = flow_run_url

    def plan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        """The ``plan-drill`` task (publishes ``drill-plan-<app>``)."""
        return plan_drill(world, app, mode, key)

    def replan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        """The ``plan-drill`` task again, after the approval (the artifact shows the newest plan)."""
        return plan_drill(world, app, mode, key)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """Pause for the typed approval form, as a failover's."""
        return self.approver.consent(plan, changed)

    def take(self, world: World, prepared: Prepared, approval: Approval | None, typed_app: str) -> Journal:
        """The ``start-drill`` task."""
        return begin_drill(world, prepared, approval, typed_app)

    def approved(self, journal: Journal, approval: Approval) -> None:
        """Log who approved it and why."""
        get_run_logger().info(
            "promote-mode drill of %s approved by %s: %s", journal.app, approval.approver, approval.reason
        )

    def step(self, executor: Executor, name: str) -> object:
        """One ``operation-step`` task (its event and log line)."""
        return run_step(executor, name)

    def finished(self, outcome: DrillOutcome) -> None:
        """Publish the report, history and timeline artifacts, emit the drill's event, log the verdict."""
        report = outcome.report
        history = [r for r in drill_reports(self.world, report.app) if r.drill_id != report.drill_id]
        publish_report(outcome, history)
        emit_drill_event(report, outcome.stored.get("json", ""))
        get_run_logger().info(
            "drill %s of %s: %s; report %s",
            report.drill_id,
            report.app,
            "passed" if report.passed else "FAILED",
            outcome.stored.get("html", "(not stored)"),
        )
