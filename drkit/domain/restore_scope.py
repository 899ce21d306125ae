"""What a restore may apply: the object its index entry names, and only the app's objects. Pure.

A backup store is read by whoever can write to the bucket too, so a restore trusts neither an
index entry's word for what its blob holds nor the blob's word for what belongs to the app:

* :func:`entry_mismatch`: the manifest read from a blob must be the object its entry names
  (apiVersion, kind, namespace, name); an entry "ConfigMap nexus-dr/harmless" whose blob holds a
  Secret in ``kube-system`` is a forgery.
* :func:`out_of_scope`: the allow-list. Only these are the app's:

  - its Namespace (``app.namespace``);
  - the PersistentVolumes whose RBD image (``spec.csi.volumeAttributes.imageName``) is one of
    the app's ``volumes``; a PV's ``claimRef``, when kept, must name the app's namespace;
  - in the app's namespace, objects of the app's configured kinds (``backup.kinds``, matched on
    apiVersion and kind) and its workload (``workload.kind`` named ``workload.name``); a PVC bound
    by name (``spec.volumeName``) only to one of the run's PVs of the app's images (when the app
    backs up its PVs);
  - nothing else cluster-scoped, nothing in another namespace, no object the cluster makes itself
    (service-account token Secrets, ``kube-root-ca.crt``).

Both are checked on the manifest as read, before the restore-time transforms move it to the
target namespace (``drkit.jobs.restore`` checks where each object lands afterwards).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drkit.domain.backup_index import IndexEntry
from drkit.domain.models import ProtectedApp
from drkit.domain.selection import CLUSTER_SCOPED_KINDS, is_cluster_managed

Identity = tuple[str, str, str | None, str]
"""``(apiVersion, kind, namespace or None, name)`` of an object."""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def identity(obj: Mapping[str, Any]) -> Identity:
    """The identity of a manifest (namespace ``None`` when absent or empty)."""
    meta = _mapping(obj.get("metadata"))
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(meta["namespace"]) if meta.get("namespace") else None,
        str(meta.get("name", "")),
    )


def label(ident: Identity, *, api_version: bool = False) -> str:
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped), with its apiVersion if asked."""
    version, kind, namespace, name = ident
    text = f"{kind} {namespace + '/' if namespace else ''}{name}"
    return f"{text} ({version})" if api_version else text


def entry_identity(entry: IndexEntry) -> Identity:
    """The identity an index entry names."""
    return (entry.api_version, entry.kind, entry.namespace or None, entry.name)


def entry_mismatch(entry: IndexEntry, obj: Mapping[str, Any]) -> str | None:
    """``None`` when ``obj`` is the object ``entry`` names, else the sentence that says what it holds."""
    wanted, found = entry_identity(entry), identity(obj)
    if found == wanted:
        return None
    versions = found[0] != wanted[0]
    return f"the blob of {label(wanted, api_version=versions)} holds {label(found, api_version=versions)}"


@dataclass(frozen=True)
class RestoreScope:
    """The allow-list of one app, from its configuration entry."""

    app: str
    namespace: str
    kinds: frozenset[tuple[str, str]]
    """``(apiVersion, kind)`` of the app's configured kinds."""
    workload: tuple[str, str, str]
    """``(apiVersion, kind, name)`` of the app's workload."""
    images: frozenset[str]
    """The app's RBD images: the only ones a restored PV may name."""
    pvs_by_name: bool
    """Whether the app backs up its PVs: then a PVC may name only one of the run's PVs."""

    @classmethod
    def of(cls, app: ProtectedApp) -> RestoreScope:
        """The scope of ``app``."""
        workload = app.kube_workload("restore")
        return cls(
            app=app.name,
            namespace=app.kube_namespace("restore"),
            kinds=frozenset((k.api_version, k.kind) for k in app.backup.kinds),
            workload=(workload.kind.api_version, workload.kind.kind, workload.name),
            images=frozenset(v.image for v in app.volumes),
            pvs_by_name=app.backup.include_pvs,
        )

    def app_pvs(self, manifests: Iterable[Mapping[str, Any]]) -> frozenset[str]:
        """Names of the PVs among ``manifests`` that are the app's (see :meth:`refusal`)."""
        return frozenset(
            identity(obj)[3]
            for obj in manifests
            if obj.get("kind") == "PersistentVolume" and self._pv_refusal(obj, identity(obj)) is None
        )

    def refusal(
        self, obj: Mapping[str, Any], *, namespaced: bool | None, run_pvs: frozenset[str] = frozenset()
    ) -> str | None:
        """``None`` when ``obj`` (as backed up) is the app's, else why it is not.

        ``namespaced`` is what the target cluster says of the object's kind (``None``: it does not
        serve it, then the kinds known to be cluster-scoped count); ``run_pvs`` names the run's PVs
        of the app's images (:meth:`app_pvs`), the only ones a restored PVC may be bound to by name.
        """
        ident = identity(obj)
        version, kind, namespace, name = ident
        if (version, kind) == ("v1", "Namespace"):
            if namespace is None and name == self.namespace:
                return None
            return f"it is not the app's Namespace {self.namespace}"
        if (version, kind) == ("v1", "PersistentVolume"):
            return self._pv_refusal(obj, ident)
        cluster_scoped = (not namespaced) if namespaced is not None else kind in CLUSTER_SCOPED_KINDS
        if cluster_scoped:
            return "it is cluster-scoped: only the app's Namespace and the PVs of its images are restored"
        if namespace != self.namespace:
            return f"it is not in the app's namespace {self.namespace}"
        if (version, kind) not in self.kinds and (version, kind, name) != self.workload:
            return "its kind is not one of the app's (backup.kinds, or its workload)"
        if is_cluster_managed(obj):
            return "the cluster makes this object itself"
        if kind == "PersistentVolumeClaim" and version == "v1" and self.pvs_by_name:
            volume = _mapping(obj.get("spec")).get("volumeName")
            if volume and volume not in run_pvs:
                return f"it is bound to PV {volume}, which is not one of the run's PVs of the app's images"
        return None

    def _pv_refusal(self, obj: Mapping[str, Any], ident: Identity) -> str | None:
        if ident[2] is not None:
            return "a PersistentVolume has no namespace"
        spec = _mapping(obj.get("spec"))
        image = _mapping(_mapping(spec.get("csi")).get("volumeAttributes")).get("imageName")
        if image not in self.images:
            named = f"image {image}" if image else "no RBD image (spec.csi.volumeAttributes.imageName)"
            return f"it names {named}, not one of the app's images ({', '.join(sorted(self.images))})"
        ref = spec.get("claimRef")
        if isinstance(ref, Mapping) and ref.get("namespace") not in (None, "", self.namespace):
            return f"its claimRef names namespace {ref.get('namespace')}, not the app's {self.namespace}"
        return None

    def landing_refusal(self, obj: Mapping[str, Any], target_namespace: str) -> str | None:
        """``None`` when ``obj``, as it will be applied, lands in ``target_namespace`` (or is a PV),
        else why not (a transform or rewrite moved it elsewhere)."""
        _, kind, namespace, name = identity(obj)
        if kind == "Namespace":
            return (
                None if name == target_namespace else f"it is not the restore's namespace {target_namespace}"
            )
        if kind == "PersistentVolume":
            return None if namespace is None else "a PersistentVolume has no namespace"
        if namespace != target_namespace:
            return f"it would land in namespace {namespace}, not {target_namespace}"
        return None
