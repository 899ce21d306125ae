"""Reading stored backup runs, without Prefect: ``latest`` (written and read, authenticated with the
key), a run's index with its pointer resolved (:func:`load_run`, :func:`read_index`), the run to
restore (:func:`resolve_run`, refusing a rolled-back ``latest``) and every finished run of an app
(:func:`list_runs`). What is sealed and checked is in docs/architecture.md, "Authenticated backups".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.backup_index import BackupIndex, IndexPointer, decode_index, index_context, resolve_pointer
from drkit.domain.errors import IntegrityError, NotFound
from drkit.domain.layout import StoreLayout, parse_run_id

LATEST_FORMAT = "standby.backup.latest/2"
"""``format`` of an authenticated ``latest`` (JSON with a MAC); without a key ``latest`` is the run id."""


def _store_name(label: str) -> str:
    return f" in the store of {label}" if label else ""


def latest_bytes(site: str, app: str, run_id: str, key: crypto.MasterKey | None) -> bytes:
    """What ``latest`` holds: the run id, or with a key JSON of it with its MAC (``what="latest"``)."""
    if key is None:
        return f"{run_id}\n".encode()
    body = {"format": LATEST_FORMAT, "run_id": run_id}
    mac = crypto.state_mac(
        key, crypto.canonical_json(body), what="latest", context=index_context(app, site, run_id)
    )
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
        crypto.check_state_mac(
            key, body, mac, mac_key_id, what="latest", context=index_context(app, site, run_id), name=name
        )
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
