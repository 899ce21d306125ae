"""The ``restore`` runbook: put an app's manifests back from a backup run."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from drkit.jobs.requests import RestoreRequest, default, documented
from tasks.backup import restore_app
from tasks.world import world_for_run


@flow(name="restore")
@documented(RestoreRequest)
def restore(
    app: str,
    target_site: str,
    config: str | None = None,
    source_site: str | None = default(RestoreRequest, "source_site"),
    run_id: str | None = default(RestoreRequest, "run_id"),
    namespace: str | None = default(RestoreRequest, "namespace"),
    policy: Literal["skip", "update"] = default(RestoreRequest, "policy"),
    dry_run: bool = default(RestoreRequest, "dry_run"),
    key_source: str = default(RestoreRequest, "key_source"),
    exclude_kinds: list[str] = default(RestoreRequest, "exclude_kinds"),
    bound_timeout: float = default(RestoreRequest, "bound_timeout"),
) -> dict[str, Any]:
    """Restore an app's objects from a backup run into a site.

    1. Pick the run (the newest complete run unless given; taken on ``source_site``, else on the
       app's current primary) and read its index from the target's own store.
    2. Check and decrypt every blob; sanitise each manifest for the target site (claimRef removed,
       ``Retain``, storage class rewritten when the sites differ, ``imageName`` kept).
    3. Apply in restore order: namespaces, Secrets and ConfigMaps, PVs, PVCs, VolumeReplications,
       the app's CR, then Services and Ingresses; existing objects are skipped or updated.
    4. Wait until every restored PVC is Bound (skipped with ``dry_run``).
    5. Publish the summary as artifact ``restore-<app>-<target_site>``.
    """
    world = world_for_run(config, key_source=key_source)
    source = source_site or world.placement(app).primary
    request = RestoreRequest(
        app=app,
        target_site=target_site,
        source_site=source,
        run_id=run_id,
        namespace=namespace,
        policy=policy,
        dry_run=dry_run,
        key_source=key_source,
        exclude_kinds=tuple(exclude_kinds),
        bound_timeout=bound_timeout,
    )
    summary = restore_app(world, request)
    return {
        "run_id": summary.run_id,
        "created": list(summary.created),
        "updated": list(summary.updated),
        "skipped": list(summary.skipped),
        "bound_pvcs": list(summary.bound_pvcs),
    }
