"""The backup index format: what a run's ``index.json`` holds, stored compactly. Pure.

A full index (:class:`StoredIndex`) is gzip (level 9, ``mtime=0``) of one-line JSON holding, per
object, only what cannot be derived: the logical path and the blob key are derived on reading
through :class:`~drkit.domain.layout.StoreLayout`, so the layout stays the one owner of keys. A run
whose objects equal those of the previous complete run stores a pointer (:class:`IndexPointer`)
naming that run's FULL index and the sha256 of its bytes. Readers resolve a pointer in one hop
(:func:`resolve_pointer`); a pointer to a pointer, or a target whose bytes changed, is an
:class:`~drkit.domain.errors.IntegrityError`. ``sha256`` and ``size`` are of the stored (possibly
encrypted) bytes, so every blob can be checked with the index.

With a master key the stored index (full or pointer) is sealed (:class:`SealedIndex`): the bytes
above are encrypted with :func:`~drkit.domain.crypto.encrypt` under the index's own logical path
(:func:`index_path`: app, site and run id), and an envelope keeps in clear only the format, app,
site, run id, status and key id, with a MAC (:func:`~drkit.domain.crypto.state_mac`, ``what="index"``,
bound to app, site and run id) over all of it. With a key, an unsealed index is refused; without
one, a sealed index cannot be read. Encrypted blobs of a sealed index's entries are bound to app,
site and path (blob format 2, :func:`seal_path`); entries of older runs (format 1) are bound to the
path only and are read only as an authenticated index lists them (their sha256 pinned by its MAC).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError, field_validator

from drkit.domain import crypto
from drkit.domain.errors import ConfigError, IntegrityError
from drkit.domain.layout import StoreLayout, logical_path, parse_run_id
from drkit.domain.model_base import Model

INDEX_FORMAT: Final = "standby.backup.index/2"
"""``format`` of a stored full index (:class:`StoredIndex`)."""
POINTER_FORMAT: Final = "standby.backup.pointer/2"
"""``format`` of a stored pointer index (:class:`IndexPointer`)."""
SEALED_FORMAT: Final = "standby.backup.sealed/3"
"""``format`` of a sealed index (:class:`SealedIndex`): a full index or pointer, encrypted and MACed."""
BLOB_FORMAT: Final = 2
"""Blob format of new encrypted blobs: sealed for app, site and path (:func:`seal_path`)."""

UNAUTHENTICATED: Final = (
    "backups are unauthenticated: no backup key is loaded, so whoever can write to the bucket can forge"
    " or roll back the index, `latest` and the blobs (load the key to seal and check them)"
)
"""The line every backup, restore and verify run without a key says."""


def seal_path(path: str, *, app: str, site: str) -> str:
    """What an encrypted blob of format 2 is bound to (its AAD and address input): app, site, path."""
    return f"standby/blob/v2\0{app}\0{site}\0{path}"


def index_path(app: str, site: str, run_id: str) -> str:
    """The logical path a sealed index's bytes are encrypted under (binds them to app, site and run)."""
    return f"standby/index/v3\0{app}\0{site}\0{run_id}"


class IndexEntry(Model):
    """One object of a backup run and the blob holding it (as read: ``path`` and ``key`` derived)."""

    api_version: str = Field(..., description="apiVersion of the object, e.g. v1")
    kind: str = Field(..., description="kind of the object, e.g. PersistentVolume")
    namespace: str | None = Field(None, description="namespace; empty for cluster-scoped objects")
    name: str = Field(..., description="name of the object")
    path: str = Field(..., description="logical path <group>/<version>/<kind>/<namespace|_cluster>/<name>")
    key: str = Field(..., description="object-store key of the blob holding the object")
    address: str = Field(..., description="content address: sha256 of the YAML, or HMAC when encrypted")
    sha256: str = Field(..., description="sha256 of the stored bytes (after encryption)")
    size: int = Field(..., ge=0, description="size of the stored bytes")
    encrypted: bool = Field(..., description="whether the blob is encrypted")
    key_id: str | None = Field(None, description="id of the master key that encrypted the blob")
    stored_by: str = Field(..., description="run id of the run that uploaded the blob")
    bound_to: str | None = Field(
        None,
        description="what an encrypted blob is bound to (seal_path, format 2); empty: its path only (format 1)",
    )


class StoredEntry(Model):
    """One object as a full index stores it: only what cannot be derived (no path, no key)."""

    api_version: str = Field(..., description="apiVersion of the object, e.g. v1")
    kind: str = Field(..., description="kind of the object, e.g. PersistentVolume")
    namespace: str | None = Field(None, description="namespace; absent for cluster-scoped objects")
    name: str = Field(..., description="name of the object")
    address: str = Field(..., description="content address; with key_id, gives the blob key")
    sha256: str = Field(..., description="sha256 of the stored bytes (after encryption)")
    size: int = Field(..., ge=0, description="size of the stored bytes")
    key_id: str | None = Field(
        None, description="id of the master key that encrypted the blob; absent: plain"
    )
    stored_by: str = Field(..., description="run id of the run that uploaded the blob")
    blob_format: Literal[2] | None = Field(
        None, description="2: the encrypted blob is bound to app, site and path; absent: to its path only"
    )


class RunMetadata(Model):
    """Facts about how a run was made."""

    standby_version: str = Field(..., description="version of Standby that made the run")
    cluster: str = Field(..., description="kube context or cluster name the objects were read from")
    kinds_listed: tuple[str, ...] = Field(..., description="kinds the run listed, group/version/Kind")
    objects_new: int = Field(..., ge=0, description="objects whose blob this run uploaded")
    objects_reused: int = Field(..., ge=0, description="objects whose blob an earlier run had uploaded")
    bytes_uploaded: int = Field(..., ge=0, description="bytes of blobs this run uploaded")


class RunFacts(Model):
    """What every index says about its own run, full index or pointer."""

    app: str = Field(..., description="app name")
    site: str = Field(..., description="site the objects were read from")
    run_id: str = Field(..., description="run id, YYYYMMDDTHHMMSSZ-xxxxxx")
    started: AwareDatetime = Field(..., description="when the run started")
    finished: AwareDatetime = Field(..., description="when the index was built")
    metadata: RunMetadata = Field(..., description="how the run was made")
    previous_run: str | None = Field(None, description="run whose index supplied the reused blobs")
    warnings: tuple[str, ...] = Field((), description="what could not be backed up (partial failure)")
    status: Literal["complete", "partially-failed"] = Field(..., description="complete unless warnings")

    @field_validator("run_id", "previous_run")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None:
            parse_run_id(value)
        return value

    def facts(self) -> dict[str, Any]:
        """The :class:`RunFacts` fields only, as model values."""
        return {name: getattr(self, name) for name in RunFacts.model_fields}


class BackupIndex(RunFacts):
    """The index of one backup run as readers see it: its objects, pointer resolved.

    Written last, the stored index is the run's completion marker. ``same_as`` is set when the run
    stored a pointer: its objects are those of the full index of run ``same_as``.
    """

    objects: tuple[IndexEntry, ...] = Field(..., description="the objects, in restore order")
    same_as: str | None = Field(None, description="run whose full index holds the objects (pointer runs)")

    @field_validator("same_as")
    @classmethod
    def _same_as(cls, value: str | None) -> str | None:
        if value is not None:
            parse_run_id(value)
        return value

    def blob_keys(self) -> frozenset[str]:
        """Every blob key this run references."""
        return frozenset(entry.key for entry in self.objects)


class StoredIndex(RunFacts):
    """A full index as stored (gzip JSON): the run facts and every object's :class:`StoredEntry`."""

    format: Literal["standby.backup.index/2"] = Field(INDEX_FORMAT, description="index format")
    objects: tuple[StoredEntry, ...] = Field(..., description="the objects, in restore order")


class IndexPointer(RunFacts):
    """A pointer index, stored for a run whose objects are those of an earlier run's full index."""

    format: Literal["standby.backup.pointer/2"] = Field(POINTER_FORMAT, description="pointer format")
    same_as: str = Field(..., description="run id of the FULL index holding this run's objects")
    same_as_sha256: str = Field(
        ..., pattern=r"^[0-9a-f]{64}$", description="sha256 of that full index's stored bytes"
    )
    objects: int = Field(..., ge=0, description="number of objects (those of the full index)")

    @field_validator("same_as")
    @classmethod
    def _same_as(cls, value: str) -> str:
        parse_run_id(value)
        return value


class SealedIndex(Model):
    """A full index or pointer sealed with a key: what stays in clear, the ciphertext, and the MAC."""

    format: Literal["standby.backup.sealed/3"] = Field(SEALED_FORMAT, description="sealed index format")
    app: str = Field(..., description="app name")
    site: str = Field(..., description="site the objects were read from")
    run_id: str = Field(..., description="run id")
    status: Literal["complete", "partially-failed"] = Field(..., description="complete unless warnings")
    key_id: str = Field(..., description="id of the master key that sealed and MACed the index")
    sealed: str = Field(..., description="base64 of the encrypted index bytes (crypto.encrypt, index_path)")
    mac: str = Field(..., description="state MAC (what=index; app, site, run) of every other field")

    def body(self) -> bytes:
        """The canonical bytes the MAC covers: every field but ``mac``."""
        return crypto.canonical_json(self.model_dump(mode="json", exclude={"mac"}))


_STORED: TypeAdapter[StoredIndex | IndexPointer] = TypeAdapter(
    Annotated[StoredIndex | IndexPointer, Field(discriminator="format")]
)


def _pack(model: Model) -> bytes:
    """Deterministic gzip of one-line JSON (sorted keys, ``None`` fields left out, ``mtime=0``)."""
    text = json.dumps(model.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _seal(
    data: bytes, facts: RunFacts, key: crypto.MasterKey | None, random: crypto.RandomBytes | None
) -> bytes:
    """``data`` as stored: as is without a key, else a :class:`SealedIndex` (encrypted, MACed)."""
    if key is None:
        return data
    path = index_path(facts.app, facts.site, facts.run_id)
    extra = {} if random is None else {"random": random}
    sealed = base64.b64encode(crypto.encrypt(data, key=key, path=path, **extra)).decode()
    clear = {
        "app": facts.app,
        "site": facts.site,
        "run_id": facts.run_id,
        "status": facts.status,
        "key_id": key.key_id,
        "sealed": sealed,
    }
    body = SealedIndex(**clear, mac="").body()
    mac = crypto.state_mac(
        key, body, what="index", context=index_context(facts.app, facts.site, facts.run_id)
    )
    return _pack(SealedIndex(**clear, mac=mac))


def index_context(app: str, site: str, run_id: str) -> dict[str, str]:
    """The MAC context of a run's index and of ``latest`` naming it."""
    return {"app": app, "site": site, "run": run_id}


def _bad_index(key: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{key} is not a valid backup index: {why}",
        hint="this run cannot be restored; use an earlier run or run the backup again",
        context={"key": key},
    )


def encode_index(
    index: BackupIndex,
    layout: StoreLayout,
    *,
    key: crypto.MasterKey | None = None,
    random: crypto.RandomBytes | None = None,
) -> bytes:
    """The stored bytes of a full index, sealed with ``key`` when given; ``ValueError`` if an entry's
    path, key or binding is not derivable."""
    if index.same_as is not None:
        raise ValueError(f"run {index.run_id} resolves a pointer; store it with encode_pointer")
    entries = []
    for e in index.objects:
        path = logical_path(e.api_version, e.kind, e.namespace, e.name)
        blob = layout.blob_key(index.site, index.app, e.address, encrypted=e.encrypted)
        bound = seal_path(path, app=index.app, site=index.site) if e.bound_to is not None else None
        if (path, blob) != (e.path, e.key) or e.encrypted != (e.key_id is not None) or bound != e.bound_to:
            raise ValueError(
                f"{e.path}: key {e.key}, path or binding cannot be derived from the entry (got {blob})"
            )
        fields = e.model_dump(include=set(StoredEntry.model_fields) - {"blob_format"})
        entries.append(StoredEntry(**fields, blob_format=BLOB_FORMAT if bound is not None else None))
    return _seal(_pack(StoredIndex(**index.facts(), objects=tuple(entries))), index, key, random)


def encode_pointer(
    index: BackupIndex,
    *,
    target: str,
    target_sha256: str,
    key: crypto.MasterKey | None = None,
    random: crypto.RandomBytes | None = None,
) -> bytes:
    """The stored bytes of a pointer: ``index``'s run facts, its objects being full index ``target``'s
    (sealed with ``key`` when given)."""
    pointer = IndexPointer(
        **index.facts(), same_as=target, same_as_sha256=target_sha256, objects=len(index.objects)
    )
    return _seal(_pack(pointer), index, key, random)


def _unseal(envelope: SealedIndex, *, key: str, secret: crypto.MasterKey | None, name: str) -> bytes:
    """The index bytes inside ``envelope``, its MAC checked first (refused with one line when it fails)."""
    if secret is None:
        raise IntegrityError(
            f"{name} is sealed with key id {envelope.key_id}, but no backup key is loaded",
            hint=f"load the master key whose id is {envelope.key_id} (STANDBY_BACKUP_KEY or the flow's key_source)",
            context={"key": key, "expected_key_id": envelope.key_id},
        )
    crypto.check_state_mac(
        secret,
        envelope.body(),
        envelope.mac,
        envelope.key_id,
        what="index",
        context=index_context(envelope.app, envelope.site, envelope.run_id),
        name=name,
    )
    try:
        blob = base64.b64decode(envelope.sealed, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_index(key, "the sealed bytes are not base64") from None
    try:
        return crypto.decrypt(blob, key=secret, path=index_path(envelope.app, envelope.site, envelope.run_id))
    except IntegrityError:
        raise IntegrityError(
            f"integrity check failed: {name}: the sealed index failed authentication (changed, or moved"
            " from another app, site or run)",
            hint=f"do not use {name}: check the object store for tampering and use another store's copy or run",
            context={"key": key},
        ) from None


def _parse(data: bytes, key: str) -> StoredIndex | IndexPointer | SealedIndex:
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        raise _bad_index(key, "not gzip data") from None
    try:
        head = json.loads(text)
    except ValueError:
        raise _bad_index(key, "not JSON") from None
    try:
        if isinstance(head, dict) and head.get("format") == SEALED_FORMAT:
            return SealedIndex.model_validate(head)
        return _STORED.validate_python(head)
    except ValidationError as error:
        raise _bad_index(key, str(error.errors()[0]["msg"])) from None


def decode_index(
    data: bytes,
    *,
    key: str,
    layout: StoreLayout,
    secret: crypto.MasterKey | None = None,
    name: str | None = None,
) -> BackupIndex | IndexPointer:
    """Parse stored index bytes: a full index (keys and paths derived) or a pointer to resolve.

    With ``secret`` (the master key or ring) the index must be sealed and its MAC must hold; an
    unsealed index is refused. Without it, a sealed index cannot be read. Every failure is an
    :class:`IntegrityError` naming ``name`` (the index and its store; ``key`` when not given).
    """
    name = name or key
    stored = _parse(data, key)
    if isinstance(stored, SealedIndex):
        inner = _parse(_unseal(stored, key=key, secret=secret, name=name), key)
        if isinstance(inner, SealedIndex) or (inner.app, inner.site, inner.run_id, inner.status) != (
            stored.app,
            stored.site,
            stored.run_id,
            stored.status,
        ):
            raise IntegrityError(
                f"integrity check failed: {name}: the sealed index does not match its envelope",
                hint=f"do not use {name}: check the object store for tampering",
                context={"key": key},
            )
        stored = inner
    elif secret is not None:
        raise IntegrityError(
            f"integrity check failed: {name} is not authenticated (written without a key, or before backups"
            " were sealed); with a key loaded it is refused",
            hint="run a new backup with the key (`standby backup run`), or read this run without the key"
            " if you trust whoever can write to the bucket",
            context={"key": key, "unsealed": True},
        )
    if isinstance(stored, IndexPointer):
        return stored
    objects = []
    for e in stored.objects:
        try:
            path = logical_path(e.api_version, e.kind, e.namespace, e.name)
            blob = layout.blob_key(stored.site, stored.app, e.address, encrypted=e.key_id is not None)
        except (ValueError, ConfigError) as error:
            raise _bad_index(key, f"entry {e.kind} {e.namespace or ''}/{e.name}: {error}") from None
        bound = seal_path(path, app=stored.app, site=stored.site) if e.blob_format == BLOB_FORMAT else None
        fields = e.model_dump(exclude={"blob_format"})
        objects.append(
            IndexEntry(**fields, path=path, key=blob, encrypted=e.key_id is not None, bound_to=bound)
        )
    return BackupIndex(**stored.facts(), objects=tuple(objects))


def resolve_pointer(
    pointer: IndexPointer, target: BackupIndex | IndexPointer, *, target_sha256: str, target_key: str
) -> BackupIndex:
    """The run ``pointer`` describes, with the objects of its ``target`` (read from ``target_key``).

    ``target_sha256`` is the sha256 of the target's stored bytes.

    One hop only: a target that is itself a pointer, belongs to another app or site, is another run
    than ``same_as``, or whose bytes do not hash to ``same_as_sha256`` is an :class:`IntegrityError`.
    """
    where = f"backup run {pointer.run_id} points at run {pointer.same_as} ({target_key})"
    hint = "that run's index was changed or replaced; verify the runs and run a new backup now"
    if isinstance(target, IndexPointer):
        raise IntegrityError(f"{where}, which is itself a pointer", hint=hint, context={"key": target_key})
    if target_sha256 != pointer.same_as_sha256:
        raise IntegrityError(
            f"{where}, whose index does not match the sha256 the pointer recorded (tampered or replaced)",
            hint=hint,
            context={"key": target_key, "run": pointer.run_id, "same_as": pointer.same_as},
        )
    if (target.run_id, target.app, target.site) != (pointer.same_as, pointer.app, pointer.site):
        raise IntegrityError(
            f"{where}, which holds run {target.run_id} of app {target.app} on site {target.site}",
            hint=hint,
            context={"key": target_key},
        )
    if len(target.objects) != pointer.objects:
        raise IntegrityError(
            f"{where}, which has {len(target.objects)} objects, not {pointer.objects}",
            hint=hint,
            context={"key": target_key},
        )
    return BackupIndex(**pointer.facts(), objects=target.objects, same_as=pointer.same_as)


def same_entries(a: Iterable[IndexEntry], b: Iterable[IndexEntry]) -> bool:
    """Whether two runs hold the same set of objects, each in the same blob (a pointer may be written)."""
    left, right = list(a), list(b)
    return len(left) == len(right) and set(left) == set(right)
