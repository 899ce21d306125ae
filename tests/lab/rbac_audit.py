"""Audit-log coverage of the shipped RBAC: every rule used, no request of Standby's denied.

Pure functions over the shipped manifests (``deployments/kubernetes/<site>/``) and the lab
apiservers' audit logs (``<lab>/kube/<site>/audit.jsonl``); the test is ``test_zz_rbac_audit.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.kubeapi.rbac import Attributes, rule_allows
from lab.rbac import SA_NAME, SA_NAMESPACE

STANDBY_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
SELF_REVIEWS = ("selfsubjectaccessreviews", "selfsubjectrulesreviews")


@dataclass(frozen=True)
class Grant:
    """One verb on one resource of one shipped rule: the unit of coverage."""

    role: str
    namespace: str | None  # a Role's namespace; None for a ClusterRole bound cluster-wide
    group: str
    resource: str
    verb: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"Role {self.namespace}/{self.role}" if self.namespace else f"ClusterRole {self.role}"
        names = f" {list(self.names)}" if self.names else ""
        return f'{where}: {self.verb} {self.resource}{names} in API group "{self.group}"'

    def covers(self, attrs: Attributes) -> bool:
        """Whether this grant alone would allow the request."""
        if self.namespace is not None and attrs.namespace != self.namespace:
            return False
        rule = {
            "apiGroups": [self.group],
            "resources": [self.resource],
            "verbs": [self.verb],
            "resourceNames": list(self.names),
        }
        return rule_allows(rule, attrs)


def grants(objects: Iterable[dict[str, Any]]) -> list[Grant]:
    """Every verb x resource x group of the shipped Roles and ClusterRoles bound to Standby."""
    objects = list(objects)
    bound: set[tuple[str, str, str | None]] = set()
    for obj in objects:
        if obj["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if any(
            s.get("kind") == "ServiceAccount" and s.get("name") == SA_NAME for s in obj.get("subjects") or ()
        ):
            ref = obj["roleRef"]
            ns = obj["metadata"].get("namespace") if obj["kind"] == "RoleBinding" else None
            bound.add((ref["kind"], ref["name"], ns))
    out: list[Grant] = []
    for obj in objects:
        if obj["kind"] not in ("Role", "ClusterRole"):
            continue
        name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace")
        scopes = [
            b[2]
            for b in bound
            if b[0] == obj["kind"] and b[1] == name and (obj["kind"] == "ClusterRole" or b[2] == ns)
        ]
        for scope in scopes:
            for rule in obj.get("rules") or ():
                for group in rule.get("apiGroups") or ():
                    for resource in rule.get("resources") or ():
                        for verb in rule.get("verbs") or ():
                            out.append(
                                Grant(
                                    name, scope, group, resource, verb, tuple(rule.get("resourceNames") or ())
                                )
                            )
    return out


CLUSTER_SCOPED = frozenset({"persistentvolumes", "namespaces"})
"""The only resources Standby is granted cluster-wide: both are cluster-scoped (nothing namespaced,
such as Secrets, claims or the workload CR, is granted across namespaces)."""


def cross_namespace(objects: Iterable[dict[str, Any]]) -> list[Grant]:
    """The grants of ClusterRoles bound cluster-wide (ClusterRoleBinding) on anything but the
    cluster-scoped resources Standby needs: each would reach every namespace (``*`` included)."""
    return [g for g in grants(objects) if g.namespace is None and g.resource not in CLUSTER_SCOPED]


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The audit log's entries (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def attributes(entry: dict[str, Any]) -> Attributes:
    """The authorizer's view of an audit entry."""
    return Attributes(
        verb=entry["verb"],
        api_group=entry.get("apiGroup", ""),
        resource=entry.get("resource", ""),
        subresource=entry.get("subresource", ""),
        namespace=entry.get("namespace", ""),
        name=entry.get("name", ""),
        path=entry.get("path", ""),
    )


@dataclass(frozen=True)
class Coverage:
    """What Standby's requests on one site used of the shipped grants."""

    site: str
    requests: int
    denied: tuple[str, ...]
    uncovered: tuple[str, ...]  # allowed when made, but by no grant of the manifests as they are now
    used: dict[Grant, int]
    unused: tuple[Grant, ...]


def coverage(site: str, objects: Iterable[dict[str, Any]], entries: Iterable[dict[str, Any]]) -> Coverage:
    """Match Standby's audited requests on ``site`` against the shipped grants."""
    shipped = grants(objects)
    used = dict.fromkeys(shipped, 0)
    denied: list[str] = []
    uncovered: list[str] = []
    requests = 0
    for entry in entries:
        if entry.get("user") != STANDBY_USER:
            continue
        requests += 1
        attrs = attributes(entry)
        if entry.get("code") in (401, 403):
            what = attrs.combined or attrs.path
            denied.append(
                f"{site}: {entry['code']} {attrs.verb} {what} ns={attrs.namespace or '-'} name={attrs.name or '-'}"
            )
            continue
        if not attrs.is_resource:
            continue  # discovery: the cluster's default system:discovery role
        if attrs.api_group == "authorization.k8s.io" and attrs.resource in SELF_REVIEWS:
            continue  # asking about oneself (standby doctor): the cluster's default system:basic-user role
        # A request counts for the narrowest grants that allow it: a Role's in its namespace when one
        # does, else the cluster-wide ones; so a ClusterRole's rule is "used" only where a Role is not enough.
        covering = [g for g in shipped if g.covers(attrs)]
        if not covering:
            uncovered.append(
                f"{site}: {attrs.verb} {attrs.combined} ns={attrs.namespace or '-'} name={attrs.name or '-'}"
            )
        narrow = [g for g in covering if g.namespace is not None] or covering
        for grant in narrow:
            used[grant] += 1
    return Coverage(
        site, requests, tuple(denied), tuple(uncovered), used, tuple(g for g, n in used.items() if n == 0)
    )
