"""The 401/403 wording, from the apiserver's Status message (pure)."""

from __future__ import annotations

import pytest

from drkit.domain.access import access_denied, parse_forbidden

MSG = (
    'pods "tools-1" is forbidden: User "system:serviceaccount:standby:standby" cannot create resource '
    '"pods/exec" in API group "" in the namespace "rook-ceph"'
)


@pytest.mark.parametrize("message", [MSG, MSG.replace('"', '\\"')])  # plain, or escaped in a handshake error
def test_parse_forbidden(message: str) -> None:
    denial = parse_forbidden(message)
    assert denial is not None
    assert (denial.user, denial.verb, denial.resource, denial.group, denial.namespace) == (
        "system:serviceaccount:standby:standby",
        "create",
        "pods/exec",
        "",
        "rook-ceph",
    )


def test_cluster_scope_and_group() -> None:
    denial = parse_forbidden(
        'persistentvolumes is forbidden: User "u" cannot patch resource "persistentvolumes" in API group "" at '
        "the cluster scope"
    )
    assert denial is not None and denial.namespace is None and denial.role == "the standby ClusterRole"
    error = access_denied(
        "site-b",
        "patch X",
        403,
        'x.apps is forbidden: User "u" cannot get resource "x" in API group "apps" in the namespace "n"',
    )
    assert str(error) == (
        "patch X on site-b: 403 Forbidden: u may not get x.apps in namespace n (next: add to the standby Role in "
        'namespace n in site-b: apiGroups ["apps"] resources ["x"] verbs ["get"])'
    )


def test_a_403_that_is_not_rbacs_still_names_the_site() -> None:
    error = access_denied("site-a", "list Secret", 403, "denied by a webhook")
    assert str(error).startswith("list Secret on site-a: 403 Forbidden: denied by a webhook (next: grant")
    assert error.rule == ""
