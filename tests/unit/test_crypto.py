"""The key ring (current key plus older ones) and the MACs of state objects. Pure."""

from __future__ import annotations

import pytest

from drkit.domain import crypto
from drkit.domain.errors import IntegrityError

# ------------------------------------------------------------------------------ key ring and state MACs


def test_a_ring_opens_what_an_older_key_sealed_and_seals_with_the_current_one() -> None:
    old, new = crypto.MasterKey(b"\x01" * 32), crypto.MasterKey(b"\x02" * 32)
    sealed_before = crypto.encrypt(b"before", key=old, path="v1/Secret/ns/a")
    ring = new.with_older((old,))
    assert ring.key_id == new.key_id and ring.key_ids == (new.key_id, old.key_id)
    assert crypto.decrypt(sealed_before, key=ring, path="v1/Secret/ns/a") == b"before"
    sealed_after = crypto.encrypt(b"after", key=ring, path="v1/Secret/ns/a")
    assert crypto.blob_key_id(sealed_after) == new.key_id
    with pytest.raises(IntegrityError, match=new.key_id):
        crypto.decrypt(sealed_after, key=old, path="v1/Secret/ns/a")


def test_a_state_mac_binds_the_body_what_it_is_and_its_context() -> None:
    key = crypto.MasterKey(b"\x03" * 32)
    body = crypto.canonical_json({"primary": "site-a", "epoch": 3})
    ctx = {"app": "nexus", "site": "site-a"}
    mac = crypto.state_mac(key, body, what="placement", context=ctx)
    crypto.check_state_mac(
        key, body, mac, key.key_id, what="placement", context=ctx, name="placement of nexus"
    )
    forged = crypto.canonical_json({"primary": "site-b", "epoch": 3})
    for b, what, c in (
        (forged, "placement", ctx),
        (body, "journal", ctx),
        (body, "placement", {**ctx, "app": "web"}),
    ):
        with pytest.raises(IntegrityError, match="integrity check failed: placement of nexus"):
            crypto.check_state_mac(key, b, mac, key.key_id, what=what, context=c, name="placement of nexus")
    other = crypto.MasterKey(b"\x04" * 32)
    with pytest.raises(IntegrityError, match="does not hold"):
        crypto.check_state_mac(
            other, body, mac, key.key_id, what="placement", context=ctx, name="placement of nexus"
        )
    assert crypto.canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
