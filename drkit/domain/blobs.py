"""Blob checks: a stored blob against its index entry (size, sha256, decryption, address). Pure."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from drkit.domain import crypto
from drkit.domain.backup_index import IndexEntry
from drkit.domain.errors import IntegrityError


def addressed_plaintext(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> bytes:
    """The plaintext of ``stored``, decrypted when ``entry`` is encrypted, checked against its address.

    The address is the sha256 of the plaintext, or its keyed HMAC when encrypted
    (:func:`~drkit.domain.crypto.content_address`): a blob that decrypts but is not the one the
    index names is refused too.
    """
    if not entry.encrypted:
        plaintext, address = stored, hashlib.sha256(stored).hexdigest()
    else:
        if key is None:
            raise IntegrityError(
                f"{entry.path}: the blob is encrypted with key id {entry.key_id}, but no key was given",
                hint=f"load the master key whose id is {entry.key_id}",
                context={"path": entry.path, "expected_key_id": entry.key_id},
            )
        plaintext = crypto.decrypt(stored, key=key, path=entry.path)
        sealer = key.for_id(crypto.blob_key_id(stored), what=entry.path)  # a ring: the key that sealed it
        address = crypto.content_address(plaintext, path=entry.path, key=sealer)
    if address != entry.address:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} does not match its address",
            hint="restore this object from another run",
            context={"key": entry.key, "path": entry.path},
        )
    return plaintext


def open_blob(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> dict[str, Any]:
    """Check ``stored`` against ``entry`` (size, sha256, decryption, address) and return the manifest."""
    if len(stored) != entry.size or hashlib.sha256(stored).hexdigest() != entry.sha256:
        raise IntegrityError(
            f"{entry.path}: blob {entry.key} does not match its index (size or sha256 differ)",
            hint="restore this object from another run, and check the object store",
            context={"path": entry.path, "key": entry.key},
        )
    plaintext = addressed_plaintext(entry, stored, key)
    loaded = yaml.safe_load(plaintext)
    if not isinstance(loaded, dict):
        raise IntegrityError(f"{entry.path}: blob {entry.key} is not a manifest", context={"key": entry.key})
    return loaded
