"""Backup use cases, without Prefect: run a backup into every store of the app's sites.

:func:`back_up` is the entry point the flow and the CLI share; :func:`run_backup` does one run
against given adapters. A run is written to every store of the app's sites that answers (the
source's own first); it is complete on a store when that store holds its index, and its summary
says so per store (:class:`~drkit.jobs.backup_summary.StoreOutcome`). How a run is laid out and why
is in docs/architecture.md. Reading stored runs is :mod:`drkit.jobs.backup_runs`, GFS retention
:mod:`drkit.jobs.backup_retention`, catching up a store that missed runs :mod:`drkit.jobs.backup_sync`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

from drkit.adapters.clock import Clock
from drkit.adapters.kube import ClusterApi
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.opennebula import OneFrontend
from drkit.adapters.runner import hide_from_commands
from drkit.domain import crypto
from drkit.domain.backup_index import (
    UNAUTHENTICATED,
    BackupIndex,
    IndexEntry,
    encode_index,
    encode_pointer,
    same_entries,
)
from drkit.domain.backup_plan import BackupPlan, Upload, build_index, known_blobs, plan_backup
from drkit.domain.blobs import addressed_plaintext
from drkit.domain.errors import ConfigError, Conflict, IntegrityError, StandbyError
from drkit.domain.keyring import parse_ring
from drkit.domain.layout import RunId, StoreLayout, new_run_id
from drkit.domain.models import ProtectedApp, Site
from drkit.jobs.backup_listing import _refuse_plain_secrets, list_app
from drkit.jobs.backup_runs import LoadedRun, load_run, read_latest, write_latest
from drkit.jobs.backup_summary import BackupSummary, StoreOutcome
from drkit.jobs.progress import Progress as Progress  # re-exported for the tasks
from drkit.jobs.requests import KEY_ENV, BackupRequest
from drkit.jobs.world import StoreRef, World


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
    """Parse a master key ring from ``text`` (``None`` or empty: no key), the one format of every
    route (:mod:`drkit.domain.keyring`: the current key first, then older ones, comma-separated;
    weak key text refused); errors name ``source``, never the value."""
    if text is None or not text.strip():
        return None
    try:
        return parse_ring(text)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error.message}", hint=error.hint, context={"source": source}) from None


def key_from_env(var: str = KEY_ENV, environ: Mapping[str, str] | None = None) -> crypto.MasterKey | None:
    """The master key in environment variable ``var``, or ``None`` when it is unset or empty."""
    env = os.environ if environ is None else environ
    hide_from_commands(var)  # a --key-env name: never passed to rbd or python3
    return key_from_text(env.get(var), source=f"environment variable {var}")


# --------------------------------------------------------------------------------------- results


def store_label(ref: StoreRef) -> str:
    """How a store is named to the operator: the sites that use it, ``site-a`` or ``site-a/site-b``."""
    return "/".join(ref.sites)


# ------------------------------------------------------------------------------------------ backup


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


def backup_targets(site: Site, store: ObjectStore | Sequence[StoreRef]) -> list[StoreRef]:
    """The stores a run writes to, in order: ``store`` alone (the site's own layout), or the refs given."""
    if isinstance(store, Sequence):
        return list(store)
    return [StoreRef(site.name, (site.name,), store, StoreLayout(site.s3.prefix))]


def app_stores(world: World, app: ProtectedApp, source: str, *, spare: bool = True) -> list[StoreRef]:
    """Every distinct store of the app's sites (and of ``source``), the store of ``source`` first.

    Sites sharing endpoint, bucket and prefix share one store, written once. With ``spare`` (the
    nightly backup), every store but the source's is a spare copy (:meth:`World.spare`).
    """
    sites = {source, app.home_site, app.secondary_site}
    refs = [ref for ref in world.stores(first=source) if sites & set(ref.sites)]
    if not spare:
        return refs
    return refs[:1] + [world.spare(ref) for ref in refs[1:]]  # a store that does not answer: caught up later


def _hold(
    targets: list[StoreRef], site: str, app: str, key: crypto.MasterKey | None, notices: list[str]
) -> tuple[dict[str, LoadedRun | None], dict[str, StandbyError]]:
    """Each answering store's newest complete run (``latest``), and why the others did not answer.

    A previous run that fails its integrity checks (or, with a key, is not authenticated) is not
    reused: the store is written as if it had no run yet, and ``notices`` says why.
    """
    held: dict[str, LoadedRun | None] = {}
    failed: dict[str, StandbyError] = {}
    for ref in targets:
        label = store_label(ref)
        try:
            previous = read_latest(ref.store, ref.layout, site, app, key=key, label=label)
            held[label] = (
                load_run(ref.store, ref.layout, site, app, previous, key=key, label=label)
                if previous is not None
                else None
            )
        except IntegrityError as error:
            held[label] = None
            if error.context.get("unsealed"):
                notices.append(
                    f"store of {label}: the previous run was written without a key (before backups were"
                    " sealed): not reused, every object is uploaded again"
                )
            else:
                notices.append(f"previous run not reused: {error.message}")
        except StandbyError as error:
            failed[label] = error
    return held, failed


def fetch_blobs(
    source: StoreRef, wanted: list[tuple[str, IndexEntry]], *, workers: int = 8
) -> dict[str, bytes]:
    """The stored bytes of each ``(key, entry)`` of ``wanted``, read from ``source``'s store at the
    entry's key and checked against its recorded sha256 and size; returned by ``key`` (the key the
    bytes are copied to in another store)."""

    def get(entry: IndexEntry) -> bytes:
        data = source.store.get(entry.key)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(
                f"{entry.path}: blob {entry.key} in the store of {store_label(source)} does not match its"
                " recorded checksum; it cannot be copied to another store",
                hint="run `standby backup verify` to name every bad blob, then run a new backup",
                context={"key": entry.key, "store": store_label(source)},
            )
        return data

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = list(pool.map(lambda item: get(item[1]), wanted))
    return {key: data for (key, _), data in zip(wanted, found, strict=True)}


def plan_for_store(
    plan: BackupPlan,
    ref: StoreRef,
    known: Mapping[str, IndexEntry],
    *,
    source: StoreRef,
    site: str,
    app: str,
    previous_run: str | None,
    workers: int = 8,
) -> BackupPlan:
    """``plan`` (keyed in ``source``'s store) as another store ``ref`` must take it.

    Blobs ``ref`` already holds (``known``: blob key → entry, from its own indexes) are reused as
    recorded there; blobs the plan sealed (its uploads) are written with the same bytes, sealed
    once; every other blob is copied from ``source``'s store, its checksum checked.
    """
    sealed = {u.key: u for u in plan.uploads}
    entries: list[IndexEntry] = []
    uploads: dict[str, Upload] = {}
    copies: list[tuple[str, IndexEntry]] = []
    for entry in plan.entries:
        key = ref.layout.blob_key(site, app, entry.address, encrypted=entry.encrypted)
        if key in known:
            ident = entry.model_dump(include={"api_version", "kind", "namespace", "name", "path"})
            entries.append(known[key].model_copy(update=ident))
            continue
        entries.append(entry.model_copy(update={"key": key}))
        if entry.key in sealed:
            uploads.setdefault(key, Upload(key, sealed[entry.key].data, entry.path))
        elif key not in uploads:
            copies.append((key, entry))
            uploads[key] = Upload(key, b"", entry.path)  # filled below (the order is kept)
    fetched = fetch_blobs(source, copies, workers=workers) if copies else {}
    stored = tuple(Upload(u.key, fetched[u.key], u.path) if u.key in fetched else u for u in uploads.values())
    return BackupPlan(plan.run_id, tuple(entries), stored, previous_run)


@dataclass(frozen=True)
class _Written:
    index: BackupIndex
    outcome: StoreOutcome


def _write_run(
    ref: StoreRef,
    plan: BackupPlan,
    before: LoadedRun | None,
    *,
    key: crypto.MasterKey | None,
    facts: dict[str, Any],
    workers: int,
    progress: Progress,
    clock: Clock,
    written: list[str],
) -> _Written:
    """Blobs, then the index (the store's completion marker), then ``latest`` of a complete run."""
    site, app = facts["site"], facts["app"]
    plan = upload_blobs(ref.store, plan, key, workers=workers, progress=progress)
    index = build_index(plan, finished=clock.now(), **facts)
    index_key = ref.layout.index_key(site, app, plan.run_id)
    same_as: str | None = None
    if before is not None and same_entries(index.objects, before.index.objects):
        same_as = before.full_run
        data = encode_pointer(index, target=before.full_run, target_sha256=before.full_sha256, key=key)
    else:
        data = encode_index(index, ref.layout, key=key)
    ref.store.put(index_key, data, if_none_match=True, content_type="application/gzip")
    written.append(store_label(ref))
    if index.status == "complete":
        write_latest(ref.store, ref.layout, site, app, str(plan.run_id), key)
    outcome = StoreOutcome(
        store=store_label(ref),
        complete=True,
        latest=index.status == "complete",
        index_key=index_key,
        index_bytes=len(data),
        bytes_uploaded=index.metadata.bytes_uploaded,
        previous_run=plan.previous_run,
        same_as=same_as,
    )
    return _Written(index, outcome)


def run_backup(
    app: ProtectedApp,
    site: Site,
    cluster: ClusterApi | None,
    store: ObjectStore | Sequence[StoreRef],
    *,
    key: crypto.MasterKey | None,
    clock: Clock,
    frontend: OneFrontend | None = None,
    progress: Progress = _no_progress,
    random: crypto.RandomBytes = os.urandom,
    workers: int = 8,
    page_size: int = 500,
) -> BackupSummary:
    """Back up ``app`` from ``site`` into ``store`` (one store), or into each store of a list.

    LIST each kind once (a kind that cannot be listed makes the run ``partially-failed``; a
    transient failure is raised for the caller to retry), refuse Secrets without a key, seal each
    new blob once (planned against the first store that answers: the source's own, normally),
    then, store after store: its blobs, its index (the store's completion marker), and for a
    complete run ``latest``. A store that does not answer, or fails part-way, is left without the
    run's index and named in :attr:`BackupSummary.stores` with the reason; the run goes on with
    the others. Only when no store took the run is the first store's error raised.

    A VM app (``app.opennebula``) is read from ``frontend`` instead of ``cluster``: its VMs' records
    (:func:`~drkit.jobs.opennebula_vms.list_vms`) are planned, sealed and indexed the same way.
    """
    targets = backup_targets(site, store)
    started = clock.now()
    run_id: RunId = new_run_id(started, random(3))
    selection, kinds, calls = list_app(app, site, cluster, frontend, page_size)
    if key is None:
        _refuse_plain_secrets(selection, app, site.name)
    notices: list[str] = []
    held, failed = _hold(targets, site.name, app.name, key, notices)
    answering = [ref for ref in targets if store_label(ref) in held]
    if not answering:
        raise failed[store_label(targets[0])]
    lead = answering[0]
    before = held[store_label(lead)]
    plan = plan_backup(
        selection.objects,
        layout=lead.layout,
        site=site.name,
        app=app.name,
        run_id=run_id,
        workload=app.workload.kind if app.workload is not None else None,
        key=key,
        known=known_blobs([before.index]) if before is not None else {},
        previous_run=before.index.run_id if before is not None else None,
        random=random,
        order=app.restore.order,
    )
    facts: dict[str, Any] = {
        "app": app.name,
        "site": site.name,
        "started": started,
        "cluster": cluster.site if cluster is not None else site.name,
        "standby_version": standby_version(),
        "kinds_listed": kinds,
        "warnings": selection.warnings,
    }
    outcomes: dict[str, StoreOutcome] = {}
    first: _Written | None = None
    written: list[str] = []
    for ref in answering:
        name = store_label(ref)
        told = progress if len(targets) == 1 else _labelled(progress, name)
        try:
            mine = held[name]
            store_plan = (
                plan
                if ref is lead
                else plan_for_store(
                    plan,
                    ref,
                    known_blobs([mine.index]) if mine is not None else {},
                    source=lead,
                    site=site.name,
                    app=app.name,
                    previous_run=mine.index.run_id if mine is not None else None,
                    workers=workers,
                )
            )
            done = _write_run(
                ref,
                store_plan,
                held[name],
                key=key,
                facts=facts,
                workers=workers,
                progress=told,
                clock=clock,
                written=written,
            )
        except StandbyError as error:
            failed[name] = error
            outcomes[name] = StoreOutcome(store=name, complete=name in written, reason=str(error))
            continue
        outcomes[name] = done.outcome
        first = first or done
    if first is None:
        raise failed[store_label(answering[0])]
    for name, missed in failed.items():
        outcomes.setdefault(name, StoreOutcome(store=name, complete=False, reason=str(missed)))
    index, lead_outcome = first.index, first.outcome
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
        index_key=lead_outcome.index_key,
        key_id=key.key_id if key is not None else None,
        previous_run=lead_outcome.previous_run,
        list_calls=calls,
        index_bytes=lead_outcome.index_bytes,
        same_as=lead_outcome.same_as,
        stores=tuple(outcomes[store_label(ref)] for ref in targets),
        source_store=store_label(targets[0]),
        notices=tuple(notices) + (() if key is not None else (UNAUTHENTICATED,)),
    )


def _labelled(progress: Progress, label: str) -> Progress:
    def report(done: int, total: int, message: str) -> None:
        progress(done, total, f"store of {label}: {message}")

    return report


def back_up(
    world: World,
    request: BackupRequest,
    *,
    key: crypto.MasterKey | None,
    clock: Clock,
    progress: Progress = _no_progress,
) -> BackupSummary:
    """The backup use case (flow and CLI): ``request`` in ``world``.

    The site is ``request.site``, or the app's current primary (:meth:`World.placement`). The run
    is written to every store of the app's sites (:func:`app_stores`), the source's own first.
    Retention is a separate step (:func:`~drkit.jobs.backup_retention.apply_retention` with ``request.retention``), run under
    the app's concurrency slot.
    """
    app = world.config.app(request.app)
    site = world.config.site(request.site or world.placement(app.name).primary)
    b, vm = world.bundle(site.name), app.opennebula is not None
    return run_backup(
        app,
        site,
        None if vm else b.cluster,
        app_stores(world, app, site.name),
        key=key,
        clock=clock,
        progress=progress,
        frontend=b.opennebula if vm else None,
    )
