"""The plain-HTTP driver (``checks.kind: http``): an app that runs as one Kubernetes workload object
and is judged by the HTTP checks of its configuration only, so a plain app needs no code.

Everything comes from the app's config: the workload kind and name, where its URL is
(``checks.urls`` per site, or the workload's ``checks.url_field``), the HTTP health and smoke
checks (``checks.health``, ``checks.smoke``). It has no quiesce and no canary. The Nexus driver
(:mod:`drkit.jobs.drivers.nexus`) builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from drkit.adapters.kube import ClusterApi
from drkit.domain.app_checks import HttpCheck
from drkit.domain.errors import NotFound, PreconditionFailed, TransientError
from drkit.domain.models import KindRef, ProtectedApp, Site
from drkit.jobs.drivers.base import Restore, SmokeResult

if TYPE_CHECKING:
    from drkit.jobs.world import World


def _field(obj: dict[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


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


def label(check: HttpCheck) -> str:
    """How a failed check is named: ``GET /healthz``."""
    return f"{check.method} {check.path}"


@dataclass
class HttpDriver:
    """:class:`~drkit.jobs.drivers.base.AppDriver` of an app judged by its configured HTTP checks."""

    kind: ClassVar[str] = "http"
    canary: ClassVar[bool] = False
    app: ProtectedApp
    site: Site
    cluster: ClusterApi

    @classmethod
    def build(
        cls, app: ProtectedApp, site: Site, cluster: ClusterApi, world: World | None = None
    ) -> HttpDriver:
        """The driver of ``app`` on ``site`` (a :data:`~drkit.jobs.drivers.base.DriverFactory`)."""
        return cls(app=app, site=site, cluster=cluster)

    @property
    def workload(self) -> KindRef:
        """The kind of the app's workload object."""
        return self.app.kube_workload(f"the {self.kind} driver").kind

    @property
    def workload_name(self) -> str:
        """The name of the app's workload object."""
        return self.app.kube_workload(f"the {self.kind} driver").name

    def _where(self) -> str:
        return f"{self.workload.kind} {self.app.namespace}/{self.workload_name} on {self.site.name}"

    # ------------------------------------------------------------------------------------ reading
    def workload_object(self) -> dict[str, Any] | None:
        """The workload object, or None when absent."""
        try:
            return self.cluster.get(self.workload, self.workload_name, self.app.namespace)
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

    def failed_checks(self, url: str) -> list[str]:
        """The health checks that do not pass at ``url`` (empty: healthy)."""
        return [label(c) for c in self.app.checks.health_checks() if not http_check(url, c)]

    def writable(self) -> bool:
        """Whether every health check passes."""
        url = self.url()
        return url is not None and not self.failed_checks(url)

    def answers(self, url: str) -> bool:
        """Whether anything answers the first health check's request (or ``GET /``) at ``url``."""
        probe = next(iter(self.app.checks.health_checks()), HttpCheck(path="/"))
        try:
            httpx.request(probe.method, url.rstrip("/") + probe.path, timeout=2.0)
        except (TransientError, httpx.HTTPError):
            return False
        return True

    # ------------------------------------------------------------------------------------- acting
    def quiesce(self) -> bool:
        """No read-only state: False."""
        return False

    def release(self) -> None:
        """No read-only state: nothing to lift."""

    def stop(self) -> bool:
        """Delete the workload object; False when it was already gone."""
        return self.cluster.delete(self.workload, self.workload_name, self.app.namespace)

    def start(self, restore: Restore) -> None:
        """Restore the workload object from the backup: its controller starts the app."""
        restore((self.workload.kind,))

    def _checked(self) -> tuple[str, list[str]]:
        """The URL, and the health and HTTP smoke checks that fail there."""
        url = self.url()
        if url is None:
            raise TransientError(f"{self._where()} reports no URL yet", hint="the app may still be starting")
        failed = self.failed_checks(url)
        failed += [
            label(c)
            for c in self.app.checks.smoke_checks()
            if isinstance(c, HttpCheck) and not http_check(url, c)
        ]
        return url, failed

    def smoke(self, tag: str) -> SmokeResult:
        """The health checks, then each HTTP smoke check."""
        _, failed = self._checked()
        ok = not failed
        return SmokeResult(ok, ok, True, "", "", True, tuple(failed))

    def _no_canary(self) -> PreconditionFailed:
        return PreconditionFailed(
            f"app {self.app.name} on {self.site.name}: checks.kind {self.kind!r} has no canary to write or read",
            hint="only apps whose driver keeps data Standby can write (checks.kind nexus) can be drilled",
        )

    def write_canary(self, path: str, data: bytes) -> None:
        """No canary: :class:`PreconditionFailed` (the drill's gate refuses such an app before)."""
        raise self._no_canary()

    def read_canary(self, path: str) -> bytes | None:
        """No canary: :class:`PreconditionFailed`."""
        raise self._no_canary()

    def backup_kinds(self) -> tuple[KindRef, ...]:
        """The configured ``backup.kinds``."""
        return tuple(self.app.backup.kinds)
