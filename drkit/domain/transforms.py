"""Manifest transforms: small pure steps that make a live object restorable on another site.

:func:`normalize` runs at backup time (server-written fields go, so unchanged objects dedup);
:func:`sanitize` runs at restore time for a target site (:class:`TransformContext`, built by
:func:`context_for` from the app's configuration). What each pipeline does and why is in
docs/architecture.md ("Manifest transforms").
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from drkit.domain import fieldpath
from drkit.domain.models import ProtectedApp, Site
from drkit.domain.restore_spec import (
    DEFAULT_STORAGE_CLASS_FIELDS,
    FieldTransform,
    ObjectSelector,
    StorageClassField,
)

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
STORAGE_CLASS_FIELDS: tuple[StorageClassField, ...] = DEFAULT_STORAGE_CLASS_FIELDS
"""Fields holding a storage class name when the app's configuration names none."""


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
    storage_class_fields: tuple[StorageClassField, ...] = STORAGE_CLASS_FIELDS
    """Where storage class names live (the app's ``restore.storage_class_fields``)."""
    transforms: tuple[FieldTransform, ...] = ()
    """The app's own field changes (``restore.transforms``), applied last."""


def storage_class_map(source: str | None, target: str | None) -> dict[str, str]:
    """The rename map for two sites' ``storage_class`` settings: empty when unset or equal."""
    if source and target and source != target:
        return {source: target}
    return {}


def context_for(app: ProtectedApp, source: Site, target: Site) -> TransformContext:
    """The restore-time context of ``app`` moving from ``source`` to ``target``, from its configuration."""
    return TransformContext(
        source_site=source.name,
        target_site=target.name,
        storage_classes=storage_class_map(source.storage_class, target.storage_class),
        storage_class_fields=app.restore.storage_class_fields,
        transforms=app.restore.transforms,
    )


def selects(selector: ObjectSelector, obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` matches every field ``selector`` gives (kind, apiVersion, group, name, namespace, labels)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    labels = meta.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    checks = (
        selector.kind is None or obj.get("kind") == selector.kind,
        selector.api_version is None or api_version == selector.api_version,
        selector.group is None or group == selector.group,
        selector.name is None or fnmatch.fnmatchcase(str(meta.get("name", "")), selector.name),
        selector.namespace is None
        or fnmatch.fnmatchcase(str(meta.get("namespace") or ""), selector.namespace),
        all(labels.get(k) == v for k, v in selector.labels.items()),
    )
    return all(checks)


def _kind_may_match(selector: ObjectSelector, kind: str) -> bool:
    return selector.kind is None or selector.kind == kind


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
    """Rename storage classes between sites at each of ``fields`` (a selector and a field path)."""

    classes: Mapping[str, str] = field(default_factory=dict)
    fields: tuple[StorageClassField, ...] = STORAGE_CLASS_FIELDS
    name: str = "rewrite-storage-class"

    def applies_to(self, kind: str) -> bool:
        return bool(self.classes) and any(_kind_may_match(f.select, kind) for f in self.fields)

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        for spot in self.fields:
            if selects(spot.select, out):
                fieldpath.update(
                    out, spot.path, lambda v: self.classes.get(v, v) if isinstance(v, str) else v
                )
        return out


@dataclass(frozen=True)
class ApplyFieldTransform:
    """One of the app's ``restore.transforms``: set or remove a field of the objects it selects."""

    transform: FieldTransform
    name: str = "field-transform"

    def applies_to(self, kind: str) -> bool:
        return _kind_may_match(self.transform.select, kind)

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(obj))
        if not selects(self.transform.select, out):
            return out
        if self.transform.action == "remove":
            fieldpath.update(out, self.transform.path, lambda _v: fieldpath.REMOVE)
        else:
            fieldpath.assign(out, self.transform.path, copy.deepcopy(self.transform.value))
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
        RewriteStorageClass(dict(context.storage_classes), tuple(context.storage_class_fields)),
        ServiceClusterIp(),
        *(ApplyFieldTransform(t) for t in context.transforms),
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
