"""Which Kubernetes objects belong to an app: label selectors, the list plan, and the selection.

The backup reads the cluster with LIST calls only, never one GET per object: one LIST per
(kind, namespace) for namespaced kinds, one cluster-wide LIST for cluster-scoped kinds
(:func:`plan_lists`). The app's PVs are found through its claims: one cluster-wide LIST of PVs,
filtered by the claims' ``spec.volumeName`` (:func:`select_objects`).

Objects the cluster creates by itself in every namespace are never backed up: service-account
token Secrets and the ``kube-root-ca.crt`` ConfigMap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from drkit.domain.errors import ConfigError
from drkit.domain.models import KindRef, ProtectedApp

Op = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", re.DOTALL)
_BINARY = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$")

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "PersistentVolume",
        "StorageClass",
        "VolumeReplicationClass",
        "VolumeGroupReplicationClass",
        "VolumeSnapshotClass",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PriorityClass",
        "Node",
    }
)
NAMESPACE = KindRef(version="v1", kind="Namespace")
PERSISTENT_VOLUME = KindRef(version="v1", kind="PersistentVolume")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: ``!=`` and ``notin`` also match objects without the label."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: every requirement must match. The empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse ``app=nexus,tier in (a,b),!legacy``; :class:`ConfigError` points at the bad clause."""
        if text is None or not text.strip():
            return cls()
        return cls(tuple(_parse_clause(clause, text) for clause in _split_clauses(text)))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` is selected."""
        found = labels or {}
        return all(r.matches(found) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _bad(clause: str, text: str, why: str) -> ConfigError:
    return ConfigError(
        f"label selector {text!r}: clause {clause!r}: {why}",
        hint="write clauses like 'app=nexus', 'tier in (a,b)', 'env!=dev', 'release' or '!legacy',"
        " separated by commas",
    )


def _split_clauses(text: str) -> list[str]:
    clauses, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _bad(current + char, text, "')' without '('")
        if char == "," and depth == 0:
            clauses.append(current.strip())
            current = ""
        else:
            current += char
    if depth:
        raise _bad(current.strip(), text, "'(' is never closed")
    clauses.append(current.strip())
    return clauses


def _key(key: str, clause: str, text: str) -> str:
    if not _KEY.match(key) or len(key.rpartition("/")[0]) > 253:
        raise _bad(clause, text, f"{key!r} is not a valid label key")
    return key


def _value(value: str, clause: str, text: str) -> str:
    if not _VALUE.match(value):
        raise _bad(clause, text, f"{value!r} is not a valid label value")
    return value


def _parse_clause(clause: str, text: str) -> Requirement:
    if not clause:
        raise _bad(clause, text, "empty clause")
    match = _SET.match(clause)
    if match:
        values = tuple(v.strip() for v in match.group(3).split(","))
        if values == ("",):
            raise _bad(clause, text, "the value set is empty")
        op: Op = "in" if match.group(2) == "in" else "notin"
        key = _key(match.group(1), clause, text)
        return Requirement(key, op, tuple(sorted({_value(v, clause, text) for v in values})))
    match = _BINARY.match(clause)
    if match:
        op = "!=" if match.group(2) == "!=" else "="
        return Requirement(_key(match.group(1), clause, text), op, (_value(match.group(3), clause, text),))
    if clause.startswith("!"):
        return Requirement(_key(clause[1:].strip(), clause, text), "!exists")
    return Requirement(_key(clause, clause, text), "exists")


# ------------------------------------------------------------------------------------- list plan


@dataclass(frozen=True)
class ListCall:
    """One LIST request: a kind, in one namespace or cluster-wide (``namespace=None``)."""

    kind: KindRef
    namespace: str | None
    label_selector: str | None = None
    field_selector: str | None = None
    purpose: Literal["objects", "claimed-pvs"] = "objects"
    """``objects``: keep what matches; ``claimed-pvs``: keep only the PVs the app's claims name."""

    def __str__(self) -> str:
        where = f"namespace {self.namespace}" if self.namespace else "cluster-wide"
        extra = "".join(f" {s}" for s in (self.label_selector, self.field_selector) if s)
        return f"list {self.kind} {where}{extra}"


def is_cluster_scoped(kind: KindRef, cluster_scoped: Iterable[str] = CLUSTER_SCOPED_KINDS) -> bool:
    """Whether ``kind`` is cluster-scoped (by kind name; pass the cluster's discovery to override)."""
    return kind.kind in set(cluster_scoped)


def plan_lists(
    app: ProtectedApp,
    *,
    include_namespace: bool = True,
    cluster_scoped: Iterable[str] = CLUSTER_SCOPED_KINDS,
) -> tuple[ListCall, ...]:
    """The LIST calls that fetch everything :func:`select_objects` may keep, without duplicates."""
    scoped = frozenset(cluster_scoped)
    app_ns, app_workload = app.kube_namespace("backup"), app.kube_workload("backup")
    selector = str(LabelSelector.parse(app.backup.label_selector)) or None
    calls: list[ListCall] = []
    if include_namespace:
        calls.append(ListCall(NAMESPACE, None, None, f"metadata.name={app_ns}"))
    for kind in app.backup.kinds:
        namespace = None if is_cluster_scoped(kind, scoped) else app_ns
        calls.append(ListCall(kind, namespace, selector))
    workload = app_workload.kind
    if workload not in app.backup.kinds or selector:
        namespace = None if is_cluster_scoped(workload, scoped) else app_ns
        calls.append(ListCall(workload, namespace, None, f"metadata.name={app_workload.name}"))
    if app.backup.include_pvs:
        calls.append(ListCall(PERSISTENT_VOLUME, None, purpose="claimed-pvs"))
    unique: dict[tuple[object, ...], ListCall] = {}
    for call in calls:
        unique.setdefault(
            (call.kind, call.namespace, call.label_selector, call.field_selector, call.purpose), call
        )
    return tuple(unique.values())


# ------------------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """The objects of an app (each exactly once) and what could not be found."""

    objects: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()


def object_identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)`` of a manifest; namespace is "" when cluster-scoped."""
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(meta.get("namespace") or ""),
        str(meta.get("name", "")),
    )


def is_cluster_managed(obj: Mapping[str, Any]) -> bool:
    """Objects the cluster recreates on its own and that must not be restored."""
    kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
    if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        return True
    return kind == "ConfigMap" and name == "kube-root-ca.crt"


def _field_matches(call: ListCall, obj: Mapping[str, Any]) -> bool:
    if not call.field_selector:
        return True
    meta = obj.get("metadata") or {}
    for clause in call.field_selector.split(","):
        field, _, wanted = clause.partition("=")
        if str(meta.get(field.removeprefix("metadata."), "")) != wanted:
            return False
    return True


def select_objects(
    app: ProtectedApp, listed: Sequence[tuple[ListCall, Sequence[Mapping[str, Any]]]]
) -> Selection:
    """Keep the app's objects from the answers to :func:`plan_lists`.

    Selectors are checked again here, so an adapter that ignored them cannot widen the backup.
    PVs are kept when a selected claim names them in ``spec.volumeName``. A claim in
    ``app.volumes`` that is missing, unbound, or bound to a PV that was not listed is a warning.
    """
    selected: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    pvs: dict[str, Mapping[str, Any]] = {}
    for call, objects in listed:
        selector = LabelSelector.parse(call.label_selector)
        for obj in objects:
            if call.purpose == "claimed-pvs":
                pvs[str((obj.get("metadata") or {}).get("name", ""))] = obj
                continue
            meta = obj.get("metadata") or {}
            if not selector.matches(meta.get("labels")) or not _field_matches(call, obj):
                continue
            if call.namespace and meta.get("namespace") not in (None, call.namespace):
                continue
            if not is_cluster_managed(obj):
                selected.setdefault(object_identity(obj), dict(obj))
    warnings: list[str] = []
    claims = {o["metadata"]["name"]: o for o in selected.values() if o.get("kind") == "PersistentVolumeClaim"}
    for volume in app.volumes:
        if app.claim(volume, "backup") not in claims:
            warnings.append(f"PVC {app.namespace}/{volume.pvc} of app {app.name} was not found by the backup")
    if app.backup.include_pvs:
        for name, claim in sorted(claims.items()):
            pv_name = (claim.get("spec") or {}).get("volumeName")
            if not pv_name:
                warnings.append(
                    f"PVC {app.namespace}/{name} is not bound (no spec.volumeName); its PV is not saved"
                )
            elif pv_name not in pvs:
                warnings.append(f"PV {pv_name} of PVC {app.namespace}/{name} was not found by the backup")
            else:
                selected.setdefault(object_identity(pvs[pv_name]), dict(pvs[pv_name]))
    return Selection(tuple(selected[k] for k in sorted(selected)), tuple(warnings))
