"""Manifest transforms: small pure steps that make a live object restorable on another site.

Each transform has ``applies_to(kind) -> bool`` and ``apply(obj) -> dict``; ``apply`` never
changes its input and returns a new dict. Two pipelines are built from them:

* :func:`normalize`, run at **backup** time: drops what the API server writes (status, uid,
  resourceVersion, managedFields, timestamps, generation, selfLink, last-applied). What remains
  changes only when someone changes the object, so content-addressed dedup works, and the backup
  stays site-neutral: claimRef, storage classes and cluster IPs are still as on the source site.
* :func:`sanitize`, run at **restore** time with a :class:`TransformContext` naming the target site:
  ``normalize`` plus owner references, bind annotations, the PV claimRef, ``Retain``, storage
  class rewrites (PV, PVC and the Nexus CR's ``spec.helmValues.storageClass.name``) and Service
  cluster IPs. It is idempotent.

PV claimRef: the Alauda Nexus procedure and Rook's failover guide both delete ``spec.claimRef``
before creating the PV on the secondary site, and the restored PVC binds back through its
``spec.volumeName``. That is the default (``claim_ref="remove"``). ``claim_ref="keep-name"`` keeps
``namespace``/``name`` and drops ``uid``/``resourceVersion`` (Velero's way): the PV is then
pre-bound, so no other pending claim of the same class can take it between the PV and PVC creates.
``spec.csi`` (``volumeHandle``, ``volumeAttributes.imageName``, ``pool``...) is never touched.

Finalizers are kept as they are; NodePort numbers are kept (a clash is reported by the API server).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Obj = dict[str, Any]

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PVC_ANNOTATION_PREFIXES = ("pv.kubernetes.io/", "volume.beta.kubernetes.io/", "volume.kubernetes.io/")
PV_BIND_ANNOTATIONS = frozenset({"pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"})
STORAGE_CLASS_FIELDS: Mapping[str, tuple[str, ...]] = {
    "PersistentVolume": ("spec.storageClassName",),
    "PersistentVolumeClaim": ("spec.storageClassName",),
    "Nexus": ("spec.helmValues.storageClass.name",),
}
"""Dotted paths holding a storage class name, per kind (the Nexus CR names one for its claims)."""


class Transform(Protocol):
    """One pure step of a pipeline."""

    @property
    def name(self) -> str:
        """Short name of the step, for logs and reports."""
        ...

    def applies_to(self, kind: str) -> bool:
        """Whether this step concerns objects of ``kind``."""
        ...

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        """A transformed copy of ``obj``."""
        ...


@dataclass(frozen=True)
class TransformContext:
    """What a restore-time pipeline needs to know about the source and target sites."""

    source_site: str
    target_site: str
    storage_classes: Mapping[str, str] = field(default_factory=dict)
    """Storage class renames, source class to target class; empty when the sites use the same names."""
    claim_ref: Literal["remove", "keep-name"] = "remove"
    """``remove`` deletes a PV's claimRef (the documented procedure); ``keep-name`` pre-binds the PV."""
    storage_class_fields: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(STORAGE_CLASS_FIELDS)
    )
    """Where storage class names live, per kind; add your CR's fields here."""


def storage_class_map(source: str | None, target: str | None) -> dict[str, str]:
    """The rename map for two sites' ``storage_class`` settings: empty when unset or equal."""
    if source and target and source != target:
        return {source: target}
    return {}


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _drop_annotations(obj: Obj, predicate: Any) -> None:
    meta = _meta(obj)
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        return
    kept = {k: v for k, v in annotations.items() if not predicate(k)}
    if kept:
        meta["annotations"] = kept
    else:
        meta.pop("annotations", None)


@dataclass(frozen=True)
class StripServerFields:
    """Drop ``status`` and the metadata the API server owns, plus the last-applied annotation."""

    name: str = "strip-server-fields"

    def applies_to(self, kind: str) -> bool:
        return True

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        out.pop("status", None)
        meta = _meta(out)
        for key in SERVER_METADATA:
            meta.pop(key, None)
        _drop_annotations(out, lambda k: k == LAST_APPLIED)
        return out


@dataclass(frozen=True)
class StripOwnerReferences:
    """Drop ``metadata.ownerReferences``: the owners' uids do not exist on the target site."""

    name: str = "strip-owner-references"

    def applies_to(self, kind: str) -> bool:
        return True

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        _meta(out).pop("ownerReferences", None)
        return out


@dataclass(frozen=True)
class StripBindAnnotations:
    """Drop the annotations the PV controller, scheduler and provisioner wrote about the old binding.

    PVC: every ``pv.kubernetes.io/*``, ``volume.beta.kubernetes.io/*`` and ``volume.kubernetes.io/*``
    (bind-completed, selected-node of the old site...). PV: only the bind annotations
    (:data:`PV_BIND_ANNOTATIONS`). A PV keeps ``pv.kubernetes.io/provisioned-by`` and the
    provisioner's deletion-secret annotations: without them the CSI provisioner no longer owns
    the PV and never removes its finalizer, so deleting the restored PV (drill clean-up) would hang.
    """

    name: str = "strip-bind-annotations"

    def applies_to(self, kind: str) -> bool:
        return kind in ("PersistentVolume", "PersistentVolumeClaim")

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        if out.get("kind") == "PersistentVolume":
            _drop_annotations(out, lambda k: k in PV_BIND_ANNOTATIONS)
        else:
            _drop_annotations(out, lambda k: k.startswith(PVC_ANNOTATION_PREFIXES))
        return out


@dataclass(frozen=True)
class PvClaimRef:
    """Remove a PV's ``spec.claimRef`` (``remove``), or only its uid and resourceVersion (``keep-name``)."""

    mode: Literal["remove", "keep-name"] = "remove"
    name: str = "pv-claim-ref"

    def applies_to(self, kind: str) -> bool:
        return kind == "PersistentVolume"

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        spec = out.get("spec")
        if not isinstance(spec, dict) or "claimRef" not in spec:
            return out
        ref = spec["claimRef"]
        if self.mode == "remove" or not isinstance(ref, dict):
            del spec["claimRef"]
        else:
            spec["claimRef"] = {k: v for k, v in ref.items() if k not in ("uid", "resourceVersion")}
        return out


@dataclass(frozen=True)
class PvRetain:
    """Force ``persistentVolumeReclaimPolicy: Retain``: deleting a restored PV must never delete the image."""

    name: str = "pv-retain"

    def applies_to(self, kind: str) -> bool:
        return kind == "PersistentVolume"

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        spec = out.setdefault("spec", {})
        if isinstance(spec, dict):
            spec["persistentVolumeReclaimPolicy"] = "Retain"
        return out


@dataclass(frozen=True)
class RewriteStorageClass:
    """Rename storage classes (``spec.storageClassName`` of PVs and PVCs, and ``fields``) between sites."""

    classes: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(STORAGE_CLASS_FIELDS))
    name: str = "rewrite-storage-class"

    def applies_to(self, kind: str) -> bool:
        return bool(self.classes) and kind in self.fields

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        for dotted in self.fields.get(str(out.get("kind", "")), ()):
            *parents, leaf = dotted.split(".")
            node: Any = out
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and isinstance(node.get(leaf), str) and node[leaf] in self.classes:
                node[leaf] = self.classes[node[leaf]]
        return out


@dataclass(frozen=True)
class ServiceClusterIp:
    """Drop a Service's allocated ``clusterIP``/``clusterIPs`` (kept when ``None``: a headless Service)."""

    name: str = "service-cluster-ip"

    def applies_to(self, kind: str) -> bool:
        return kind == "Service"

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        spec = out.get("spec")
        if not isinstance(spec, dict):
            return out
        if spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        spec.pop("healthCheckNodePort", None)
        return out


def backup_transforms() -> tuple[Transform, ...]:
    """The backup-time pipeline: only what the API server writes."""
    return (StripServerFields(),)


def restore_transforms(context: TransformContext) -> tuple[Transform, ...]:
    """The restore-time pipeline for ``context``, in the order it runs."""
    return (
        StripServerFields(),
        StripOwnerReferences(),
        StripBindAnnotations(),
        PvClaimRef(context.claim_ref),
        PvRetain(),
        RewriteStorageClass(dict(context.storage_classes), dict(context.storage_class_fields)),
        ServiceClusterIp(),
    )


def run_pipeline(obj: Mapping[str, Any], transforms: Sequence[Transform]) -> Obj:
    """Apply each transform that applies to ``obj``'s kind, in order; ``obj`` is not changed."""
    kind = str(obj.get("kind", ""))
    out: Obj = copy.deepcopy(dict(obj))
    for step in transforms:
        if step.applies_to(kind):
            out = step.apply(out)
    return out


def normalize(obj: Mapping[str, Any]) -> Obj:
    """Backup-time cleanup of a live object (see the module docstring)."""
    return run_pipeline(obj, backup_transforms())


def sanitize(obj: Mapping[str, Any], context: TransformContext) -> Obj:
    """Restore-time cleanup of a backed-up or live object for ``context.target_site``."""
    return run_pipeline(obj, restore_transforms(context))
