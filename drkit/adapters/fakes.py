"""In-memory fakes of the adapters, with explicit fault knobs. Used by tests and the demo.

Each fake raises the same error types, with the same messages, as its real adapter, so a flow
tested on the fake handles the real failures.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drkit.adapters.kube import KindInfo, kind_of
from drkit.adapters.objectstore import (
    ObjectInfo,
    bucket_missing,
    changed_since_read,
    exists_already,
    key_missing,
    unreachable,
)
from drkit.adapters.rbd import RETRYABLE_EXIT_CODES
from drkit.domain.errors import (
    CommandFailed,
    CommandTimedOut,
    Conflict,
    NotFound,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.models import KindRef
from drkit.domain.selection import LabelSelector


class FakeObjectStore:
    """:class:`drkit.adapters.objectstore.ObjectStore` in a dict.

    Fault knobs (set them at any time):

    * ``unreachable``: every call raises :class:`TransientError` naming the endpoint;
    * ``bucket_exists=False``: every call raises :class:`NotFound` naming the bucket;
    * ``fail_put_after=N``: the first N puts succeed, every later put raises :class:`TransientError`
      (``None`` disables it); ``puts`` counts the puts attempted.
    """

    def __init__(
        self,
        *,
        site: str = "site-a",
        bucket: str = "standby",
        endpoint: str = "memory://fake-s3",
        page_size: int = 1000,
        fail_put_after: int | None = None,
        unreachable: bool = False,
        bucket_exists: bool = True,
    ) -> None:
        self.site = site
        self.bucket = bucket
        self.endpoint = endpoint
        self.page_size = page_size
        self.fail_put_after = fail_put_after
        self.unreachable = unreachable
        self.bucket_exists = bucket_exists
        self.puts = 0
        self.list_pages = 0
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeObjectStore(site={self.site!r}, bucket={self.bucket!r}, objects={len(self.objects)})"

    def _check(self) -> None:
        if self.unreachable:
            raise unreachable(self.endpoint, self.site, "connection refused (fake: unreachable=True)")
        if not self.bucket_exists:
            raise bucket_missing(self.bucket, self.endpoint, self.site)

    @staticmethod
    def _etag(data: bytes) -> str:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Store ``data``; the ``fail_put_after`` knob makes later puts fail."""
        with self._lock:
            self._check()
            self.puts += 1
            if self.fail_put_after is not None and self.puts > self.fail_put_after:
                raise unreachable(self.endpoint, self.site, f"put #{self.puts} failed (fake: fail_put_after)")
            if if_none_match and key in self.objects:
                raise exists_already(key, self.bucket, self.endpoint, self.site)
            if if_match is not None and (key not in self.objects or self._etag(self.objects[key]) != if_match):
                raise changed_since_read(key, self.bucket, self.endpoint, self.site)
            self.objects[key] = bytes(data)
            return self._etag(data)

    def get(self, key: str) -> bytes:
        """The stored bytes, or :class:`NotFound` naming the key."""
        return self.read(key)[0]

    def read(self, key: str) -> tuple[bytes, str]:
        """The stored bytes and their ETag, or :class:`NotFound` naming the key."""
        with self._lock:
            self._check()
            if key not in self.objects:
                raise key_missing(key, self.bucket, self.endpoint, self.site)
            return self.objects[key], self._etag(self.objects[key])

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag, or ``None``."""
        with self._lock:
            self._check()
            data = self.objects.get(key)
            return None if data is None else ObjectInfo(key, len(data), self._etag(data))

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return self.head(key) is not None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, fetched ``page_size`` at a time like S3."""
        after = ""
        while True:
            with self._lock:
                self._check()
                self.list_pages += 1
                keys = sorted(k for k in self.objects if k.startswith(prefix) and k > after)[: self.page_size]
                page = [ObjectInfo(k, len(self.objects[k]), self._etag(self.objects[k])) for k in keys]
            yield from page
            if len(page) < self.page_size:
                return
            after = page[-1].key

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; missing keys are ignored."""
        doomed = [*keys]
        with self._lock:
            self._check()
            for key in doomed:
                self.objects.pop(key, None)


# --------------------------------------------------------------------------------------- cluster

_BUILTIN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Pod"): ("pods", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("replication.storage.openshift.io/v1alpha1", "VolumeReplication"): ("volumereplications", True),
    ("replication.storage.openshift.io/v1alpha1", "VolumeReplicationClass"): (
        "volumereplicationclasses",
        False,
    ),
    ("operator.alaudadevops.io/v1alpha1", "Nexus"): ("nexus", True),
}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


class FakeCluster:
    """:class:`drkit.adapters.kube.ClusterApi` in memory, with the real adapter's errors.

    Served kinds are the usual built-ins plus VolumeReplication and the Nexus CR; add more with
    :meth:`serve`. Objects get a uid, a resourceVersion and a creationTimestamp like on a real server.

    Fault knobs (set them at any time):

    * ``fail_next(n, status=503)``: the next ``n`` calls raise :class:`TransientError` (as a 5xx);
    * ``unlistable``: kind names whose LIST answers 403 (:class:`PreconditionFailed`, Velero's
      "cannot list" partial failure);
    * ``bind_pvcs`` (default true): a created PVC whose ``spec.volumeName`` names an existing PV is
      ``Bound`` at once, and so is that PV;
    * ``unreachable``: every call raises :class:`TransientError` (the apiserver does not answer);
    * ``controllers``: callables run on the cluster before each call, as controllers reconcile in
      the background (they edit ``objects`` directly and are not counted as requests).

    ``requests`` counts every call, ``calls`` counts them by verb, ``list_pages`` counts LIST pages.
    """

    def __init__(self, *, site: str = "site-a", bind_pvcs: bool = True) -> None:
        self.site = site
        self.bind_pvcs = bind_pvcs
        self.kinds: dict[tuple[str, str], tuple[str, bool]] = dict(_BUILTIN_KINDS)
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.unlistable: set[str] = set()
        self.requests = 0
        self.list_pages = 0
        self.calls: Counter[str] = Counter()
        self._failures: list[int] = []
        self._version = 0
        self._lock = threading.RLock()
        self.unreachable = False
        self.controllers: list[Callable[[FakeCluster], None]] = []
        self._reconciling = False

    def __repr__(self) -> str:
        return f"FakeCluster(site={self.site!r}, objects={len(self.objects)})"

    # ------------------------------------------------------------------------------------- knobs
    def serve(self, kind: KindRef, plural: str, *, namespaced: bool = True) -> None:
        """Serve one more kind (a CRD being installed)."""
        self.kinds[(kind.api_version, kind.kind)] = (plural, namespaced)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Make the next ``count`` calls fail with HTTP ``status`` (5xx → :class:`TransientError`)."""
        self._failures.extend([status] * count)

    def seed(self, *objects: Mapping[str, Any]) -> None:
        """Create objects without counting requests or firing faults (test setup)."""
        for obj in objects:
            self._store_new(dict(obj))

    # ---------------------------------------------------------------------------------- plumbing
    def _enter(self, verb: str, what: str) -> None:
        self.requests += 1
        self.calls[verb] += 1
        if self.unreachable:
            raise TransientError(
                f"{what} on {self.site}: apiserver unreachable (ConnectTimeoutError)",
                hint=f"check site {self.site}'s apiserver; the call is retried",
                context={"site": self.site, "object": what},
            )
        if self.controllers and not self._reconciling:
            self._reconciling = True
            try:
                for controller in self.controllers:
                    controller(self)
            finally:
                self._reconciling = False
        if self._failures:
            status = self._failures.pop(0)
            ctx = {"site": self.site, "object": what}
            if status in (401, 403):
                raise PreconditionFailed(
                    f"{what} on {self.site}: {status} Forbidden",
                    hint=f"check the credentials of site {self.site}",
                    context=ctx,
                )
            raise TransientError(
                f"{what} on {self.site}: {status} injected fault",
                hint="the apiserver failed; the call is retried",
                context=ctx,
            )

    def _info(self, kind: KindRef) -> tuple[str, bool]:
        found = self.kinds.get((kind.api_version, kind.kind))
        if found is None:
            raise NotFound(
                f"kind {kind} on {self.site}: kind not served (fake)",
                hint="install its CRD",
                context={"site": self.site, "object": f"kind {kind}"},
            )
        return found

    @staticmethod
    def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj.get("metadata") or {}
        return (str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))

    def _where(self, verb: str, kind: str, name: str, namespace: str | None) -> str:
        return f"{verb} {kind} {namespace + '/' if namespace else ''}{name}"

    def _store_new(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = KindRef.model_validate(
            {"group": obj["apiVersion"].rpartition("/")[0], "version": obj["apiVersion"].rpartition("/")[2],
             "kind": obj["kind"]}
        )  # fmt: skip
        _, namespaced = self._info(kind)
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        if not namespaced:
            meta.pop("namespace", None)
        self._version += 1
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(self._version)
        meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
        self.objects[self._ident(body)] = body
        self._bind(body)
        return copy.deepcopy(body)

    def _bind(self, obj: dict[str, Any]) -> None:
        if not self.bind_pvcs or obj.get("kind") != "PersistentVolumeClaim":
            return
        volume = (obj.get("spec") or {}).get("volumeName")
        pv = self.objects.get(("v1", "PersistentVolume", "", str(volume)))
        if volume and pv is not None:
            obj["status"] = {"phase": "Bound"}
            pv["status"] = {"phase": "Bound"}

    # ---------------------------------------------------------------------------------- protocol
    def discover(self, kind: KindRef) -> KindInfo:
        """See :class:`ClusterApi`."""
        with self._lock:
            self._enter("discover", f"kind {kind}")
            plural, namespaced = self._info(kind)
            return KindInfo(kind=kind, plural=plural, namespaced=namespaced)

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> builtins.list[dict[str, Any]]:
        """See :class:`ClusterApi`; counts one request per page of ``limit``."""
        with self._lock:
            what = f"list {kind} in {namespace or 'all namespaces'}"
            _, namespaced = self._info(kind)
            if kind.kind in self.unlistable:
                self._enter("list", what)
                raise PreconditionFailed(
                    f"{what} on {self.site}: 403 Forbidden (fake: unlistable)",
                    hint=f"check the credentials of site {self.site}",
                    context={"site": self.site, "object": what},
                )
            selector = LabelSelector.parse(label_selector)
            matching = [
                copy.deepcopy(o)
                for key, o in sorted(self.objects.items())
                if key[:2] == (kind.api_version, kind.kind)
                and (not namespace or not namespaced or key[2] == namespace)
                and selector.matches((o.get("metadata") or {}).get("labels"))
            ]
            pages = max(1, -(-len(matching) // max(1, limit)))
            for _ in range(pages):
                self._enter("list", what)
                self.list_pages += 1
            return matching

    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        """See :class:`ClusterApi`."""
        with self._lock:
            what = self._where("get", kind.kind, name, namespace)
            self._enter("get", what)
            _, namespaced = self._info(kind)
            found = self.objects.get(
                (kind.api_version, kind.kind, namespace or "" if namespaced else "", name)
            )
            if found is None:
                raise NotFound(f"{what} on {self.site}: 404 not found", context={"site": self.site})
            return copy.deepcopy(found)

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """See :class:`ClusterApi`."""
        with self._lock:
            meta = obj.get("metadata") or {}
            what = self._where("create", str(obj.get("kind")), str(meta.get("name")), meta.get("namespace"))
            self._enter("create", what)
            ident = self._ident(obj)
            _, namespaced = self._info(kind_of(obj))
            if not namespaced:
                ident = (*ident[:2], "", ident[3])
            if ident in self.objects:
                raise Conflict(
                    f"{what} on {self.site}: 409 already exists",
                    hint="re-read the object and retry",
                    context={"site": self.site},
                )
            if namespaced and ("v1", "Namespace", "", ident[2]) not in self.objects:
                raise NotFound(f"{what} on {self.site}: 404 namespace {ident[2]} not found")
            if dry_run:
                return copy.deepcopy(obj)
            return self._store_new(dict(obj))

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """See :class:`ClusterApi`."""
        with self._lock:
            meta = obj.get("metadata") or {}
            what = self._where("replace", str(obj.get("kind")), str(meta.get("name")), meta.get("namespace"))
            self._enter("replace", what)
            ident = self._ident(obj)
            _, namespaced = self._info(kind_of(obj))
            if not namespaced:
                ident = (*ident[:2], "", ident[3])
            live = self.objects.get(ident)
            if live is None:
                raise NotFound(f"{what} on {self.site}: 404 not found", context={"site": self.site})
            wanted = meta.get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise Conflict(
                    f"{what} on {self.site}: 409 the object has been modified",
                    hint="re-read the object and retry",
                    context={"site": self.site},
                )
            if dry_run:
                return copy.deepcopy(obj)
            body = copy.deepcopy(obj)
            self._version += 1
            body["metadata"] = {
                **body.get("metadata", {}),
                "uid": live["metadata"]["uid"],
                "creationTimestamp": live["metadata"]["creationTimestamp"],
                "resourceVersion": str(self._version),
            }
            if "status" in live and "status" not in body:
                body["status"] = live["status"]
            self.objects[ident] = body
            self._bind(body)
            return copy.deepcopy(body)

    def patch(self, kind: KindRef, name: str, namespace: str | None, patch: dict[str, Any]) -> dict[str, Any]:
        """See :class:`ClusterApi` (JSON merge patch)."""
        with self._lock:
            what = self._where("patch", kind.kind, name, namespace)
            self._enter("patch", what)
            _, namespaced = self._info(kind)
            ident = (kind.api_version, kind.kind, namespace or "" if namespaced else "", name)
            live = self.objects.get(ident)
            if live is None:
                raise NotFound(f"{what} on {self.site}: 404 not found", context={"site": self.site})
            body = _merge_patch(live, patch)
            self._version += 1
            body["metadata"]["resourceVersion"] = str(self._version)
            self.objects[ident] = body
            return copy.deepcopy(body)

    def delete(self, kind: KindRef, name: str, namespace: str | None = None) -> bool:
        """See :class:`ClusterApi`."""
        with self._lock:
            self._enter("delete", self._where("delete", kind.kind, name, namespace))
            _, namespaced = self._info(kind)
            ident = (kind.api_version, kind.kind, namespace or "" if namespaced else "", name)
            return self.objects.pop(ident, None) is not None


# ------------------------------------------------------------------------------------- RbdMirror


class FakeRbdMirror:
    """:class:`drkit.adapters.rbd.RbdMirror` of one site, in memory, shaped like Ceph 16's JSON.

    Images are added with :meth:`add_image`; the status documents and ``snap ls --all`` lists it
    returns have the keys real ``rbd`` prints (see ``tests/golden/rbd``). Every call is recorded in
    ``calls`` as ``(subcommand, pool, image)``, e.g. ``("mirror pool status", "replicapool", "")``,
    so tests can count them.

    Fault knobs (set them at any time; they affect every later call):

    * ``malformed_json``: rbd "prints" truncated JSON: :class:`StandbyError` as :class:`RbdCli` raises;
    * ``timeout``: :class:`CommandTimedOut` (retryable) naming the argv;
    * ``exit_code=N``: :class:`CommandFailed` with that exit code (a retryable code such as 16 gives
      :class:`TransientError`, as :class:`RbdCli` does);
    * ``unknown_fields``: every document gains keys rbd never printed (forward compatibility);
    * ``wrong_shape``: the pool status lacks ``images`` (e.g. another command's output).
    """

    def __init__(self, *, site: str = "site-b", tz: str = "UTC", now: Callable[[], datetime] | None = None):
        self.site = site
        self.tz = ZoneInfo(tz)
        self.now = now or (lambda: datetime.now(UTC))
        self.malformed_json = False
        self.timeout = False
        self.exit_code: int | None = None
        self.unknown_fields = False
        self.wrong_shape = False
        self.calls: list[tuple[str, str, str]] = []
        self.images: dict[tuple[str, str], dict[str, Any]] = {}
        self.snaps: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.plain: dict[tuple[str, str], dict[str, Any]] = {}
        """Plain (not mirrored) images, e.g. scratch copies: ``(pool, name) -> record``."""
        self.daemon_up = True

    def __repr__(self) -> str:
        return f"FakeRbdMirror(site={self.site!r}, images={len(self.images)})"

    # ------------------------------------------------------------------------------- set-up helpers
    def _stamp(self, when: datetime) -> str:
        return when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def add_image(
        self,
        pool: str,
        image: str,
        *,
        primary: bool = False,
        peer_site: str = "site-a",
        local_snapshot_time: datetime | None = None,
        last_update: datetime | None = None,
        state: str = "up+replaying",
        description: str | None = None,
    ) -> None:
        """Add (or replace) a mirrored image; a secondary gets a snapshot-mode replaying description."""
        when = last_update or self.now()
        doc: dict[str, Any] = {
            "name": image,
            "global_id": hashlib.md5(f"{pool}/{image}".encode(), usedforsecurity=False).hexdigest(),
            "daemon_service": {"service_id": "4151", "instance_id": "4153", "daemon_id": "local"},
            "last_update": self._stamp(when),
            "peer_sites": [],
        }
        self.images[(pool, image)] = doc
        self.snaps.setdefault((pool, image), [])
        if primary:
            doc.update(state="up+stopped", description="local image is primary", snapshots=[])
            doc["peer_sites"] = [
                {
                    "site_name": peer_site,
                    "mirror_uuids": "0f0f0f0f",
                    "state": state,
                    "description": description or self._replaying(local_snapshot_time),
                    "last_update": self._stamp(when),
                }
            ]
        else:
            doc.update(state=state, description=description or self._replaying(local_snapshot_time))
            doc["peer_sites"] = [
                {
                    "site_name": peer_site,
                    "mirror_uuids": "0f0f0f0f",
                    "state": "up+stopped",
                    "description": "local image is primary",
                    "last_update": self._stamp(when),
                }
            ]

    @staticmethod
    def _replaying(local_snapshot_time: datetime | None) -> str:
        body: dict[str, Any] = {
            "bytes_per_second": 0.0,
            "bytes_per_snapshot": 0.0,
            "last_snapshot_bytes": 0,
            "last_snapshot_sync_seconds": 0,
            "replay_state": "idle",
        }
        if local_snapshot_time is not None:
            body["local_snapshot_timestamp"] = int(local_snapshot_time.timestamp())
            body["remote_snapshot_timestamp"] = int(local_snapshot_time.timestamp())
        return "replaying, " + json.dumps(body, separators=(",", ":"), sort_keys=True)

    def _ctime(self, when: datetime) -> str:
        """C ``ctime()`` text, as rbd prints snapshot timestamps: ``Sat Nov  1 20:35:29 2026``."""
        local = when.astimezone(self.tz)
        return f"{local:%a %b} {local.day:2d} {local:%H:%M:%S %Y}"

    def add_snapshot(
        self,
        pool: str,
        image: str,
        *,
        created_at: datetime,
        primary_snap_id: int | None = None,
        complete: bool = True,
    ) -> int:
        """Add a mirror snapshot (primary when ``primary_snap_id`` is None); returns its id."""
        snaps = self.snaps.setdefault((pool, image), [])
        snap_id = max((s["id"] for s in snaps), default=3) + 1
        ns: dict[str, Any] = {"type": "mirror", "mirror_peer_uuids": [], "complete": complete}
        if primary_snap_id is None:
            ns["state"] = "primary"
            name = f".mirror.primary.{snap_id:08x}"
        else:
            ns.update(
                state="non-primary",
                primary_mirror_uuid="0f0f0f0f",
                primary_snap_id=primary_snap_id,
                last_copied_object_number=16 if complete else 3,
            )
            name = f".mirror.non_primary.{snap_id:08x}"
        snaps.append(
            {
                "id": snap_id,
                "name": name,
                "size": 67108864,
                "protected": "false",
                "timestamp": self._ctime(created_at),
                "namespace": ns,
            }
        )
        return int(snap_id)

    # ------------------------------------------------------------------------------------- faults
    def _call(self, op: str, args: list[str], pool: str, image: str = "") -> None:
        words = " ".join(a for a in args if not a.startswith("-") and a != pool and "/" not in a)
        self.calls.append((words, pool, image))
        argv = ["rbd", *args, "--format", "json"]
        what = f"{op} of {pool}/{image}" if image else f"{op} of pool {pool}"
        if self.timeout:
            raise CommandTimedOut(
                f"{what} on {self.site}: timed out after 30s",
                argv=argv,
                exit_code=None,
                output_tail="",
                hint="check that the cluster is reachable; the call is retried",
                context={"site": self.site},
            )
        if self.exit_code is not None:
            error = CommandFailed(
                f"{what} on {self.site} failed",
                argv=argv,
                exit_code=self.exit_code,
                output_tail=f"rbd: {op} failed: (fake) error {self.exit_code}",
                context={"site": self.site},
            )
            if self.exit_code in RETRYABLE_EXIT_CODES:
                raise TransientError(
                    str(error), hint="retried: the peer may still be propagating", context=error.context
                )
            raise error
        if self.malformed_json:
            raise StandbyError(
                f'{what} on {self.site}: rbd printed output that is not JSON: \'{{"summary":{{"hea\'',
                hint="check the rbd version (Ceph 16 or newer) and the cluster's health",
                context={"site": self.site, "argv": argv},
            )

    def _doc(self, pool: str, image: str) -> dict[str, Any]:
        doc = self.images.get((pool, image))
        if doc is None:
            raise CommandFailed(
                f"mirror status of {pool}/{image} on {self.site} failed",
                argv=["rbd", "mirror", "image", "status", f"{pool}/{image}", "--format", "json"],
                exit_code=2,
                output_tail=f"rbd: error opening image {image}: (2) No such file or directory",
                context={"site": self.site},
            )
        return doc

    def _shown(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(doc))
        if not self.daemon_up:
            out["state"] = "down+" + str(out.get("state", "up+unknown")).split("+", 1)[-1]
        if self.unknown_fields:
            out["x_future_field"] = {"added_in": "ceph 99"}
        return out

    # ------------------------------------------------------------------------------- the protocol
    def pool_status(self, pool: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror status", ["mirror", "pool", "status", pool, "--verbose"], pool)
        images = [self._shown(doc) for (p, _), doc in sorted(self.images.items()) if p == pool]
        states: dict[str, int] = {}
        for img in images:
            key = str(img["state"]).split("+", 1)[-1]
            states[key] = states.get(key, 0) + 1
        health = "OK" if self.daemon_up else "UNKNOWN"
        out: dict[str, Any] = {
            "summary": {"health": health, "daemon_health": health, "image_health": "OK", "states": states},
            "daemons": [{"service_id": "4151", "hostname": "fake", "health": health, "leader": True}],
            "images": images,
        }
        if self.wrong_shape:
            out = {"summary": out["summary"], "mirror_images_v2": images}
        if self.unknown_fields:
            out["x_future_section"] = []
        return out

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror status", ["mirror", "image", "status", f"{pool}/{image}"], pool, image)
        return self._shown(self._doc(pool, image))

    def image_info(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("info", ["info", f"{pool}/{image}"], pool, image)
        if (pool, image) in self.plain:
            return {"name": image, "size": 67108864, "features": ["layering", "exclusive-lock"]}
        doc = self._doc(pool, image)
        return {
            "name": image,
            "size": 67108864,
            "features": ["layering", "exclusive-lock"],
            "mirroring": {
                "mode": "snapshot",
                "state": "enabled",
                "global_id": doc["global_id"],
                "primary": doc.get("description") == "local image is primary",
            },
        }

    def snapshots(self, pool: str, image: str) -> list[dict[str, Any]]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("snapshots", ["snap", "ls", "--all", f"{pool}/{image}"], pool, image)
        self._doc(pool, image)
        snaps = json.loads(json.dumps(self.snaps.get((pool, image), [])))
        if self.unknown_fields:
            for snap in snaps:
                snap["x_future_field"] = 1
        return list(snaps)

    def promote(self, pool: str, image: str, *, force: bool = False) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("promote", ["mirror", "image", "promote", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="up+stopped", description="local image is primary", snapshots=[])

    def demote(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("demote", ["mirror", "image", "demote", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="up+unknown", description="local image is not primary")
        doc.pop("snapshots", None)

    def resync(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("resync", ["mirror", "image", "resync", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="down+unknown", description="status not found")

    def mirror_snapshot(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror snapshot", ["mirror", "image", "snapshot", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        if doc.get("description") != "local image is primary":
            raise CommandFailed(
                f"mirror snapshot of {pool}/{image} on {self.site} failed",
                argv=["rbd", "mirror", "image", "snapshot", f"{pool}/{image}"],
                exit_code=22,
                output_tail="rbd: failed to create mirror snapshot: (22) Invalid argument",
                context={"site": self.site},
            )
        snap_id = self.add_snapshot(pool, image, created_at=self.now())
        doc.setdefault("snapshots", []).append(
            {
                "id": snap_id,
                "name": f".mirror.primary.{snap_id:08x}",
                "demoted": False,
                "mirror_peer_uuids": [],
            }
        )

    def copy_latest_synced(self, pool: str, image: str, dest: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("copy latest synced", ["python3", "-c", "copy", f"{pool}/{image}"], pool, image)
        self._doc(pool, image)
        if (pool, dest) in self.images:
            raise Conflict(f"{pool}/{dest} on {self.site} is mirrored: not a scratch copy")
        if (pool, dest) in self.plain:
            return {**self.plain[(pool, dest)], "reused": True}
        done = [s for s in self.snaps.get((pool, image), [])
                if s["namespace"].get("primary_snap_id") is not None and s["namespace"].get("complete")]  # fmt: skip
        if not done:
            raise TransientError(f"copy of {pool}/{image} on {self.site}: no complete non-primary mirror snapshot")
        newest = max(done, key=lambda s: int(s["id"]))
        record = {"dest": dest, "snap_id": newest["id"], "primary_snap_id": newest["namespace"]["primary_snap_id"],
                  "attempts": 1, "seconds": 0.0}  # fmt: skip
        self.plain[(pool, dest)] = record
        return dict(record)

    def remove_image(self, pool: str, name: str) -> bool:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("rm", ["rm", f"{pool}/{name}"], pool, name)
        if (pool, name) in self.images:
            raise Conflict(f"{pool}/{name} on {self.site} is mirrored: Standby removes only plain scratch images")
        return self.plain.pop((pool, name), None) is not None
