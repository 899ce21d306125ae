"""Deployment → ReplicaSet → Pod, StatefulSet → Pod (+ PVCs from volumeClaimTemplates), and pod start-up."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Hashable
from typing import Any

from lab.kubeapi.binding import record_event
from lab.kubeapi.controllers import Reconciler
from lab.kubeapi.defaults import now
from lab.kubeapi.errors import ApiError
from lab.kubeapi.store import Store, rand_suffix

Obj = dict[str, Any]
PodCanStart = Callable[[Store, Obj], tuple[bool, str]]
_ip_lock = threading.Lock()
_pod_ips = itertools.count(2)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def always_start(store: Store, pod: Obj) -> tuple[bool, str]:
    """Default ``pod_can_start`` hook: every pod starts."""
    return True, ""


def pvcs_bound(store: Store, pod: Obj) -> tuple[bool, str]:
    """A ready-made hook: the pod starts once every PVC it mounts is Bound."""
    ns = pod["metadata"]["namespace"]
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            pvc = store.try_get("persistentvolumeclaims", ns, claim)
            if pvc is None:
                return False, f'persistentvolumeclaim "{claim}" not found'
            if (pvc.get("status") or {}).get("phase") != "Bound":
                return False, "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    return True, ""


def template_hash(template: Obj) -> str:
    """Stable short hash of a pod template (like ``pod-template-hash``)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def _owner(obj: Obj) -> Obj:
    m = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned(store: Store, resource: str, owner: Obj) -> list[Obj]:
    uid, ns = owner["metadata"]["uid"], owner["metadata"]["namespace"]
    return [
        o
        for o in store.list(resource, ns)
        if any(
            r.get("uid") == uid and r.get("controller") for r in o["metadata"].get("ownerReferences") or []
        )
    ]


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _controller_key(obj: Obj) -> Hashable | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") in ("ReplicaSet", "StatefulSet", "Deployment"):
            return ref["kind"], obj["metadata"]["namespace"], ref["name"]
    return None


class Workloads(Reconciler):
    """Creates and deletes pods for ReplicaSets and StatefulSets, ReplicaSets for Deployments, and starts
    pods (``Running`` + ``Ready``) when ``pod_can_start`` allows."""

    resources = ("deployments", "statefulsets", "replicasets", "pods")

    def __init__(
        self, delay: float = 0.0, pod_start_delay: float = 0.0, pod_can_start: PodCanStart | None = None
    ) -> None:
        super().__init__(delay)
        self.pod_start_delay = pod_start_delay
        self.pod_can_start: PodCanStart = pod_can_start or always_start

    def kinds(self) -> set[str]:
        """Workload kinds and pods."""
        return {"Deployment", "StatefulSet", "ReplicaSet", "Pod"}

    def keys_for(self, store: Store, event_type: str, obj: Obj) -> list[Hashable]:
        """Objects map to themselves and their controller."""
        keys: list[Hashable] = []
        if event_type != "DELETED":
            keys.append((obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]))
        owner = _controller_key(obj)
        if owner:
            keys.append(owner)
        return keys

    def __call__(self, store: Store, event_type: str, obj: Obj | None) -> None:
        if obj is not None and obj.get("kind") == "Pod" and event_type == "ADDED":
            self.enqueue(("Pod", obj["metadata"]["namespace"], obj["metadata"]["name"]), self.pod_start_delay)
        super().__call__(store, event_type, obj)

    def reconcile(self, store: Store, key: Any) -> None:
        """Dispatch on kind."""
        kind, ns, name = key
        getattr(self, f"_{kind.lower()}")(store, ns, name)

    # -- pods -----------------------------------------------------------------------------------------
    def _pod(self, store: Store, ns: str, name: str) -> None:
        pod = store.try_get("pods", ns, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        status = pod.get("status") or {}
        if status.get("phase") != "Pending":
            return
        ok, reason = self.pod_can_start(store, pod)
        t = now()
        if not ok:
            cond = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": reason,
                "lastProbeTime": None,
                "lastTransitionTime": t,
            }
            old = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
            if not old or old[0].get("message") != reason:
                store.patch_status("pods", ns, name, {"conditions": [cond]})
                record_event(store, pod, "FailedScheduling", reason, "Warning")
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            store.patch("pods", ns, name, {"spec": {"nodeName": "fake-node-1"}})
        with _ip_lock:
            n = next(_pod_ips)
        containers = (pod.get("spec") or {}).get("containers") or []
        conds = [
            {"type": t_, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
            for t_ in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        store.replace_status(
            "pods",
            ns,
            name,
            {
                "phase": "Running",
                "conditions": conds,
                "hostIP": "10.0.0.1",
                "hostIPs": [{"ip": "10.0.0.1"}],
                "podIP": f"10.244.{n // 250 % 250}.{n % 250 + 1}",
                "startTime": t,
                "qosClass": "BestEffort",
                "podIPs": [{"ip": f"10.244.{n // 250 % 250}.{n % 250 + 1}"}],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "containerID": f"containerd://{rand_suffix(12)}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": t}},
                    }
                    for c in containers
                ],
            },
        )

    def _new_pod(self, owner: Obj, name: str | None, extra_labels: dict[str, str]) -> Obj:
        tpl = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        meta = tpl.get("metadata") or {}
        meta.pop("name", None)
        meta["labels"] = {**(meta.get("labels") or {}), **extra_labels}
        meta["ownerReferences"] = [_owner(owner)]
        if name:
            meta["name"] = name
        else:
            meta["generateName"] = owner["metadata"]["name"] + "-"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tpl.get("spec") or {}}

    # -- replicasets ----------------------------------------------------------------------------------
    def _replicaset(self, store: Store, ns: str, name: str) -> None:
        rs = store.try_get("replicasets", ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        want = int((rs.get("spec") or {}).get("replicas", 1))
        pods = [p for p in _owned(store, "pods", rs) if not p["metadata"].get("deletionTimestamp")]
        labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        for _ in range(want - len(pods)):
            pod = self._new_pod(rs, f"{name}-{rand_suffix()}", labels)
            try:
                store.create("pods", pod, ns)
            except ApiError:
                return
        if len(pods) > want:
            pods.sort(key=lambda p: (_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in pods[: len(pods) - want]:
                store.delete("pods", ns, pod["metadata"]["name"])
        pods = [p for p in _owned(store, "pods", rs) if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in pods if _ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if {k: (rs.get("status") or {}).get(k) for k in status} != status:
            store.replace_status("replicasets", ns, name, status)

    # -- deployments ----------------------------------------------------------------------------------
    def _deployment(self, store: Store, ns: str, name: str) -> None:
        dep = store.try_get("deployments", ns, name)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        spec = dep.get("spec") or {}
        tpl = spec.get("template") or {}
        h = template_hash(tpl)
        rs_name = f"{name}-{h}"
        owned = _owned(store, "replicasets", dep)
        labels = {**((tpl.get("metadata") or {}).get("labels") or {}), "pod-template-hash": h}
        if not any(r["metadata"]["name"] == rs_name for r in owned):
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            rs_tpl = copy.deepcopy(tpl)
            rs_tpl.setdefault("metadata", {})["labels"] = labels
            store.create(
                "replicasets",
                {
                    "metadata": {
                        "name": rs_name,
                        "labels": labels,
                        "ownerReferences": [_owner(dep)],
                        "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1)},
                    },
                    "spec": {"replicas": spec.get("replicas", 1), "selector": selector, "template": rs_tpl},
                },
                ns,
            )
        for rs in _owned(store, "replicasets", dep):
            target = spec.get("replicas", 1) if rs["metadata"]["name"] == rs_name else 0
            if (rs.get("spec") or {}).get("replicas") != target:
                store.patch("replicasets", ns, rs["metadata"]["name"], {"spec": {"replicas": target}})
        sets = _owned(store, "replicasets", dep)
        cur = next((r for r in sets if r["metadata"]["name"] == rs_name), {})
        total = sum((r.get("status") or {}).get("replicas", 0) for r in sets)
        ready = sum((r.get("status") or {}).get("readyReplicas", 0) for r in sets)
        updated = (cur.get("status") or {}).get("replicas", 0)
        want = spec.get("replicas", 1)
        avail = "True" if ready >= want else "False"
        t = now()
        old_conds = {c["type"]: c for c in (dep.get("status") or {}).get("conditions") or []}
        conds = [
            {
                "type": "Available",
                "status": avail,
                "reason": "MinimumReplicasAvailable" if avail == "True" else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if avail == "True"
                else "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if avail == "True" else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{rs_name}" has successfully progressed.'
                if avail == "True"
                else f'ReplicaSet "{rs_name}" is progressing.',
            },
        ]
        for c in conds:
            prev = old_conds.get(c["type"], {})
            same = prev.get("status") == c["status"]
            c["lastUpdateTime"] = (
                prev.get("lastUpdateTime", t) if same and prev.get("reason") == c["reason"] else t
            )
            c["lastTransitionTime"] = prev.get("lastTransitionTime", t) if same else t
        status: Obj = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": conds,
        }
        if not status["readyReplicas"]:
            status.pop("readyReplicas")
            status.pop("availableReplicas")
        if not status["unavailableReplicas"]:
            status.pop("unavailableReplicas")
        if status != dep.get("status"):
            store.replace_status("deployments", ns, name, status)

    # -- statefulsets ---------------------------------------------------------------------------------
    def _statefulset(self, store: Store, ns: str, name: str) -> None:
        sts = store.try_get("statefulsets", ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        rev = f"{name}-{template_hash(spec.get('template') or {})}"
        pods = {p["metadata"]["name"]: p for p in _owned(store, "pods", sts)}
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for pname, pod in sorted(pods.items(), reverse=True):
            idx = pname.rsplit("-", 1)[-1]
            stale = (pod["metadata"].get("labels") or {}).get("controller-revision-hash") != rev
            if not idx.isdigit() or int(idx) >= want or stale:
                store.delete("pods", ns, pname)
                pods.pop(pname)
                if ordered:
                    break
        for i in range(want):
            pname = f"{name}-{i}"
            if pname in pods:
                if ordered and not _ready(pods[pname]):
                    break
                continue
            self._claims(store, sts, i)
            pod = self._new_pod(
                sts,
                pname,
                {
                    "controller-revision-hash": rev,
                    "statefulset.kubernetes.io/pod-name": pname,
                    "apps.kubernetes.io/pod-index": str(i),
                },
            )
            pod["spec"]["hostname"] = pname
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            vols = pod["spec"].setdefault("volumes", [])
            for tpl in spec.get("volumeClaimTemplates") or []:
                tname = tpl["metadata"]["name"]
                if not any(v.get("name") == tname for v in vols):
                    vols.append({"name": tname, "persistentVolumeClaim": {"claimName": f"{tname}-{pname}"}})
            try:
                store.create("pods", pod, ns)
            except ApiError:
                pass
            if ordered:
                break
        current = [p for p in _owned(store, "pods", sts) if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in current if _ready(p))
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(current),
            "readyReplicas": ready,
            "currentReplicas": len(current),
            "updatedReplicas": len(current),
            "availableReplicas": ready,
            "currentRevision": rev,
            "updateRevision": rev,
            "collisionCount": 0,
        }
        if status != sts.get("status"):
            store.replace_status("statefulsets", ns, name, status)

    def _claims(self, store: Store, sts: Obj, ordinal: int) -> None:
        name, ns = sts["metadata"]["name"], sts["metadata"]["namespace"]
        labels = ((sts["spec"].get("selector") or {}).get("matchLabels")) or {}
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            claim = f"{tpl['metadata']['name']}-{name}-{ordinal}"
            if store.try_get("persistentvolumeclaims", ns, claim) is None:
                meta = {"name": claim, "labels": {**labels, **(tpl["metadata"].get("labels") or {})}}
                try:
                    store.create(
                        "persistentvolumeclaims", {"metadata": meta, "spec": copy.deepcopy(tpl["spec"])}, ns
                    )
                except ApiError:
                    pass
