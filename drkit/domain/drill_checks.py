"""Two guards of the drill's gate known before it starts (see :func:`drkit.domain.drill.make_drill_plan`):
the canary can be written and read, and the isolated drill's namespace is installed. Pure."""

from __future__ import annotations

from drkit.domain.models import ProtectedApp
from drkit.domain.operations import Check


def drill_namespace_check(ns: str, site: str, present: bool | None) -> Check:
    """The isolated drill's guard: its namespace ``ns`` is installed on the secondary (with the
    manifests that bind Standby's Role in it); Standby never creates or deletes it, so no ClusterRole
    needs to grant Secrets or claims in every namespace. ``present`` None: the site could not be asked."""
    return Check(
        name="drill namespace installed",
        ok=present is not False,
        detail=f"{ns} on {site}"
        if present
        else "not checked (site unreachable)"
        if present is None
        else f"namespace {ns} does not exist on {site}: install it once with Standby's Role in it (as"
        f" deployments/kubernetes/site-b/standby-rbac.yaml does), or drill with mode promote",
    )


def canary_check(app: ProtectedApp, without: str = "") -> Check:
    """The gate's ``canary possible`` guard: the drill writes its canary through the Nexus API, so an
    app with ``checks.kind: nexus`` is drilled with one; an app whose driver starts the drill's copy
    itself and says why it has no canary (``without``) is drilled without, its canary reported as not
    checked; any other app is refused."""
    ok = app.checks.kind == "nexus"
    if not ok and without:
        return Check(name="canary possible", ok=True, detail=f"not checked: {without}")
    return Check(
        name="canary possible",
        ok=ok,
        detail="written and read through the Nexus API"
        if ok
        else f"checks.kind is {app.checks.kind!r}: the drill writes its canary through the Nexus API, so only"
        " apps with checks.kind nexus can be drilled; backup, restore, the operations and the RPO work for this app",
    )
