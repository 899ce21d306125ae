"""The nightly ``backup`` runbook: one app, or every configured app (one run each)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.flows import Flow
from prefect.states import State

from blocks.config import resolve_config
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.domain.retention import RetentionPolicy
from drkit.jobs.requests import BackupAppsRequest, BackupRequest, default, documented
from tasks.backup import app_slot, apply_retention, back_up_app, emit_backup_event
from tasks.fanout import app_runner, every_app
from tasks.world import world_for_run

BACKUP_FANOUT = 4
"""Apps backed up at once when every app is: a backup is LIST and PUT calls (I/O, not CPU), so a few
overlap well; each app's own slot (:func:`tasks.backup.app_slot`) still keeps one app's backup,
retention and operations apart, and a bound keeps the apiservers and the store from a burst."""


def _on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    params = flow_run.parameters
    if not params.get("app"):
        return  # every app: each app's own run emitted its own event
    message = (state.message or "")[:500]
    emit_backup_event(
        str(params.get("app")), str(params.get("site") or ""), ok=False, payload={"error": message}
    )


@flow(name="backup", on_failure=[_on_failure], log_prints=False, task_runner=app_runner(BACKUP_FANOUT))
@documented(BackupAppsRequest)
def backup(
    app: str | None = default(BackupAppsRequest, "app"),
    config: str | None = None,
    site: str | None = default(BackupAppsRequest, "site"),
    key_source: str = default(BackupAppsRequest, "key_source"),
    retention: RetentionPolicy = default(BackupAppsRequest, "retention"),
) -> dict[str, Any]:
    """Back up an app's manifests to S3; with no app, every configured app, one run each.

    0. No app given: one ``backup`` run per app of the configuration (the steps below), at most
       ``BACKUP_FANOUT`` at once; an app's failure never stops another's. Publish ``backup-apps``
       (each app passed or failed, and why) and fail naming the failed apps.
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
    request = BackupAppsRequest(app=app, site=site, key_source=key_source, retention=retention)
    if request.app is None:
        cfg = resolve_config(config)  # the apps' names: no store is read

        def run_one(name: str) -> State[Any]:
            one = request.one(name)
            return backup.with_options(flow_run_name=f"backup of {name}")(
                app=name,
                config=config,
                site=one.site,
                key_source=one.key_source,
                retention=one.retention,
                return_state=True,
            )

        return every_app(
            "backup",
            [a.name for a in cfg.apps],
            run_one,
            lambda r: f"run {r['run_id']}: {r['objects']} objects, {r['objects_new']} new",
        )
    return _back_up(config, request.one(request.app))


def _back_up(config: str | None, request: BackupRequest) -> dict[str, Any]:
    """Steps 1 to 4 for one app."""
    app = request.app
    world = world_for_run(config, key_source=request.key_source)
    site_name = request.site or world.placement(app).primary
    request = request.model_copy(update={"site": site_name})
    with app_slot(app):
        summary = back_up_app(world, request)
        kept = apply_retention(world, app, site_name, request.retention)
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
            + "; ".join(
                f"the store of {o.store}: {o.reason or 'latest not updated'}" for o in summary.missed
            ),
            hint=f"fix that store; the next backup writes to it again, and `standby backup verify --app {app}`"
            " copies this run into it",
            context={"run": summary.run_id, "missed": [o.store for o in summary.missed]},
        )
    emit_backup_event(app, site_name, ok=True, payload=result)
    return result
