"""The fake apiserver's RBAC evaluator, table-driven, as Kubernetes' RBAC authorizer decides."""

from __future__ import annotations

from typing import Any

import pytest

from lab.kubeapi.rbac import (
    ANONYMOUS,
    Attributes,
    User,
    authorize,
    bootstrap_objects,
    forbidden_details,
    forbidden_message,
)

G = "rbac.authorization.k8s.io"
SA = User.service_account("standby", "standby")
OTHER_SA = User.service_account("other", "standby")


class Objects:
    """An RbacSource over plain lists."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = [*objects, *bootstrap_objects()]

    def rbac_objects(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]


def _rbac(kind: str, name: str, namespace: str | None, **fields: Any) -> dict[str, Any]:
    """An RBAC object: ``kind`` namespaced (Role...) when ``namespace`` is given, else its Cluster form."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": f"{G}/v1",
        "kind": kind if namespace else f"Cluster{kind}",
        "metadata": meta,
        **fields,
    }


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    return _rbac("Role", name, namespace, rules=rules)


def binding(
    name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]], namespace: str | None = None
) -> dict[str, Any]:
    return _rbac(
        "RoleBinding",
        name,
        namespace,
        roleRef={"apiGroup": G, "kind": ref_kind, "name": ref},
        subjects=subjects,
    )


SA_SUBJECT = [{"kind": "ServiceAccount", "name": "standby", "namespace": "standby"}]

WORLD = Objects(
    role(
        "app",
        [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": ["tools"],
                "verbs": ["get"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
            {"apiGroups": ["replication.storage.openshift.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]},
        ],
        namespace="app",
    ),
    binding("app", "Role", "app", SA_SUBJECT, namespace="app"),
    role("pv", [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["list", "delete"]}]),
    binding("pv", "ClusterRole", "pv", SA_SUBJECT),
    role("cm-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    binding("cm-in-other", "ClusterRole", "cm-reader", SA_SUBJECT, namespace="other"),
    binding(
        "cm-by-group", "ClusterRole", "cm-reader", [{"kind": "Group", "name": "readers"}], namespace="grp"
    ),
    role(
        "ns",
        [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["scratch"], "verbs": ["delete"]}],
    ),
    binding("ns", "ClusterRole", "ns", SA_SUBJECT),
    binding("dangling", "Role", "missing", SA_SUBJECT, namespace="app"),
)


@pytest.mark.parametrize(
    ("user", "attrs", "allowed"),
    [
        # verbs and resources in a Role: its namespace only
        (SA, Attributes("get", "", "secrets", namespace="app", name="s"), True),
        (SA, Attributes("list", "", "secrets", namespace="app"), True),
        (SA, Attributes("create", "", "secrets", namespace="app", name=""), False),
        (SA, Attributes("get", "", "secrets", namespace="other", name="s"), False),
        (OTHER_SA, Attributes("get", "", "secrets", namespace="app", name="s"), False),
        (SA, Attributes("list", "", "secrets"), False),  # all namespaces: a Role never grants that
        # subresources are separate resources
        (SA, Attributes("create", "", "pods", "exec", namespace="app", name="p"), True),
        (SA, Attributes("get", "", "pods", "exec", namespace="app", name="p"), False),
        (SA, Attributes("create", "", "pods", namespace="app"), False),
        (SA, Attributes("patch", "apps", "deployments", "scale", namespace="app", name="d"), True),
        (SA, Attributes("patch", "apps", "deployments", namespace="app", name="d"), False),
        # resourceNames: only that name, and never a request without a name
        (SA, Attributes("get", "apps", "deployments", namespace="app", name="tools"), True),
        (SA, Attributes("get", "apps", "deployments", namespace="app", name="web"), False),
        (SA, Attributes("list", "apps", "deployments", namespace="app"), False),
        # apiGroups must match; "*" wildcards for verbs, resources and groups; "*/status"
        (
            SA,
            Attributes(
                "deletecollection", "replication.storage.openshift.io", "volumereplications", namespace="app"
            ),
            True,
        ),
        (SA, Attributes("get", "other.io", "volumereplications", namespace="app", name="v"), False),
        (SA, Attributes("get", "apps", "deployments", "status", namespace="app", name="d"), True),
        (SA, Attributes("update", "apps", "deployments", "status", namespace="app", name="d"), False),
        # ClusterRole by ClusterRoleBinding: cluster-scoped and every namespace
        (SA, Attributes("list", "", "persistentvolumes"), True),
        (SA, Attributes("delete", "", "persistentvolumes", name="pv-1"), True),
        (SA, Attributes("create", "", "persistentvolumes"), False),
        # ClusterRole by RoleBinding: that namespace only
        (SA, Attributes("list", "", "configmaps", namespace="other"), True),
        (SA, Attributes("list", "", "configmaps", namespace="app"), False),
        (
            User("bob", ("readers", "system:authenticated")),
            Attributes("list", "", "configmaps", namespace="grp"),
            True,
        ),
        (
            User("bob", ("system:authenticated",)),
            Attributes("list", "", "configmaps", namespace="grp"),
            False,
        ),
        # namespaces: resourceNames on the namespace's own name
        (SA, Attributes("delete", "", "namespaces", namespace="scratch", name="scratch"), True),
        (SA, Attributes("delete", "", "namespaces", namespace="app", name="app"), False),
        # non-resource URLs: discovery for authenticated users, /version for everyone
        (SA, Attributes("get", path="/apis/apps/v1"), True),
        (ANONYMOUS, Attributes("get", path="/version"), True),
        (ANONYMOUS, Attributes("get", path="/api"), False),
        (SA, Attributes("get", path="/metrics"), False),
        # the superuser group
        (
            User("lab-admin", ("system:masters",)),
            Attributes("delete", "", "secrets", namespace="x", name="y"),
            True,
        ),
    ],
)
def test_authorize(user: User, attrs: Attributes, allowed: bool) -> None:
    assert authorize(WORLD, user, attrs).allowed is allowed


def test_allow_names_the_role_and_binding() -> None:
    decision = authorize(WORLD, SA, Attributes("list", "", "persistentvolumes"))
    assert decision.by == 'ClusterRole "pv" via ClusterRoleBinding "pv"'


def test_a_binding_to_a_missing_role_is_reported_in_the_denial() -> None:
    attrs = Attributes("delete", "", "secrets", namespace="app", name="s")
    decision = authorize(WORLD, SA, attrs)
    assert not decision.allowed
    assert decision.errors == ('role.rbac.authorization.k8s.io "missing" not found',)
    assert forbidden_message(SA, attrs, decision.errors).endswith(
        ': RBAC: role.rbac.authorization.k8s.io "missing" not found'
    )


@pytest.mark.parametrize(
    ("attrs", "message", "details"),
    [
        (
            Attributes("create", "", "pods", "exec", namespace="rook-ceph", name="tools-1"),
            'pods "tools-1" is forbidden: User "system:serviceaccount:standby:standby" cannot create resource '
            '"pods/exec" in API group "" in the namespace "rook-ceph"',
            {"name": "tools-1", "group": "", "kind": "pods"},
        ),
        (
            Attributes("list", "apps", "deployments", namespace="app"),
            'deployments.apps is forbidden: User "system:serviceaccount:standby:standby" cannot list resource '
            '"deployments" in API group "apps" in the namespace "app"',
            {"group": "apps", "kind": "deployments"},
        ),
        (
            Attributes("create", "", "persistentvolumes"),
            'persistentvolumes is forbidden: User "system:serviceaccount:standby:standby" cannot create resource '
            '"persistentvolumes" in API group "" at the cluster scope',
            {"group": "", "kind": "persistentvolumes"},
        ),
    ],
)
def test_forbidden_message_is_the_real_apiservers(
    attrs: Attributes, message: str, details: dict[str, str]
) -> None:
    assert forbidden_message(SA, attrs) == message
    assert forbidden_details(attrs) == details


def test_non_resource_forbidden_message() -> None:
    assert forbidden_message(ANONYMOUS, Attributes("get", path="/api")) == (
        'forbidden: User "system:anonymous" cannot get path "/api"'
    )
