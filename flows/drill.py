"""The monthly ``drill`` runbook (one app, or every configured app, one drill each) and ``drill-cleanup``."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.context import get_run_context
from prefect.states import State

from blocks.config import resolve_config
from drkit.domain.drill import Mode, canary_check
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.drill_runbook import run_drill_runbook
from drkit.jobs.drivers import drill_without_canary
from drkit.jobs.requests import DrillAppsRequest, DrillCleanupRequest, DrillRequest, default, documented
from tasks.backup import master_key
from tasks.drill import FlowDrillHooks
from tasks.fanout import app_runner, every_app
from tasks.world import world_for_run


def _flow_run_url() -> str:
    try:
        from prefect.settings import PREFECT_UI_URL

        run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
        base = PREFECT_UI_URL.value()
        return f"{base}/runs/flow-run/{run_id}" if base else ""
    except Exception:
        return ""


DRILL_FANOUT = 1
"""Apps drilled at once when every app is: one. A drill copies or promotes images on the secondary
and probes the primary on every poll; one at a time, each drill's RTO and RPO figures are its own
and the secondary carries one drill's load. A monthly job has the time."""


@flow(name="drill", task_runner=app_runner(DRILL_FANOUT))
@documented(DrillAppsRequest)
def drill(
    app: str | None = default(DrillAppsRequest, "app"),
    config: str | None = None,
    mode: Mode = default(DrillAppsRequest, "mode"),
    key_source: str = default(DrillAppsRequest, "key_source"),
    approval_timeout: int = default(DrillAppsRequest, "approval_timeout"),
) -> dict[str, Any]:
    """Prove the app and its data on the secondary, then return it to a healthy replica.

    0. No app given: one ``drill`` run per app of the configuration (the steps below), one at a
       time; an app whose checks cannot carry the canary is skipped with the gate's reason (it is
       not a failure); an app's failure never stops another's. Publish ``drill-apps`` (each app
       passed, failed or skipped, and why) and fail naming the failed apps.
    1. Gate (Ramen's test-failover): record and sites agree, mirroring healthy, lag under 3 snapshot
       intervals, no other operation, nothing of the app on the secondary. Refused otherwise.
       promote mode only: pause for the typed approval, as a failover (app name, approver, reason),
       then observe again (a plan that changed is approved again). The isolated drill asks none.
       A promote-mode drill of every app at once is refused: each promote is approved on its own.
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
    request = DrillAppsRequest(app=app, mode=mode, key_source=key_source, approval_timeout=approval_timeout)
    if request.app is None:
        if request.mode == "promote":
            raise PreconditionFailed(
                "a promote-mode drill of every app is refused: each forced promote needs its own"
                " typed approval; nothing was changed",
                hint="give app=NAME (one promote-mode drill per run), or use mode isolated",
            )
        return _every_app(config, request)
    return _drill(config, request.one(request.app))


def _every_app(config: str | None, request: DrillAppsRequest) -> dict[str, Any]:
    """Step 0: one drill run per app that can carry a canary, the others skipped with the reason."""
    cfg = resolve_config(config)  # the apps' checks: no store is read
    skip = {
        a.name: f"drill refused by its gate: {c.name}: {c.detail}"
        for a in cfg.apps
        if not (c := canary_check(a, drill_without_canary(a))).ok
    }

    def run_one(name: str) -> State[Any]:
        one = request.one(name)
        return drill.with_options(flow_run_name=f"drill of {name}")(
            app=name,
            config=config,
            mode=one.mode,
            key_source=one.key_source,
            approval_timeout=one.approval_timeout,
            return_state=True,
        )

    return every_app(
        "drill", [a.name for a in cfg.apps], run_one, lambda r: f"drill {r['drill_id']} passed", skip=skip
    )


def _drill(config: str | None, request: DrillRequest) -> dict[str, Any]:
    """Steps 1 to 6 for one app: the drill's runbook with the flow's hooks (tasks, the approval
    form, artifacts and events: :class:`tasks.drill.FlowDrillHooks`)."""
    app = request.app
    world = world_for_run(config)
    key = master_key(request.key_source)
    hooks = FlowDrillHooks(world, request.approval_timeout, _flow_run_url())
    outcome = run_drill_runbook(world, app, request.mode, key, hooks)
    journal = outcome.journal
    if outcome.store_error:
        raise StandbyError(outcome.store_error, hint="the drill ran; fix the store and see the artifacts")
    if outcome.cleanup_error:
        raise StandbyError(
            f"drill {journal.op_id}: cleanup did not leave the secondary healthy: {outcome.cleanup_error}",
            hint=f"run the drill-cleanup deployment (standby drill cleanup --app {app}); the drill"
            " holds the app until then",
        )
    if not outcome.report.passed:
        raise StandbyError(
            f"drill {journal.op_id} of {app} failed: {outcome.journal.error}",
            hint="read the drill-report artifact",
        )
    return {
        "drill_id": journal.op_id,
        "passed": True,
        "report": outcome.stored,
        "rto_s": outcome.report.rto_promotion_to_writable_s,
        "rpo_s": outcome.report.rpo_achieved_s,
    }


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
    world = world_for_run(config)
    journal = drill_cleanup(world, app, key=master_key(request.key_source))
    return {
        "drill_id": journal.op_id,
        "status": journal.status,
        "steps": {s.name: s.outcome for s in journal.steps},
    }
