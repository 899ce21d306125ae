"""The ``verify-backup`` runbook."""

from __future__ import annotations

from typing import Any

from prefect import flow

from drkit.jobs.requests import VerifyRequest, default, documented
from tasks.backup import app_slot, verify_run
from tasks.world import world_for_run


@flow(name="verify-backup")
@documented(VerifyRequest)
def verify_backup(
    app: str,
    config: str | None = None,
    site: str | None = default(VerifyRequest, "site"),
    run_id: str | None = default(VerifyRequest, "run_id"),
    key_source: str = default(VerifyRequest, "key_source"),
    dry_run_site: str | None = default(VerifyRequest, "dry_run_site"),
) -> dict[str, Any]:
    """Prove that a backup run is whole and restorable from every site's store.

    1. Take the app's concurrency slot (shared with backups and retention), and catch up the
       stores of the app's sites: a complete run a store missed (it was down) is copied from a
       store that holds it, blobs checked against their sha256, the index last.
    2. In every store, re-read the run's index (the newest complete run unless given).
    3. GET every blob, check its size and sha256, decrypt it, check its content address.
    4. Validate every manifest offline (kubernetes-validate; structure for custom resources).
    5. Optionally create every object with ``dryRun=All`` on ``dry_run_site`` (once).
    6. Fail naming every bad object and every store not verified or not caught up; publish the
       report as artifact ``verify-backup-<app>-<site>``.
    """
    world = world_for_run(config, key_source=key_source)
    site_name = site or world.placement(app).primary
    request = VerifyRequest(
        app=app, site=site_name, run_id=run_id, key_source=key_source, dry_run_site=dry_run_site
    )
    with app_slot(app):  # the catch-up writes blobs before their index: never beside retention
        report = verify_run(world, request)
    return {
        "run_id": report.run_id,
        "checked": report.checked,
        "encrypted": report.encrypted,
        "stores": [r.store or site_name for r in report.reports],
        "caught_up": report.sync.lines() if report.sync else [],
    }
