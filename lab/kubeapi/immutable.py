"""Immutable-field rules applied on update, patch and apply (422 Invalid like the real server)."""

from __future__ import annotations

import copy
import re
from typing import Any

from lab.kubeapi.errors import invalid
from lab.kubeapi.resources import ResourceType

_PV_MUTABLE = {
    "capacity",
    "accessModes",
    "claimRef",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "mountOptions",
    "volumeAttributesClassName",
    "nodeAffinity",
}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 0.001,
}


def parse_quantity(value: Any) -> float:
    """Parse a Kubernetes quantity (``10Gi``, ``500M``, ``1``) to a number; unparseable gives 0."""
    m = _QUANTITY.match(str(value or "").strip())
    if not m or m.group(2) not in _SUFFIX:
        return 0.0
    try:
        return float(m.group(1)) * _SUFFIX[m.group(2)]
    except ValueError:
        return 0.0


def _forbid(field: str, message: str) -> dict[str, str]:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {message}", "field": field}


def _get(obj: dict[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _pvc(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    causes = []
    o, n = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
    old_size = parse_quantity(_get(o, "resources", "requests", "storage"))
    new_size = parse_quantity(_get(n, "resources", "requests", "storage"))
    if new_size < old_size:
        causes.append(_forbid("spec.resources.requests.storage", "field can not be less than previous value"))
    for spec in (o, n):
        (spec.get("resources") or {}).get("requests", {}).pop("storage", None)
        spec.pop("volumeAttributesClassName", None)
    if not o.get("volumeName"):
        o["volumeName"] = n.get("volumeName")
    if not o.get("storageClassName"):
        o["storageClassName"] = n.get("storageClassName")
    norm = [{k: v for k, v in s.items() if v not in (None, {}, [])} for s in (o, n)]
    for s in norm:
        if s.get("resources") == {"requests": {}}:
            s.pop("resources")
    if norm[0] != norm[1]:
        causes.append(
            _forbid(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims",
            )
        )
    return causes


def _pv(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    o = {k: v for k, v in (old.get("spec") or {}).items() if k not in _PV_MUTABLE}
    n = {k: v for k, v in (new.get("spec") or {}).items() if k not in _PV_MUTABLE}
    causes = []
    if o.get("volumeMode", "Filesystem") != n.get("volumeMode", "Filesystem"):
        causes.append(_forbid("spec.volumeMode", "field is immutable"))
    o.pop("volumeMode", None)
    n.pop("volumeMode", None)
    if o != n:
        causes.append(
            _forbid("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation")
        )
    return causes


def _immutable_data(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    if not old.get("immutable"):
        return []
    causes = []
    if not new.get("immutable"):
        causes.append(_forbid("immutable", "field is immutable when `immutable` is set"))
    for key in ("data", "binaryData", "stringData"):
        if (old.get(key) or {}) != (new.get(key) or {}):
            causes.append(_forbid(key, "field is immutable when `immutable` is set"))
    return causes


def _storage_class(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    causes = []
    if (old.get("parameters") or {}) != (new.get("parameters") or {}):
        causes.append(_forbid("parameters", "updates to parameters are forbidden."))
    if old.get("provisioner") != new.get("provisioner"):
        causes.append(_forbid("provisioner", "updates to provisioner are forbidden."))
    for key in ("reclaimPolicy", "volumeBindingMode"):
        if old.get(key) != new.get(key) and new.get(key) is not None:
            causes.append(_forbid(key, "field is immutable"))
    return causes


def _workload(old: dict[str, Any], new: dict[str, Any], sts: bool) -> list[dict[str, str]]:
    causes = []
    if _get(old, "spec", "selector") != _get(new, "spec", "selector"):
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "spec.selector",
                "message": "Invalid value: field is immutable",
            }
        )
    if sts:
        for key in ("serviceName", "volumeClaimTemplates", "podManagementPolicy"):
            if _get(old, "spec", key) != _get(new, "spec", key):
                causes.append(
                    _forbid(
                        "spec",
                        "updates to statefulset spec for fields other than 'replicas', "
                        "'ordinals', 'template', 'updateStrategy', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                        "are forbidden",
                    )
                )
                break
    return causes


def _pod(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    def strip(spec: dict[str, Any]) -> dict[str, Any]:
        spec = copy.deepcopy(spec)
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                c.pop("image", None)
        for key in ("activeDeadlineSeconds", "tolerations", "nodeName"):
            spec.pop(key, None)
        return spec

    if strip(old.get("spec") or {}) != strip(new.get("spec") or {}):
        return [
            _forbid(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                "`spec.tolerations` (only additions to existing tolerations)",
            )
        ]
    return []


def _transition_rules(schema: dict[str, Any] | None, old: Any, new: Any, path: str) -> list[dict[str, str]]:
    """Enforce CRD ``x-kubernetes-validations`` rules of the form ``self == oldSelf``."""
    if not isinstance(schema, dict) or old is None or new is None:
        return []
    causes = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if rule.get("rule", "").replace(" ", "") == "self==oldSelf" and old != new:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": path,
                    "message": f'Invalid value: "object": {rule.get("message", "field is immutable")}',
                }
            )
    if isinstance(old, dict) and isinstance(new, dict):
        for key, sub in (schema.get("properties") or {}).items():
            causes += _transition_rules(sub, old.get(key), new.get(key), f"{path}.{key}" if path else key)
    return causes


def check(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise 422 Invalid if ``new`` changes a field of ``old`` that may not change."""
    causes: list[dict[str, str]] = []
    if rt.builtin:
        if rt.plural == "persistentvolumeclaims":
            causes = _pvc(old, new)
        elif rt.plural == "persistentvolumes":
            causes = _pv(old, new)
        elif rt.plural in ("secrets", "configmaps"):
            causes = _immutable_data(old, new)
        elif rt.plural == "storageclasses":
            causes = _storage_class(old, new)
        elif rt.plural in ("deployments", "statefulsets", "replicasets"):
            causes = _workload(old, new, rt.plural == "statefulsets")
        elif rt.plural == "pods":
            causes = _pod(old, new)
        elif rt.plural == "customresourcedefinitions":
            for key in ("group", "scope"):
                if _get(old, "spec", key) != _get(new, "spec", key):
                    causes.append(
                        {
                            "reason": "FieldValueInvalid",
                            "field": f"spec.{key}",
                            "message": "Invalid value: field is immutable",
                        }
                    )
    else:
        props = (rt.schema or {}).get("properties") or {}
        for key in ("spec",):
            causes += _transition_rules(props.get(key), old.get(key), new.get(key), key)
    if causes:
        raise invalid(rt.group, rt.kind, old["metadata"]["name"], causes)
