"""Authentication (bearer tokens), the hook into :mod:`lab.kubeapi.rbac`, and the audit log.

Authentication is on when the server has an admin token (``KubeApiServer(admin_token=...)``,
``--admin-token``); without one every request is the superuser, as before. With it:

* the admin token is the lab's own credential: user ``lab-admin`` in group ``system:masters``;
* ServiceAccount tokens are minted with the TokenRequest API
  (``POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token``, as ``kubectl create token`` does);
  a token stops working when it expires or when its ServiceAccount is deleted;
* a request without a token is ``system:anonymous``; a request with an unknown or expired token gets
  ``401 Unauthorized``.

Tokens survive a restart in ``<state_dir>/tokens.json``. The audit log (``<state_dir>/audit.jsonl``
unless given) gets one JSON line per API request: time, user, verb, API group, resource, subresource,
namespace, name (or path), response code, and what allowed or denied it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.kubeapi.errors import ApiError
from lab.kubeapi.rbac import ANONYMOUS, SUPERUSER_GROUP, Attributes, Decision, User

ADMIN_USER = User("lab-admin", (SUPERUSER_GROUP, "system:authenticated"))
TOKENS_FILE = "tokens.json"
AUDIT_FILE = "audit.jsonl"
DEFAULT_EXPIRATION = 3600


def unauthorized() -> ApiError:
    """The real apiserver's 401: no details, message and reason ``Unauthorized``."""
    return ApiError(401, "Unauthorized", reason="Unauthorized")


@dataclass(frozen=True)
class Token:
    """A minted ServiceAccount token."""

    namespace: str
    service_account: str
    uid: str
    expires: float

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``tokens.json``."""
        return {"namespace": self.namespace, "sa": self.service_account, "uid": self.uid, "exp": self.expires}


class Tokens:
    """Bearer tokens: the admin's and the minted ServiceAccount tokens (persisted when a folder is given)."""

    def __init__(self, admin_token: str | None, state_dir: Path | None = None) -> None:
        self.admin_token = admin_token
        self._lock = threading.Lock()
        self._path = state_dir / TOKENS_FILE if state_dir else None
        self._tokens: dict[str, Token] = {}
        if self._path and self._path.exists():
            for value, t in json.loads(self._path.read_text()).items():
                self._tokens[value] = Token(t["namespace"], t["sa"], t["uid"], float(t["exp"]))

    @property
    def enabled(self) -> bool:
        """Whether authentication and authorization are on."""
        return self.admin_token is not None

    def mint(self, namespace: str, service_account: str, uid: str, seconds: int) -> tuple[str, float]:
        """A new token for the ServiceAccount; returns the token and its expiry (epoch seconds)."""
        value = f"sa-{secrets.token_urlsafe(24)}"
        expires = time.time() + seconds
        with self._lock:
            self._tokens[value] = Token(namespace, service_account, uid, expires)
            self._save()
        return value, expires

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({v: t.to_json() for v, t in self._tokens.items()}))
        tmp.chmod(0o600)
        tmp.replace(self._path)

    def authenticate(self, header: str | None, sa_uid: Any) -> User:
        """The user of an ``Authorization`` header; ``sa_uid(ns, name)`` is the live ServiceAccount's uid
        (``None`` when it is gone). Raises the 401 for an unknown, expired or orphaned token."""
        if not header:
            return ANONYMOUS
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise unauthorized()
        if self.admin_token is not None and secrets.compare_digest(value, self.admin_token):
            return ADMIN_USER
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.expires <= time.time():
            raise unauthorized()
        if sa_uid(token.namespace, token.service_account) != token.uid:
            raise unauthorized()
        return User.service_account(token.namespace, token.service_account)


class AuditLog:
    """Append-only JSON lines, one per API request."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, user: User, attrs: Attributes, code: int, decision: Decision | None) -> None:
        """Write one entry (a no-op without a path)."""
        if self.path is None:
            return
        entry: dict[str, Any] = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "user": user.name,
            "groups": list(user.groups),
            "verb": attrs.verb,
            "apiGroup": attrs.api_group,
            "resource": attrs.resource,
            "subresource": attrs.subresource,
            "namespace": attrs.namespace,
            "name": attrs.name,
            "code": code,
        }
        if not attrs.is_resource:
            entry["path"] = attrs.path
        if decision is not None:
            entry["decision"] = "allow" if decision.allowed else "forbid"
            if decision.by:
                entry["by"] = decision.by
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)


def token_request_response(
    namespace: str, name: str, token: str, expires: float, body: Any, seconds: int
) -> dict[str, Any]:
    """The ``authentication.k8s.io/v1 TokenRequest`` answered to ``serviceaccounts/<name>/token``."""
    spec = dict((body or {}).get("spec") or {}) if isinstance(body, dict) else {}
    spec.setdefault("audiences", [])
    spec["expirationSeconds"] = seconds
    stamp = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": stamp},
    }


def expiration_seconds(body: Any) -> int:
    """``spec.expirationSeconds`` of a TokenRequest (default one hour; the real minimum is 600 s, the
    lab accepts shorter ones so that expiry can be tested)."""
    spec = (body or {}).get("spec") if isinstance(body, dict) else None
    value = (spec or {}).get("expirationSeconds") or DEFAULT_EXPIRATION
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(422, "TokenRequest is invalid: spec.expirationSeconds: must be a positive integer")
    return value
