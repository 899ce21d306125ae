"""Forgeries of a backup by someone who can write to the bucket but has no key: each is refused with
one line, nothing is applied, and a drill and a failover refuse to start from it.

Run on the fake two-site world (``drkit.testing.dr``). The forger is given the most a bucket
writer could know (the genuine index, read here with the key) so that only the key stops them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from drkit.domain import crypto
from drkit.domain.backup_index import (
    UNAUTHENTICATED,
    BackupIndex,
    IndexEntry,
    SealedIndex,
    encode_index,
    seal_path,
)
from drkit.domain.backup_plan import canonical_yaml, plan_backup
from drkit.domain.blobs import open_blob
from drkit.domain.errors import IntegrityError, PreconditionFailed
from drkit.domain.layout import logical_path, parse_run_id
from drkit.jobs.backup import run_backup
from drkit.jobs.backup_runs import read_index, read_latest
from drkit.jobs.backup_sync import holdings
from drkit.jobs.drill import prepare_drill, start_drill
from drkit.jobs.restore import restore_backup
from drkit.jobs.verify import verify_stores
from drkit.jobs.world import StoreRef, read_placement
from drkit.testing.dr import FakeDr, fake_dr
from drkit.testing.kube import FakeCluster
from tests.unit.test_operations import KEY, _backup
from tests.unit.test_run_operation import Recorder, _run_with, _untouched

SITE, APP = "site-a", "nexus"


def _ref(dr: FakeDr) -> StoreRef:
    return dr.world.stores()[0]


def _genuine(dr: FakeDr) -> tuple[StoreRef, str, BackupIndex]:
    ref = _ref(dr)
    run = read_latest(ref.store, ref.layout, SITE, APP, key=KEY)
    assert run is not None
    return ref, run, read_index(ref.store, ref.layout, SITE, APP, run, key=KEY)


def _restore(dr: FakeDr, **options: Any) -> FakeCluster:
    """Restore ``latest`` of site-a's backup into an empty cluster; it must be refused."""
    ref = _ref(dr)
    target = FakeCluster(site="site-b")
    cfg = dr.world.config
    with pytest.raises(IntegrityError) as caught:
        restore_backup(
            ref.store,
            cfg.site(SITE),
            cfg.app(APP),
            target,
            cfg.site("site-b"),
            key=KEY,
            layout=ref.layout,
            clock=dr.clock,
            **options,
        )
    message = caught.value.message
    assert "\n" not in message and "integrity check failed" in message, message
    assert target.objects == {}  # nothing applied
    return target


def _forge_index(dr: FakeDr, index: BackupIndex) -> None:
    """Write ``index`` as the run's index, as a bucket writer without the key can (unsealed)."""
    ref = _ref(dr)
    ref.store.put(ref.layout.index_key(SITE, APP, index.run_id), encode_index(index, ref.layout))


def _plain_entry(dr: FakeDr, entry: IndexEntry, manifest: dict[str, Any], **ident: Any) -> IndexEntry:
    """A plaintext blob of ``manifest`` written to the bucket, and an index entry naming it."""
    ref = _ref(dr)
    data = canonical_yaml(manifest)
    address = hashlib.sha256(data).hexdigest()
    key = ref.layout.blob_key(SITE, APP, address, encrypted=False)
    ref.store.put(key, data)
    fields = {
        **ident,
        "path": logical_path(ident["api_version"], ident["kind"], ident["namespace"], ident["name"]),
    }
    return entry.model_copy(
        update={
            **fields,
            "key": key,
            "address": address,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "encrypted": False,
            "key_id": None,
            "bound_to": None,
        }
    )


@pytest.fixture
def dr() -> FakeDr:
    world = fake_dr()
    _backup(world, SITE)
    return world


def test_a_blob_moved_to_another_path_is_refused(dr: FakeDr) -> None:
    ref, _, index = _genuine(dr)
    secret = next(e for e in index.objects if e.kind == "Secret")
    other = next(e for e in index.objects if e.kind != "Secret")
    ref.store.put(other.key, ref.store.get(secret.key))
    _restore(dr)


def test_a_plaintext_blob_where_the_index_says_sealed_is_refused(dr: FakeDr) -> None:
    ref, _, index = _genuine(dr)
    secret = next(e for e in index.objects if e.kind == "Secret")
    plain = canonical_yaml(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret.name, "namespace": secret.namespace},
            "data": {"password": "b3duZWQ="},
        }
    )
    ref.store.put(secret.key, plain)  # the index still says sealed
    _restore(dr)
    with pytest.raises(IntegrityError, match="is plaintext where the index says sealed"):
        open_blob(
            secret.model_copy(update={"sha256": hashlib.sha256(plain).hexdigest(), "size": len(plain)}),
            plain,
            KEY,
        )


def test_a_plaintext_entry_in_a_rewritten_index_is_refused_with_a_key(dr: FakeDr) -> None:
    _, _, index = _genuine(dr)
    secret = next(e for e in index.objects if e.kind == "Secret")
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": secret.namespace},
        "data": {"password": "b3duZWQ="},
    }
    ident = secret.model_dump(include={"api_version", "kind", "namespace", "name"})
    forged = _plain_entry(dr, secret, manifest, **ident)
    _forge_index(
        dr, index.model_copy(update={"objects": tuple(forged if e == secret else e for e in index.objects)})
    )
    _restore(dr)
    with pytest.raises(IntegrityError, match="stored in plaintext, but a backup key is loaded"):
        open_blob(forged, _ref(dr).store.get(forged.key), KEY)


PWNED = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "pwned", "namespace": "kube-system"},
    "data": {"token": "cHduZWQ="},
}
HARMLESS = {"api_version": "v1", "kind": "ConfigMap", "namespace": "nexus-dr", "name": "harmless"}


def test_a_forged_index_entry_fails_the_index_mac(dr: FakeDr) -> None:
    """An entry "ConfigMap nexus-dr/harmless" whose blob is a Secret kube-system/pwned."""
    ref, run, index = _genuine(dr)
    config_map = next(e for e in index.objects if e.kind == "Service")  # any non-Secret entry to copy
    forged = index.model_copy(
        update={"objects": (*index.objects, _plain_entry(dr, config_map, PWNED, **HARMLESS))}
    )
    _forge_index(dr, forged)  # unsealed: refused with a key
    _restore(dr, exclude_kinds=("Secret",))
    # sealed with the forger's own key but claiming the real key id: the MAC does not hold
    mine = crypto.MasterKey(bytes(range(64, 96)))
    envelope = json.loads(gzip.decompress(encode_index(forged, ref.layout, key=mine)))
    envelope["key_id"] = KEY.key_id
    ref.store.put(ref.layout.index_key(SITE, APP, run), gzip.compress(json.dumps(envelope).encode()))
    target = _restore(dr, exclude_kinds=("Secret",))
    assert ("Secret", "kube-system", "pwned") not in {(k[1], k[2], k[3]) for k in target.objects}
    # the genuine envelope with one clear field changed fails too
    genuine = SealedIndex.model_validate(
        json.loads(gzip.decompress(encode_index(index, ref.layout, key=KEY)))
    )
    changed = genuine.model_copy(update={"status": "partially-failed"})
    ref.store.put(ref.layout.index_key(SITE, APP, run), gzip.compress(changed.model_dump_json().encode()))
    _restore(dr)


def test_latest_pointed_at_an_old_run_is_refused(dr: FakeDr) -> None:
    ref, old, _ = _genuine(dr)
    replayed = ref.store.get(ref.layout.latest_key(SITE, APP))  # the forger kept the old, genuine `latest`
    dr.clock.advance(60)
    new = _backup(dr, SITE)
    assert parse_run_id(new).started > parse_run_id(old).started
    ref.store.put(ref.layout.latest_key(SITE, APP), replayed)
    _restore(dr)
    ref.store.put(ref.layout.latest_key(SITE, APP), f"{old}\n".encode())  # plaintext: not authenticated
    _restore(dr)
    ok = _ref(dr)
    assert read_index(ok.store, ok.layout, SITE, APP, old, key=KEY).run_id == old  # an explicit run is fine


def test_a_blob_from_the_other_site_is_refused(dr: FakeDr) -> None:
    ref, _, index = _genuine(dr)
    secret = next(e for e in index.objects if e.kind == "Secret")
    manifest = open_blob(secret, ref.store.get(secret.key), KEY)
    manifest["data"] = {"password": "b2xkLXJldm9rZWQ="}  # what site-b holds: another value
    theirs = plan_backup(
        [manifest],
        layout=ref.layout,
        site="site-b",
        app=APP,
        run_id=parse_run_id(index.run_id),
        workload=None,
        key=KEY,
    )
    blob = theirs.uploads[0].data
    # with an index that pins its sha256 (only a key holder can write one), the binding still refuses it
    pinned = secret.model_copy(update={"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)})
    assert pinned.bound_to == seal_path(secret.path, app=APP, site=SITE)
    with pytest.raises(IntegrityError, match="failed authentication"):
        open_blob(pinned, blob, KEY)
    # a bucket writer copies it over site-a's blob and rewrites the index to match: refused
    ref.store.put(secret.key, blob)
    _restore(dr)
    _forge_index(
        dr, index.model_copy(update={"objects": tuple(pinned if e == secret else e for e in index.objects)})
    )
    _restore(dr)


def test_a_drill_and_a_failover_refuse_to_start_from_a_forged_backup(dr: FakeDr) -> None:
    _, _, index = _genuine(dr)
    config_map = next(e for e in index.objects if e.kind == "Service")  # any non-Secret entry to copy
    _forge_index(
        dr,
        index.model_copy(
            update={"objects": (*index.objects, _plain_entry(dr, config_map, PWNED, **HARMLESS))}
        ),
    )
    for mode in ("isolated", "promote"):
        journal = start_drill(dr.world, prepare_drill(dr.world, APP, mode, key=KEY))  # type: ignore[arg-type]
        assert journal.status == "refused" and "backup readable" in journal.error
        assert "integrity check failed" in journal.error
    assert dr.mirror.promoted == [] and not dr.mirror.scratch
    assert read_placement(dr.world, dr.world.config.app(APP)).record.operation is None
    hooks = Recorder()
    with pytest.raises(PreconditionFailed, match=r"backup readable from the target.*integrity check failed"):
        _run_with(dr, hooks, KEY, "failover")
    assert hooks.calls == []
    _untouched(dr)


def test_verify_counts_integrity_failures_and_refuses_the_run(dr: FakeDr) -> None:
    _, _, index = _genuine(dr)
    config_map = next(e for e in index.objects if e.kind == "Service")  # any non-Secret entry to copy
    _forge_index(
        dr,
        index.model_copy(
            update={"objects": (*index.objects, _plain_entry(dr, config_map, PWNED, **HARMLESS))}
        ),
    )
    result = verify_stores(dr.world.stores(), dr.world.config.site(SITE), APP, run_id=None, key=KEY)
    assert not result.ok and result.integrity_failures >= 1
    assert any(line.startswith("integrity check failures: ") for line in result.lines())


def test_without_a_key_every_run_says_backups_are_unauthenticated() -> None:
    dr = fake_dr()
    cfg = dr.world.config
    app = cfg.app(APP).model_copy(
        update={
            "backup": cfg.app(APP).backup.model_copy(
                update={"kinds": tuple(k for k in cfg.app(APP).backup.kinds if k.kind != "Secret")}
            )
        }
    )
    b = dr.world.bundle(SITE)
    summary = run_backup(app, b.site, b.cluster, b.store, key=None, clock=dr.clock)
    assert f"note: {UNAUTHENTICATED}" in summary.lines()
    ref = _ref(dr)
    restored = restore_backup(
        ref.store,
        cfg.site(SITE),
        app,
        FakeCluster(site="site-b"),
        cfg.site("site-b"),
        key=None,
        layout=ref.layout,
        clock=dr.clock,
        dry_run=True,
    )
    assert f"note: {UNAUTHENTICATED}" in restored.lines()
    verified = verify_stores(dr.world.stores(), cfg.site(SITE), APP, run_id=None, key=None, sync=False)
    assert any(UNAUTHENTICATED in line for line in verified.lines())
    # the same unsealed run with a key loaded: refused, naming the next action
    with pytest.raises(IntegrityError, match=r"not authenticated.*refused") as caught:
        read_latest(ref.store, ref.layout, SITE, APP, key=KEY)
    assert "standby backup run" in caught.value.hint


def test_no_secret_name_nor_namespace_in_clear_in_the_bucket_with_a_key(dr: FakeDr) -> None:
    ref, _, index = _genuine(dr)
    names = ({e.name for e in index.objects} | {e.namespace for e in index.objects if e.namespace}) - {APP}
    assert any(e.kind == "Secret" for e in index.objects) and names
    for key, data in ref.store.objects.items():
        if not key.startswith(ref.layout.app_root(SITE, APP)):
            continue
        text = (
            data
            if key.endswith((".enc", "latest"))
            else gzip.decompress(data)
            if key.endswith(".gz")
            else data
        )
        for name in names:
            assert name.encode() not in text, (key, name)


def test_an_unsealed_run_from_before_stays_readable_without_a_key_and_the_next_keyed_backup_moves_on() -> (
    None
):
    """An upgrade: runs written without a key (as before sealed indexes) and a plain `latest`."""
    dr = fake_dr()
    cfg = dr.world.config
    app = cfg.app(APP).model_copy(
        update={
            "backup": cfg.app(APP).backup.model_copy(
                update={"kinds": tuple(k for k in cfg.app(APP).backup.kinds if k.kind != "Secret")}
            )
        }
    )
    b = dr.world.bundle(SITE)
    old = run_backup(app, b.site, b.cluster, b.store, key=None, clock=dr.clock).run_id
    ref = _ref(dr)
    assert read_index(ref.store, ref.layout, SITE, APP, old).run_id == old  # no key: readable as before
    with pytest.raises(IntegrityError, match="not authenticated") as caught:
        read_index(ref.store, ref.layout, SITE, APP, old, key=KEY)
    assert "\n" not in caught.value.message and "standby backup run" in caught.value.hint
    dr.clock.advance(60)
    summary = run_backup(app, b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    assert summary.status == "complete" and summary.objects_new == summary.objects  # nothing reused from it
    assert any("written without a key" in n for n in summary.notices)
    assert read_latest(ref.store, ref.layout, SITE, APP, key=KEY) == summary.run_id
    held = holdings([ref], SITE, APP, key=KEY)[0]
    assert held.complete == (summary.run_id,) and held.unsealed == (old,) and held.refused == ()
