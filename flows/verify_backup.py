"""The ``verify-backup`` runbook."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from drkit.jobs.backup import KEY_ENV
from drkit.jobs.world import load_placed_config
from tasks.backup import verify_run


@flow(name="verify-backup")
def verify_backup(
    app: Annotated[str, Field(description="name of the protected app")],
    config: Annotated[str, Field(description="path of the Standby configuration file")] = "standby.yaml",
    site: Annotated[
        str | None, Field(description="site whose backups to verify; the primary when empty")
    ] = None,
    run_id: Annotated[
        str | None, Field(description="run to verify; the newest complete run when empty")
    ] = None,
    key_source: Annotated[
        str, Field(description="master key: env:VAR, secret:BLOCK or none")
    ] = f"env:{KEY_ENV}",
    dry_run_site: Annotated[
        str | None, Field(description="also dry-run create every object on this site (e.g. the secondary)")
    ] = None,
) -> dict[str, Any]:
    """Prove that a backup run is whole and restorable.

    1. Re-read the run's index (the newest complete run unless given).
    2. GET every blob, check its size and sha256, decrypt it, check its content address.
    3. Validate every manifest offline (kubernetes-validate; structure for custom resources).
    4. Optionally create every object with ``dryRun=All`` on ``dry_run_site``.
    5. Fail naming every bad object; publish the report as artifact ``verify-backup-<app>-<site>``.
    """
    site_name = site or load_placed_config(Path(config)).app(app).primary_site
    report = verify_run(config, app, site_name, run_id, key_source, dry_run_site)
    return {"run_id": report.run_id, "checked": report.checked, "encrypted": report.encrypted}
