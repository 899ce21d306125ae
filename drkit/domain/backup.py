"""The backup engine: the index model, the upload plan, restore order and blob verification. Pure.

A backup run goes (the I/O is the caller's):

1. LIST what :func:`drkit.domain.selection.plan_lists` asks for, keep :func:`select_objects`;
2. :func:`plan_backup` normalizes each object, renders canonical YAML, computes its content
   address and blob key, and lists only the blobs no earlier index knows (``known``, from
   :func:`known_blobs` of the previous complete index);
3. upload each :class:`Upload` with ``if_none_match=True`` (a blob is write-once: on ``Conflict`` the
   blob is already there from a run that was killed; read it back and :func:`entry_for_stored` it);
4. write the run's index to ``layout.index_key(...)`` LAST, then ``latest``: a full index
   (:func:`encode_index`), or, when the run's entries equal those of the previous complete run, a
   pointer to that run's full index (:func:`encode_pointer`).

Index checksums: ``sha256`` and ``size`` are of the **stored** bytes, so ``verify`` can check every
blob without the encryption key, and the index leaks no hash of a Secret's plaintext. ``address`` is
the content address (equal to ``sha256`` for plain blobs; an HMAC for encrypted ones).

Stored index: compact full indexes, and pointers for unchanged runs
--------------------------------------------------------------------
An unchanged nightly re-run uploads no blob, so its index is all it writes; at ~600 bytes of JSON
per object that index was 55% of the first run's bytes. Two measures bring it under 1%:

* **compact full index** (:class:`StoredIndex`): gzip (level 9, ``mtime=0``, so the bytes are a pure
  function of the content) of one-line JSON holding, per object, only what cannot be derived:
  ``api_version``, ``kind``, ``namespace``, ``name``, ``address``, ``sha256`` and ``size`` of the
  stored bytes, ``key_id`` (present iff encrypted) and ``stored_by``. The logical ``path`` is
  :func:`~drkit.domain.layout.logical_path` of the first four and the blob ``key`` is
  :meth:`~drkit.domain.layout.StoreLayout.blob_key` of the address and the encryption flag, so the
  layout stays the one owner of keys; :func:`encode_index` refuses an entry whose key or path would
  not round-trip. What remains is mostly the two digests (incompressible hex): ~90 bytes per object.
* **pointer index** (:class:`IndexPointer`): when a run's entries are the same set as those of the
  previous complete run, its index is its own run facts (times, status, warnings, metadata) plus
  ``same_as``, the run id of the **full** index holding the entries, and ``same_as_sha256``, the
  sha256 of that index's stored bytes: a few hundred bytes, whatever the number of objects.

Readers resolve a pointer in **one hop** (:func:`resolve_pointer`): a pointer always names a full
index (when the previous run is itself a pointer, the new pointer names *its* target), a pointer
reached through a pointer is an :class:`IntegrityError`, and so is a target whose bytes no longer
hash to ``same_as_sha256``. Reading any run costs at most two GETs. Retention keeps the run a kept
pointer names (:func:`drkit.domain.retention.plan_retention`), and blob GC works on resolved entries.

Delta indexes with a periodic full one were weighed and not taken: a changed night would still
cost a delta, reads would need the full index plus up to N deltas (more than two objects), and
retention would have to keep whole chains. With content-addressed blobs, a changed night writes a
compact full index (~9 KB per 100 objects), which the 2% target allows, and an unchanged night, by
far the common case for manifests, writes a pointer.

Restore order is data (:data:`RESTORE_ORDER`): namespaces, Secrets and ConfigMaps, PVs, PVCs,
VolumeReplications, then every other kind, then the app's workload (its CR), then Services and
Ingresses. Unknown kinds (ServiceAccounts, RBAC, NetworkPolicies, other CRs) go *before* the
workload: creating the workload starts the app, so whatever it may need must exist by then;
Services and Ingresses only expose it, so they come last, as in the operator's procedure.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

import yaml
from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError, field_validator

from drkit.domain import crypto
from drkit.domain.errors import ConfigError, IntegrityError
from drkit.domain.layout import RunId, StoreLayout, logical_path, parse_run_id
from drkit.domain.models import KindRef, Model
from drkit.domain.transforms import normalize

INDEX_FORMAT: Final = "standby.backup.index/2"
"""``format`` of a stored full index (:class:`StoredIndex`)."""
POINTER_FORMAT: Final = "standby.backup.pointer/2"
"""``format`` of a stored pointer index (:class:`IndexPointer`)."""
OTHER_KINDS = "*"
"""Placeholder in :data:`RESTORE_ORDER` for every kind not named elsewhere."""
WORKLOAD = "@workload"
"""Placeholder in :data:`RESTORE_ORDER` for the app's workload kind (its CR)."""
RESTORE_ORDER: tuple[tuple[str, ...], ...] = (
    ("Namespace",),
    ("Secret", "ConfigMap"),
    ("PersistentVolume",),
    ("PersistentVolumeClaim",),
    ("VolumeReplication",),
    (OTHER_KINDS,),
    (WORKLOAD,),
    ("Service", "Ingress"),
)


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
        entries.append(
            StoredEntry(
                api_version=e.api_version,
                kind=e.kind,
                namespace=e.namespace,
                name=e.name,
                address=e.address,
                sha256=e.sha256,
                size=e.size,
                key_id=e.key_id,
                stored_by=e.stored_by,
            )
        )
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


@dataclass(frozen=True)
class Upload:
    """A blob to write; ``data`` is never shown in a ``repr`` (it may be a plain Secret)."""

    key: str
    data: bytes = field(repr=False)
    path: str = ""


@dataclass(frozen=True)
class BackupPlan:
    """What one run must upload, and the index entries it will write."""

    run_id: RunId
    entries: tuple[IndexEntry, ...]
    uploads: tuple[Upload, ...]
    previous_run: str | None = None

    @property
    def bytes_to_upload(self) -> int:
        """Total size of the uploads."""
        return sum(len(u.data) for u in self.uploads)


T = TypeVar("T")


def restore_rank(kind: str, workload_kind: str | None, order: Sequence[Sequence[str]] = RESTORE_ORDER) -> int:
    """Position of ``kind`` in ``order``; the workload kind wins over a plain kind name."""
    other = len(order)
    for rank, kinds in enumerate(order):
        if WORKLOAD in kinds and workload_kind is not None and kind == workload_kind:
            return rank
        if OTHER_KINDS in kinds:
            other = rank
    for rank, kinds in enumerate(order):
        if kind in kinds:
            return rank
    return other


def sort_for_restore(
    items: Iterable[T],
    kind_of: Callable[[T], str],
    workload: KindRef | None,
    order: Sequence[Sequence[str]] = RESTORE_ORDER,
) -> list[T]:
    """``items`` in restore order; a stable sort, so items of one rank keep their order."""
    workload_kind = workload.kind if workload is not None else None
    return sorted(items, key=lambda item: restore_rank(kind_of(item), workload_kind, order))


_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML has it (about 5x faster); both emit the same bytes for these options
(checked by ``test_canonical_yaml_is_the_same_with_and_without_libyaml``)."""


def canonical_yaml(obj: Mapping[str, Any], *, dumper: type[yaml.SafeDumper] | None = None) -> bytes:
    """Deterministic YAML of a manifest (sorted keys, block style), the bytes that are hashed."""
    text: str = yaml.dump(
        dict(obj), Dumper=dumper or _DUMPER, sort_keys=True, default_flow_style=False, allow_unicode=True
    )
    return text.encode()


def known_blobs(indexes: Iterable[BackupIndex]) -> dict[str, IndexEntry]:
    """Blob key → entry for every blob referenced by ``indexes`` (earlier runs of the same app)."""
    known: dict[str, IndexEntry] = {}
    for index in indexes:
        for entry in index.objects:
            known.setdefault(entry.key, entry)
    return known


def plan_backup(
    objects: Iterable[Mapping[str, Any]],
    *,
    layout: StoreLayout,
    site: str,
    app: str,
    run_id: RunId,
    workload: KindRef | None,
    key: crypto.MasterKey | None = None,
    known: Mapping[str, IndexEntry] | None = None,
    previous_run: str | None = None,
    random: crypto.RandomBytes = os.urandom,
) -> BackupPlan:
    """Plan a run: every object gets an index entry; only blobs not in ``known`` are uploaded."""
    reuse = known or {}
    entries: list[IndexEntry] = []
    uploads: dict[str, Upload] = {}
    for obj in objects:
        clean = normalize(obj)
        meta = clean.get("metadata") or {}
        api_version, kind = str(clean.get("apiVersion", "")), str(clean.get("kind", ""))
        namespace, name = meta.get("namespace") or None, str(meta.get("name", ""))
        path = logical_path(api_version, kind, namespace, name)
        plaintext = canonical_yaml(clean)
        address = crypto.content_address(plaintext, path=path, key=key)
        blob_key = layout.blob_key(site, app, address, encrypted=key is not None)
        ident = {"api_version": api_version, "kind": kind, "namespace": namespace, "name": name, "path": path}
        if blob_key in reuse:
            entries.append(reuse[blob_key].model_copy(update=ident))
            continue
        if blob_key not in uploads:
            stored = (
                plaintext if key is None else crypto.encrypt(plaintext, key=key, path=path, random=random)
            )
            uploads[blob_key] = Upload(blob_key, stored, path)
        entries.append(entry_for_stored(ident, blob_key, address, uploads[blob_key].data, key, str(run_id)))
    ordered = sort_for_restore(sorted(entries, key=lambda e: e.path), lambda e: e.kind, workload)
    return BackupPlan(run_id, tuple(ordered), tuple(uploads.values()), previous_run)


def entry_for_stored(
    ident: Mapping[str, Any],
    blob_key: str,
    address: str,
    stored: bytes,
    key: crypto.MasterKey | None,
    run: str,
) -> IndexEntry:
    """The index entry of a blob from its stored bytes (also for a blob left by a killed run)."""
    return IndexEntry(
        **ident,
        key=blob_key,
        address=address,
        sha256=hashlib.sha256(stored).hexdigest(),
        size=len(stored),
        encrypted=key is not None,
        key_id=key.key_id if key is not None else None,
        stored_by=run,
    )


def build_index(
    plan: BackupPlan,
    *,
    app: str,
    site: str,
    started: datetime,
    finished: datetime,
    standby_version: str,
    cluster: str,
    kinds_listed: Iterable[str],
    warnings: Iterable[str] = (),
) -> BackupIndex:
    """The index of a run whose uploads all succeeded; ``partially-failed`` when there are warnings."""
    new = sum(1 for e in plan.entries if e.stored_by == str(plan.run_id))
    found = tuple(warnings)
    return BackupIndex(
        app=app,
        site=site,
        run_id=str(plan.run_id),
        started=started,
        finished=finished,
        objects=plan.entries,
        metadata=RunMetadata(
            standby_version=standby_version,
            cluster=cluster,
            kinds_listed=tuple(sorted(set(kinds_listed))),
            objects_new=new,
            objects_reused=len(plan.entries) - new,
            bytes_uploaded=plan.bytes_to_upload,
        ),
        previous_run=plan.previous_run,
        warnings=found,
        status="partially-failed" if found else "complete",
    )


def addressed_plaintext(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> bytes:
    """The plaintext of ``stored``, decrypted when ``entry`` is encrypted, checked against its address.

    The address is the sha256 of the plaintext, or its keyed HMAC when encrypted
    (:func:`~drkit.domain.crypto.content_address`): a blob that decrypts but is not the one the
    index names is refused too.
    """
    if not entry.encrypted:
        plaintext, address = stored, hashlib.sha256(stored).hexdigest()
    else:
        if key is None:
            raise IntegrityError(
                f"{entry.path}: the blob is encrypted with key id {entry.key_id}, but no key was given",
                hint=f"load the master key whose id is {entry.key_id}",
                context={"path": entry.path, "expected_key_id": entry.key_id},
            )
        plaintext = crypto.decrypt(stored, key=key, path=entry.path)
        address = crypto.content_address(plaintext, path=entry.path, key=key)
    if address != entry.address:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} does not match its address",
            hint="restore this object from another run",
            context={"key": entry.key, "path": entry.path},
        )
    return plaintext


def open_blob(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> dict[str, Any]:
    """Check ``stored`` against ``entry`` (size, sha256, decryption, address) and return the manifest."""
    if len(stored) != entry.size or hashlib.sha256(stored).hexdigest() != entry.sha256:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} does not match its index (size or sha256 differ)",
            hint="restore this object from another run, and check the object store",
            context={"path": entry.path, "key": entry.key},
        )
    plaintext = addressed_plaintext(entry, stored, key)
    loaded = yaml.safe_load(plaintext)
    if not isinstance(loaded, dict):
        raise IntegrityError(f"{entry.path}: blob {entry.key} is not a manifest", context={"key": entry.key})
    return loaded
