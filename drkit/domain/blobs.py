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
    index names is refused too. An encrypted blob is opened for what the entry says it is bound to
    (app, site and path for format 2; the path for format 1), with the ring's key of the entry's key
    id. With a key, a plaintext entry is refused; a blob whose encrypted-or-not differs from the
    entry's is refused.
    """
    if crypto.is_encrypted(stored) != entry.encrypted:
        said, found = ("sealed", "plaintext") if entry.encrypted else ("plaintext", "sealed")
        raise IntegrityError(
            f"integrity check failed: {entry.path}: blob {entry.key} is {found} where the index says {said}",
            hint="do not restore this object: check the object store for tampering",
            context={"key": entry.key, "path": entry.path},
        )
    if not entry.encrypted and key is not None:
        raise IntegrityError(
            f"integrity check failed: {entry.path}: blob {entry.key} is stored in plaintext, but a backup key is"
            " loaded (a sealed backup has no plaintext entry)",
            hint="do not restore this object: check the object store for tampering, or read this run without"
            " the key if it predates the key",
            context={"key": entry.key, "path": entry.path},
        )
    if not entry.encrypted:
        plaintext, address = stored, hashlib.sha256(stored).hexdigest()
    else:
        if key is None:
            raise IntegrityError(
                f"{entry.path}: the blob is encrypted with key id {entry.key_id}, but no key was given",
                hint=f"load the master key whose id is {entry.key_id}",
                context={"path": entry.path, "expected_key_id": entry.key_id},
            )
        bound = entry.bound_to or entry.path
        sealer = key.for_id(entry.key_id or "", what=entry.path)
        try:
            plaintext = crypto.decrypt(stored, key=sealer, path=bound)
        except IntegrityError as error:
            if "expected_key_id" in error.context:
                raise
            raise IntegrityError(
                f"integrity check failed: {entry.path}: blob {entry.key} failed authentication (changed, truncated,"
                " or sealed for another object, app or site)",
                hint="do not restore this object: check the object store for tampering, use another run",
                context={"key": entry.key, "path": entry.path},
            ) from None
        address = crypto.content_address(plaintext, path=bound, key=sealer)
    if address != entry.address:
        raise IntegrityError(
            f"integrity check failed: {entry.path}: blob {entry.key} does not match its address",
            hint="restore this object from another run",
            context={"key": entry.key, "path": entry.path},
        )
    return plaintext


def open_blob(entry: IndexEntry, stored: bytes, key: crypto.MasterKey | None) -> dict[str, Any]:
    """Check ``stored`` against ``entry`` (size, sha256, decryption, address) and return the manifest."""
    if len(stored) != entry.size or hashlib.sha256(stored).hexdigest() != entry.sha256:
        raise IntegrityError(
            f"integrity check failed: {entry.path}: blob {entry.key} does not match its index (size or sha256 differ)",
            hint="restore this object from another run, and check the object store",
            context={"path": entry.path, "key": entry.key},
        )
    plaintext = addressed_plaintext(entry, stored, key)
    loaded = yaml.safe_load(plaintext)
    if not isinstance(loaded, dict):
        raise IntegrityError(f"{entry.path}: blob {entry.key} is not a manifest", context={"key": entry.key})
    return loaded
