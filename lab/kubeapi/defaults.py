"""Defaulting applied on create, like the real apiserver's defaulters (a subset)."""

from __future__ import annotations

import ipaddress
import itertools
import threading
from datetime import UTC, datetime
from typing import Any

from lab.kubeapi.resources import ResourceType

_ip_lock = threading.Lock()
_service_ips = itertools.count(10)


def now() -> str:
    """RFC 3339 UTC timestamp with second precision, as metav1.Time serializes."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = str(c.get("image", ""))
    c.setdefault(
        "imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
    )
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any]) -> None:
    """Default a PodSpec in place."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            _container(c)


def apply(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Default ``obj`` (already validated) in place."""
    spec = obj.setdefault("spec", {}) if rt.builtin and rt.plural not in _NO_SPEC else None
    meta = obj["metadata"]
    if rt.plural == "namespaces":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
        obj["status"] = {"phase": "Active"}
    elif rt.plural == "secrets":
        obj.setdefault("type", "Opaque")
    elif rt.plural == "pods" and spec is not None:
        pod_spec(spec)
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt.plural == "persistentvolumeclaims" and spec is not None:
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif rt.plural == "persistentvolumes" and spec is not None:
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif rt.plural == "services" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
            with _ip_lock:
                spec["clusterIP"] = str(ipaddress.ip_address("10.96.0.0") + next(_service_ips))
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        obj["status"] = {"loadBalancer": {}}
    elif rt.plural in ("deployments", "statefulsets", "replicasets") and spec is not None:
        spec.setdefault("replicas", 1)
        if rt.plural != "replicasets":
            spec.setdefault("revisionHistoryLimit", 10)
        pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
        if rt.plural == "deployments":
            spec.setdefault("progressDeadlineSeconds", 600)
            if not (spec.get("strategy") or {}).get("type"):
                spec["strategy"] = {"type": "RollingUpdate", **(spec.get("strategy") or {})}
            if spec["strategy"]["type"] == "RollingUpdate":
                spec["strategy"].setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
        elif rt.plural == "statefulsets":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            if not (spec.get("updateStrategy") or {}).get("type"):
                spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            spec.setdefault(
                "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
            )
        obj["status"] = (
            {"replicas": 0, "availableReplicas": 0}
            if rt.plural == "statefulsets"
            else ({"replicas": 0} if rt.plural == "replicasets" else {})
        )
    elif rt.plural == "storageclasses":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif rt.plural == "customresourcedefinitions":
        names = (obj.get("spec") or {}).get("names") or {}
        t = now()
        obj["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in (obj["spec"].get("versions") or []) if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": t,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": t,
                },
            ],
        }
    if spec == {} and rt.plural in ("configmaps",):
        obj.pop("spec", None)


_NO_SPEC = {
    "secrets",
    "configmaps",
    "events",
    "storageclasses",
    "serviceaccounts",
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
}
