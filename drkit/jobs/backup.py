"""Backup use cases, without Prefect: run a backup, list and read runs, apply GFS retention.

:func:`back_up` is the entry point the flow and the CLI share; :func:`run_backup` does one run
against given adapters. A run is written to every store of the app's sites that answers (the
source's own first); it is complete on a store when that store holds its index, and its summary
says so per store (:class:`StoreOutcome`). How a run is laid out and why is in
docs/architecture.md; catching up a store that missed runs is :mod:`drkit.jobs.backup_sync`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
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
    UNAUTHENTICATED,
    BackupIndex,
    IndexEntry,
    IndexPointer,
    decode_index,
    encode_index,
    encode_pointer,
    index_context,
    resolve_pointer,
    same_entries,
)
from drkit.domain.backup_plan import BackupPlan, Upload, build_index, known_blobs, plan_backup
from drkit.domain.blobs import addressed_plaintext
from drkit.domain.errors import ConfigError, Conflict, IntegrityError, NotFound, StandbyError, TransientError
from drkit.domain.keyring import parse_ring
from drkit.domain.layout import RunId, StoreLayout, new_run_id, parse_run_id
from drkit.domain.models import ProtectedApp, Site
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


@dataclass(frozen=True)
class StoreOutcome:
    """What one backup run left in one store: complete there (its index is there) or not, and why."""

    store: str
    complete: bool
    reason: str = ""
    latest: bool = False
    index_key: str = ""
    index_bytes: int = 0
    bytes_uploaded: int = 0
    previous_run: str | None = None
    same_as: str | None = None

    def line(self) -> str:
        """One line: ``store of site-b: complete (...)`` or ``store of site-b: NOT complete: why``."""
        if not self.complete:
            return f"store of {self.store}: NOT complete (no index there): {self.reason}"
        if not self.latest:
            why = f": {self.reason}" if self.reason else ""
            return f"store of {self.store}: complete, `latest` not updated{why}"
        return f"store of {self.store}: complete ({self.bytes_uploaded} bytes uploaded, index {self.index_key})"


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
    stores: tuple[StoreOutcome, ...] = ()
    """Per store the run was meant for (the source's own first): complete there or not, and why."""
    source_store: str = ""
    """The store of the source site (the first one written)."""
    notices: tuple[str, ...] = ()
    """What the operator must know that is not a warning of the run: a previous run not reused (its
    integrity check failed), backups unauthenticated (no key)."""

    @property
    def complete_on(self) -> tuple[str, ...]:
        """The stores that hold this run's index."""
        return tuple(o.store for o in self.stores if o.complete)

    @property
    def missed(self) -> tuple[StoreOutcome, ...]:
        """The stores that did not take this run whole (no index, or ``latest`` not updated)."""
        return tuple(o for o in self.stores if not o.complete or (self.status == "complete" and not o.latest))

    def store_lines(self) -> list[str]:
        """Per store, complete or not and why; a loud line when the source's own store missed the run."""
        if len(self.stores) < 2 and not self.missed:
            return []
        out = [o.line() for o in self.stores]
        if any(o.store == self.source_store for o in self.missed) and self.complete_on:
            out.append(
                f"WARNING: the store of {self.source_store} (the source's own) did not take run {self.run_id};"
                f" it is complete on the store of {', '.join(self.complete_on)} only, which a restore there reads"
            )
        if self.missed:
            out.append(
                f"catch up: the next `standby backup run --app {self.app}` writes to every store again;"
                f" `standby backup verify --app {self.app}` copies this run into the stores that missed it"
            )
        return out

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
        out += [f"note: {n}" for n in self.notices]
        return out + self.store_lines()


# ----------------------------------------------------------------------------------------- reads


LATEST_FORMAT = "standby.backup.latest/2"
"""``format`` of an authenticated ``latest`` (JSON with a MAC); without a key ``latest`` is the run id."""


def _store_name(label: str) -> str:
    return f" in the store of {label}" if label else ""


def latest_bytes(site: str, app: str, run_id: str, key: crypto.MasterKey | None) -> bytes:
    """What ``latest`` holds: the run id, or with a key JSON of it with its MAC (``what="latest"``)."""
    if key is None:
        return f"{run_id}\n".encode()
    body = {"format": LATEST_FORMAT, "run_id": run_id}
    mac = crypto.state_mac(key, crypto.canonical_json(body), what="latest", context=index_context(app, site, run_id))
    return crypto.canonical_json({**body, "key_id": key.key_id, "mac": mac}) + b"\n"


def write_latest(
    store: ObjectStore, layout: StoreLayout, site: str, app: str, run_id: str, key: crypto.MasterKey | None
) -> None:
    """Point ``latest`` at ``run_id`` (authenticated with ``key``)."""
    store.put(layout.latest_key(site, app), latest_bytes(site, app, run_id, key), content_type="text/plain")


def read_latest(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    *,
    key: crypto.MasterKey | None = None,
    label: str = "",
) -> str | None:
    """The run id ``latest`` names, or ``None`` when the app has no complete run yet.

    With ``key``, ``latest`` must carry a MAC that holds for this app, site and run: a plaintext or
    forged ``latest`` is an :class:`IntegrityError` naming it and the store (``label``).
    """
    where = layout.latest_key(site, app)
    try:
        data = store.get(where)
    except NotFound as error:
        if error.context.get("key") == where:
            return None
        raise
    name = f"`latest` of app {app} (site {site}){_store_name(label)}"
    text = data.decode(errors="replace").strip()
    if not text.startswith("{"):
        if key is not None:
            raise IntegrityError(
                f"integrity check failed: {name} is not authenticated (written without a key, or before backups"
                " were sealed); with a key loaded it is refused",
                hint=f"run a new backup with the key (`standby backup run --app {app}`), or give the run id"
                " to restore explicitly",
                context={"key": where, "store": label, "unsealed": True},
            )
        parse_run_id(text)
        return text
    try:
        found = json.loads(text)
        run_id, mac, mac_key_id = str(found["run_id"]), str(found["mac"]), str(found["key_id"])
        if found.get("format") != LATEST_FORMAT:
            raise ValueError(found.get("format"))
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(
            f"integrity check failed: {name} is not a valid `latest`",
            hint=f"run a new backup (`standby backup run --app {app}`), or give the run id explicitly",
            context={"key": where, "store": label},
        ) from None
    parse_run_id(run_id)
    if key is not None:
        body = crypto.canonical_json({"format": LATEST_FORMAT, "run_id": run_id})
        crypto.check_state_mac(key, body, mac, mac_key_id, what="latest",
                               context=index_context(app, site, run_id), name=name)  # fmt: skip
    return run_id


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


def _decode(
    data: bytes,
    layout: StoreLayout,
    site: str,
    app: str,
    run_id: str,
    *,
    key: crypto.MasterKey | None,
    label: str,
) -> BackupIndex | IndexPointer:
    where = layout.index_key(site, app, run_id)
    name = f"the index of run {run_id} of app {app} (site {site}){_store_name(label)}"
    found = decode_index(data, key=where, layout=layout, secret=key, name=name)
    if (found.run_id, found.app, found.site) != (run_id, app, site):
        raise IntegrityError(
            f"{where} holds the index of run {found.run_id} of app {found.app} on site {found.site}",
            hint="this run cannot be trusted; use another run and check who writes to the bucket",
            context={"key": where, "run": run_id},
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
    key: crypto.MasterKey | None = None,
    label: str = "",
) -> LoadedRun:
    """Read run ``run_id``'s index and, when it is a pointer, the full index it names (one hop).

    ``full`` caches full indexes by run id (with their bytes' sha256) across calls; the pointer's
    recorded sha256 is checked against the cached one too. With ``key`` every index read must be
    sealed and authenticated (:func:`~drkit.domain.backup_index.decode_index`); ``label`` names the
    store in errors.
    """
    cache = {} if full is None else full
    data = _get_index(store, layout, site, app, run_id)
    found = _decode(data, layout, site, app, run_id, key=key, label=label)
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
    target = _decode(target_data, layout, site, app, found.same_as, key=key, label=label)
    digest = hashlib.sha256(target_data).hexdigest()
    resolved = resolve_pointer(found, target, target_sha256=digest, target_key=target_key)
    if isinstance(target, BackupIndex):
        cache[found.same_as] = (target, digest)
    return LoadedRun(resolved, found.same_as, digest)


def read_index(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    run_id: str,
    *,
    key: crypto.MasterKey | None = None,
    label: str = "",
) -> BackupIndex:
    """The index of one run, pointer resolved (authenticated with ``key``); :class:`NotFound` names
    the run when it has none."""
    return load_run(store, layout, site, app, run_id, key=key, label=label).index


def resolve_run(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    run_id: str | None,
    *,
    key: crypto.MasterKey | None = None,
    label: str = "",
) -> str:
    """``run_id``, or the newest complete run (``latest``); :class:`NotFound` when there is none.

    With ``key``, ``latest`` must be authenticated, and a ``latest`` naming an older run than the
    newest complete run whose index is authenticated in this store is refused (a rollback must not
    restore old Secrets): :func:`check_not_rolled_back`.
    """
    if run_id:
        parse_run_id(run_id)
        return run_id
    found = read_latest(store, layout, site, app, key=key, label=label)
    if found is None:
        raise NotFound(
            f"app {app} has no complete backup on site {site} yet",
            hint=f"run `standby backup run --app {app} --site {site}` first, or `standby backup verify --app {app}`"
            " to copy the newest complete run from another store",
            context={"site": site, "app": app},
        )
    if key is not None:
        check_not_rolled_back(store, layout, site, app, found, key=key, label=label)
    return found


def missing_key_id(error: IntegrityError, key: crypto.MasterKey | None) -> str | None:
    """The key id a sealed index or ``latest`` needs, when ``error`` only says that the loaded key
    (ring) is not it (no key, or another one); ``None`` for any other integrity failure."""
    needed = error.context.get("expected_key_id")
    if needed and (key is None or needed not in key.key_ids):
        return str(needed)
    return None


def check_not_rolled_back(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    latest: str,
    *,
    key: crypto.MasterKey,
    label: str = "",
) -> None:
    """Refuse ``latest`` when a complete run started later (a later second) is authenticated in the
    store (one LIST; every index newer than ``latest`` is read, normally none). Runs that fail their
    checks are skipped."""
    since = parse_run_id(latest).started  # runs of the same second are not ordered by their id: not counted
    newer = [run for run, _ in iter_index_keys(store, layout, site, app) if parse_run_id(run).started > since]
    for run in sorted(newer, key=parse_run_id, reverse=True):
        try:
            index = read_index(store, layout, site, app, run, key=key, label=label)
        except (IntegrityError, NotFound):
            continue
        if index.status == "complete":
            raise IntegrityError(
                f"integrity check failed: `latest` of app {app} (site {site}){_store_name(label)} names run"
                f" {latest}, older than run {run}, complete and authenticated there (rolled back?);"
                " refused, nothing restored",
                hint=f"check who writes to the bucket; `standby backup verify --app {app}` moves `latest` to the"
                f" newest complete run, or give the run id (--run {run}) explicitly",
                context={"store": label, "latest": latest, "newest": run},
            )


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


def list_runs(
    store: ObjectStore,
    layout: StoreLayout,
    site: str,
    app: str,
    *,
    key: crypto.MasterKey | None = None,
    label: str = "",
    refused: list[tuple[str, IntegrityError]] | None = None,
) -> list[BackupIndex]:
    """The indexes of every finished run of ``app``, oldest first, pointers resolved (authenticated
    with ``key``).

    Each full index is read once: pointer runs reuse the one they name (its sha256 still checked).
    With ``refused``, a run whose index fails its checks is left out and appended there (run id,
    error); without it the first such error is raised.
    """
    full: dict[str, tuple[BackupIndex, str]] = {}
    out: list[BackupIndex] = []
    for run, _ in iter_index_keys(store, layout, site, app):
        try:
            out.append(load_run(store, layout, site, app, run, full=full, key=key, label=label).index)
        except IntegrityError as error:
            if refused is None:
                raise
            refused.append((run, error))
    return out


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
                notices.append(f"store of {label}: the previous run was written without a key (before backups were"
                               " sealed): not reused, every object is uploaded again")  # fmt: skip
            else:
                notices.append(f"previous run not reused: {error.message}")
        except StandbyError as error:
            failed[label] = error
    return held, failed


def fetch_blobs(source: StoreRef, wanted: list[tuple[str, IndexEntry]], *, workers: int = 8) -> dict[str, bytes]:
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
    cluster: ClusterApi,
    store: ObjectStore | Sequence[StoreRef],
    *,
    key: crypto.MasterKey | None,
    clock: Clock,
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
    """
    targets = backup_targets(site, store)
    started = clock.now()
    run_id: RunId = new_run_id(started, random(3))
    selection, kinds, calls = list_objects(cluster, app, page_size=page_size)
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
        workload=app.workload.kind,
        key=key,
        known=known_blobs([before.index]) if before is not None else {},
        previous_run=before.index.run_id if before is not None else None,
        random=random,
        order=app.restore.order,
    )
    facts: dict[str, Any] = {"app": app.name, "site": site.name, "started": started, "cluster": cluster.site,
                             "standby_version": standby_version(), "kinds_listed": kinds,
                             "warnings": selection.warnings}  # fmt: skip
    outcomes: dict[str, StoreOutcome] = {}
    first: _Written | None = None
    written: list[str] = []
    for ref in answering:
        name = store_label(ref)
        told = progress if len(targets) == 1 else _labelled(progress, name)
        try:
            mine = held[name]
            store_plan = plan if ref is lead else plan_for_store(
                plan, ref, known_blobs([mine.index]) if mine is not None else {}, source=lead, site=site.name,
                app=app.name, previous_run=mine.index.run_id if mine is not None else None, workers=workers)  # fmt: skip
            done = _write_run(ref, store_plan, held[name], key=key, facts=facts, workers=workers,
                              progress=told, clock=clock, written=written)  # fmt: skip
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
    Retention is a separate step (:func:`apply_retention` with ``request.retention``), run under
    the app's concurrency slot.
    """
    app = world.config.app(request.app)
    site = world.config.site(request.site or world.placement(app.name).primary)
    cluster = world.bundle(site.name).cluster
    return run_backup(app, site, cluster, app_stores(world, app, site.name), key=key, clock=clock, progress=progress)


# --------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionResult:
    """What retention decided and deleted."""

    decision: RetentionDecision
    runs_deleted: tuple[str, ...]
    blobs_deleted: int


def _retention_runs(
    store: ObjectStore, layout: StoreLayout, site: str, app: str, key: crypto.MasterKey | None
) -> list[BackupIndex]:
    refused: list[tuple[str, IntegrityError]] = []
    runs = list_runs(store, layout, site, app, key=key, refused=refused)
    for run, error in refused:  # unsealed (older) runs are pruned by their own index; anything else stops
        try:
            runs.append(read_index(store, layout, site, app, run))
        except IntegrityError:
            raise error from None
    return sorted(runs, key=lambda i: parse_run_id(i.run_id))


def apply_retention(
    store: ObjectStore,
    site: Site,
    app: ProtectedApp,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    tz: tzinfo | None = None,
    layout: StoreLayout | None = None,
    key: crypto.MasterKey | None = None,
) -> RetentionResult:
    """GFS retention of ``app``'s runs, then the blobs no kept run references.

    Only a ``complete`` run counts as complete; the newest complete run is never deleted. Must not
    run while a backup of the same app runs (its new blobs are in no index yet): the flows hold one
    concurrency slot per app for both. ``layout`` is the store's (the site's own by default):
    each store of a run is pruned on its own. With ``key``, sealed indexes are read (and checked);
    a run an older Standby wrote unsealed is still pruned by its own index (read, not trusted: it
    only decides what is deleted), so an upgrade keeps its history until retention lets it go.
    """
    layout = layout or StoreLayout(site.s3.prefix)
    indexes = {i.run_id: i for i in _retention_runs(store, layout, site.name, app.name, key)}
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
