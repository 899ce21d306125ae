"""How a Kubernetes API call's failure becomes a Standby error naming the site, the object and the
next action: the error builders (shared with the fake, ``drkit.testing.kube``, so both raise the
same errors with the same words) and :func:`api_call`, which runs one call of the official client
and maps its exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drkit.domain.access import access_denied
from drkit.domain.errors import ConfigError, Conflict, NotFound, StandbyError, TransientError

# Shared with the fake (drkit.testing.kube) so both raise the same errors with the same words.


def kind_not_served(site: str, what: str, detail: str, *, hint: str = "") -> NotFound:
    """The apiserver does not serve the kind (its CRD is not installed)."""
    return NotFound(
        f"{what} on {site}: kind not served ({detail})",
        hint=hint or "install its CRD",
        context={"site": site, "object": what},
    )


def status_error(site: str, what: str, status: int, reason: str, *, not_found_hint: str = "") -> StandbyError:
    """The Standby error for an HTTP ``status`` the apiserver answered to ``what``.

    404 -> :class:`NotFound`; 409 -> :class:`Conflict`; 401/403 -> :class:`AccessDenied` (one line
    naming the verb, resource and site, and the RBAC rule to add, or that the token is expired or
    wrong; never retried); 400/415/422 -> :class:`StandbyError` (an invalid manifest); any other ->
    :class:`TransientError`.
    """
    ctx = {"site": site, "object": what}
    message = f"{what} on {site}: {status} {reason}"
    if status == 404:
        return NotFound(message, hint=not_found_hint, context=ctx)
    if status == 409:
        return Conflict(message, hint="re-read the object and retry", context=ctx)
    if status in (401, 403):
        return access_denied(site, what, status, reason)
    if status in (400, 415, 422):
        return StandbyError(message, hint="the manifest is invalid for this cluster", context=ctx)
    return TransientError(message, hint="the apiserver failed; the call is retried", context=ctx)


def apiserver_unreachable(site: str, what: str, cause: str) -> TransientError:
    """The apiserver did not answer (``cause``: the client's exception name)."""
    return TransientError(
        f"{what} on {site}: apiserver unreachable ({cause})",
        hint=f"check site {site}'s apiserver; the call is retried",
        context={"site": site, "object": what},
    )


def untrusted_certificate(site: str, what: str, detail: str) -> ConfigError:
    """The apiserver's TLS certificate failed verification: a configuration mistake, not retried."""
    return ConfigError(
        f"{what} on {site}: the apiserver's TLS certificate is not trusted ({detail})",
        hint=f"fix certificate-authority(-data) of site {site}'s kubeconfig context, or its server URL",
        context={"site": site, "object": what},
    )


def api_call(site: str, what: str, fn: Callable[[], Any], *, not_found_hint: str = "") -> Any:
    """Run one Kubernetes API call, turning the client's errors into Standby's (naming site and object).

    Statuses map as :func:`status_error` says; a timeout or an unreachable apiserver ->
    :class:`TransientError` (retried by the flows); an untrusted TLS certificate -> ``ConfigError``.
    A refused exec WebSocket handshake (reported by the client as status 0) counts as its HTTP status.
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        return fn()
    except ResourceNotFoundError as exc:
        raise kind_not_served(site, what, str(exc), hint=not_found_hint) from None
    except (ApiException, DynamicApiError) as exc:
        status = int(getattr(exc, "status", 0) or 0)
        if status == 0:
            status = _handshake_status(exc)
        raise status_error(site, what, status, _reason(exc), not_found_hint=not_found_hint) from None
    except (Urllib3Error, OSError) as exc:
        tls = _tls_problem(exc)
        if tls:
            raise untrusted_certificate(site, what, tls) from None
        raise apiserver_unreachable(site, what, type(exc).__name__) from None


def _tls_problem(exc: BaseException) -> str:
    """The TLS verification failure behind a connection error (urllib3 nests it in ``reason``), or ''."""
    import ssl

    seen: object = exc
    for _ in range(6):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or "certificate verify failed")
        if isinstance(seen, ssl.SSLError):
            return str(seen.reason or "TLS error")
        if not isinstance(seen, BaseException):
            return ""
        nested = getattr(seen, "reason", None)
        if not isinstance(nested, BaseException) and seen.args and isinstance(seen.args[0], BaseException):
            nested = seen.args[0]
        seen = nested if isinstance(nested, BaseException) else (seen.__cause__ or seen.__context__)
    return ""


def _handshake_status(exc: Any) -> int:
    """The HTTP status of a refused exec WebSocket handshake (the client reports it as status 0)."""
    import re

    m = re.search(r"Handshake status (\d{3})", str(getattr(exc, "reason", "") or ""))
    return int(m.group(1)) if m else 0


def _reason(exc: Any) -> str:
    import json

    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
        return str(data.get("message") or data.get("reason") or getattr(exc, "reason", ""))
    except (TypeError, ValueError):
        return str(getattr(exc, "reason", "") or exc)
