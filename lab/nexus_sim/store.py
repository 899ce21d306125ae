"""Repository state kept on the volume: repositories, components, assets and the read-only flag.

The in-memory maps are only an index rebuilt by replaying the volume log; every change is appended
to the log (and flushed) before it is applied in memory, so what a client saw acknowledged is on the
device.  Asset bytes stay on the device and are read back on download.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import logging
import mimetypes
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from lab.nexus_sim.device import DeviceIOError, DeviceReadOnly
from lab.nexus_sim.volume import Record, Remount, ReplayReport, Volume, VolumeFull

LOG = logging.getLogger("nexus_sim.store")

WRITE_POLICIES = ("ALLOW", "ALLOW_ONCE", "DENY")
CONTENT_DISPOSITIONS = ("INLINE", "ATTACHMENT")
_NAME_RE = re.compile(r"^[a-zA-Z0-9\-][a-zA-Z0-9_\-.]*$")
NAME_RULE = (
    "Only letters, digits, underscores(_), hyphens(-), and dots(.) are allowed and may not "
    "start with underscore or dot."
)


class StoreError(Exception):
    """A request-level failure with the HTTP status Nexus would answer."""

    status = 500

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(StoreError):
    """404."""

    status = 404


class BadRequest(StoreError):
    """400, optionally with a Nexus ``ValidationErrorXO`` list."""

    status = 400


class Malformed(StoreError):
    """422 (malformed id, missing required parameter)."""

    status = 422


class Unavailable(StoreError):
    """503: frozen (read-only) or shutting down."""

    status = 503


class InsufficientStorage(StoreError):
    """507: the volume is full; nothing was written."""

    status = 507


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_id(repository: str) -> str:
    """Opaque id like Nexus' ``RepositoryItemIDXO``: unpadded urlsafe base64 of ``repo:internal-id``."""
    raw = f"{repository}:{uuid.uuid4().hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_id(item_id: str) -> tuple[str, str]:
    """Return ``(repository, internal)`` or raise :class:`Malformed`."""
    try:
        decoded = base64.urlsafe_b64decode(item_id + "=" * (-len(item_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Malformed("Malformed ID") from exc
    repo, sep, internal = decoded.partition(":")
    if not sep or not repo or not internal:
        raise Malformed("Malformed ID")
    return repo, internal


def normalise_path(path: str) -> str:
    """``a//b/./c`` -> ``/a/b/c``; reject ``..`` and empty names."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise BadRequest(f"Invalid path: {path!r}", [{"id": "*", "message": f"Invalid path: {path}"}])
    return "/" + "/".join(parts)


@dataclass
class Repository:
    """A raw hosted repository."""

    name: str
    online: bool = True
    blob_store: str = "default"
    strict_content_type: bool = False
    write_policy: str = "ALLOW"
    content_disposition: str = "ATTACHMENT"
    created: str = field(default_factory=_now)


@dataclass
class Asset:
    """One stored file; ``payload_offset`` points at its bytes on the device."""

    id: str
    component_id: str
    repository: str
    path: str
    content_type: str
    size: int
    sha1: str
    sha256: str
    md5: str
    sha512: str
    created: str
    uploader: str
    uploader_ip: str
    payload_offset: int = 0


@dataclass
class Component:
    """A raw component: exactly one asset, named by its path."""

    id: str
    repository: str
    group: str
    name: str
    asset_id: str


@dataclass
class ReadOnlyState:
    """Mirror of Nexus' ``ReadOnlyState``."""

    frozen: bool = False
    summary_reason: str = ""
    system_initiated: bool = False


def validate_raw_hosted(body: Any, existing: set[str]) -> Repository:
    """Turn a ``RawHostedRepositoryApiRequest`` body into a Repository or raise BadRequest(400)."""
    errors: list[dict[str, str]] = []
    if not isinstance(body, dict):
        raise BadRequest("Invalid body", [{"id": "*", "message": "Request body must be a JSON object"}])
    name = body.get("name")
    if not isinstance(name, str) or not name:
        errors.append({"id": "PARAMETER name", "message": "must not be empty"})
    elif not _NAME_RE.match(name):
        errors.append({"id": "PARAMETER name", "message": NAME_RULE})
    elif name.lower() in existing:
        errors.append(
            {"id": "PARAMETER name", "message": "Name is already used, must be unique (ignoring case)"}
        )
    online = body.get("online", True)
    if not isinstance(online, bool):
        errors.append({"id": "PARAMETER online", "message": "must not be null"})
    storage = body.get("storage")
    policy = "ALLOW"
    blob_store = "default"
    strict = False
    if not isinstance(storage, dict):
        errors.append({"id": "PARAMETER storage", "message": "must not be null"})
    else:
        blob_store = storage.get("blobStoreName") or ""
        if not isinstance(blob_store, str) or not blob_store:
            errors.append({"id": "PARAMETER storage.blobStoreName", "message": "must not be empty"})
        elif blob_store != "default":
            errors.append(
                {
                    "id": "PARAMETER storage.blobStoreName",
                    "message": f"Blob store '{blob_store}' does not exist (only 'default')",
                }
            )
        strict = bool(storage.get("strictContentTypeValidation", False))
        policy = str(storage.get("writePolicy") or "").upper()
        if policy not in WRITE_POLICIES:
            errors.append(
                {
                    "id": "PARAMETER storage.writePolicy",
                    "message": f"must be one of {', '.join(WRITE_POLICIES)}",
                }
            )
    raw = body.get("raw") or {}
    disposition = str(raw.get("contentDisposition", "ATTACHMENT") if isinstance(raw, dict) else "").upper()
    if disposition not in CONTENT_DISPOSITIONS:
        errors.append(
            {
                "id": "PARAMETER raw.contentDisposition",
                "message": f"must be one of {', '.join(CONTENT_DISPOSITIONS)}",
            }
        )
    if errors:
        raise BadRequest(errors[0]["message"], errors)
    return Repository(
        name=str(name),
        online=bool(online),
        blob_store=str(blob_store),
        strict_content_type=strict,
        write_policy=policy,
        content_disposition=disposition,
    )


@dataclass(frozen=True)
class SearchQuery:
    """Asset search filters (the subset a raw repository uses)."""

    repository: str | None = None
    name: str | None = None
    group: str | None = None
    format: str | None = None
    keyword: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    md5: str | None = None
    sha512: str | None = None


def _glob(pattern: str, value: str) -> bool:
    """Case-insensitive match with ``*`` wildcards, ignoring a leading slash on either side."""
    return fnmatch.fnmatchcase(value.lstrip("/").lower(), pattern.lstrip("/").lower())


class Store:
    """Thread-safe repository manager over a :class:`Volume`."""

    def __init__(self, volume: Volume, remount: Callable[[], Volume] | None = None) -> None:
        """``remount`` opens a new connection to the volume (see :class:`Remount`); none for a file."""
        self.mounted = Remount(volume, remount, self._rebuild)
        self.lock = threading.RLock()
        self.repos: dict[str, Repository] = {}
        self.components: dict[str, Component] = {}
        self.assets: dict[str, Asset] = {}
        self.by_path: dict[tuple[str, str], str] = {}
        self.read_only = ReadOnlyState()
        self.closed = False
        self.last_error: str | None = None
        self.device_read_only = False
        self.replay_report: ReplayReport | None = None

    @property
    def volume(self) -> Volume:
        """The mounted volume (a new one after the cluster fenced the last)."""
        return self.mounted.volume

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> ReplayReport:
        """Open the volume (formatting a zeroed device) and rebuild the index from the log."""
        with self.lock:
            self.volume.open()
            self.replay_report = self.volume.replay(self._apply)
            return self.replay_report

    def _rebuild(self, volume: Volume) -> int:
        """Forget the index and rebuild it from ``volume`` (a new mount); return its record count."""
        self.repos.clear()
        self.components.clear()
        self.assets.clear()
        self.by_path.clear()
        self.read_only = ReadOnlyState()
        self.device_read_only = False
        self.replay_report = volume.replay(self._apply)
        return self.replay_report.records

    def close(self) -> None:
        """Stop accepting requests and close the device (flushes)."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.volume.device.close()

    # ------------------------------------------------------------------ log application
    def _apply(self, record: Record) -> None:
        meta = record.meta
        op = meta.get("op")
        if op == "repo.create":
            repo = Repository(**meta["repo"])
            self.repos[repo.name] = repo
        elif op == "repo.delete":
            name = meta["name"]
            self.repos.pop(name, None)
            for comp_id in [c.id for c in self.components.values() if c.repository == name]:
                self._drop_component(comp_id)
        elif op == "asset.put":
            asset = Asset(**meta["asset"], payload_offset=record.payload_offset)
            comp = Component(**meta["component"])
            old_id = self.by_path.get((asset.repository, asset.path))
            if old_id and old_id != comp.id:
                self._drop_component(old_id)
            self.components[comp.id] = comp
            self.assets[asset.id] = asset
            self.by_path[(asset.repository, asset.path)] = comp.id
        elif op == "component.delete":
            self._drop_component(meta["id"])
        elif op == "readonly":
            self.read_only = ReadOnlyState(
                frozen=bool(meta["frozen"]), summary_reason=meta.get("reason", ""), system_initiated=False
            )
        else:
            LOG.warning("replay: skipping record %d with unknown op %r", record.seq, op)

    def _drop_component(self, comp_id: str) -> None:
        comp = self.components.pop(comp_id, None)
        if comp is None:
            return
        asset = self.assets.pop(comp.asset_id, None)
        if asset is not None:
            self.by_path.pop((asset.repository, asset.path), None)

    def _commit(self, meta: dict[str, Any], payload: bytes = b"") -> Record:
        """Append to the volume then apply; map device failures to HTTP-level errors."""
        if self.closed:
            raise Unavailable("Nexus is shutting down")
        try:
            record = self.mounted.run(lambda volume: volume.append(meta, payload))
        except VolumeFull as exc:
            self.last_error = str(exc)
            LOG.error("%s", exc)
            raise InsufficientStorage(f"Blob store 'default' cannot store the request: {exc}") from exc
        except DeviceIOError as exc:
            self.last_error = str(exc)
            self.device_read_only = isinstance(exc, DeviceReadOnly)
            LOG.error("volume write failed: %s", exc)
            raise StoreError(f"Volume write failed: {exc}") from exc
        self.device_read_only = False
        self._apply(record)
        return record

    def _require_writable(self) -> None:
        if self.closed:
            raise Unavailable("Nexus is shutting down")
        if self.read_only.frozen:
            raise Unavailable("Nexus Repository Manager is in read-only mode")

    # ------------------------------------------------------------------ read-only
    def freeze(self, reason: str) -> bool:
        """Freeze; False when already frozen (the API answers 404)."""
        with self.lock:
            if self.read_only.frozen:
                return False
            self._commit({"op": "readonly", "frozen": True, "reason": reason, "at": _now()})
            return True

    def release(self) -> bool:
        """Release; False when not frozen."""
        with self.lock:
            if not self.read_only.frozen:
                return False
            self._commit({"op": "readonly", "frozen": False, "reason": "", "at": _now()})
            return True

    # ------------------------------------------------------------------ repositories
    def create_repo(self, body: Any) -> Repository:
        """Validate and create a raw hosted repository."""
        with self.lock:
            self._require_writable()
            repo = validate_raw_hosted(body, {n.lower() for n in self.repos})
            self._commit({"op": "repo.create", "repo": asdict(repo)})
            return repo

    def delete_repo(self, name: str) -> None:
        """Delete a repository and everything in it (one tombstone record)."""
        with self.lock:
            if name not in self.repos:
                raise NotFound(f"Repository not found: {name}")
            self._require_writable()
            self._commit({"op": "repo.delete", "name": name, "at": _now()})

    def repo(self, name: str) -> Repository:
        """Look a repository up or raise NotFound."""
        repo = self.repos.get(name)
        if repo is None:
            raise NotFound(f"Repository not found: {name}")
        return repo

    # ------------------------------------------------------------------ assets
    def check_put(self, repo_name: str, path: str) -> None:
        """Raise what :meth:`put_asset` would raise for policy/state reasons, without writing."""
        repo = self.repo(repo_name)
        self._require_writable()
        if repo.write_policy == "DENY":
            raise BadRequest(f"Repository is read only: {repo_name}")
        if repo.write_policy == "ALLOW_ONCE" and (repo_name, path) in self.by_path:
            raise BadRequest(f"Repository does not allow updating assets: {repo_name}")

    def put_asset(self, repo_name: str, path: str, data: bytes, uploader: str, ip: str) -> Asset:
        """Store ``data`` at ``path`` (one raw component per asset)."""
        path = normalise_path(path)
        with self.lock:
            self.check_put(repo_name, path)
            old_comp = self.by_path.get((repo_name, path))
            comp_id = old_comp or make_id(repo_name)
            asset_id = self.components[old_comp].asset_id if old_comp else make_id(repo_name)
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            asset = {
                "id": asset_id,
                "component_id": comp_id,
                "repository": repo_name,
                "path": path,
                "content_type": content_type,
                "size": len(data),
                "sha1": hashlib.sha1(data).hexdigest(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "md5": hashlib.md5(data).hexdigest(),
                "sha512": hashlib.sha512(data).hexdigest(),
                "created": _now(),
                "uploader": uploader,
                "uploader_ip": ip,
            }
            group = path.rsplit("/", 1)[0] or "/"
            component = {
                "id": comp_id,
                "repository": repo_name,
                "group": group,
                "name": path,
                "asset_id": asset_id,
            }
            self._commit({"op": "asset.put", "asset": asset, "component": component}, data)
            return self.assets[asset_id]

    def get_asset(self, repo_name: str, path: str) -> tuple[Asset, bytes]:
        """Return the asset and its bytes read from the device."""
        with self.lock:
            self.repo(repo_name)
            try:
                key = (repo_name, normalise_path(path))
            except BadRequest as exc:
                raise NotFound(f"Not found: {path}") from exc

            def read(volume: Volume) -> tuple[Asset, bytes]:
                comp_id = self.by_path.get(key)
                if comp_id is None:
                    raise NotFound(f"Not found: {path}")
                asset = self.assets[self.components[comp_id].asset_id]
                return asset, volume.read_payload(asset.payload_offset, asset.size)

            try:
                return self.mounted.run(read)
            except DeviceIOError as exc:
                raise StoreError(f"Volume read failed: {exc}") from exc

    def search(self, query: SearchQuery) -> list[Asset]:
        """Assets matching every given filter, ordered by repository then path."""
        with self.lock:
            found = []
            for asset in self.assets.values():
                comp = self.components[asset.component_id]
                checks = (
                    (query.repository, lambda v, a=asset: v == a.repository),
                    (query.format, lambda v: v.lower() == "raw"),
                    (query.name, lambda v, c=comp: _glob(v, c.name)),
                    (query.group, lambda v, c=comp: _glob(v, c.group)),
                    (query.keyword, lambda v, a=asset: v.strip("*").lower() in a.path.lower()),
                    (query.sha1, lambda v, a=asset: v.lower() == a.sha1),
                    (query.sha256, lambda v, a=asset: v.lower() == a.sha256),
                    (query.md5, lambda v, a=asset: v.lower() == a.md5),
                    (query.sha512, lambda v, a=asset: v.lower() == a.sha512),
                )
                if all(value is None or test(value) for value, test in checks):
                    found.append(asset)
            return sorted(found, key=lambda a: (a.repository, a.path))

    def components_of(self, repo_name: str) -> list[Component]:
        """Components of one repository ordered by name."""
        with self.lock:
            self.repo(repo_name)
            return sorted(
                (c for c in self.components.values() if c.repository == repo_name), key=lambda c: c.name
            )

    def component(self, comp_id: str) -> Component:
        """Look a component up by its external id (422 malformed, 404 unknown)."""
        parse_id(comp_id)
        comp = self.components.get(comp_id)
        if comp is None:
            raise NotFound("Component not found")
        return comp

    def delete_component(self, comp_id: str) -> None:
        """Write a tombstone for the component."""
        with self.lock:
            self.component(comp_id)
            self._require_writable()
            self._commit({"op": "component.delete", "id": comp_id, "at": _now()})
