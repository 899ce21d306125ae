"""The Nexus driver (``checks.kind: nexus``): the HTTP driver plus what the Nexus REST API gives.

On top of the configured HTTP checks it adds a read-only freeze before a stop (quiesce) and its
release after a start, Nexus's status and writable answers, the ``nexus-round-trip`` smoke check
(login, upload and download of a unique asset) and the drill's canary (a raw asset in
``checks.smoke_repository``).

The admin password is read from the site's Secret (``checks.admin_secret``) when needed and never
logged or returned. It is sent only to an ``https`` URL or to one the configuration names
(``checks.urls``): a URL read from the workload object (``checks.url_field``, e.g. the Nexus CR's
``status.url``) that is plain ``http`` is refused, naming the app, the site, the URL and the fix,
since whoever can write that field could otherwise have the password sent to them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import httpx

from drkit.adapters.kube import ClusterApi
from drkit.adapters.nexus import HttpNexus, NexusApi
from drkit.domain.app_checks import NexusRoundTrip
from drkit.domain.errors import NotFound, PreconditionFailed, StandbyError, TransientError
from drkit.domain.models import KindRef, ProtectedApp, Site
from drkit.jobs.drivers.base import SmokeResult
from drkit.jobs.drivers.http import HttpDriver

if TYPE_CHECKING:
    from drkit.jobs.world import World

SECRET = KindRef(version="v1", kind="Secret")
NexusFactory = Callable[[str, str, str], NexusApi]
"""``(url, password, site) -> NexusApi``; tests may hand another HTTP client."""


def _http_nexus(url: str, password: str, site: str) -> NexusApi:
    return HttpNexus(url, username="admin", password=password, site=site, timeout=10.0)


@dataclass
class NexusDriver(HttpDriver):
    """:class:`~drkit.jobs.drivers.base.AppDriver` of a Nexus (see the module docstring)."""

    kind: ClassVar[str] = "nexus"
    canary: ClassVar[bool] = True
    nexus_factory: NexusFactory = _http_nexus

    @classmethod
    def build(
        cls, app: ProtectedApp, site: Site, cluster: ClusterApi, world: World | None = None
    ) -> NexusDriver:
        """The driver of ``app`` on ``site``; the run's world may hand the Nexus client
        (:attr:`World.app_clients` under ``nexus``)."""
        factory: NexusFactory | None = world.app_clients.get(cls.kind) if world is not None else None
        return cls(app=app, site=site, cluster=cluster, nexus_factory=factory or _http_nexus)

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
        """A client of the running Nexus, or None when it has no URL yet."""
        url = self.url()
        return None if url is None else self._nexus(url)

    def writable(self) -> bool:
        """Every health check passes, and Nexus answers as up and writable."""
        url = self.url()
        if url is None or self.failed_checks(url):
            return False
        try:
            return self._nexus(url).writable()
        except TransientError:
            return False

    def answers(self, url: str) -> bool:
        """Whether Nexus still answers as readable at ``url``."""
        try:
            return self._nexus(url).readable()
        except (TransientError, httpx.HTTPError):
            return False

    def quiesce(self) -> bool:
        """Freeze Nexus read-only before it stops; False when it cannot be reached."""
        api = self.api()
        if api is None:
            return False
        try:
            api.freeze()
        except TransientError:
            return False
        return True

    def release(self) -> None:
        """Lift a read-only freeze carried over in the replicated data."""
        api = self.api()
        if api is not None and api.frozen():
            api.release()

    def smoke(self, tag: str) -> SmokeResult:
        """The health checks, each HTTP smoke check, Nexus's status and writable answers, and each
        round trip (a login, upload and download of a unique asset in its repository)."""
        url, failed = self._checked()
        trips = [c for c in self.app.checks.smoke_checks() if isinstance(c, NexusRoundTrip)]
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

    def _running_api(self, what: str, where: str) -> NexusApi:
        api = self.api()
        if api is None:
            raise StandbyError(
                f"{self.app.name} on {self.site.name} reports no URL: the canary cannot be {what}",
                hint=f"check that the app runs on {where}",
            )
        return api

    def write_canary(self, path: str, data: bytes) -> None:
        """Upload ``data`` as raw asset ``path`` of ``checks.smoke_repository`` (created when missing)."""
        api = self._running_api("written", "its primary")
        api.ensure_raw_repository(self.app.checks.smoke_repository)
        api.upload(self.app.checks.smoke_repository, path, data)

    def read_canary(self, path: str) -> bytes | None:
        """Download raw asset ``path`` of ``checks.smoke_repository`` (None: not there)."""
        api = self._running_api("read", "the secondary")
        try:
            return api.download(self.app.checks.smoke_repository, path)
        except NotFound:
            return None
