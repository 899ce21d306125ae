"""RBAC authorization as Kubernetes' RBAC authorizer does it, over the store's rbac.authorization.k8s.io/v1
objects (Role, ClusterRole, RoleBinding, ClusterRoleBinding).

A request is allowed when one rule of one role bound to the user (by name, or by one of its groups, or
as a ServiceAccount) covers it:

* ``verbs``: the verb, or ``*``;
* ``apiGroups``: the group (``""`` for core), or ``*``;
* ``resources``: ``*``, the resource, ``resource/subresource``, or ``*/subresource``;
* ``resourceNames``: empty, or it holds the object's name (a request without a name, such as
  ``create``, ``list`` or ``deletecollection``, never matches a rule with resourceNames);
* ``nonResourceURLs`` (ClusterRoles bound by ClusterRoleBindings only): the path, ``*``, or a prefix
  ending in ``*``.

A RoleBinding grants its Role, or a ClusterRole, in its own namespace only; a ClusterRoleBinding grants a
ClusterRole everywhere, cluster-scoped resources included. The group ``system:masters`` is allowed
everything (as the real apiserver's superuser group). Not modelled: aggregated ClusterRoles, the
escalate/bind checks on creating roles and bindings, and impersonation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

RBAC_GROUP = "rbac.authorization.k8s.io"
SUPERUSER_GROUP = "system:masters"


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) user, as the authenticator hands it to the authorizer."""

    name: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> User:
        """The user of a ServiceAccount token: ``system:serviceaccount:<ns>:<name>`` and its groups."""
        return cls(
            f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        )

    @property
    def sa(self) -> tuple[str, str] | None:
        """``(namespace, name)`` when this user is a ServiceAccount."""
        parts = self.name.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return parts[2], parts[3]
        return None


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


@dataclass(frozen=True)
class Attributes:
    """What a request asks: the authorizer's view of it (``resource`` empty for a non-resource path)."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        """Whether the request is for an API resource (not a path such as ``/api``)."""
        return bool(self.resource)

    @property
    def combined(self) -> str:
        """``resource`` or ``resource/subresource``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class Decision:
    """The authorizer's answer; ``by`` names the role and binding that allowed it."""

    allowed: bool
    by: str = ""
    errors: tuple[str, ...] = field(default=())


class RbacSource(Protocol):
    """Where the RBAC objects come from (the store, or plain lists in tests)."""

    def rbac_objects(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` (Role, ClusterRole, RoleBinding or ClusterRoleBinding)."""
        ...


def _in(value: str, allowed: Iterable[str]) -> bool:
    items = list(allowed or ())
    return "*" in items or value in items


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    """Whether ``rule.verbs`` covers ``verb``."""
    return _in(verb, rule.get("verbs") or ())


def group_matches(rule: dict[str, Any], group: str) -> bool:
    """Whether ``rule.apiGroups`` covers ``group``."""
    return _in(group, rule.get("apiGroups") or ())


def resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    """Whether ``rule.resources`` covers ``resource[/subresource]`` (``*``, exact, or ``*/sub``)."""
    combined = f"{resource}/{subresource}" if subresource else resource
    for item in rule.get("resources") or ():
        if item == "*" or item == combined:
            return True
        if subresource and item == f"*/{subresource}":
            return True
    return False


def name_matches(rule: dict[str, Any], name: str) -> bool:
    """Whether ``rule.resourceNames`` is empty or holds ``name``."""
    names = rule.get("resourceNames") or ()
    return not names or name in names


def path_matches(rule: dict[str, Any], path: str) -> bool:
    """Whether ``rule.nonResourceURLs`` covers ``path``."""
    for item in rule.get("nonResourceURLs") or ():
        if item == "*" or item == path or (item.endswith("*") and path.startswith(item[:-1])):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule allows ``attrs``."""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.is_resource:
        return path_matches(rule, attrs.path)
    return (
        group_matches(rule, attrs.api_group)
        and resource_matches(rule, attrs.resource, attrs.subresource)
        and name_matches(rule, attrs.name)
    )


def subject_matches(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    """Whether a binding's subject is ``user`` (User, Group or ServiceAccount)."""
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == user.name)
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        sa = user.sa
        ns = subject.get("namespace") or binding_namespace
        return sa is not None and sa == (ns, subject.get("name"))
    return False


def _role(source: RbacSource, ref: dict[str, Any], namespace: str) -> tuple[dict[str, Any] | None, str]:
    kind, name = ref.get("kind"), ref.get("name")
    if kind == "ClusterRole":
        for obj in source.rbac_objects("ClusterRole"):
            if obj["metadata"]["name"] == name:
                return obj, ""
        return None, f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
    if kind == "Role":
        for obj in source.rbac_objects("Role"):
            if obj["metadata"]["name"] == name and obj["metadata"].get("namespace") == namespace:
                return obj, ""
        return None, f'role.rbac.authorization.k8s.io "{name}" not found'
    return None, f"unknown roleRef kind {kind!r}"


def authorize(source: RbacSource, user: User, attrs: Attributes) -> Decision:
    """Decide a request as the RBAC authorizer does."""
    if SUPERUSER_GROUP in user.groups:
        return Decision(True, by=f"group {SUPERUSER_GROUP}")
    errors: list[str] = []
    bindings = [("ClusterRoleBinding", b, "") for b in source.rbac_objects("ClusterRoleBinding")]
    if attrs.is_resource and attrs.namespace:
        bindings += [
            ("RoleBinding", b, attrs.namespace)
            for b in source.rbac_objects("RoleBinding")
            if b["metadata"].get("namespace") == attrs.namespace
        ]
    for kind, binding, ns in bindings:
        if not any(subject_matches(s, user, ns) for s in binding.get("subjects") or ()):
            continue
        ref = binding.get("roleRef") or {}
        if kind == "ClusterRoleBinding" and ref.get("kind") != "ClusterRole":
            continue
        role, error = _role(source, ref, ns)
        if role is None:
            errors.append(error)
            continue
        for rule in role.get("rules") or ():
            if kind == "RoleBinding" and not attrs.is_resource:
                continue  # non-resource URLs are granted cluster-wide only
            if rule_allows(rule, attrs):
                where = f'{kind} "{ns + "/" if ns else ""}{binding["metadata"]["name"]}"'
                return Decision(True, by=f'{ref.get("kind")} "{ref.get("name")}" via {where}')
    return Decision(False, errors=tuple(errors))


def forbidden_message(user: User, attrs: Attributes, errors: Iterable[str] = ()) -> str:
    """The real apiserver's 403 message for ``attrs``."""
    suffix = f": RBAC: {', '.join(errors)}" if errors else ""
    if not attrs.is_resource:
        return f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"{suffix}'
    res = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    head = f'{res} "{attrs.name}"' if attrs.name else res
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'{head} is forbidden: User "{user.name}" cannot {attrs.verb} resource "{attrs.combined}" '
        f'in API group "{attrs.api_group}" {where}{suffix}'
    )


def forbidden_details(attrs: Attributes) -> dict[str, Any]:
    """The ``details`` of a 403 Status (``name`` when the request had one, ``group``, ``kind`` the resource)."""
    details: dict[str, Any] = {"group": attrs.api_group, "kind": attrs.resource}
    if attrs.name:
        details = {"name": attrs.name, **details}
    return details


def bootstrap_objects() -> list[dict[str, Any]]:
    """The default roles every cluster has that matter here: discovery for authenticated users,
    ``/version`` and health for everyone (``system:discovery``, ``system:public-info-viewer``), and
    asking the authorizer about oneself (``system:basic-user``: create self-subject reviews)."""

    def role(name: str, urls: list[str], rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": rules or [{"nonResourceURLs": urls, "verbs": ["get"]}],
        }

    def binding(name: str, groups: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
        }

    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *public]
    return [
        role("system:discovery", discovery),
        binding("system:discovery", ["system:authenticated"]),
        role("system:public-info-viewer", public),
        binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
        role(
            "system:basic-user",
            [],
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "verbs": ["create"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                }
            ],
        ),
        binding("system:basic-user", ["system:authenticated"]),
    ]
