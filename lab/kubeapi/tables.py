"""``meta.k8s.io/v1 Table`` rendering for ``kubectl get`` (server-side printing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lab.kubeapi.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, Callable[[Obj], Any], int]  # name, type, cell function, priority


def human_age(ts: str | None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` like ``duration.HumanDuration``."""
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    secs = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    if secs < 3600 * 3:
        return f"{secs // 60}m"
    if secs < 86400 * 2:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _g(obj: Any, path: str, default: Any = None) -> Any:
    for p in path.strip(".").split("."):
        if not isinstance(obj, dict):
            return default
        obj = obj.get(p)
    return default if obj is None else obj


def _name(o: Obj) -> str:
    return o["metadata"]["name"]


def _age(o: Obj) -> str:
    return human_age(o["metadata"].get("creationTimestamp"))


def _pod_ready(o: Obj) -> str:
    cs = _g(o, "status.containerStatuses", [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{len(_g(o, 'spec.containers', []))}"


def _pod_status(o: Obj) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return _g(o, "status.reason") or _g(o, "status.phase", "Unknown")


def _modes(o: Obj) -> str:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    modes = _g(o, "status.accessModes") or _g(o, "spec.accessModes", [])
    return ",".join(short.get(m, m) for m in modes)


def _ports(o: Obj) -> str:
    ports = _g(o, "spec.ports", [])
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _claim(o: Obj) -> str:
    ref = _g(o, "spec.claimRef")
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref else ""


_N = ("Name", "string", _name, 0)
_AGE = ("Age", "string", _age, 0)

COLUMNS: dict[str, list[Column]] = {
    "namespaces": [_N, ("Status", "string", lambda o: _g(o, "status.phase", ""), 0), _AGE],
    "pods": [
        _N,
        ("Ready", "string", _pod_ready, 0),
        ("Status", "string", _pod_status, 0),
        ("Restarts", "string", lambda o: "0", 0),
        _AGE,
        ("IP", "string", lambda o: _g(o, "status.podIP", "<none>"), 1),
        ("Node", "string", lambda o: _g(o, "spec.nodeName", "<none>"), 1),
    ],
    "persistentvolumeclaims": [
        _N,
        ("Status", "string", lambda o: _g(o, "status.phase", ""), 0),
        ("Volume", "string", lambda o: _g(o, "spec.volumeName", ""), 0),
        ("Capacity", "string", lambda o: _g(o, "status.capacity.storage", ""), 0),
        ("Access Modes", "string", _modes, 0),
        ("StorageClass", "string", lambda o: _g(o, "spec.storageClassName", "<unset>"), 0),
        ("VolumeAttributesClass", "string", lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>"), 0),
        _AGE,
        ("VolumeMode", "string", lambda o: _g(o, "spec.volumeMode", ""), 1),
    ],
    "persistentvolumes": [
        _N,
        ("Capacity", "string", lambda o: _g(o, "spec.capacity.storage", ""), 0),
        ("Access Modes", "string", _modes, 0),
        ("Reclaim Policy", "string", lambda o: _g(o, "spec.persistentVolumeReclaimPolicy", ""), 0),
        ("Status", "string", lambda o: _g(o, "status.phase", ""), 0),
        ("Claim", "string", _claim, 0),
        ("StorageClass", "string", lambda o: _g(o, "spec.storageClassName", ""), 0),
        ("VolumeAttributesClass", "string", lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>"), 0),
        ("Reason", "string", lambda o: _g(o, "status.reason", ""), 0),
        _AGE,
    ],
    "deployments": [
        _N,
        ("Ready", "string", lambda o: f"{_g(o, 'status.readyReplicas', 0)}/{_g(o, 'spec.replicas', 0)}", 0),
        ("Up-to-date", "integer", lambda o: _g(o, "status.updatedReplicas", 0), 0),
        ("Available", "integer", lambda o: _g(o, "status.availableReplicas", 0), 0),
        _AGE,
    ],
    "statefulsets": [
        _N,
        ("Ready", "string", lambda o: f"{_g(o, 'status.readyReplicas', 0)}/{_g(o, 'spec.replicas', 0)}", 0),
        _AGE,
    ],
    "replicasets": [
        _N,
        ("Desired", "integer", lambda o: _g(o, "spec.replicas", 0), 0),
        ("Current", "integer", lambda o: _g(o, "status.replicas", 0), 0),
        ("Ready", "integer", lambda o: _g(o, "status.readyReplicas", 0), 0),
        _AGE,
    ],
    "services": [
        _N,
        ("Type", "string", lambda o: _g(o, "spec.type", ""), 0),
        ("Cluster-IP", "string", lambda o: _g(o, "spec.clusterIP", "<none>"), 0),
        ("External-IP", "string", lambda o: "<none>", 0),
        ("Port(s)", "string", _ports, 0),
        _AGE,
    ],
    "configmaps": [
        _N,
        ("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}), 0),
        _AGE,
    ],
    "secrets": [
        _N,
        ("Type", "string", lambda o: o.get("type", ""), 0),
        ("Data", "integer", lambda o: len(o.get("data") or {}), 0),
        _AGE,
    ],
    "storageclasses": [
        _N,
        ("Provisioner", "string", lambda o: o.get("provisioner", ""), 0),
        ("ReclaimPolicy", "string", lambda o: o.get("reclaimPolicy", ""), 0),
        ("VolumeBindingMode", "string", lambda o: o.get("volumeBindingMode", ""), 0),
        ("AllowVolumeExpansion", "string", lambda o: str(bool(o.get("allowVolumeExpansion"))).lower(), 0),
        _AGE,
    ],
    "ingresses": [
        _N,
        ("Class", "string", lambda o: _g(o, "spec.ingressClassName", "<none>"), 0),
        (
            "Hosts",
            "string",
            lambda o: ",".join(r.get("host", "*") for r in _g(o, "spec.rules", [])) or "*",
            0,
        ),
        ("Address", "string", lambda o: "", 0),
        ("Ports", "string", lambda o: "80", 0),
        _AGE,
    ],
    "events": [
        (
            "Last Seen",
            "string",
            lambda o: human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")),
            0,
        ),
        ("Type", "string", lambda o: o.get("type", ""), 0),
        ("Reason", "string", lambda o: o.get("reason", ""), 0),
        (
            "Object",
            "string",
            lambda o: f"{_g(o, 'involvedObject.kind', '').lower()}/{_g(o, 'involvedObject.name', '')}",
            0,
        ),
        ("Message", "string", lambda o: o.get("message", ""), 0),
    ],
    "customresourcedefinitions": [
        _N,
        ("Created At", "date", lambda o: o["metadata"].get("creationTimestamp"), 0),
    ],
}


def _cell(path: str, date: bool) -> Callable[[Obj], Any]:
    def cell(obj: Obj) -> Any:
        return human_age(_g(obj, path)) if date else _g(obj, path, "")

    return cell


def _crd_columns(rt: ResourceType) -> list[Column]:
    cols: list[Column] = [_N]
    for col in rt.printer_columns:
        path = col.get("jsonPath", "")
        cols.append(
            (
                col["name"],
                col.get("type", "string"),
                _cell(path, col.get("type") == "date"),
                col.get("priority", 0),
            )
        )
    if not any(c.get("jsonPath") == ".metadata.creationTimestamp" for c in rt.printer_columns):
        cols.append(_AGE)
    return cols


def table(rt: ResourceType, items: list[Obj], meta: Obj, include: str = "PartialObjectMetadata") -> Obj:
    """Render ``items`` as a Table; ``include`` is ``None``, ``Object`` or ``PartialObjectMetadata``."""
    cols = COLUMNS.get(rt.plural) if rt.builtin else _crd_columns(rt)
    cols = cols or [_N, _AGE]
    defs = [
        {
            "name": n,
            "type": t if t != "date" else "string",
            "format": "name" if n == "Name" else "",
            "description": n,
            "priority": p,
        }
        for n, t, _, p in cols
    ]
    rows = []
    for item in items:
        row: Obj = {"cells": [fn(item) for _, _, fn, _ in cols]}
        if include == "Object":
            row["object"] = item
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    }
