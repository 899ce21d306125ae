"""Resource types served by the fake apiserver: built-in kinds and kinds added by CRDs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (``group/version/plural``) and what discovery says about it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    builtin: bool = True
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def api_version(self) -> str:
        """``apiVersion`` of objects of this type (``v1`` or ``group/version``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key, ``plural.group`` (``pods`` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        """Lower-case kind, the singular name."""
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        """Kind of the list object."""
        return self.kind + "List"


VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

_BUILTINS: list[ResourceType] = [
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), ("status",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("status",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), ("status", "exec", "log")),
    ResourceType("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",)),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale")),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale")),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale")),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ("status",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # Stored; the lab enforces the policies it can evaluate (see lab.kubeapi.admission).
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        (),
        ("status",),
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    # Reviews are not stored: ``create`` answers one (see lab.kubeapi.handler); discovery says create only.
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        ("status",),
    ),
]

GROUP_PRIORITY = [
    "",
    "apps",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "authorization.k8s.io",
]

REVIEWS = frozenset({("authorization.k8s.io", "selfsubjectaccessreviews")})
"""Resources that are asked, not stored: only ``create`` is served."""


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """Resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[ResourceType] = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = []
        if "status" in (ver.get("subresources") or {}):
            subs.append("status")
        if "scale" in (ver.get("subresources") or {}):
            subs.append("scale")
        out.append(
            ResourceType(
                group=spec.get("group", ""),
                version=ver["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                subresources=tuple(subs),
                builtin=False,
                schema=((ver.get("schema") or {}).get("openAPIV3Schema")),
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
            )
        )
    return out


class Registry:
    """Thread-safe set of served resource types; CRDs add and remove types at runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        for rt in _BUILTINS:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def set_crd(self, crd: dict[str, Any]) -> None:
        """Install (or replace) the types served by ``crd``."""
        name = crd["metadata"]["name"]
        with self._lock:
            for old in self._crd_types.pop(name, []):
                self._types.pop((old.group, old.version, old.plural), None)
            new = types_from_crd(crd)
            for rt in new:
                self._types[(rt.group, rt.version, rt.plural)] = rt
            self._crd_types[name] = new

    def remove_crd(self, name: str) -> None:
        """Stop serving the types of the CRD ``name``."""
        with self._lock:
            for old in self._crd_types.pop(name, []):
                self._types.pop((old.group, old.version, old.plural), None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        """Type by REST coordinates."""
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """Type by ``apiVersion`` and ``kind``."""
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def resolve(self, ref: str) -> ResourceType:
        """Resolve a loose reference: ``pods``, ``Pod``, ``deployments.apps``, ``apps/v1/deployments``,
        ``replication.storage.openshift.io/v1alpha1/VolumeReplication``."""
        with self._lock:
            types = list(self._types.values())
        if ref.count("/") >= 1:
            head, _, last = ref.rpartition("/")
            group, _, version = head.rpartition("/") if "/" in head else ("", "", head)
            for rt in types:
                if rt.group == group and rt.version == version and last in (rt.plural, rt.kind):
                    return rt
        name, _, group = ref.partition(".")
        for rt in types:
            if name in (rt.plural, rt.kind, rt.singular) and (not group or group == rt.group):
                return rt
        raise KeyError(f"unknown resource {ref!r}")

    def all(self) -> list[ResourceType]:
        """Every served type."""
        with self._lock:
            return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name → served versions (core group excluded), in a stable priority order."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            if rt.group:
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        order = {g: i for i, g in enumerate(GROUP_PRIORITY)}
        return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
