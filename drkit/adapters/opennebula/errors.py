"""oned's error codes and the Standby errors an OpenNebula front-end's failures become.

The builders (:func:`one_error`, :func:`one_unreachable`, :func:`one_unparsable`) are shared by the
pyone adapter and the in-memory fake, so both name the object, the site and the next action alike.
"""

from __future__ import annotations

import re

from drkit.domain.errors import (
    Conflict,
    NotFound,
    OpenNebulaError,
    ParseError,
    PreconditionFailed,
    TransientError,
)

# oned's error codes (XML-RPC API reference).
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
XML_RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000


# ------------------------------------------------------------------------------------------ errors


class OneUnreachable(OpenNebulaError, TransientError):
    """The front-end did not answer (refused, timed out, HTTP 5xx). Retried."""


class OneAccessDenied(OpenNebulaError, PreconditionFailed):
    """The front-end refused the session (AUTHENTICATION) or the action (AUTHORIZATION)."""


class OneNotFound(OpenNebulaError, NotFound):
    """The object does not exist on that front-end (NO_EXISTS)."""


class OneConflict(OpenNebulaError, Conflict):
    """The object is in a state that refuses the call: ACTION, ALLOCATE (a name taken) or LOCKED."""

    @property
    def locked(self) -> bool:
        return self.code == LOCKED


class OneParseError(OpenNebulaError, ParseError):
    """The front-end answered something pyone's bindings (or this adapter) cannot read."""


def frontend_at(site: str, endpoint: str) -> str:
    """How errors name a front-end: ``OpenNebula on SITE (ENDPOINT)``, credentials removed."""
    return f"OpenNebula on {site} ({redact_endpoint(endpoint)})"


def redact_endpoint(endpoint: str) -> str:
    """``endpoint`` without any ``user:password@`` in it."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/@]*@", r"\1", endpoint)


def one_error(site: str, endpoint: str, what: str, code: int, detail: str) -> OpenNebulaError:
    """The Standby error for oned's ``code`` (0: unknown) answered to ``what`` (``"VM 3"``,
    ``"allocating image 'x' in datastore 100"``), with oned's message ``detail``."""
    where = frontend_at(site, endpoint)
    ctx: dict[str, object] = {
        "site": site,
        "endpoint": redact_endpoint(endpoint),
        "object": what,
        "code": code,
    }
    detail = " ".join(detail.split())[:300]
    if code in (AUTHENTICATION, AUTHORIZATION):
        kind = "refused the credentials" if code == AUTHENTICATION else "refused the action"
        return OneAccessDenied(
            f"{where} {kind} for {what}: {detail}",
            code=code,
            hint=f"check the user and password of {site}'s front-end (file, env or Secret block) and its ACLs",
            context=ctx,
        )
    if code == NO_EXISTS:
        return OneNotFound(
            f"{where}: {what} does not exist: {detail}",
            code=code,
            hint=f"check the ID against `onevm list`/`oneimage list` on {site}, or the app's configuration",
            context=ctx,
        )
    if code == LOCKED:
        return OneConflict(
            f"{where} refused {what}, the object is locked: {detail}",
            code=code,
            hint=f"unlock it on {site} (`onevm unlock`/`oneimage unlock`) once whoever locked it is done, then resume",
            context=ctx,
        )
    if code in (ACTION, ALLOCATE):
        return OneConflict(
            f"{where} refused {what}: {detail}",
            code=code,
            hint=f"look at the object's state on {site}; resume once it allows the call, or abort",
            context=ctx,
        )
    return OpenNebulaError(
        f"{where} failed {what}: {detail}",
        code=code,
        hint=f"read oned's log on {site}; a template error names the attribute to fix",
        context=ctx,
    )


def one_unreachable(site: str, endpoint: str, what: str, cause: str) -> OneUnreachable:
    """The front-end did not answer ``what`` (``cause``: why, e.g. the exception's name)."""
    return OneUnreachable(
        f"{frontend_at(site, endpoint)} did not answer {what} ({cause})",
        hint=f"check that oned runs on {site} and the endpoint is right; the call is retried",
        context={"site": site, "endpoint": redact_endpoint(endpoint), "object": what},
    )


def one_unparsable(site: str, endpoint: str, what: str, cause: str) -> OneParseError:
    """The reply to ``what`` could not be read (``cause``: the parser's complaint, shortened)."""
    return OneParseError(
        f"{frontend_at(site, endpoint)} answered {what} with a body that cannot be parsed: {cause[:200]}",
        hint=f"check that the endpoint is oned's XML-RPC (…/RPC2) and its version on {site} matches pyone",
        context={"site": site, "endpoint": redact_endpoint(endpoint), "object": what},
    )
