"""Prefect tasks of the backup flows: thin wrappers over :mod:`drkit.jobs` with retries and artifacts.

* Only :class:`~drkit.domain.errors.TransientError` is retried (3 times); a bad config, a missing key
  or an integrity failure fails at once.
* Artifacts have stable lowercase-dashed keys: ``backup-<app>-<site>`` (markdown summary),
  ``backup-index-<app>-<site>`` (link to the index), ``backup-progress-<app>-<site>`` (progress),
  ``verify-backup-<app>-<site>`` and ``restore-<app>-<site>``.
* The tasks take the run's :class:`~drkit.jobs.world.World` (built once by the flow, see
  :mod:`tasks.world`), never a configuration path; the default site is the app's current primary
  (:meth:`World.placement <drkit.jobs.world.World.placement>`).
* The master key never passes through Prefect's parameters: the flow loads it once from a *key
  source* (``env:VAR``, ``secret:BLOCK``, or ``none``) into the World (:attr:`World.key`), and
  the tasks use that. Only its key id is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.events import emit_event

from drkit.adapters.clock import SystemClock
from drkit.domain import crypto
from drkit.domain.backup_index import UNAUTHENTICATED
from drkit.domain.errors import ConfigError, TransientError
from drkit.domain.models import S3Location
from drkit.domain.retention import RetentionPolicy
from drkit.jobs import backup as jobs
from drkit.jobs import backup_retention
from drkit.jobs.backup_retention import RetentionResult
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.requests import BackupRequest, RestoreRequest, VerifyRequest
from drkit.jobs.restore import RestoreSummary, check_restore_namespace, run_restore
from drkit.jobs.verify import VerifyResult, require_ok, run_verify
from drkit.jobs.world import World
from drkit.views.backup import report_lines_markdown, summary_markdown
from tasks.retrying import retry_transient

RETRIES = 3
RETRY_DELAYS: list[float] = [2.0, 10.0, 30.0]


# --------------------------------------------------------------------------------------------- keys


def master_key(source: str) -> crypto.MasterKey | None:
    """The backup master key from ``env:VAR``, ``secret:BLOCK`` (a Prefect Secret block) or ``none``."""
    kind, _, name = source.partition(":")
    if kind == "none" and not name:
        return None
    if kind == "env" and name:
        return jobs.key_from_env(name)
    if kind == "secret" and name:
        return jobs.key_from_text(secret_key_text(name), source=f"Prefect Secret block {name!r}")
    raise ConfigError(
        f"key_source {source!r} is not understood",
        hint="write env:VARIABLE, secret:BLOCK_NAME or none",
    )


def secret_key_text(name: str) -> str:
    """The key ring text (:mod:`drkit.domain.keyring`) in Prefect Secret block ``name``."""
    from prefect.blocks.system import Secret

    try:
        block: Any = Secret.load(name)
    except ValueError:
        raise ConfigError(
            f"Prefect Secret block {name!r} (backup key) does not exist",
            hint=f"create it: `standby key generate --block {name}`, or use key_source env:VAR",
        ) from None
    return str(block.get())


def save_secret_key_text(name: str, text: str, *, overwrite: bool) -> None:
    """Write the key ring ``text`` to Prefect Secret block ``name`` (``overwrite``: replace it)."""
    from prefect.blocks.system import Secret

    Secret(value=text).save(name, overwrite=overwrite)


# ------------------------------------------------------------------------------------ concurrency


def app_slot_name(app: str) -> str:
    """Name of the global concurrency limit (one slot) shared by backups and retention of ``app``."""
    return f"standby-app-{app}"


@contextmanager
def app_slot(app: str) -> Iterator[None]:
    """Hold the app's only slot: a backup and retention (GC) of one app never run at once."""
    from prefect import get_client

    name = app_slot_name(app)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except Exception:
            client.upsert_global_concurrency_limit_by_name(name, 1)
    with concurrency(name, occupy=1, strict=True):
        yield


# -------------------------------------------------------------------------------------- artifacts


def _progress(key: str, what: str) -> jobs.Progress:
    artifact_id: Any = create_progress_artifact(0.0, key=key, description=what)

    def report(done: int, total: int, message: str) -> None:
        update_progress_artifact(artifact_id, 100.0 * done / total if total else 100.0, description=message)

    return report


def index_url(location: S3Location, key: str) -> str:
    """A link to an object: ``<endpoint>/<bucket>/<key>``, or ``s3://<bucket>/<key>`` on AWS."""
    if location.endpoint:
        return f"{location.endpoint.rstrip('/')}/{location.bucket}/{key}"
    return f"s3://{location.bucket}/{key}"


# ------------------------------------------------------------------------------------------ tasks


@task(
    name="back-up-app",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def back_up_app(world: World, request: BackupRequest) -> BackupSummary:
    """LIST the app's objects, upload new blobs, write the index then ``latest``; publish artifacts.

    The site is ``request.site``, else the app's current primary; the key is the World's."""
    logger = get_run_logger()
    cfg, key = world.config, world.key
    app, site = request.app, request.site or world.placement(request.app).primary
    logger.info("backing up app %s from site %s (key id %s)", app, site, key.key_id if key else "none")
    summary = jobs.back_up(
        world,
        request.model_copy(update={"site": site}),
        key=key,
        clock=SystemClock(),
        progress=_progress(f"backup-progress-{app}-{site}", f"backup of {app} on {site}"),
    )
    create_markdown_artifact(
        markdown=summary_markdown(summary), key=f"backup-{app}-{site}", description=f"backup {summary.run_id}"
    )
    for notice in summary.notices:
        logger.warning("%s", notice)
    if summary.missed:
        for line in summary.store_lines():
            logger.warning("%s", line)
    lead = next((o.store for o in summary.stores if o.complete), site).split("/")[0]
    create_link_artifact(
        link=index_url(cfg.site(lead).s3, summary.index_key),
        link_text=summary.index_key,
        key=f"backup-index-{app}-{site}",
        description=f"index of backup {summary.run_id}",
    )
    logger.info(
        "backup %s: %s, %d objects, %d new",
        summary.run_id,
        summary.status,
        summary.objects,
        summary.objects_new,
    )
    return summary


@task(
    name="apply-retention",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def apply_retention(world: World, app: str, site: str, policy: RetentionPolicy) -> dict[str, RetentionResult]:
    """In every store of the app's sites: delete runs outside the GFS policy (never the newest
    complete one), then unreferenced blobs. A store that does not answer is skipped with a warning
    (it is pruned next time); returns the result per store. The World's key opens sealed indexes."""
    logger = get_run_logger()
    key = world.key
    chosen, where = world.config.app(app), world.config.site(site)
    results: dict[str, RetentionResult] = {}
    failed: list[TransientError] = []
    for ref in jobs.app_stores(world, chosen, site):
        name = jobs.store_label(ref)
        try:
            result = backup_retention.apply_retention(
                ref.store, where, chosen, policy, layout=ref.layout, key=key
            )
        except TransientError as error:
            logger.warning("retention of %s skipped in the store of %s: %s", app, name, error)
            failed.append(error)
            continue
        results[name] = result
        logger.info(
            "retention of %s in the store of %s: kept %d run(s), deleted %d run(s) and %d blob(s)",
            app,
            name,
            len(result.decision.keep),
            len(result.runs_deleted),
            result.blobs_deleted,
        )
    if not results and failed:
        raise failed[0]
    return results


@task(
    name="verify-backup-run",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def verify_run(world: World, request: VerifyRequest) -> VerifyResult:
    """Catch up the stores that missed a run, then in every store check every blob of the run,
    decrypt, validate; dry-run create on ``dry_run_site`` when given. The runs read are those
    taken on ``request.site``, else on the app's current primary (as the backup took them)."""
    app, site = request.app, request.site or world.placement(request.app).primary
    key = world.key
    if key is None:
        get_run_logger().warning("%s", UNAUTHENTICATED)
    report = run_verify(
        world,
        request.model_copy(update={"site": site}),
        key=key,
        progress=_progress(f"verify-backup-progress-{app}-{site}", f"verify of {app}"),
    )
    create_markdown_artifact(
        markdown=report_lines_markdown(f"Verify backup of {app}", report.lines()),
        key=f"verify-backup-{app}-{site}",
        description=f"verify of backup {report.run_id}: "
        + (
            f"{report.checked} object(s) passed in {len(report.reports)} store(s)"
            if report.ok
            else f"{len(report.problems())} problem(s)"
        ),
    )
    return require_ok(report)


@task(
    name="restore-app",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def restore_app(world: World, request: RestoreRequest) -> RestoreSummary:
    """Restore a run into ``target_site`` in restore order; wait for PVCs to be Bound. Re-entrant.

    The run is one taken on ``request.source_site``, else on the app's current primary."""
    app, target_site = request.app, request.target_site
    check_restore_namespace(
        world.config.app(app), request.namespace
    )  # before anything, the progress artifact too
    key = world.key
    if key is None:
        get_run_logger().warning("%s", UNAUTHENTICATED)
    summary = run_restore(
        world,
        request,
        key=key,
        progress=_progress(f"restore-progress-{app}-{target_site}", f"restore of {app} into {target_site}"),
    )
    create_markdown_artifact(
        markdown=report_lines_markdown(f"Restore of {app}", summary.lines()),
        key=f"restore-{app}-{target_site}",
    )
    return summary


def emit_backup_event(app: str, site: str, *, ok: bool, payload: dict[str, Any]) -> None:
    """Emit ``standby.backup.completed`` or ``standby.backup.failed`` about ``standby.app.<app>``."""
    emit_event(
        event="standby.backup.completed" if ok else "standby.backup.failed",
        resource={"prefect.resource.id": f"standby.app.{app}", "standby.site": site},
        payload=payload,
    )
