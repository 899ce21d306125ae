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

    __slots__ = ("_address_key", "_kek", "_key_id")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise ConfigError(
                "the backup encryption key must be exactly 32 bytes",
                hint="generate one with `head -c 32 /dev/urandom | base64` and store it as a secret",
            )
        self._kek = _derive(raw, b"standby/kek/v1")
        self._address_key = _derive(raw, b"standby/address/v1")
        self._key_id = _derive(raw, b"standby/key-id/v1", KEY_ID_BYTES).hex()

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
        """Short public fingerprint of the key (16 hex digits)."""
        return self._key_id

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
    if written_with != key.key_id:
        raise IntegrityError(
            f"{path}: the blob was encrypted with key id {written_with}, but key id {key.key_id} was given",
            hint=f"load the master key whose id is {written_with} (ids are printed by the backup)",
            context={"path": path, "expected_key_id": written_with, "given_key_id": key.key_id},
        )
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
