"""A Kubernetes apiserver in memory that speaks :class:`~drkit.adapters.kube.ClusterApi`: :class:`FakeCluster`.

Its errors come from the builders in :mod:`drkit.adapters.kube_errors` (the same types and words as the
real adapter), with reasons worded as a real apiserver's Status messages.
"""

from __future__ import annotations

import builtins
import copy
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from drkit.adapters.kube import Access, KindInfo, kind_of
from drkit.adapters.kube_errors import apiserver_unreachable, kind_not_served, status_error
from drkit.domain.merge_patch import merge_patch
from drkit.domain.models import KindRef
from drkit.domain.selection import LabelSelector
from drkit.testing.hang import Hang

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


class FakeCluster:
    """:class:`drkit.adapters.kube.ClusterApi` in memory, with the real adapter's errors.

    Served kinds are the usual built-ins plus VolumeReplication and the Nexus CR; add more with
    :meth:`serve`. Objects get a uid, a resourceVersion and a creationTimestamp like on a real server.

    Fault knobs (set them at any time):

    * ``fail_next(n, status=503)``: the next ``n`` calls raise :class:`TransientError` (as a 5xx);
    * ``unlistable``: kind names whose LIST answers 403 (:class:`PreconditionFailed`, Velero's
      "cannot list" partial failure);
    * ``uncreatable``: kind names whose CREATE answers 403 (an admission or RBAC refusal mid-restore);
    * ``bind_pvcs`` (default true): a created PVC whose ``spec.volumeName`` names an existing PV is
      ``Bound`` at once, and so is that PV;
    * ``unreachable``: every call raises :class:`TransientError` (the apiserver does not answer);
    * ``hang`` (a :class:`~drkit.testing.hang.Hang`): while frozen, every call blocks, then raises
      :class:`TransientError` as a read timeout when its limit runs out;
    * ``controllers``: callables run on the cluster before each call, as controllers reconcile in
      the background (they edit ``objects`` directly and are not counted as requests);
    * ``denied``: what an access review (:meth:`can_i`) answers not allowed; everything else is
      allowed, as for a credential with the shipped RBAC;
    * ``token_rejected``: every call answers 401 (an expired or revoked token).

    ``requests`` counts every call, ``calls`` counts them by verb, ``list_pages`` counts LIST pages.
    """

    def __init__(self, *, site: str = "site-a", bind_pvcs: bool = True) -> None:
        self.site = site
        self.bind_pvcs = bind_pvcs
        self.kinds: dict[tuple[str, str], tuple[str, bool]] = dict(_BUILTIN_KINDS)
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.unlistable: set[str] = set()
        self.uncreatable: set[str] = set()
        self.requests = 0
        self.list_pages = 0
        self.calls: Counter[str] = Counter()
        self._failures: list[int] = []
        self._version = 0
        self._lock = threading.RLock()
        self.unreachable = False
        self.denied: set[Access] = set()
        self.token_rejected = False
        self.hang = Hang()
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
            raise apiserver_unreachable(self.site, what, "ConnectTimeoutError")
        if not self.hang.hold():
            raise apiserver_unreachable(self.site, what, "ReadTimeoutError")
        if self.token_rejected:
            raise status_error(self.site, what, 401, "Unauthorized")
        if self.controllers and not self._reconciling:
            self._reconciling = True
            try:
                for controller in self.controllers:
                    controller(self)
            finally:
                self._reconciling = False
        if self._failures:
            status = self._failures.pop(0)
            reason = {401: "Unauthorized", 403: "Forbidden"}.get(status, "injected fault")
            raise status_error(self.site, what, status, reason)

    def _info(self, kind: KindRef) -> tuple[str, bool]:
        found = self.kinds.get((kind.api_version, kind.kind))
        if found is None:
            raise kind_not_served(
                self.site,
                f"kind {kind}",
                f"No matches found for {{'api_version': '{kind.api_version}', 'kind': '{kind.kind}'}}",
            )
        return found

    @staticmethod
    def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj.get("metadata") or {}
        return (str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))

    @staticmethod
    def _where(verb: str, kind: str, name: str, namespace: str | None) -> str:
        """How :class:`~drkit.adapters.kube.KubeCluster` names a call in its errors."""
        return " ".join(w for w in (verb, kind, f"{namespace + '/' if namespace else ''}{name}") if w)

    def _key(self, kind: KindRef, name: str, namespace: str | None) -> tuple[str, str, str, str]:
        """Where an object is kept: a cluster-scoped kind's namespace is dropped, as the apiserver does."""
        _, namespaced = self._info(kind)
        return (kind.api_version, kind.kind, namespace or "" if namespaced else "", name)

    def _live(self, what: str, ident: tuple[str, str, str, str]) -> dict[str, Any]:
        """The stored object, or the apiserver's 404 for ``what``."""
        found = self.objects.get(ident)
        if found is None:
            raise status_error(self.site, what, 404, f"{self._named(ident)} not found")
        return found

    def _named(self, ident: tuple[str, str, str, str]) -> str:
        """How a Kubernetes Status message names an object: ``persistentvolumeclaims "data"``."""
        plural = self.kinds.get(ident[:2], (ident[1].lower() + "s", True))[0]
        return f'{plural} "{ident[3]}"'

    def _store_new(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = KindRef.model_validate(
            {
                "group": obj["apiVersion"].rpartition("/")[0],
                "version": obj["apiVersion"].rpartition("/")[2],
                "kind": obj["kind"],
            }
        )
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
                raise status_error(
                    self.site, what, 403, f"{self.kinds[(kind.api_version, kind.kind)][0]} is forbidden"
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
            what = self._where("", kind.kind, name, namespace)
            self._enter("get", what)
            return copy.deepcopy(self._live(what, self._key(kind, name, namespace)))

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """See :class:`ClusterApi`."""
        with self._lock:
            meta = obj.get("metadata") or {}
            what = self._where("create", str(obj.get("kind")), str(meta.get("name")), meta.get("namespace"))
            self._enter("create", what)
            if str(obj.get("kind")) in self.uncreatable:
                raise status_error(self.site, what, 403, f"{obj.get('kind')} creation is forbidden")
            kind = kind_of(obj)
            ident = self._key(kind, str(meta.get("name")), meta.get("namespace"))
            if ident in self.objects:
                raise status_error(self.site, what, 409, f"{self._named(ident)} already exists")
            if self._info(kind)[1] and ("v1", "Namespace", "", ident[2]) not in self.objects:
                raise status_error(self.site, what, 404, f'namespaces "{ident[2]}" not found')
            if dry_run:
                return copy.deepcopy(obj)
            return self._store_new(dict(obj))

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """See :class:`ClusterApi`."""
        with self._lock:
            meta = obj.get("metadata") or {}
            what = self._where("replace", str(obj.get("kind")), str(meta.get("name")), None)
            self._enter("replace", what)
            ident = self._key(kind_of(obj), str(meta.get("name")), meta.get("namespace"))
            live = self._live(what, ident)
            wanted = meta.get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise status_error(
                    self.site,
                    what,
                    409,
                    f"Operation cannot be fulfilled on {self._named(ident)}:"
                    " the object has been modified; please apply your changes to the latest version"
                    " and try again",
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
            what = self._where("patch", kind.kind, name, None)
            self._enter("patch", what)
            ident = self._key(kind, name, namespace)
            body = merge_patch(self._live(what, ident), patch)
            self._version += 1
            body["metadata"]["resourceVersion"] = str(self._version)
            self.objects[ident] = body
            return copy.deepcopy(body)

    def delete(self, kind: KindRef, name: str, namespace: str | None = None) -> bool:
        """See :class:`ClusterApi`."""
        with self._lock:
            self._enter("delete", self._where("delete", kind.kind, name, None))
            return self.objects.pop(self._key(kind, name, namespace), None) is not None

    def can_i(self, access: Access) -> tuple[bool, str]:
        """See :class:`ClusterApi`: not allowed when ``access`` is in ``denied``, with the reason a real
        apiserver gives (empty when no rule allows it)."""
        with self._lock:
            self._enter("create", f"access review ({access})")
            if access in self.denied:
                return False, ""
            return (
                True,
                'RBAC: allowed by RoleBinding "standby/standby" of Role "standby" to ServiceAccount "standby/standby"',
            )
