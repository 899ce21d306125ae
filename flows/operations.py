"""The ``relocate``, ``failover`` and ``failback`` runbooks, started from the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.config import resolve_config
from drkit.domain.operations import Kind
from drkit.jobs.operations import run_operation
from drkit.jobs.requests import (
    FailbackRequest,
    FailoverRequest,
    OperationRequest,
    RelocateRequest,
    default,
    documented,
)
from drkit.jobs.world import build_world
from tasks.backup import master_key
from tasks.operations import FlowHooks


def operate(kind: Kind, request: OperationRequest, target: str | None, config: str | None) -> dict[str, Any]:
    """The runbook shared by the three flows (see their docstrings), with the flows' hooks."""
    world = build_world(resolve_config(config))
    hooks = FlowHooks(world, request.approval_timeout)
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
    request = RelocateRequest(app=app, to=to, dry_run=dry_run, key_source=key_source,
                              approval_timeout=approval_timeout)  # fmt: skip
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
    request = FailbackRequest(app=app, dry_run=dry_run, key_source=key_source, approval_timeout=approval_timeout)
    return operate("failback", request, None, config)
