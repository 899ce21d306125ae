"""What to tell an operator when an apiserver answers 401 or 403: pure text, from the Status message.

A 403's message names the user, verb, resource, API group and namespace, in the fixed wording of
Kubernetes' RBAC authorizer::

    pods "x" is forbidden: User "system:serviceaccount:standby:standby" cannot create resource
    "pods/exec" in API group "" in the namespace "rook-ceph"

:func:`access_denied` turns it into one line naming the verb, the resource, the site, and the rule to
add to the standby Role (or ClusterRole, for cluster-scoped resources) shipped in
``deployments/kubernetes/<site>/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drkit.domain.errors import AccessDenied

_FORBIDDEN = re.compile(
    r'User \\*"(?P<user>[^"\\]+)\\*" cannot (?P<verb>[a-z]+) resource \\*"(?P<resource>[^"\\]+)\\*" '
    r'in API group \\*"(?P<group>[^"\\]*)\\*"(?: in the namespace \\*"(?P<namespace>[^"\\]+)\\*"| at the cluster scope)'
)


@dataclass(frozen=True)
class Access:
    """One verb on one resource, as an access review asks it (``namespace`` empty: cluster scope)."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        res = f"{self.resource}.{self.group}" if self.group else self.resource
        named = f"/{self.name}" if self.name else ""
        return f"{self.verb} {res}{named} " + (f"in {self.namespace}" if self.namespace else "(cluster)")

    @property
    def rule(self) -> str:
        """The PolicyRule that grants it, in manifest syntax."""
        names = f' resourceNames ["{self.name}"]' if self.name else ""
        return f'apiGroups ["{self.group}"] resources ["{self.resource}"]{names} verbs ["{self.verb}"]'

    @property
    def role(self) -> str:
        """Which shipped role gets the rule."""
        return (
            f"the standby Role in namespace {self.namespace}" if self.namespace else "the standby ClusterRole"
        )


@dataclass(frozen=True)
class Denial:
    """A parsed 403: who was refused what, where."""

    user: str
    verb: str
    resource: str
    group: str
    namespace: str | None

    @property
    def rule(self) -> str:
        """The PolicyRule to add, in manifest syntax."""
        return f'apiGroups ["{self.group}"] resources ["{self.resource}"] verbs ["{self.verb}"]'

    @property
    def role(self) -> str:
        """Which shipped role gets the rule."""
        return (
            f"the standby Role in namespace {self.namespace}" if self.namespace else "the standby ClusterRole"
        )


def parse_forbidden(message: str) -> Denial | None:
    """The denial in a 403 Status message (quotes may come escaped), or ``None`` when it is not RBAC's."""
    m = _FORBIDDEN.search(message)
    if m is None:
        return None
    return Denial(m["user"], m["verb"], m["resource"], m["group"], m["namespace"])


def access_denied(site: str, what: str, code: int, message: str) -> AccessDenied:
    """The one-line error for a 401 or 403 from ``site``'s apiserver while doing ``what``."""
    ctx: dict[str, object] = {"site": site, "object": what, "code": code}
    if code == 401:
        return AccessDenied(
            f"{what} on {site}: 401 Unauthorized: the apiserver of {site} does not accept Standby's token"
            " (expired, revoked, or minted for another cluster)",
            code=401,
            hint=f"mint a new token for site {site} (kubectl --context {site} -n standby create token standby)"
            f" and put it in the kubeconfig or Secret named by sites[{site}].kube",
            context=ctx,
        )
    denial = parse_forbidden(message)
    if denial is None:
        return AccessDenied(
            f"{what} on {site}: 403 Forbidden: {message}",
            code=403,
            hint=f"grant Standby's ServiceAccount this access on {site} (deployments/kubernetes/{site}/)",
            context=ctx,
        )
    where = f"in namespace {denial.namespace}" if denial.namespace else "at cluster scope"
    ctx.update(user=denial.user, verb=denial.verb, resource=denial.resource, namespace=denial.namespace)
    return AccessDenied(
        f"{what} on {site}: 403 Forbidden: {denial.user} may not {denial.verb} "
        f"{denial.resource}{'.' + denial.group if denial.group else ''} {where}",
        code=403,
        rule=denial.rule,
        hint=f"add to {denial.role} in {site}: {denial.rule}",
        context=ctx,
    )
