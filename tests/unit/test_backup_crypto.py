"""Envelope encryption: round trip, tampering, swapped paths, wrong keys, no secret in sight."""

from __future__ import annotations

import base64
import hashlib
import pickle

import pytest

from drkit.domain.crypto import (
    HEADER_BYTES,
    OVERHEAD,
    MasterKey,
    blob_key_id,
    content_address,
    decrypt,
    encrypt,
    is_encrypted,
)
from drkit.domain.errors import ConfigError, IntegrityError

RAW = bytes(range(32))
KEY = MasterKey(RAW)
OTHER = MasterKey(bytes(range(1, 33)))
PATH = "core/v1/Secret/nexus-dr/nexus-root-password"
SECRET_YAML = b"apiVersion: v1\ndata:\n  password: c3VwZXItc2VjcmV0\nkind: Secret\n"


@pytest.mark.parametrize("plaintext", [b"", b"x", SECRET_YAML, bytes(range(256)) * 40])
def test_round_trip_is_identity(plaintext: bytes) -> None:
    blob = encrypt(plaintext, key=KEY, path=PATH)
    assert is_encrypted(blob)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert blob_key_id(blob) == KEY.key_id
    assert decrypt(blob, key=KEY, path=PATH) == plaintext


def test_encryption_is_randomized_and_hides_the_plaintext() -> None:
    one, two = encrypt(SECRET_YAML, key=KEY, path=PATH), encrypt(SECRET_YAML, key=KEY, path=PATH)
    assert one != two
    assert b"c3VwZXItc2VjcmV0" not in one


def test_every_byte_is_authenticated() -> None:
    blob = encrypt(b"small manifest", key=KEY, path=PATH)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(IntegrityError):
            decrypt(bytes(tampered), key=KEY, path=PATH)


@pytest.mark.parametrize("cut", [1, 16, len(b"small manifest") + 16])
def test_truncation_fails(cut: int) -> None:
    blob = encrypt(b"small manifest", key=KEY, path=PATH)
    with pytest.raises(IntegrityError):
        decrypt(blob[:-cut], key=KEY, path=PATH)


def test_swapping_paths_fails() -> None:
    blob = encrypt(SECRET_YAML, key=KEY, path=PATH)
    with pytest.raises(IntegrityError, match=r"core/v1/Secret/nexus-dr/other.*failed authentication"):
        decrypt(blob, key=KEY, path="core/v1/Secret/nexus-dr/other")


def test_swapping_wrapped_keys_between_blobs_fails() -> None:
    one, two = encrypt(b"one", key=KEY, path=PATH), encrypt(b"two", key=KEY, path=PATH)
    mixed = two[:HEADER_BYTES] + one[HEADER_BYTES:]
    with pytest.raises(IntegrityError):
        decrypt(mixed, key=KEY, path=PATH)


def test_wrong_key_names_both_key_ids() -> None:
    blob = encrypt(SECRET_YAML, key=KEY, path=PATH)
    with pytest.raises(IntegrityError) as caught:
        decrypt(blob, key=OTHER, path=PATH)
    text = str(caught.value)
    assert f"encrypted with key id {KEY.key_id}" in text
    assert f"key id {OTHER.key_id} was given" in text
    assert caught.value.context["expected_key_id"] == KEY.key_id


def test_not_a_blob() -> None:
    with pytest.raises(IntegrityError, match="not a Standby encrypted blob"):
        decrypt(b"apiVersion: v1\n", key=KEY, path=PATH)


def test_key_parsing_and_ids() -> None:
    assert MasterKey.parse(RAW).key_id == KEY.key_id
    text = base64.b64encode(RAW).decode()
    assert MasterKey.parse(text).key_id == KEY.key_id
    assert MasterKey.parse(f"  {text}\n".encode()).key_id == KEY.key_id
    assert MasterKey.parse(base64.urlsafe_b64encode(RAW).decode().rstrip("=")).key_id == KEY.key_id
    assert len(KEY.key_id) == 16 and KEY.key_id != OTHER.key_id
    assert KEY.key_id not in hashlib.sha256(RAW).hexdigest()  # derived, not a bare hash of the key


@pytest.mark.parametrize("bad", [b"short", "not base64!!", base64.b64encode(b"x" * 31).decode(), ""])
def test_bad_keys_are_config_errors_without_the_value(bad: bytes | str) -> None:
    with pytest.raises(ConfigError) as caught:
        MasterKey.parse(bad)
    shown = bad.decode(errors="replace") if isinstance(bad, bytes) else bad
    assert not shown or shown not in str(caught.value)


def test_no_secret_in_repr_str_or_pickle() -> None:
    for shown in (repr(KEY), str(KEY), repr([KEY])):
        assert shown == f"MasterKey(key_id={KEY.key_id!r})" or KEY.key_id in shown
        assert RAW.hex() not in shown and base64.b64encode(RAW).decode() not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(KEY)


def test_content_addresses() -> None:
    assert content_address(SECRET_YAML, path=PATH, key=None) == hashlib.sha256(SECRET_YAML).hexdigest()
    keyed = content_address(SECRET_YAML, path=PATH, key=KEY)
    assert keyed != hashlib.sha256(SECRET_YAML).hexdigest()
    assert keyed == content_address(SECRET_YAML, path=PATH, key=MasterKey(RAW))
    assert keyed != content_address(SECRET_YAML, path=PATH, key=OTHER)
    assert keyed != content_address(SECRET_YAML, path=PATH + "x", key=KEY)
