"""The app driver: stop, start and smoke-test a protected app on one site, from its configuration.

Everything app-specific comes from the app's config: the workload kind and name, the field of the
workload holding its URL (``checks.url_field``), the Secret holding the admin password, the
smoke repository. ``checks.kind`` picks the check: ``nexus`` (freeze, writable, login, upload and
download through the Nexus REST API) or ``http`` (a GET on ``checks.health_path``).

The admin password is read from the site's Secret when needed and never logged or returned.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from drkit.adapters.kube import ClusterApi
from drkit.adapters.nexus import HttpNexus, NexusApi
from drkit.domain.errors import NotFound, PreconditionFailed, StandbyError, TransientError
from drkit.domain.models import KindRef, ProtectedApp, Site

SECRET = KindRef(version="v1", kind="Secret")
NexusFactory = Callable[[str, str, str], NexusApi]
"""``(url, password, site) -> NexusApi``; tests may hand another HTTP client."""


def _http_nexus(url: str, password: str, site: str) -> NexusApi:
    return HttpNexus(url, username="admin", password=password, site=site, timeout=10.0)


def _field(obj: dict[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


@dataclass(frozen=True)
class SmokeResult:
    """What a smoke test saw (no secret in it)."""

    readable: bool
    writable: bool
    login: bool
    path: str
    sha256: str
    round_trip: bool

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.readable and self.writable and self.login and self.round_trip


@dataclass
class AppDriver:
    """Stop, start and smoke-test ``app`` on the site whose ``cluster`` is given."""

    app: ProtectedApp
    site: Site
    cluster: ClusterApi
    nexus_factory: NexusFactory = _http_nexus

    @property
    def workload(self) -> KindRef:
        """The kind of the app's workload object."""
        return self.app.workload.kind

    def _where(self) -> str:
        return f"{self.workload.kind} {self.app.namespace}/{self.app.workload.name} on {self.site.name}"

    # ------------------------------------------------------------------------------------ reading
    def workload_object(self) -> dict[str, Any] | None:
        """The workload object, or None when absent."""
        try:
            return self.cluster.get(self.workload, self.app.workload.name, self.app.namespace)
        except NotFound:
            return None

    def url(self) -> str | None:
        """The app's URL from its workload's ``checks.url_field``, when it runs."""
        obj = self.workload_object()
        value = _field(obj, self.app.checks.url_field) if obj else None
        return str(value) if value else None

    def password(self) -> str:
        """The admin password from the site's Secret (never logged)."""
        name = self.app.checks.admin_secret
        if not name:
            raise PreconditionFailed(
                f"app {self.app.name} names no admin Secret (checks.admin_secret)",
                hint="set checks.admin_secret and checks.admin_secret_key in the configuration",
            )
        secret = self.cluster.get(SECRET, name, self.app.namespace)
        data = (secret.get("data") or {}).get(self.app.checks.admin_secret_key)
        if not data:
            raise PreconditionFailed(
                f"Secret {self.app.namespace}/{name} on {self.site.name} has no key {self.app.checks.admin_secret_key!r}",
                hint="fix checks.admin_secret_key, or the Secret",
            )
        return base64.b64decode(data).decode()

    def api(self) -> NexusApi | None:
        """A client of the running app, or None when it has no URL yet."""
        url = self.url()
        return None if url is None else self.nexus_factory(url, self.password(), self.site.name)

    def writable(self) -> bool:
        """Whether the app answers as writable (``nexus``) or healthy (``http``)."""
        url = self.url()
        if url is None:
            return False
        try:
            if self.app.checks.kind == "http":
                return httpx.get(url.rstrip("/") + self.app.checks.health_path, timeout=5.0).status_code == 200
            api = self.nexus_factory(url, self.password(), self.site.name)
            return api.writable()
        except (TransientError, httpx.HTTPError):
            return False

    def answers(self, url: str) -> bool:
        """Whether anything still answers at ``url`` (a stopped app must not)."""
        try:
            if self.app.checks.kind == "http":
                httpx.get(url.rstrip("/") + self.app.checks.health_path, timeout=2.0)
                return True
            return self.nexus_factory(url, self.password(), self.site.name).readable()
        except (TransientError, httpx.HTTPError):
            return False

    # ------------------------------------------------------------------------------------- acting
    def freeze(self) -> bool:
        """Make the app read-only before it stops (Nexus only); False when it cannot be reached."""
        api = self.api() if self.app.checks.kind == "nexus" else None
        if api is None:
            return False
        try:
            api.freeze()
        except TransientError:
            return False
        return True

    def release_freeze(self) -> None:
        """Lift a read-only freeze carried over in the replicated data (Nexus only)."""
        api = self.api() if self.app.checks.kind == "nexus" else None
        if api is not None and api.frozen():
            api.release()

    def remove_workload(self) -> bool:
        """Delete the workload object; False when it was already gone."""
        return self.cluster.delete(self.workload, self.app.workload.name, self.app.namespace)

    def smoke(self, tag: str) -> SmokeResult:
        """Status, writable, login (create the smoke repository), upload and download a unique asset."""
        api = self.api()
        if api is None:
            raise TransientError(f"{self._where()} reports no URL yet", hint="the app may still be starting")
        if self.app.checks.kind == "http":
            ok = self.writable()
            return SmokeResult(ok, ok, True, "", "", ok)
        readable, writable = api.readable(), api.writable()
        try:
            api.ensure_raw_repository(self.app.checks.smoke_repository)
            login = True
        except PreconditionFailed:
            login = False
        data = f"standby smoke {tag} ".encode() + secrets.token_bytes(32)
        digest = hashlib.sha256(data).hexdigest()
        path = f"standby-smoke/{tag}.bin"
        round_trip = False
        if login:
            api.upload(self.app.checks.smoke_repository, path, data)
            round_trip = hashlib.sha256(api.download(self.app.checks.smoke_repository, path)).hexdigest() == digest
        return SmokeResult(readable, writable, login, path, digest, round_trip)


def driver_for(app: ProtectedApp, site: Site, cluster: ClusterApi) -> AppDriver:
    """The driver of ``app`` on one site."""
    if app.checks.kind not in ("nexus", "http"):
        raise StandbyError(f"app {app.name}: no driver for checks.kind {app.checks.kind!r}")
    return AppDriver(app=app, site=site, cluster=cluster)
