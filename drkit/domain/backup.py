"""The backup engine: the index model, the upload plan, restore order and blob verification. Pure.

A backup run goes (the I/O is the caller's):

1. LIST what :func:`drkit.domain.selection.plan_lists` asks for, keep :func:`select_objects`;
2. :func:`plan_backup` normalizes each object, renders canonical YAML, computes its content
   address and blob key, and lists only the blobs no earlier index knows (``known``, from
   :func:`known_blobs` of the previous complete index);
3. upload each :class:`Upload` with ``if_none_match=True`` (a blob is write-once: on ``Conflict`` the
   blob is already there from a run that was killed; read it back and :func:`entry_for_stored` it);
4. write :meth:`BackupIndex.to_json` to ``layout.index_key(...)`` LAST, then ``latest``.

Index checksums: ``sha256`` and ``size`` are of the **stored** bytes, so ``verify`` can check every
blob without the encryption key, and the index leaks no hash of a Secret's plaintext. ``address`` is
the content address (equal to ``sha256`` for plain blobs; an HMAC for encrypted ones).

Restore order is data (:data:`RESTORE_ORDER`): namespaces, Secrets and ConfigMaps, PVs, PVCs,
VolumeReplications, then every other kind, then the app's workload (its CR), then Services and
Ingresses. Unknown kinds (ServiceAccounts, RBAC, NetworkPolicies, other CRs) go *before* the
workload: creating the workload starts the app, so whatever it may need must exist by then;
Services and Ingresses only expose it, so they come last, as in the operator's procedure.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import yaml
from pydantic import AwareDatetime, Field, ValidationError, field_validator

from drkit.domain import crypto
from drkit.domain.errors import IntegrityError
from drkit.domain.layout import RunId, StoreLayout, logical_path, parse_run_id
from drkit.domain.models import KindRef, Model
from drkit.domain.transforms import normalize

INDEX_FORMAT_VERSION = 1
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
    """One object of a backup run and the blob holding it."""

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


class RunMetadata(Model):
    """Facts about how a run was made."""

    standby_version: str = Field(..., description="version of Standby that made the run")
    cluster: str = Field(..., description="kube context or cluster name the objects were read from")
    kinds_listed: tuple[str, ...] = Field(..., description="kinds the run listed, group/version/Kind")
    objects_new: int = Field(..., ge=0, description="objects whose blob this run uploaded")
    objects_reused: int = Field(..., ge=0, description="objects whose blob an earlier run had uploaded")
    bytes_uploaded: int = Field(..., ge=0, description="bytes of blobs this run uploaded")


class BackupIndex(Model):
    """The index of one backup run: written last, it is the run's completion marker."""

    format_version: Literal[1] = Field(1, description="index format version")
    app: str = Field(..., description="app name")
    site: str = Field(..., description="site the objects were read from")
    run_id: str = Field(..., description="run id, YYYYMMDDTHHMMSSZ-xxxxxx")
    started: AwareDatetime = Field(..., description="when the run started")
    finished: AwareDatetime = Field(..., description="when the index was built")
    objects: tuple[IndexEntry, ...] = Field(..., description="the objects, in restore order")
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

    def to_json(self) -> bytes:
        """Stable serialisation: sorted keys, two-space indent, UTF-8, final newline."""
        data = self.model_dump(mode="json")
        return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, key: str = "index.json") -> BackupIndex:
        """Parse an index; :class:`IntegrityError` names ``key`` when it is not a valid index."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            raise IntegrityError(
                f"{key} is not a valid backup index: {error.errors()[0]['msg']}",
                hint="this run cannot be restored; use an earlier run or run the backup again",
                context={"key": key},
            ) from None

    def blob_keys(self) -> frozenset[str]:
        """Every blob key this run references."""
        return frozenset(entry.key for entry in self.objects)


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


def canonical_yaml(obj: Mapping[str, Any]) -> bytes:
    """Deterministic YAML of a manifest (sorted keys, block style), the bytes that are hashed."""
    text: str = yaml.safe_dump(dict(obj), sort_keys=True, default_flow_style=False, allow_unicode=True)
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


def open_blob(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> dict[str, Any]:
    """Check ``stored`` against ``entry`` (size, sha256, decryption, address) and return the manifest."""
    if len(stored) != entry.size or hashlib.sha256(stored).hexdigest() != entry.sha256:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} does not match its index (size or sha256 differ)",
            hint="restore this object from another run, and check the object store",
            context={"path": entry.path, "key": entry.key},
        )
    if entry.encrypted:
        if key is None:
            raise IntegrityError(
                f"{entry.path}: the blob is encrypted with key id {entry.key_id}, but no key was given",
                hint=f"load the master key whose id is {entry.key_id}",
                context={"path": entry.path, "expected_key_id": entry.key_id},
            )
        plaintext = crypto.decrypt(stored, key=key, path=entry.path)
    else:
        plaintext = stored
        if hashlib.sha256(plaintext).hexdigest() != entry.address:
            raise IntegrityError(
                f"{entry.path}: blob {entry.key} does not match its address",
                hint="restore this object from another run",
                context={"key": entry.key},
            )
    loaded = yaml.safe_load(plaintext)
    if not isinstance(loaded, dict):
        raise IntegrityError(f"{entry.path}: blob {entry.key} is not a manifest", context={"key": entry.key})
    return loaded
