"""The monthly ``drill`` runbook and ``drill-cleanup``."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from blocks.config import resolve_config
from drkit.domain.drill import Mode
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.jobs.drill import drill_cleanup, drill_reports, run_drill
from drkit.jobs.requests import DrillCleanupRequest, DrillRequest, default, documented
from drkit.jobs.world import build_world
from tasks.backup import master_key
from tasks.drill import begin_drill, emit_drill_event, plan_drill, publish_report
from tasks.operations import run_step


def _flow_run_url() -> str:
    try:
        from prefect.settings import PREFECT_UI_URL

        run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
        base = PREFECT_UI_URL.value()
        return f"{base}/runs/flow-run/{run_id}" if base else ""
    except Exception:
        return ""


@flow(name="drill")
@documented(DrillRequest)
def drill(
    app: str,
    config: str | None = None,
    mode: Mode = default(DrillRequest, "mode"),
    key_source: str = default(DrillRequest, "key_source"),
) -> dict[str, Any]:
    """Prove the app and its data on the secondary, then return it to a healthy replica.

    1. Gate (Ramen's test-failover): record and sites agree, mirroring healthy, lag under 3 snapshot
       intervals, no other operation, nothing of the app on the secondary. Refused otherwise.
    2. Write a canary on the primary; take a mirror snapshot and wait until the secondary has it.
    3. isolated (default): copy the secondary's latest complete mirror snapshot to a plain scratch
       image (replication goes on); restore the Secret, PV (on the scratch image) and PVC into
       ``<namespace>-drill``; start the app there from the backup; wait until writable.
       promote: restore the Secret, PV and PVC on the secondary; promote its images (forced: the
       primary keeps serving); start the app from the backup; wait until writable.
       Neither touches routing.
    4. Smoke test: status, writable, login, the canary's sha256, an upload and a download.
    5. Cleanup, always. isolated: remove the app, PVC, PV, scratch namespace and scratch image.
       promote: remove the app, PVC and PV (image kept), demote, resync. Both then wait until the
       secondary replays with a fresh snapshot complete and the lag under target.
    6. Publish the report (JSON, Markdown, HTML with the timeline) and emit standby.drill.passed or
       standby.drill.failed. The run fails unless the drill passed.
    """
    request = DrillRequest(app=app, mode=mode, key_source=key_source)
    logger = get_run_logger()
    world = build_world(resolve_config(config))
    prepared = plan_drill(world, app, request.mode)
    journal = begin_drill(world, prepared)
    if journal.status == "refused":
        raise PreconditionFailed(f"drill of {app} refused: {journal.error}", hint="see the drill-plan artifact")
    outcome = run_drill(world, journal, key=master_key(request.key_source), step=run_step,
                        flow_run_url=_flow_run_url())  # fmt: skip
    history = [r for r in drill_reports(world, app) if r.drill_id != outcome.report.drill_id]
    publish_report(outcome, history)
    emit_drill_event(outcome.report, outcome.stored.get("json", ""))
    logger.info("drill %s of %s: %s; report %s", journal.op_id, app,
                "passed" if outcome.report.passed else "FAILED", outcome.stored.get("html", "(not stored)"))  # fmt: skip
    if outcome.store_error:
        raise StandbyError(outcome.store_error, hint="the drill ran; fix the store and see the artifacts")
    if outcome.cleanup_error:
        raise StandbyError(f"drill {journal.op_id}: cleanup did not leave the secondary healthy: {outcome.cleanup_error}",
                           hint=f"run the drill-cleanup deployment (standby drill cleanup --app {app}); the drill"
                           " holds the app until then")  # fmt: skip
    if not outcome.report.passed:
        raise StandbyError(f"drill {journal.op_id} of {app} failed: {outcome.journal.error}",
                           hint="read the drill-report artifact")  # fmt: skip
    return {"drill_id": journal.op_id, "passed": True, "report": outcome.stored,
            "rto_s": outcome.report.rto_promotion_to_writable_s, "rpo_s": outcome.report.rpo_achieved_s}


@flow(name="drill-cleanup")
@documented(DrillCleanupRequest)
def drill_cleanup_flow(
    app: str, config: str | None = None, key_source: str = default(DrillCleanupRequest, "key_source")
) -> dict[str, Any]:
    """Return the secondary to a healthy replica after a drill; safe to run again at any time.

    1. Find the app's last unfinished drill (or start a fresh cleanup).
    2. Remove what the drill created on the secondary (app, PVC, PV; the image is kept), demote,
       resync, and wait until replaying with a fresh snapshot complete and the lag under target.
    """
    request = DrillCleanupRequest(app=app, key_source=key_source)
    world = build_world(resolve_config(config))
    journal = drill_cleanup(world, app, key=master_key(request.key_source))
    return {"drill_id": journal.op_id, "status": journal.status, "steps": {s.name: s.outcome for s in journal.steps}}
