"""The nightly ``backup`` runbook."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.flows import Flow
from prefect.states import State

from blocks.config import resolve_config
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.domain.retention import RetentionPolicy
from drkit.jobs.requests import BackupRequest, default, documented
from drkit.jobs.world import load_placed_config
from tasks.backup import app_slot, apply_retention, back_up_app, emit_backup_event


def _on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    params = flow_run.parameters
    message = (state.message or "")[:500]
    emit_backup_event(
        str(params.get("app")), str(params.get("site") or ""), ok=False, payload={"error": message}
    )


@flow(name="backup", on_failure=[_on_failure], log_prints=False)
@documented(BackupRequest)
def backup(
    app: str,
    config: str | None = None,
    site: str | None = default(BackupRequest, "site"),
    key_source: str = default(BackupRequest, "key_source"),
    retention: RetentionPolicy = default(BackupRequest, "retention"),
) -> dict[str, Any]:
    """Back up an app's manifests to S3.

    1. Resolve the site (the app's primary unless given) and take the app's only concurrency slot,
       so a backup and retention of one app never overlap.
    2. LIST the app's kinds, seal new blobs once (Secrets encrypted), and write the run to every
       store of the app's sites that answers, the source's own first: blobs, ``index.json`` (the
       store's completion marker), then ``latest``; publish the summary (per store), index link
       and progress artifacts.
    3. Apply GFS retention in every store: delete old runs, then only blobs no kept run references.
    4. Emit ``standby.backup.completed``; a partially failed run, or a run a store missed (it is
       complete in the others, which a restore there reads), fails the flow (and emits
       ``standby.backup.failed`` naming each store and why), it never completes silently. The
       next run or ``verify-backup`` catches a missed store up.
    """
    site_name = site or load_placed_config(resolve_config(config)).app(app).primary_site
    request = BackupRequest(app=app, site=site_name, key_source=key_source, retention=retention)
    with app_slot(app):
        summary = back_up_app(config, request)
        kept = apply_retention(config, app, site_name, request.retention)
    result = {
        "run_id": summary.run_id,
        "status": summary.status,
        "objects": summary.objects,
        "objects_new": summary.objects_new,
        "bytes_uploaded": summary.bytes_uploaded,
        "runs_deleted": sorted({r for result in kept.values() for r in result.runs_deleted}),
        "warnings": list(summary.warnings),
        "complete_in_stores": list(summary.complete_on),
        "missed_stores": {o.store: o.reason or "latest not updated" for o in summary.missed},
    }
    if summary.status != "complete":
        raise PreconditionFailed(
            f"backup {summary.run_id} of app {app} is partially failed: {'; '.join(summary.warnings)}",
            hint="fix what the warnings name; the index records the run as partially-failed",
        )
    if summary.missed:
        raise StandbyError(
            f"backup {summary.run_id} of app {app} is complete in the store of {', '.join(summary.complete_on)}"
            " but missed "
            + "; ".join(f"the store of {o.store}: {o.reason or 'latest not updated'}" for o in summary.missed),
            hint=f"fix that store; the next backup writes to it again, and `standby backup verify --app {app}`"
            " copies this run into it",
            context={"run": summary.run_id, "missed": [o.store for o in summary.missed]},
        )
    emit_backup_event(app, site_name, ok=True, payload=result)
    return result
