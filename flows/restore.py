"""The ``restore`` runbook: put an app's manifests back from a backup run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow
from pydantic import Field

from drkit.jobs.backup import KEY_ENV
from drkit.jobs.world import load_placed_config
from tasks.backup import restore_app


@flow(name="restore")
def restore(
    app: Annotated[str, Field(description="name of the protected app")],
    target_site: Annotated[str, Field(description="site to restore into")],
    config: Annotated[str, Field(description="path of the Standby configuration file")] = "standby.yaml",
    source_site: Annotated[
        str | None, Field(description="site whose backups to use; the primary when empty")
    ] = None,
    run_id: Annotated[
        str | None, Field(description="run to restore; the newest complete run when empty")
    ] = None,
    namespace: Annotated[str | None, Field(description="target namespace; the app's when empty")] = None,
    policy: Annotated[
        Literal["skip", "update"], Field(description="objects that exist: skip or update")
    ] = "skip",
    dry_run: Annotated[bool, Field(description="send every create with dryRun=All; change nothing")] = False,
    key_source: Annotated[
        str, Field(description="master key: env:VAR, secret:BLOCK or none")
    ] = f"env:{KEY_ENV}",
    exclude_kinds: Annotated[
        list[str], Field(description="kinds to leave out, e.g. VolumeReplication while the source is primary")
    ] = [],  # noqa: B006 - Prefect copies parameters
    bound_timeout: Annotated[float, Field(description="seconds to wait for restored PVCs to bind")] = 120.0,
) -> dict[str, Any]:
    """Restore an app's objects from a backup run into a site.

    1. Pick the run (the newest complete run unless given) and read its index.
    2. Check and decrypt every blob; sanitise each manifest for the target site (claimRef removed,
       ``Retain``, storage class rewritten when the sites differ, ``imageName`` kept).
    3. Apply in restore order: namespaces, Secrets and ConfigMaps, PVs, PVCs, VolumeReplications,
       the app's CR, then Services and Ingresses; existing objects are skipped or updated.
    4. Wait until every restored PVC is Bound (skipped with ``dry_run``).
    5. Publish the summary as artifact ``restore-<app>-<target_site>``.
    """
    source = source_site or load_placed_config(Path(config)).app(app).primary_site
    summary = restore_app(
        config,
        app,
        source,
        target_site,
        run_id=run_id,
        namespace=namespace,
        policy=policy,
        dry_run=dry_run,
        key_source=key_source,
        exclude_kinds=tuple(exclude_kinds),
        bound_timeout=bound_timeout,
    )
    return {
        "run_id": summary.run_id,
        "created": list(summary.created),
        "updated": list(summary.updated),
        "skipped": list(summary.skipped),
        "bound_pvcs": list(summary.bound_pvcs),
    }
