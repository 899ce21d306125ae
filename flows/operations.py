"""The ``relocate``, ``failover``, ``failback`` and ``abort-operation`` runbooks, started from the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import flow

from drkit.domain.operations import Kind
from drkit.jobs.operations import run_operation
from drkit.jobs.requests import (
    AbortRequest,
    FailbackRequest,
    FailoverRequest,
    OperationRequest,
    RelocateRequest,
    default,
    documented,
)
from tasks.backup import master_key
from tasks.operations import FlowHooks, abort_runbook
from tasks.world import world_for_run


def operate(
    kind: Kind,
    request: OperationRequest,
    target: str | None,
    config: str | None,
    take_over: str | None = None,
) -> dict[str, Any]:
    """The runbook shared by the three flows (see their docstrings), with the flows' hooks."""
    world = world_for_run(config)
    hooks = FlowHooks(world, request.approval_timeout, take_over)
    result = run_operation(world, request, kind, target, hooks, key=lambda: master_key(request.key_source))
    return result.as_dict()


@flow(name="relocate")
@documented(RelocateRequest)
def relocate(
    app: str,
    to: str,
    config: str | None = None,
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
    request = RelocateRequest(
        app=app, to=to, dry_run=dry_run, key_source=key_source, approval_timeout=approval_timeout
    )
    return operate("relocate", request, request.to, config)


@flow(name="failover")
@documented(FailoverRequest)
def failover(
    app: str,
    to: str,
    config: str | None = None,
    dry_run: bool = default(FailoverRequest, "dry_run"),
    key_source: str = default(FailoverRequest, "key_source"),
    approval_timeout: int = default(FailoverRequest, "approval_timeout"),
    take_over: str | None = default(FailoverRequest, "take_over"),
) -> dict[str, Any]:
    """Disaster move of an app to its other site; writes since the last complete snapshot are lost.

    1. Observe both sites; publish the plan with the data at risk, what will be forced and what
       cannot be fenced (and the failed operation whose hold it takes over, when ``take_over``
       names one; a live operation is refused).
    2. ``dry_run`` stops here. Otherwise pause for the typed approval; acknowledgements of data
       loss, of an unfenced old primary and of the take-over are asked only when the plan needs them.
    3. Fence the old primary where it answers (stop the app, demote); let a sync in flight finish
       (bounded); restore the volumes, promote (forced when needed), start, smoke test, route.
    4. Record the placement.
    """
    request = FailoverRequest(
        app=app,
        to=to,
        dry_run=dry_run,
        key_source=key_source,
        approval_timeout=approval_timeout,
        take_over=take_over,
    )
    return operate("failover", request, request.to, config, request.take_over)


@flow(name="failback")
@documented(FailbackRequest)
def failback(
    app: str,
    config: str | None = None,
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
    request = FailbackRequest(
        app=app, dry_run=dry_run, key_source=key_source, approval_timeout=approval_timeout
    )
    return operate("failback", request, None, config)


@flow(name="abort-operation")
@documented(AbortRequest)
def abort_operation(
    app: str,
    op_id: str,
    config: str | None = None,
    key_source: str = default(AbortRequest, "key_source"),
    approval_timeout: int = default(AbortRequest, "approval_timeout"),
) -> dict[str, Any]:
    """Roll a failed relocate, failover or failback back to its source, before its point of no return.

    1. Read the operation's journal and the placement, ask the target whether it was promoted;
       publish the abort plan, or why it is refused (past the target's promote: resume it or fail
       over back; a live operation: wait). A drill is rolled back by its cleanup.
    2. Pause for the typed approval (app name, approver, reason).
    3. Promote the source's images again (never forced), start the app there, smoke test, remove
       what was restored on the target; release the hold. The journal records the abort; a re-run
       skips what is done.
    """
    request = AbortRequest(app=app, op_id=op_id, key_source=key_source, approval_timeout=approval_timeout)
    world = world_for_run(config)
    return abort_runbook(
        world, request.app, request.op_id, request.approval_timeout, lambda: master_key(request.key_source)
    )
