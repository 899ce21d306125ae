"""Backup use cases, without Prefect: run a backup, list and read runs, apply GFS retention.

:func:`back_up` is the entry point the flow and the CLI share; :func:`run_backup` does one run
against given adapters. How a run is laid out and why is in docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta, tzinfo
from importlib import metadata
from typing import Any

from drkit.adapters.clock import Clock
from drkit.adapters.kube import ClusterApi
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.runner import hide_from_commands
from drkit.domain import crypto
from drkit.domain.backup_index import (
    BackupIndex,
    IndexEntry,
    IndexPointer,
    decode_index,
    encode_index,
    encode_pointer,
    resolve_pointer,
    same_entries,
)
from drkit.domain.backup_plan import BackupPlan, build_index, known_blobs, plan_backup
from drkit.domain.blobs import addressed_plaintext
from drkit.domain.errors import ConfigError, Conflict, IntegrityError, NotFound, StandbyError, TransientError
from drkit.domain.layout import RunId, StoreLayout, new_run_id, parse_run_id
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.domain.retention import (
    RetentionDecision,
    RetentionPolicy,
    RunInfo,
    plan_retention,
    unreferenced_blobs,
)
from drkit.domain.selection import ListCall, Selection, plan_lists, select_objects
from drkit.jobs.progress import Progress as Progress  # re-exported for the tasks
from drkit.jobs.requests import KEY_ENV, BackupRequest
from drkit.jobs.sites import cluster_for, store_for


def _no_progress(done: int, total: int, message: str) -> None:
    return None


def standby_version() -> str:
    """The installed version of Standby."""
    try:
        return metadata.version("standby")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0+unknown"


# ------------------------------------------------------------------------------------------ keys


def key_from_text(text: str | None, *, source: str) -> crypto.MasterKey | None:
    """Parse a master key from ``text`` (``None`` or empty: no key); errors name ``source``, never the value."""
    if text is None or not text.strip():
        return None
    try:
        return crypto.MasterKey.parse(text)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error.message}", hint=error.hint, context={"source": source}) from None


def key_from_env(var: str = KEY_ENV, environ: Mapping[str, str] | None = None) -> crypto.MasterKey | None:
    """The master key in environment variable ``var``, or ``None`` when it is unset or empty."""
    env = os.environ if environ is None else environ
    hide_from_commands(var)  # a --key-env name: never passed to rbd or python3
    return key_from_text(env.get(var), source=f"environment variable {var}")


# --------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BackupSummary:
    """What one backup run did."""

    app: str
    site: str
    run_id: str
    status: str
    objects: int
    objects_new: int
    objects_reused: int
    bytes_uploaded: int
    duration: timedelta
    warnings: tuple[str, ...]
    index_key: str
    key_id: str | None
    previous_run: str | None
    list_calls: int
    index_bytes: int = 0
    same_as: str | None = None

    def lines(self) -> list[str]:
        """Human summary, one fact per line (no secret values: only the key id)."""
        out = [
            f"backup {self.run_id} of app {self.app} on site {self.site}: {self.status}",
            f"objects: {self.objects} ({self.objects_new} new, {self.objects_reused} reused"
            + (f" from {self.previous_run})" if self.previous_run else ")"),
            f"bytes uploaded: {self.bytes_uploaded}",
            f"LIST calls: {self.list_calls}",
            f"duration: {self.duration.total_seconds():.2f}s",
            f"encryption key id: {self.key_id or '(none: no Secrets, stored in plaintext)'}",
            f"index: {self.index_key} ({self.index_bytes} bytes"
            + (f", unchanged: points at run {self.same_as})" if self.same_as else ")"),
        ]
        out += [f"warning: {w}" for w in self.warnings]
        return out


# ----------------------------------------------------------------------------------------- reads


def read_latest(store: ObjectStore, layout: StoreLayout, site: str, app: str) -> str | None:
    """The run id ``latest`` names, or ``None`` when the app has no complete run yet."""
    try:
        text = store.get(layout.latest_key(site, app)).decode().strip()
    except NotFound as error:
        if error.context.get("key") == layout.latest_key(site, app):
            return None
        raise
    parse_run_id(text)
    return text


@dataclass(frozen=True)
class LoadedRun:
    """A run's index as read, pointer resolved, and the full index that holds its objects."""

    index: BackupIndex
    full_run: str
    full_sha256: str


def _get_index(store: ObjectStore, layout: StoreLayout, site: str, app: str, run_id: str) -> bytes:
    key = layout.index_key(site, app, run_id)
    try:
        return store.get(key)
    except NotFound as error:
        if error.context.get("key") != key:
            raise
        raise NotFound(
            f"backup run {run_id} of app {app} (site {site}) has no index: unknown, or it never finished",
            hint="list the runs with `standby backup list`",
            context={"key": key, "run": run_id},
        ) from None


def _decode(data: bytes, layout: StoreLayout, site: str, app: str, run_id: str) -> BackupIndex | IndexPointer:
    key = layout.index_key(site, app, run_id)
    found = decode_index(data, key=key, layout=layout)
    if (found.run_id, found.app, found.site) != (run_id, app, site):
        raise IntegrityError(
            f"{key} holds the index of run {found.run_id} of app {found.app} on site {found.site}",
            hint="this run cannot be trusted; use another run and check who writes to the bucket",
            context={"key": key, "run": run_id},
        )
    return found


def load_run(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    run_id: str,
    *,
    full: dict[str, tuple[BackupIndex, str]] | None = None,
) -> LoadedRun:
    """Read run ``run_id``'s index and, when it is a pointer, the full index it names (one hop).

    ``full`` caches full indexes by run id (with their bytes' sha256) across calls; the pointer's
    recorded sha256 is checked against the cached one too.
    """
    cache = {} if full is None else full
    data = _get_index(store, layout, site, app, run_id)
    found = _decode(data, layout, site, app, run_id)
    if isinstance(found, BackupIndex):
        cache[run_id] = (found, hashlib.sha256(data).hexdigest())
        return LoadedRun(found, run_id, cache[run_id][1])
    target_key = layout.index_key(site, app, found.same_as)
    if found.same_as in cache:
        cached, known_digest = cache[found.same_as]
        resolved = resolve_pointer(found, cached, target_sha256=known_digest, target_key=target_key)
        return LoadedRun(resolved, found.same_as, known_digest)
    try:
        target_data = _get_index(store, layout, site, app, found.same_as)
    except NotFound:
        raise IntegrityError(
            f"backup run {run_id} points at run {found.same_as}, whose index is missing ({target_key})",
            hint="that run was deleted by hand or by a retention bug; use another run, run a new backup",
            context={"key": target_key, "run": run_id, "same_as": found.same_as},
        ) from None
    target = _decode(target_data, layout, site, app, found.same_as)
    digest = hashlib.sha256(target_data).hexdigest()
    resolved = resolve_pointer(found, target, target_sha256=digest, target_key=target_key)
    if isinstance(target, BackupIndex):
        cache[found.same_as] = (target, digest)
    return LoadedRun(resolved, found.same_as, digest)


def read_index(store: ObjectStore, layout: StoreLayout, site: str, app: str, run_id: str) -> BackupIndex:
    """The index of one run, pointer resolved; :class:`NotFound` names the run when it has none."""
    return load_run(store, layout, site, app, run_id).index


def resolve_run(store: ObjectStore, layout: StoreLayout, site: str, app: str, run_id: str | None) -> str:
    """``run_id``, or the newest complete run (``latest``); :class:`NotFound` when there is none."""
    if run_id:
        parse_run_id(run_id)
        return run_id
    found = read_latest(store, layout, site, app)
    if found is None:
        raise NotFound(
            f"app {app} has no complete backup on site {site} yet",
            hint=f"run `standby backup run --app {app} --site {site}` first",
            context={"site": site, "app": app},
        )
    return found


def iter_index_keys(
    store: ObjectStore, layout: StoreLayout, site: str, app: str
) -> Iterator[tuple[str, str]]:
    """``(run_id, index key)`` of every finished run, oldest first (stops before the blobs)."""
    root = layout.app_root(site, app) + "/"
    blobs = layout.blobs_prefix(site, app)
    for info in store.list(root):
        if info.key.startswith(blobs):
            return  # run folders (digits) sort before blobs/ and latest: nothing more to find
        run = layout.run_id_of_index_key(site, app, info.key)
        if run is not None:
            yield str(run), info.key


def list_runs(store: ObjectStore, layout: StoreLayout, site: str, app: str) -> list[BackupIndex]:
    """The indexes of every finished run of ``app``, oldest first, pointers resolved.

    Each full index is read once: pointer runs reuse the one they name (its sha256 still checked).
    """
    full: dict[str, tuple[BackupIndex, str]] = {}
    return [
        load_run(store, layout, site, app, run, full=full).index
        for run, _ in iter_index_keys(store, layout, site, app)
    ]


# ------------------------------------------------------------------------------------------ backup


def list_objects(
    cluster: ClusterApi, app: ProtectedApp, *, page_size: int = 500
) -> tuple[Selection, tuple[str, ...], int]:
    """LIST what the app needs; returns the selection, the kinds listed and the number of LIST calls.

    A call that fails for good (kind not served, forbidden, refused) is a warning of the selection;
    a :class:`TransientError` is raised so that the caller retries, and a :class:`ConfigError` (the
    site's access is wrong, e.g. an untrusted certificate) is raised as is.
    """
    listed: list[tuple[ListCall, list[dict[str, Any]]]] = []
    warnings: list[str] = []
    kinds: list[str] = []
    for call in plan_lists(app):
        try:
            objects = cluster.list(
                call.kind, call.namespace, label_selector=call.label_selector, limit=page_size
            )
        except (TransientError, ConfigError):  # retried, or the site's access itself is wrong (TLS)
            raise
        except StandbyError as error:
            warnings.append(f"could not {call} on site {cluster.site}: {error.message}")
            continue
        listed.append((call, objects))
        kinds.append(str(call.kind))
    selection = select_objects(app, listed)
    return Selection(selection.objects, (*warnings, *selection.warnings)), tuple(kinds), len(listed)


def _refuse_plain_secrets(selection: Selection, app: ProtectedApp, site: str) -> None:
    secrets = sorted(
        str((o.get("metadata") or {}).get("name")) for o in selection.objects if o.get("kind") == "Secret"
    )
    if secrets:
        shown = ", ".join(secrets[:3]) + (f" and {len(secrets) - 3} more" if len(secrets) > 3 else "")
        raise ConfigError(
            f"app {app.name} on site {site} has {len(secrets)} Secret(s) to back up ({shown}) but no backup"
            " encryption key is configured; Secrets are never stored in plaintext",
            hint=f"set {KEY_ENV} to base64 of 32 random bytes (`head -c 32 /dev/urandom | base64`), or give"
            " the flow a Prefect Secret block holding it, or drop v1/Secret from the app's backup.kinds",
            context={"app": app.name, "site": site},
        )


def _check_existing(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> None:
    """A blob found already stored (a killed run's) must be what its address says."""
    try:
        addressed_plaintext(entry, stored, key)
    except IntegrityError:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} is already stored but does not match its content address",
            hint="delete that blob (it is corrupt) and run the backup again",
            context={"key": entry.key, "path": entry.path},
        ) from None


def upload_blobs(
    store: ObjectStore,
    plan: BackupPlan,
    key: crypto.MasterKey | None,
    *,
    workers: int = 8,
    progress: Progress = _no_progress,
) -> BackupPlan:
    """Upload ``plan.uploads`` (conditional puts, ``workers`` at a time); returns the plan as stored.

    A blob that already exists is read back, checked, and its entries take the stored bytes' sha256
    and size; it no longer counts as uploaded. Any other failure is raised: no index gets written.
    """
    total = len(plan.uploads)
    progress(0, total, f"uploading {total} new blob(s)")
    existing: dict[str, bytes] = {}

    def put(data_key: str, data: bytes) -> bytes | None:
        try:
            store.put(data_key, data, if_none_match=True, content_type="application/octet-stream")
        except Conflict:
            return store.get(data_key)
        return None

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [(u, pool.submit(put, u.key, u.data)) for u in plan.uploads]
        try:
            for upload, future in futures:
                found = future.result()
                if found is not None:
                    existing[upload.key] = found
                done += 1
                if done % 50 == 0 or done == total:
                    progress(done, total, f"uploaded {done} of {total} blob(s)")
        except BaseException:
            for _, other in futures:
                other.cancel()
            raise
    if not existing:
        return plan
    entries: list[IndexEntry] = []
    for entry in plan.entries:
        stored = existing.get(entry.key)
        if stored is not None:
            _check_existing(entry, stored, key)
            entry = entry.model_copy(
                update={"sha256": hashlib.sha256(stored).hexdigest(), "size": len(stored)}
            )
        entries.append(entry)
    uploads = tuple(u for u in plan.uploads if u.key not in existing)
    return replace(plan, entries=tuple(entries), uploads=uploads)


def run_backup(
    app: ProtectedApp,
    site: Site,
    cluster: ClusterApi,
    store: ObjectStore,
    *,
    key: crypto.MasterKey | None,
    clock: Clock,
    progress: Progress = _no_progress,
    random: crypto.RandomBytes = os.urandom,
    workers: int = 8,
    page_size: int = 500,
) -> BackupSummary:
    """Back up ``app`` from ``site`` into ``store``.

    LIST each kind once (a kind that cannot be listed makes the run ``partially-failed``; a
    transient failure is raised for the caller to retry), refuse Secrets without a key, upload
    only the blobs no earlier run holds, then write the index and, for a complete run, ``latest``.
    """
    layout = StoreLayout(site.s3.prefix)
    started = clock.now()
    run_id: RunId = new_run_id(started, random(3))
    selection, kinds, calls = list_objects(cluster, app, page_size=page_size)
    if key is None:
        _refuse_plain_secrets(selection, app, site.name)
    previous = read_latest(store, layout, site.name, app.name)
    before = load_run(store, layout, site.name, app.name, previous) if previous is not None else None
    known: dict[str, IndexEntry] = known_blobs([before.index]) if before is not None else {}
    plan = plan_backup(
        selection.objects,
        layout=layout,
        site=site.name,
        app=app.name,
        run_id=run_id,
        workload=app.workload.kind,
        key=key,
        known=known,
        previous_run=previous,
        random=random,
        order=app.restore.order,
    )
    plan = upload_blobs(store, plan, key, workers=workers, progress=progress)
    index = build_index(
        plan,
        app=app.name,
        site=site.name,
        started=started,
        finished=clock.now(),
        standby_version=standby_version(),
        cluster=cluster.site,
        kinds_listed=kinds,
        warnings=selection.warnings,
    )
    index_key = layout.index_key(site.name, app.name, run_id)
    same_as: str | None = None
    if before is not None and same_entries(index.objects, before.index.objects):
        same_as = before.full_run
        data = encode_pointer(index, target=before.full_run, target_sha256=before.full_sha256)
    else:
        data = encode_index(index, layout)
    store.put(index_key, data, if_none_match=True, content_type="application/gzip")
    if index.status == "complete":
        store.put(layout.latest_key(site.name, app.name), f"{run_id}\n".encode(), content_type="text/plain")
    return BackupSummary(
        app=app.name,
        site=site.name,
        run_id=str(run_id),
        status=index.status,
        objects=len(index.objects),
        objects_new=index.metadata.objects_new,
        objects_reused=index.metadata.objects_reused,
        bytes_uploaded=index.metadata.bytes_uploaded,
        duration=clock.now() - started,
        warnings=index.warnings,
        index_key=index_key,
        key_id=key.key_id if key is not None else None,
        previous_run=previous,
        list_calls=calls,
        index_bytes=len(data),
        same_as=same_as,
    )


def back_up(
    config: StandbyConfig,
    request: BackupRequest,
    *,
    key: crypto.MasterKey | None,
    clock: Clock,
    progress: Progress = _no_progress,
) -> BackupSummary:
    """The backup use case (flow and CLI): ``request`` against the sites of ``config``.

    The site is ``request.site``, or the app's primary in ``config`` (the placed primary when
    ``config`` comes from ``load_placed_config``). Retention is a separate step
    (:func:`apply_retention` with ``request.retention``), run under the app's concurrency slot.
    """
    app = config.app(request.app)
    site = config.site(request.site or app.primary_site)
    return run_backup(app, site, cluster_for(site), store_for(site), key=key, clock=clock, progress=progress)


# --------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionResult:
    """What retention decided and deleted."""

    decision: RetentionDecision
    runs_deleted: tuple[str, ...]
    blobs_deleted: int


def apply_retention(
    store: ObjectStore,
    site: Site,
    app: ProtectedApp,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    tz: tzinfo | None = None,
) -> RetentionResult:
    """GFS retention of ``app``'s runs, then the blobs no kept run references.

    Only a ``complete`` run counts as complete; the newest complete run is never deleted. Must not
    run while a backup of the same app runs (its new blobs are in no index yet): the flows hold one
    concurrency slot per app for both.
    """
    layout = StoreLayout(site.s3.prefix)
    indexes = {i.run_id: i for i in list_runs(store, layout, site.name, app.name)}
    runs = [
        RunInfo(run_id=r, started=i.started, complete=i.status == "complete", same_as=i.same_as)
        for r, i in indexes.items()
    ]
    decision = plan_retention(runs, policy, **({"tz": tz} if tz is not None else {}))
    kept = [indexes[r] for r in decision.keep]
    if not kept:
        return RetentionResult(decision, (), 0)
    blobs = [i.key for i in store.list(layout.blobs_prefix(site.name, app.name))]
    doomed = unreferenced_blobs(kept, blobs)
    if not dry_run:
        # Indexes first: a run is gone as soon as its index is; its blobs may go after.
        store.delete(layout.index_key(site.name, app.name, r) for r in decision.delete)
        store.delete(doomed)
    return RetentionResult(decision, decision.delete, len(doomed))
