"""Kubernetes ``Status`` errors raised by the store and rendered by the HTTP layer."""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the apiserver reports as a ``Status`` object.

    ``reason`` defaults from ``code``; ``details`` is the Status ``details`` map (name, group, kind, causes).
    """

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        """Return the ``meta/v1 Status`` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code  # after details, in the real apiserver's field order
        return body


def _res(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    """404 NotFound worded like the real apiserver."""
    return ApiError(
        404,
        f'{_res(group, plural)} "{name}" not found',
        details={"name": name, "group": group, "kind": plural},
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    """409 AlreadyExists."""
    return ApiError(
        409,
        f'{_res(group, plural)} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": plural},
    )


def conflict(group: str, plural: str, name: str) -> ApiError:
    """409 Conflict for a stale resourceVersion."""
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_res(group, plural)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        reason="Conflict",
        details={"name": name, "group": group, "kind": plural},
    )


def invalid(group: str, kind: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid with ``details.causes`` (``reason``, ``message``, ``field``)."""
    parts = [f"{c.get('field', '')}: {c.get('message', '')}".lstrip(": ") for c in causes]
    return ApiError(
        422,
        f'{kind}{"." + group if group else ""} "{name}" is invalid: ' + ", ".join(parts),
        reason="Invalid",
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, message)
