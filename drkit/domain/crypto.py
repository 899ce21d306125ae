"""Client-side envelope encryption of backup blobs (AES-256-GCM) and their content addresses.

Keys derived from one master key, the blob format and the addresses are described in
docs/architecture.md, "Client-side encryption of Secrets". Key material never appears in a
``repr``, an error or a log line: only key ids and paths do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drkit.domain.errors import ConfigError, IntegrityError

MAGIC = b"SBY1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
WRAPPED_KEY_BYTES = 32 + 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES + WRAPPED_KEY_BYTES + NONCE_BYTES
OVERHEAD = HEADER_BYTES + 16
"""Bytes an encrypted blob has beyond its plaintext."""

RandomBytes = Callable[[int], bytes]


def _derive(master: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


class MasterKey:
    """A 32-byte master key. Its ``repr`` and ``str`` show only its key id."""

    __slots__ = ("_address_key", "_kek", "_key_id", "_older", "_state_key")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise ConfigError(
                "the backup encryption key must be exactly 32 bytes",
                hint="generate one with `head -c 32 /dev/urandom | base64` and store it as a secret",
            )
        self._kek = _derive(raw, b"standby/kek/v1")
        self._address_key = _derive(raw, b"standby/address/v1")
        self._key_id = _derive(raw, b"standby/key-id/v1", KEY_ID_BYTES).hex()
        self._state_key = _derive(raw, b"standby/state-mac/v1")
        self._older: tuple[MasterKey, ...] = ()

    @classmethod
    def parse(cls, value: bytes | str) -> MasterKey:
        """A key from 32 raw bytes or from base64 text (standard or URL-safe, padding optional)."""
        if isinstance(value, bytes) and len(value) == 32:
            return cls(value)
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        padded = text + "=" * (-len(text) % 4)
        try:
            raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                "the backup encryption key is neither 32 raw bytes nor base64 text of 32 bytes",
                hint="generate one with `head -c 32 /dev/urandom | base64`",
            )
        return cls(raw)

    @property
    def key_id(self) -> str:
        """Short public fingerprint of the key (16 hex digits); new runs are sealed with this key."""
        return self._key_id

    def with_older(self, older: tuple[MasterKey, ...]) -> MasterKey:
        """This key as the current one of a keyring that can still open what ``older`` keys sealed.

        New blobs and MACs always use this key; :meth:`for_id` finds an older one by its id, so
        runs from before a rotation stay readable.
        """
        ring = MasterKey.__new__(MasterKey)
        for slot in ("_address_key", "_kek", "_key_id", "_state_key"):
            object.__setattr__(ring, slot, getattr(self, slot))
        ring._older = tuple(k for k in older if k.key_id != self._key_id)
        return ring

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key of the ring: the current one first."""
        return (self._key_id, *(k.key_id for k in self._older))

    def for_id(self, key_id: str, *, what: str = "the object") -> MasterKey:
        """The key of the ring whose id is ``key_id``; an :class:`IntegrityError` names the id needed."""
        if key_id == self._key_id:
            return self
        for key in self._older:
            if key.key_id == key_id:
                return key
        raise IntegrityError(
            f"{what}: was sealed with key id {key_id}, but the loaded key ring holds key id(s)"
            f" {', '.join(self.key_ids)}",
            hint=f"load the master key whose id is {key_id} (ids are printed by the backup), or add it"
            " to the ring of older keys",
            context={"expected_key_id": key_id, "given_key_id": self._key_id},
        )

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self._key_id!r})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a MasterKey cannot be pickled; pass the key's secret name instead")


def content_address(plaintext: bytes, *, path: str, key: MasterKey | None) -> str:
    """The blob address of ``plaintext`` stored at logical ``path``: sha256, or HMAC when encrypted."""
    if key is None:
        return hashlib.sha256(plaintext).hexdigest()
    return hmac.new(key._address_key, path.encode() + b"\0" + plaintext, hashlib.sha256).hexdigest()


def is_encrypted(blob: bytes) -> bool:
    """Whether ``blob`` starts like a Standby encrypted blob."""
    return blob[: len(MAGIC)] == MAGIC


def blob_key_id(blob: bytes) -> str:
    """The key id written in an encrypted blob's header."""
    if not is_encrypted(blob) or len(blob) < OVERHEAD:
        raise IntegrityError(
            "the blob is not a Standby encrypted blob (bad magic or too short)",
            hint="check that the object was written by Standby and is complete",
        )
    return blob[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES].hex()


def _wrap_aad(key_id: bytes, path: str) -> bytes:
    return b"standby/wrap/v1\0" + key_id + path.encode()


def encrypt(plaintext: bytes, *, key: MasterKey, path: str, random: RandomBytes = os.urandom) -> bytes:
    """Encrypt ``plaintext`` for logical ``path`` (see the module docstring for the format)."""
    data_key = random(32)
    wrap_nonce = random(NONCE_BYTES)
    data_nonce = random(NONCE_BYTES)
    key_id = bytes.fromhex(key.key_id)
    wrapped = AESGCM(key._kek).encrypt(wrap_nonce, data_key, _wrap_aad(key_id, path))
    header = MAGIC + key_id + wrap_nonce + wrapped + data_nonce
    return header + AESGCM(data_key).encrypt(data_nonce, plaintext, header + path.encode())


def decrypt(blob: bytes, *, key: MasterKey, path: str) -> bytes:
    """Decrypt a blob written by :func:`encrypt` for the same ``path``.

    Raises :class:`IntegrityError` when the blob was written with another key (naming both key
    ids), or when it fails authentication: a changed byte, a truncation, or a blob under another path.
    """
    written_with = blob_key_id(blob)
    if written_with not in key.key_ids:
        raise IntegrityError(
            f"{path}: the blob was encrypted with key id {written_with}, but key id {key.key_id} was given",
            hint=f"load the master key whose id is {written_with} (ids are printed by the backup)",
            context={"path": path, "expected_key_id": written_with, "given_key_id": key.key_id},
        )
    key = key.for_id(written_with)
    key_id = blob[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
    offset = len(MAGIC) + KEY_ID_BYTES
    wrap_nonce = blob[offset : offset + NONCE_BYTES]
    wrapped = blob[offset + NONCE_BYTES : offset + NONCE_BYTES + WRAPPED_KEY_BYTES]
    data_nonce = blob[HEADER_BYTES - NONCE_BYTES : HEADER_BYTES]
    try:
        data_key = AESGCM(key._kek).decrypt(wrap_nonce, wrapped, _wrap_aad(key_id, path))
        return AESGCM(data_key).decrypt(data_nonce, blob[HEADER_BYTES:], blob[:HEADER_BYTES] + path.encode())
    except InvalidTag:
        raise IntegrityError(
            f"{path}: the encrypted blob failed authentication (changed, truncated, or stored under"
            " another object's path)",
            hint="restore this object from another run, and check the object store for tampering",
            context={"path": path, "key_id": key.key_id},
        ) from None


# ------------------------------------------------------------------------------ state MACs

STATE_MAC_FORMAT = "hmac-sha256/v1"
"""How a state object's ``mac`` is computed (see :func:`state_mac`)."""


def canonical_json(data: Any) -> bytes:
    """The canonical bytes of a JSON value: keys sorted, no spaces, UTF-8 (what a MAC covers)."""
    import json

    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _state_message(body: bytes, what: str, context: dict[str, str]) -> bytes:
    head = canonical_json({"what": what, **context})
    return b"standby/state/v1\0" + len(head).to_bytes(4, "big") + head + body


def state_mac(key: MasterKey, body: bytes, *, what: str, context: dict[str, str]) -> str:
    """The MAC (hex) of a state object's canonical ``body``, bound to ``what`` it is (``index``,
    ``latest``, ``placement``, ``journal``, ``drill-report``) and to ``context`` (app, site, run or
    operation id), with a key derived from the current master key (HKDF, its own label)."""
    return hmac.new(key._state_key, _state_message(body, what, context), hashlib.sha256).hexdigest()


def check_state_mac(
    key: MasterKey, body: bytes, mac: str, mac_key_id: str, *, what: str, context: dict[str, str], name: str
) -> None:
    """Raise :class:`IntegrityError` ("integrity check failed: ``name``") unless ``mac`` is the MAC of
    ``body`` for ``what`` and ``context`` under the ring's key ``mac_key_id``."""
    try:
        sealer = key.for_id(mac_key_id, what=name)
    except IntegrityError:
        raise IntegrityError(
            f"integrity check failed: {name} is signed with key id {mac_key_id or '(none)'}, which the"
            f" loaded key ring ({', '.join(key.key_ids)}) does not hold",
            hint=f"load the key whose id is {mac_key_id}, or treat {name} as forged and restore it from another store",
            context={"object": name, "expected_key_id": mac_key_id},
        ) from None
    expected = hmac.new(sealer._state_key, _state_message(body, what, context), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac or ""):
        raise IntegrityError(
            f"integrity check failed: {name} does not match its MAC (changed, forged, or copied from"
            " another app, site or run)",
            hint=f"do not use {name}: check the object store for tampering and use another store's copy or run",
            context={"object": name},
        )
