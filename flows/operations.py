"""The ``relocate``, ``failover`` and ``failback`` runbooks, started from the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from blocks.config import resolve_config
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.domain.operations import Kind
from drkit.jobs.operations import Executor
from drkit.jobs.requests import (
    FailbackRequest,
    FailoverRequest,
    OperationRequest,
    RelocateRequest,
    default,
    documented,
)
from drkit.jobs.world import build_world
from tasks.backup import app_slot, master_key
from tasks.operations import (
    Tracker,
    emit_operation_event,
    plan_operation,
    run_step,
    take_app,
    wait_for_approval,
    webhook_routing,
)


def operate(kind: Kind, request: OperationRequest, target: str | None, config: str) -> dict[str, Any]:
    """The runbook shared by the three flows (see their docstrings)."""
    app, dry_run = request.app, request.dry_run
    logger = get_run_logger()
    world = build_world(resolve_config(config))
    prepared = plan_operation(world, app, kind, target)
    plan = prepared.plan
    if plan.nothing_to_do:
        logger.info("nothing to do: %s", plan.nothing_to_do)
        return {"status": "nothing-to-do", "reason": plan.nothing_to_do}
    if plan.refusals:
        raise PreconditionFailed(
            f"{kind} of {app} refused: " + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals),
            hint="see the operation-plan artifact",
        )
    if dry_run:
        logger.info("dry run: the plan is published; nothing was changed")
        return {"status": "dry-run", "steps": [s.name for s in plan.steps]}
    approval, typed = wait_for_approval(plan, timeout=request.approval_timeout)
    key = master_key(request.key_source)
    with app_slot(app):  # one slot per app, shared with its backups: they never overlap
        journal = take_app(world, prepared, approval, typed)
        chosen = world.config.app(app)
        hook = webhook_routing(chosen.routing.webhook_block) if chosen.routing.webhook_block else None
        executor = Executor(world, journal, key, routing_hook=hook)
        tracker = Tracker(journal)
        try:
            for name in executor.pending():
                run_step(executor, name)
                tracker.update(executor.journal)
            done = executor.complete()
        except StandbyError as error:
            tracker.update(executor.journal)
            emit_operation_event("failed", executor.journal, {"error": str(error)[:500]})
            raise
        tracker.update(done)
        emit_operation_event("completed", done, {"seconds": (done.finished_at - done.created_at).total_seconds()
                                                 if done.finished_at else None})  # fmt: skip
    return {"status": done.status, "op_id": done.op_id, "steps": {s.name: s.outcome for s in done.steps}}


@flow(name="relocate")
@documented(RelocateRequest)
def relocate(
    app: str,
    to: str,
    config: str = "standby.yaml",
    dry_run: bool = default(RelocateRequest, "dry_run"),
    key_source: str = default(RelocateRequest, "key_source"),
    approval_timeout: int = default(RelocateRequest, "approval_timeout"),
) -> dict[str, Any]:
    """Planned move of an app to its other site, with no data loss.

    1. Observe both sites; publish the plan (guards: both reachable, one primary, mirroring
       healthy, lag under 3 snapshot intervals, a backup the target can read, no other operation).
    2. ``dry_run`` stops here. Otherwise pause for the typed approval (app name, approver, reason).
    3. Stop the app on the source, take a final snapshot, demote, wait for the demotion snapshot
       on the target, promote without force, restore and start the app, smoke test, route.
    4. Tidy the source (PVC/PV removed, image kept), record the placement, wait until the source
       replays from the target.
    """
    request = RelocateRequest(app=app, to=to, dry_run=dry_run, key_source=key_source,
                              approval_timeout=approval_timeout)  # fmt: skip
    return operate("relocate", request, request.to, config)


@flow(name="failover")
@documented(FailoverRequest)
def failover(
    app: str,
    to: str,
    config: str = "standby.yaml",
    dry_run: bool = default(FailoverRequest, "dry_run"),
    key_source: str = default(FailoverRequest, "key_source"),
    approval_timeout: int = default(FailoverRequest, "approval_timeout"),
) -> dict[str, Any]:
    """Disaster move of an app to its other site; writes since the last complete snapshot are lost.

    1. Observe both sites; publish the plan with the data at risk, what will be forced and what
       cannot be fenced.
    2. ``dry_run`` stops here. Otherwise pause for the typed approval; acknowledgements of data
       loss and of an unfenced old primary are asked only when the plan needs them.
    3. Fence the old primary where it answers (stop the app, demote); let a sync in flight finish
       (bounded); restore the volumes, promote (forced when needed), start, smoke test, route.
    4. Record the placement.
    """
    request = FailoverRequest(app=app, to=to, dry_run=dry_run, key_source=key_source,
                              approval_timeout=approval_timeout)  # fmt: skip
    return operate("failover", request, request.to, config)


@flow(name="failback")
@documented(FailbackRequest)
def failback(
    app: str,
    config: str = "standby.yaml",
    dry_run: bool = default(FailbackRequest, "dry_run"),
    key_source: str = default(FailbackRequest, "key_source"),
    approval_timeout: int = default(FailbackRequest, "approval_timeout"),
) -> dict[str, Any]:
    """Bring an app home after a failover, once its home site is back.

    1. Observe both sites; publish the plan.
    2. ``dry_run`` stops here. Otherwise pause for the typed approval.
    3. Stop the stale app at home, demote its images (split-brain resolved for the survivor),
       resync them, wait until replaying with a fresh snapshot complete.
    4. Relocate home, as the relocate flow does.
    """
    request = FailbackRequest(app=app, dry_run=dry_run, key_source=key_source, approval_timeout=approval_timeout)
    return operate("failback", request, None, config)
