"""Legacy discovery documents (``/api``, ``/apis``, ``APIResourceList``) and ``/version``."""

from __future__ import annotations

from typing import Any

from lab.kubeapi.resources import REVIEWS, VERBS, Registry, ResourceType

VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "fake",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T00:00:00Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(host: str) -> dict[str, Any]:
    """``GET /api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(reg: Registry) -> dict[str, Any]:
    """``GET /apis``."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, vs) for g, vs in reg.groups().items()],
    }


def api_group(reg: Registry, name: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``."""
    versions = reg.groups().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _entry(rt: ResourceType) -> dict[str, Any]:
    e: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": ["create"] if (rt.group, rt.plural) in REVIEWS else list(VERBS),
    }
    if rt.short_names:
        e["shortNames"] = list(rt.short_names)
    if rt.builtin and rt.plural in ("pods", "deployments", "statefulsets", "services", "replicasets"):
        e["categories"] = ["all"]
    return e


def _sub(rt: ResourceType, sub: str) -> dict[str, Any]:
    e: dict[str, Any] = {
        "name": f"{rt.plural}/{sub}",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": ["get", "patch", "update"],
    }
    if sub == "scale":
        e.update(group="autoscaling", version="v1", kind="Scale")
    elif sub == "exec":
        e.update(kind="PodExecOptions", verbs=["create", "get"])
    elif sub == "log":
        e.update(kind="Pod", verbs=["get"])
    elif sub == "token":
        e.update(kind="TokenRequest", group="authentication.k8s.io", version="v1", verbs=["create"])
    return e


def resource_list(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>``."""
    types = sorted(
        (t for t in reg.all() if t.group == group and t.version == version), key=lambda t: t.plural
    )
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        resources.append(_entry(rt))
        resources.extend(_sub(rt, s) for s in rt.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
