"""The ``relocate``, ``failover`` and ``failback`` runbooks, started from the Prefect UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from drkit.config import load_config
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.domain.operations import Kind
from drkit.jobs.backup import KEY_ENV
from drkit.jobs.operations import Executor
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

APPROVAL_TIMEOUT = 3600


def operate(
    kind: Kind, app: str, target: str | None, config: str, dry_run: bool, key_source: str, approval_timeout: int
) -> dict[str, Any]:
    """The runbook shared by the three flows (see their docstrings)."""
    logger = get_run_logger()
    world = build_world(load_config(Path(config)))
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
    approval, typed = wait_for_approval(plan, timeout=approval_timeout)
    key = master_key(key_source)
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
def relocate(
    app: str,
    to: str,
    config: str = "standby.yaml",
    dry_run: bool = False,
    key_source: str = f"env:{KEY_ENV}",
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> dict[str, Any]:
    """Planned move of an app to its other site, with no data loss.

    1. Observe both sites; publish the plan (guards: both reachable, one primary, mirroring
       healthy, lag under 3 snapshot intervals, a backup the target can read, no other operation).
    2. ``dry_run`` stops here. Otherwise pause for the typed approval (app name, approver, reason).
    3. Stop the app on the source, take a final snapshot, demote, wait for the demotion snapshot
       on the target, promote without force, restore and start the app, smoke test, route.
    4. Tidy the source (PVC/PV removed, image kept), record the placement, wait until the source
       replays from the target.

    Args:
        app: name of the protected app
        to: site to move the app to
        config: path of the Standby configuration file
        dry_run: publish the plan and stop; change nothing
        key_source: backup master key: env:VAR, secret:BLOCK or none
        approval_timeout: seconds to wait for the approval before the run fails (nothing changed)
    """
    return operate("relocate", app, to, config, dry_run, key_source, approval_timeout)


@flow(name="failover")
def failover(
    app: str,
    to: str,
    config: str = "standby.yaml",
    dry_run: bool = False,
    key_source: str = f"env:{KEY_ENV}",
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> dict[str, Any]:
    """Disaster move of an app to its other site; writes since the last complete snapshot are lost.

    1. Observe both sites; publish the plan with the data at risk, what will be forced and what
       cannot be fenced.
    2. ``dry_run`` stops here. Otherwise pause for the typed approval; acknowledgements of data
       loss and of an unfenced old primary are asked only when the plan needs them.
    3. Fence the old primary where it answers (stop the app, demote); let a sync in flight finish
       (bounded); restore the volumes, promote (forced when needed), start, smoke test, route.
    4. Record the placement.

    Args:
        app: name of the protected app
        to: site to recover the app on
        config: path of the Standby configuration file
        dry_run: publish the plan and stop; change nothing
        key_source: backup master key: env:VAR, secret:BLOCK or none
        approval_timeout: seconds to wait for the approval before the run fails (nothing changed)
    """
    return operate("failover", app, to, config, dry_run, key_source, approval_timeout)


@flow(name="failback")
def failback(
    app: str,
    config: str = "standby.yaml",
    dry_run: bool = False,
    key_source: str = f"env:{KEY_ENV}",
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> dict[str, Any]:
    """Bring an app home after a failover, once its home site is back.

    1. Observe both sites; publish the plan.
    2. ``dry_run`` stops here. Otherwise pause for the typed approval.
    3. Stop the stale app at home, demote its images (split-brain resolved for the survivor),
       resync them, wait until replaying with a fresh snapshot complete.
    4. Relocate home, as the relocate flow does.

    Args:
        app: name of the protected app
        config: path of the Standby configuration file
        dry_run: publish the plan and stop; change nothing
        key_source: backup master key: env:VAR, secret:BLOCK or none
        approval_timeout: seconds to wait for the approval before the run fails (nothing changed)
    """
    return operate("failback", app, None, config, dry_run, key_source, approval_timeout)
