"""HTTP Basic authentication with Nexus' answers.

Behaviour (modelled on Nexus 3 with "anonymous access" enabled, its usual default):

* wrong or undecodable credentials -> 401 with ``WWW-Authenticate: BASIC realm="Sonatype Nexus
  Repository Manager"``, whatever the endpoint (even reads);
* no credentials on a privileged endpoint -> 403 (the anonymous user lacks the privilege), or 401 when
  the simulator runs with ``--no-anonymous``;
* no credentials on a read endpoint (content, search, repository list) -> allowed when anonymous access
  is on, else 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from enum import Enum

REALM_HEADER = 'BASIC realm="Sonatype Nexus Repository Manager"'
ADMIN_USER = "admin"


class Principal(Enum):
    """Who is calling."""

    ADMIN = "admin"
    ANONYMOUS = "anonymous"
    INVALID = "invalid"


@dataclass(frozen=True)
class AuthConfig:
    """The admin password and whether anonymous reads are allowed."""

    admin_password: str
    anonymous_read: bool = True

    def identify(self, authorization: str | None) -> Principal:
        """Classify an ``Authorization`` header value (never logged)."""
        if not authorization:
            return Principal.ANONYMOUS
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return Principal.INVALID
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Principal.INVALID
        user, sep, password = decoded.partition(":")
        if not sep:
            return Principal.INVALID
        user_ok = hmac.compare_digest(user.encode(), ADMIN_USER.encode())
        password_ok = hmac.compare_digest(password.encode(), self.admin_password.encode())
        return Principal.ADMIN if user_ok and password_ok else Principal.INVALID
