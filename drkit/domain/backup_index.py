"""The backup index format: what a run's ``index.json`` holds, stored compactly. Pure.

A full index (:class:`StoredIndex`) is gzip (level 9, ``mtime=0``) of one-line JSON holding, per
object, only what cannot be derived: the logical path and the blob key are derived on reading
through :class:`~drkit.domain.layout.StoreLayout`, so the layout stays the one owner of keys. A run
whose objects equal those of the previous complete run stores a pointer (:class:`IndexPointer`)
naming that run's FULL index and the sha256 of its bytes. Readers resolve a pointer in one hop
(:func:`resolve_pointer`); a pointer to a pointer, or a target whose bytes changed, is an
:class:`~drkit.domain.errors.IntegrityError`. ``sha256`` and ``size`` are of the stored (possibly
encrypted) bytes, so every blob can be checked without the key.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError, field_validator

from drkit.domain.errors import ConfigError, IntegrityError
from drkit.domain.layout import StoreLayout, logical_path, parse_run_id
from drkit.domain.models import Model

INDEX_FORMAT: Final = "standby.backup.index/2"
"""``format`` of a stored full index (:class:`StoredIndex`)."""
POINTER_FORMAT: Final = "standby.backup.pointer/2"
"""``format`` of a stored pointer index (:class:`IndexPointer`)."""


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


_STORED: TypeAdapter[StoredIndex | IndexPointer] = TypeAdapter(
    Annotated[StoredIndex | IndexPointer, Field(discriminator="format")]
)


def _pack(model: Model) -> bytes:
    """Deterministic gzip of one-line JSON (sorted keys, ``None`` fields left out, ``mtime=0``)."""
    text = json.dumps(model.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _bad_index(key: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{key} is not a valid backup index: {why}",
        hint="this run cannot be restored; use an earlier run or run the backup again",
        context={"key": key},
    )


def encode_index(index: BackupIndex, layout: StoreLayout) -> bytes:
    """The stored bytes of a full index; ``ValueError`` if an entry's path or key is not derivable."""
    if index.same_as is not None:
        raise ValueError(f"run {index.run_id} resolves a pointer; store it with encode_pointer")
    entries = []
    for e in index.objects:
        path = logical_path(e.api_version, e.kind, e.namespace, e.name)
        key = layout.blob_key(index.site, index.app, e.address, encrypted=e.encrypted)
        if (path, key) != (e.path, e.key) or e.encrypted != (e.key_id is not None):
            raise ValueError(f"{e.path}: key {e.key} or path cannot be derived from the entry (got {key})")
        entries.append(StoredEntry(**e.model_dump(include=set(StoredEntry.model_fields))))
    return _pack(StoredIndex(**index.facts(), objects=tuple(entries)))


def encode_pointer(index: BackupIndex, *, target: str, target_sha256: str) -> bytes:
    """The stored bytes of a pointer: ``index``'s run facts, its objects being full index ``target``'s."""
    return _pack(
        IndexPointer(
            **index.facts(), same_as=target, same_as_sha256=target_sha256, objects=len(index.objects)
        )
    )


def decode_index(data: bytes, *, key: str, layout: StoreLayout) -> BackupIndex | IndexPointer:
    """Parse stored index bytes: a full index (keys and paths derived) or a pointer to resolve.

    :class:`IntegrityError` names ``key`` when the bytes are not a valid index.
    """
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        raise _bad_index(key, "not gzip data") from None
    try:
        stored = _STORED.validate_json(text)
    except ValidationError as error:
        raise _bad_index(key, str(error.errors()[0]["msg"])) from None
    if isinstance(stored, IndexPointer):
        return stored
    objects = []
    for e in stored.objects:
        try:
            path = logical_path(e.api_version, e.kind, e.namespace, e.name)
            blob = layout.blob_key(stored.site, stored.app, e.address, encrypted=e.key_id is not None)
        except (ValueError, ConfigError) as error:
            raise _bad_index(key, f"entry {e.kind} {e.namespace or ''}/{e.name}: {error}") from None
        objects.append(IndexEntry(**e.model_dump(), path=path, key=blob, encrypted=e.key_id is not None))
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
