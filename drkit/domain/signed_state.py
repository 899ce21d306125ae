"""Placement records, operation journals and drill reports as stored: JSON with a MAC.

With a key, each object Standby writes for an operation carries two more fields beside its own:
``mac``, the :func:`~drkit.domain.crypto.state_mac` of the object's other fields (their canonical
JSON) bound to what it is and where it belongs (:func:`placement_context`, :func:`journal_context`,
:func:`report_context`), and ``mac_key_id``, the id of the key that made it (so a key ring finds
the right key after a rotation). :func:`seal` adds them; :func:`unseal` checks and removes them.

A reader binds the MAC to where it found the object (the app and operation or drill id of the
key), never to what the object says of itself: a journal or record copied to another app's
folder, or under another operation id, fails. The copies in each site's store are the same
object: the store is named in a failure, not bound into the MAC.

Without a key nothing is signed or checked (the state is unauthenticated: the callers say so).
With a key, an object without a MAC is refused like a forged one.
"""

from __future__ import annotations

from typing import Any, Literal

from drkit.domain import crypto
from drkit.domain.errors import IntegrityError

MAC_FIELDS = ("mac", "mac_key_id")
"""The fields :func:`seal` adds to an object's JSON."""

What = Literal["placement", "journal", "drill-report"]

UNAUTHENTICATED = (
    "state is unauthenticated: no backup key is loaded, so placement records, operation journals and"
    " drill reports are read and written without a MAC (anyone who can write to the buckets can change them);"
    " load the key to check them"
)
"""The line said once per run (or ``standby status``) that reads or writes state without a key."""


def placement_context(app: str) -> dict[str, str]:
    """What a placement record's MAC is bound to: its app (the record names both sites itself)."""
    return {"app": app}


def journal_context(app: str, op_id: str) -> dict[str, str]:
    """What a journal's MAC is bound to: its app and operation id."""
    return {"app": app, "operation": op_id}


def report_context(app: str, drill_id: str) -> dict[str, str]:
    """What a drill report's MAC is bound to: its app and drill id."""
    return {"app": app, "drill": drill_id}


def body_of(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without its MAC fields."""
    return {k: v for k, v in data.items() if k not in MAC_FIELDS}


def seal(
    data: dict[str, Any], key: crypto.MasterKey | None, *, what: What, context: dict[str, str]
) -> dict[str, Any]:
    """``data`` (a JSON object) with its ``mac`` and ``mac_key_id`` made with ``key`` (the ring's
    current key); as it is (any old MAC removed) when ``key`` is ``None``."""
    body = body_of(data)
    if key is None:
        return body
    mac = crypto.state_mac(key, crypto.canonical_json(body), what=what, context=context)
    return {**body, "mac": mac, "mac_key_id": key.key_id}


def signed_by(data: Any) -> str | None:
    """The key id a stored object says signed it (None: not signed)."""
    if not isinstance(data, dict):
        return None
    value = data.get("mac_key_id")
    return value if isinstance(value, str) and value else None


def unseal(
    data: Any, key: crypto.MasterKey | None, *, what: What, context: dict[str, str], name: str
) -> dict[str, Any]:
    """The object's fields once its MAC is checked with ``key`` (not checked when ``key`` is None).

    ``name`` names the object and its store in the error: :class:`IntegrityError`
    ("integrity check failed: <name> ...") when the MAC is wrong, made with a key the ring does not
    hold, or missing while a key is loaded. ``ValueError`` when ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
    body = body_of(data)
    if key is None:
        return body
    mac, key_id = data.get("mac"), data.get("mac_key_id")
    if not isinstance(mac, str) or not mac or not isinstance(key_id, str):
        raise IntegrityError(
            f"integrity check failed: {name} has no MAC, and a key is loaded (written without the key,"
            " or forged)",
            hint=f"do not use {name}: check the object store for tampering, or adopt state written before the key"
            " was used",
            context={"object": name},
        )
    crypto.check_state_mac(
        key, crypto.canonical_json(body), mac, key_id, what=what, context=context, name=name
    )
    return body
