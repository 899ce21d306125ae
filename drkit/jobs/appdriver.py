"""The app driver: stop, start and smoke-test a protected app on one site, from its configuration.

Everything app-specific comes from the app's config: the workload kind and name, where its URL is
(``checks.urls`` per site, or the workload's ``checks.url_field``), the HTTP health and smoke
checks (``checks.health``, ``checks.smoke``), the Secret holding the admin password.
``checks.kind`` picks the driver: ``nexus`` adds a read-only freeze before a stop, its status and
writable answers through the Nexus REST API and the ``nexus-round-trip`` smoke check (login,
upload, download); ``http`` runs only the configured checks, so a plain app needs no code.

The admin password is read from the site's Secret when needed and never logged or returned. It
is sent only to an ``https`` URL or to one the configuration names (``checks.urls``): a URL read
from the workload object (``checks.url_field``, e.g. the Nexus CR's ``status.url``) that is plain
``http`` is refused, naming the app, the site, the URL and the fix, since whoever can write that
field could otherwise have the password sent to them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from drkit.adapters.kube import ClusterApi
from drkit.adapters.nexus import HttpNexus, NexusApi
from drkit.domain.app_checks import HttpCheck, NexusRoundTrip
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
    failed: tuple[str, ...] = ()
    """The configured HTTP checks that did not pass, e.g. ``GET /healthz``."""

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.readable and self.writable and self.login and self.round_trip and not self.failed


def http_check(url: str, check: HttpCheck) -> bool:
    """Whether ``check`` passes against the app at ``url`` (no answer: it does not)."""
    try:
        resp = httpx.request(
            check.method, url.rstrip("/") + check.path, timeout=check.timeout.total_seconds()
        )
    except httpx.HTTPError:
        return False
    return resp.status_code == check.expect_status and (
        check.expect_body is None or check.expect_body in resp.text
    )


def _label(check: HttpCheck) -> str:
    return f"{check.method} {check.path}"


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
        """The app's URL on this site (``checks.urls``, else the workload's ``checks.url_field``), when it runs."""
        obj = self.workload_object()
        if obj is None:
            return None
        if self.app.checks.urls:
            return self.app.checks.urls.get(self.site.name)
        value = _field(obj, self.app.checks.url_field)
        return str(value) if value else None

    def _nexus(self, url: str) -> NexusApi:
        """A Nexus client of ``url`` holding the admin password: only for an https or configured URL."""
        configured = url in self.app.checks.urls.values()
        if not configured and urlsplit(url).scheme.lower() != "https":
            raise PreconditionFailed(
                f"app {self.app.name} on {self.site.name}: Nexus URL {url} read from {self._where()}"
                f" ({self.app.checks.url_field}) is not https; the admin password is not sent to it",
                hint=f"serve Nexus over https, or name the URL in the configuration:"
                f" apps[{self.app.name}].checks.urls: {{{self.site.name}: {url}}}",
                context={"app": self.app.name, "site": self.site.name, "url": url},
            )
        return self.nexus_factory(url, self.password(), self.site.name)

    def failed_checks(self, url: str) -> list[str]:
        """The health checks that do not pass at ``url`` (empty: healthy)."""
        return [_label(c) for c in self.app.checks.health_checks() if not http_check(url, c)]

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
        return None if url is None else self._nexus(url)

    def writable(self) -> bool:
        """Whether the app answers as up and writable: every health check passes (and, for Nexus, its
        status and writable answers)."""
        url = self.url()
        if url is None or self.failed_checks(url):
            return False
        if self.app.checks.kind != "nexus":
            return True
        try:
            return self._nexus(url).writable()
        except TransientError:
            return False

    def answers(self, url: str) -> bool:
        """Whether anything still answers at ``url`` (a stopped app must not)."""
        try:
            if self.app.checks.kind != "nexus":
                probe = next(iter(self.app.checks.health_checks()), HttpCheck(path="/"))
                httpx.request(probe.method, url.rstrip("/") + probe.path, timeout=2.0)
                return True
            return self._nexus(url).readable()
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
        """The health checks, then each smoke check (for Nexus: status, writable, and a login, upload and
        download of a unique asset in the round trip's repository)."""
        url = self.url()
        if url is None:
            raise TransientError(f"{self._where()} reports no URL yet", hint="the app may still be starting")
        failed = self.failed_checks(url)
        failed += [
            _label(c)
            for c in self.app.checks.smoke_checks()
            if isinstance(c, HttpCheck) and not http_check(url, c)
        ]
        trips = [c for c in self.app.checks.smoke_checks() if isinstance(c, NexusRoundTrip)]
        if self.app.checks.kind != "nexus":
            ok = not failed
            return SmokeResult(ok, ok, True, "", "", True, tuple(failed))
        api = self._nexus(url)
        readable, writable = api.readable(), api.writable()
        login, path, digest, round_trip = True, "", "", True
        for trip in trips:
            login, path, digest, round_trip = self._round_trip(api, trip.repository, tag)
        return SmokeResult(readable, writable, login, path, digest, round_trip, tuple(failed))

    def _round_trip(self, api: NexusApi, repository: str, tag: str) -> tuple[bool, str, str, bool]:
        """Login (create ``repository``), upload and download a unique asset: (login, path, sha256, same)."""
        try:
            api.ensure_raw_repository(repository)
        except PreconditionFailed:
            return False, "", "", False
        data = f"standby smoke {tag} ".encode() + secrets.token_bytes(32)
        digest = hashlib.sha256(data).hexdigest()
        path = f"standby-smoke/{tag}.bin"
        api.upload(repository, path, data)
        same = hashlib.sha256(api.download(repository, path)).hexdigest() == digest
        return True, path, digest, same


def driver_for(app: ProtectedApp, site: Site, cluster: ClusterApi) -> AppDriver:
    """The driver of ``app`` on one site."""
    if app.checks.kind not in ("nexus", "http"):
        raise StandbyError(f"app {app.name}: no driver for checks.kind {app.checks.kind!r}")
    return AppDriver(app=app, site=site, cluster=cluster)
