"""An app's checks as data (``checks`` in its configuration): the driver, where the app's URL is,
the HTTP health checks and the smoke checks (an HTTP check or a Nexus round trip). Pure models; the
checks are run by :mod:`drkit.jobs.appdriver`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from drkit.domain.model_base import Duration, Model


class HttpCheck(Model):
    """One HTTP request to the app's URL and the answer it must get."""

    kind: Literal["http"] = Field("http", description="an HTTP request")
    path: str = Field(..., pattern=r"^/", description="path under the app's URL, e.g. /healthz")
    method: Literal["GET", "HEAD"] = Field("GET", description="HTTP method")
    expect_status: int = Field(200, ge=100, le=599, description="status code the answer must have")
    expect_body: str | None = Field(None, description="text the answer's body must contain; any when empty")
    timeout: Duration = Field(timedelta(seconds=5), description="how long to wait for the answer")


class NexusRoundTrip(Model):
    """Nexus only: log in, create a raw repository, upload a unique asset and download it back."""

    kind: Literal["nexus-round-trip"] = Field(..., description="a Nexus login, upload and download")
    repository: str = Field("dr-smoke", min_length=1, description="raw repository used for the round trip")


SmokeCheck = Annotated[HttpCheck | NexusRoundTrip, Field(discriminator="kind")]


class Checks(Model):
    """How to tell that the app is healthy, and how to smoke-test it."""

    kind: Literal["nexus", "http", "opennebula"] = Field(
        "nexus",
        description="driver: 'nexus' adds a read-only freeze before a stop and the admin login;"
        " 'http' only runs the listed checks; 'opennebula': virtual machines on an OpenNebula"
        " front-end per site (the app's 'opennebula' section), the listed checks run against their guest",
    )
    url_field: str = Field(
        "status.url", description="dotted path of the workload object's field holding the app URL"
    )
    urls: dict[str, str] = Field(
        default_factory=dict,
        description="the app's URL per site name (e.g. its Ingress host there); used instead of"
        " url_field when set, and only while the workload object exists",
    )
    health: tuple[HttpCheck, ...] | None = Field(
        None,
        description="HTTP checks that must all pass for the app to count as up and writable; when"
        " absent: GET health_path (http), none beyond the driver's own status and writable (nexus)",
    )
    smoke: tuple[SmokeCheck, ...] | None = Field(
        None,
        description="smoke checks after a restore or a move, on top of the health checks; when absent:"
        " none (http), a nexus-round-trip in smoke_repository (nexus)",
    )
    health_path: str = Field(
        "/service/rest/v1/status", description="path answering 200 when healthy (default health check)"
    )
    admin_secret: str | None = Field(None, description="Secret holding the admin password")
    admin_secret_key: str = Field("password", description="key of the password in that Secret")
    smoke_repository: str = Field("dr-smoke", description="repository used by upload/download smoke tests")
    startup_timeout: Duration | None = Field(
        None,
        description="the older name of limits.startup (how long the app may take to start); honoured"
        " when limits.startup is empty, refused when both are set and differ",
    )

    @model_validator(mode="after")
    def _driver_checks(self) -> Checks:
        if self.kind != "nexus" and any(isinstance(c, NexusRoundTrip) for c in self.smoke or ()):
            raise ValueError("smoke check 'nexus-round-trip' needs kind 'nexus'")
        return self

    def health_checks(self) -> tuple[HttpCheck, ...]:
        """The HTTP health checks in force: the configured ones, else the driver's defaults."""
        if self.health is not None:
            return self.health
        return (HttpCheck(path=self.health_path),) if self.kind == "http" else ()

    def smoke_checks(self) -> tuple[HttpCheck | NexusRoundTrip, ...]:
        """The smoke checks in force (run after the health checks): configured, else the driver's defaults."""
        if self.smoke is not None:
            return self.smoke
        if self.kind == "nexus":
            return (NexusRoundTrip(kind="nexus-round-trip", repository=self.smoke_repository),)
        return ()
