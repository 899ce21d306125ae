"""PersistentVolume / PersistentVolumeClaim static binding controller (no dynamic provisioning)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from lab.kubeapi.controllers import Reconciler
from lab.kubeapi.defaults import now
from lab.kubeapi.errors import ApiError
from lab.kubeapi.immutable import parse_quantity
from lab.kubeapi.store import Store, rand_suffix

Obj = dict[str, Any]


def record_event(store: Store, involved: Obj, reason: str, message: str, etype: str = "Normal") -> None:
    """Create a core/v1 Event about ``involved`` (best effort)."""
    meta = involved["metadata"]
    ns = meta.get("namespace") or "default"
    try:
        store.create(
            "events",
            {
                "metadata": {"name": f"{meta['name']}.{rand_suffix(8)}", "namespace": ns},
                "involvedObject": {
                    "kind": involved["kind"],
                    "apiVersion": involved["apiVersion"],
                    "name": meta["name"],
                    "namespace": meta.get("namespace", ""),
                    "uid": meta["uid"],
                },
                "reason": reason,
                "message": message,
                "type": etype,
                "count": 1,
                "firstTimestamp": now(),
                "lastTimestamp": now(),
                "source": {"component": "fake-controller"},
            },
            ns,
        )
    except ApiError:
        pass


class VolumeBinder(Reconciler):
    """Binds a PVC to the PV named in ``spec.volumeName`` (or the PV whose ``claimRef`` names the claim);
    keeps PV phases (Available, Bound, Released) up to date."""

    resources = ("persistentvolumeclaims", "persistentvolumes")

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self._last_reason: dict[Hashable, str] = {}

    def kinds(self) -> set[str]:
        """PVC and PV."""
        return {"PersistentVolumeClaim", "PersistentVolume"}

    def keys_for(self, store: Store, event_type: str, obj: Obj) -> list[Hashable]:
        """PVC events touch the claim and its volume; PV events touch the volume and its claim."""
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if obj["kind"] == "PersistentVolumeClaim":
            keys: list[Hashable] = [("pvc", meta["namespace"], meta["name"])]
            if spec.get("volumeName"):
                keys.append(("pv", spec["volumeName"]))
            if event_type == "DELETED":
                keys += [
                    ("pv", pv["metadata"]["name"])
                    for pv in store.list("persistentvolumes")
                    if _refers(pv, meta["namespace"], meta["name"])
                ]
            return keys
        keys = [("pv", meta["name"])]
        ref = spec.get("claimRef") or {}
        if ref.get("name"):
            keys.append(("pvc", ref.get("namespace", ""), ref["name"]))
        return keys

    def reconcile(self, store: Store, key: Any) -> None:
        """Dispatch on the key type."""
        if key[0] == "pvc":
            self._claim(store, key[1], key[2])
        else:
            self._volume(store, key[1])

    def _report(self, store: Store, pvc: Obj, reason: str) -> None:
        key = (pvc["metadata"]["namespace"], pvc["metadata"]["name"])
        if self._last_reason.get(key) != reason:
            self._last_reason[key] = reason
            record_event(store, pvc, "FailedBinding", reason, "Warning")

    def _claim(self, store: Store, ns: str, name: str) -> None:
        pvc = store.try_get("persistentvolumeclaims", ns, name)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
            return
        spec = pvc.get("spec") or {}
        vol = spec.get("volumeName")
        if not vol:
            match = [
                pv for pv in store.list("persistentvolumes") if _refers(pv, ns, name, pvc["metadata"]["uid"])
            ]
            if not match:
                if (pvc.get("status") or {}).get("phase") != "Pending":
                    store.patch_status("persistentvolumeclaims", ns, name, {"phase": "Pending"})
                return
            vol = match[0]["metadata"]["name"]
        pv = store.try_get("persistentvolumes", None, vol)
        if pv is None:
            if (pvc.get("status") or {}).get("phase") == "Bound":
                store.patch_status("persistentvolumeclaims", ns, name, {"phase": "Lost"})
            self._report(store, pvc, f'volume "{vol}" not found')
            return
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref and not _refers(pv, ns, name, pvc["metadata"]["uid"]):
            self._report(store, pvc, f'volume "{vol}" already bound to a different claim.')
            return
        problem = _mismatch(pv, pvc)
        if problem:
            self._report(store, pvc, f'Cannot bind to requested volume "{vol}": {problem}')
            return
        pv_spec = pv.get("spec") or {}
        if ref.get("uid") != pvc["metadata"]["uid"] or not ref:
            store.patch(
                "persistentvolumes",
                None,
                vol,
                {
                    "spec": {
                        "claimRef": {
                            "kind": "PersistentVolumeClaim",
                            "apiVersion": "v1",
                            "namespace": ns,
                            "name": name,
                            "uid": pvc["metadata"]["uid"],
                            "resourceVersion": pvc["metadata"]["resourceVersion"],
                        }
                    },
                    "metadata": {"annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                },
            )
        if (pv.get("status") or {}).get("phase") != "Bound":
            store.patch_status("persistentvolumes", None, vol, {"phase": "Bound"})
        if not spec.get("volumeName") or "pv.kubernetes.io/bind-completed" not in (
            pvc["metadata"].get("annotations") or {}
        ):
            ann = {"pv.kubernetes.io/bind-completed": "yes"}
            if not spec.get("volumeName"):
                ann["pv.kubernetes.io/bound-by-controller"] = "yes"
            store.patch(
                "persistentvolumeclaims",
                ns,
                name,
                {"spec": {"volumeName": vol}, "metadata": {"annotations": ann}},
            )
        want = {
            "phase": "Bound",
            "accessModes": pv_spec.get("accessModes") or [],
            "capacity": pv_spec.get("capacity") or {},
        }
        if {k: (pvc.get("status") or {}).get(k) for k in want} != want:
            store.patch_status("persistentvolumeclaims", ns, name, want)
            self._last_reason.pop((ns, name), None)

    def _volume(self, store: Store, name: str) -> None:
        pv = store.try_get("persistentvolumes", None, name)
        if pv is None or pv["metadata"].get("deletionTimestamp"):
            return
        phase = (pv.get("status") or {}).get("phase")
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if not ref.get("name"):
            if phase != "Available":
                store.patch_status("persistentvolumes", None, name, {"phase": "Available"})
            return
        pvc = store.try_get("persistentvolumeclaims", ref.get("namespace"), ref["name"])
        if pvc is not None and (not ref.get("uid") or ref["uid"] == pvc["metadata"]["uid"]):
            self.enqueue(("pvc", ref.get("namespace"), ref["name"]), 0.0)
            if not ref.get("uid") and phase != "Available":
                store.patch_status("persistentvolumes", None, name, {"phase": "Available"})
            return
        if ref.get("uid"):
            if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
                store.delete("persistentvolumes", None, name)
            elif phase != "Released":
                store.patch_status("persistentvolumes", None, name, {"phase": "Released"})
        elif phase != "Available":
            store.patch_status("persistentvolumes", None, name, {"phase": "Available"})


def _refers(pv: Obj, ns: str, name: str, uid: str | None = None) -> bool:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("name") != name or ref.get("namespace") != ns:
        return False
    return not (uid and ref.get("uid") and ref["uid"] != uid)


def _mismatch(pv: Obj, pvc: Obj) -> str:
    pv_spec, pvc_spec = pv.get("spec") or {}, pvc.get("spec") or {}
    if (pv_spec.get("storageClassName") or "") != (pvc_spec.get("storageClassName") or ""):
        return "storageClassName does not match"
    want = parse_quantity(((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage"))
    have = parse_quantity((pv_spec.get("capacity") or {}).get("storage"))
    if want > have:
        return "requested PV is too small"
    if not set(pvc_spec.get("accessModes") or []) <= set(pv_spec.get("accessModes") or []):
        return "incompatible accessMode"
    if pv_spec.get("volumeMode", "Filesystem") != pvc_spec.get("volumeMode", "Filesystem"):
        return "incompatible volumeMode"
    return ""
