"""The backup plan, the index, dedup across runs, restore order and blob verification."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
import yaml

from drkit.domain.backup import (
    INDEX_FORMAT,
    POINTER_FORMAT,
    RESTORE_ORDER,
    BackupIndex,
    BackupPlan,
    IndexPointer,
    build_index,
    canonical_yaml,
    decode_index,
    encode_index,
    encode_pointer,
    known_blobs,
    open_blob,
    plan_backup,
    resolve_pointer,
    restore_rank,
    same_entries,
    sort_for_restore,
)
from drkit.domain.crypto import MasterKey
from drkit.domain.errors import IntegrityError
from drkit.domain.layout import StoreLayout, new_run_id
from drkit.domain.models import KindRef
from drkit.testing.objectstore import FakeObjectStore
from lab import seeds

T0 = datetime(2026, 11, 21, 22, 5, 1, tzinfo=UTC)
LAYOUT = StoreLayout("standby")
NEXUS = KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus")
KEY = MasterKey(bytes(range(32)))
_counter = count(1)


def _deterministic(n: int) -> bytes:
    return bytes([next(_counter) % 256]) * n


def _objects() -> list[dict[str, Any]]:
    def obj(api: str, kind: str, name: str, ns: str | None = "nexus-dr", **rest: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "uid": "u-" + name, "resourceVersion": "7"}
        if ns:
            meta["namespace"] = ns
        return {"apiVersion": api, "kind": kind, "metadata": meta, "status": {"x": 1}, **rest}

    return [
        obj("v1", "Service", "nexus", spec={"clusterIP": "10.0.0.1"}),
        obj("networking.k8s.io/v1", "Ingress", "nexus"),
        obj("operator.alaudadevops.io/v1alpha1", "Nexus", "nexus-ddrs", spec={"externalURL": "http://x"}),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", "nexus"),
        obj("replication.storage.openshift.io/v1alpha1", "VolumeReplication", "data-0"),
        obj("v1", "PersistentVolumeClaim", "data-0", spec={"volumeName": "pv-1"}),
        obj(
            "v1",
            "PersistentVolume",
            "pv-1",
            None,
            spec={"csi": {"volumeAttributes": {"imageName": "csi-vol-1"}}},
        ),
        obj("v1", "Secret", "root", data={"password": "c2VjcmV0"}),
        obj("v1", "ConfigMap", "conf", data={"a": "b"}),
        obj("v1", "Namespace", "nexus-dr", None),
    ]


def _plan(objects: list[dict[str, Any]], when: datetime = T0, **kw: Any) -> BackupPlan:
    return plan_backup(
        objects,
        layout=LAYOUT,
        site="site-a",
        app="nexus",
        run_id=new_run_id(when, _deterministic(3)),
        workload=NEXUS,
        random=_deterministic,
        **kw,
    )


def _index(plan: BackupPlan, warnings: tuple[str, ...] = ()) -> BackupIndex:
    return build_index(
        plan,
        app="nexus",
        site="site-a",
        started=plan.run_id.started,
        finished=plan.run_id.started + timedelta(seconds=4),
        standby_version="0.1.0",
        cluster="site-a",
        kinds_listed=["v1/Secret", "v1/Secret", "v1/ConfigMap"],
        warnings=warnings,
    )


def test_entries_are_in_restore_order() -> None:
    plan = _plan(_objects())
    assert [e.kind for e in plan.entries] == [
        "Namespace",
        "ConfigMap",
        "Secret",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "VolumeReplication",
        "RoleBinding",
        "Nexus",
        "Service",
        "Ingress",
    ]
    assert plan.entries[0].path == "core/v1/Namespace/_cluster/nexus-dr"
    assert plan.entries[0].namespace is None


def test_first_run_uploads_everything_normalized() -> None:
    plan = _plan(_objects())
    assert len(plan.uploads) == len(plan.entries) == 10
    secret = next(u for u in plan.uploads if "Secret" in u.path)
    assert b"resourceVersion" not in secret.data and b"status" not in secret.data
    assert b"c2VjcmV0" not in repr(secret).encode()
    entry = next(e for e in plan.entries if e.kind == "Secret")
    assert entry.key == LAYOUT.blob_key("site-a", "nexus", entry.address, encrypted=False)
    assert entry.sha256 == entry.address and entry.size == len(secret.data)
    assert entry.stored_by == str(plan.run_id) and entry.key_id is None


def test_second_run_uploads_only_changes() -> None:
    first = _plan(_objects())
    index = _index(first)
    changed = _objects()
    changed[8]["data"] = {"a": "changed"}  # the ConfigMap
    changed[5]["metadata"]["resourceVersion"] = "99"  # server-side churn only: no new blob
    second = _plan(changed, T0 + timedelta(days=1), known=known_blobs([index]), previous_run=index.run_id)
    assert [u.path for u in second.uploads] == ["core/v1/ConfigMap/nexus-dr/conf"]
    second_index = _index(second)
    assert second_index.metadata.objects_new == 1
    assert second_index.metadata.objects_reused == 9
    assert second_index.metadata.bytes_uploaded == len(second.uploads[0].data)
    assert second_index.previous_run == index.run_id
    reused = next(e for e in second_index.objects if e.kind == "Secret")
    assert reused.stored_by == index.run_id


def test_identical_objects_in_one_run_upload_once() -> None:
    objects = _objects()
    plan = _plan([*objects, copy.deepcopy(objects[8])])
    assert len(plan.entries) == 11 and len(plan.uploads) == 10


def test_encrypted_plan_and_open_blob() -> None:
    plan = _plan(_objects(), key=KEY)
    assert plan.uploads and plan.entries, "nothing was planned, so nothing below is checked"
    for upload in plan.uploads:
        assert upload.key.endswith(".yaml.enc")
        assert b"c2VjcmV0" not in upload.data
    stored = {u.key: u.data for u in plan.uploads}
    for entry in plan.entries:
        assert entry.encrypted and entry.key_id == KEY.key_id and entry.sha256 != entry.address
        manifest = open_blob(entry, stored[entry.key], KEY)
        assert manifest["kind"] == entry.kind and manifest["metadata"]["name"] == entry.name
    secret = next(e for e in plan.entries if e.kind == "Secret")
    with pytest.raises(IntegrityError, match="no key was given"):
        open_blob(secret, stored[secret.key], None)
    other = next(e for e in plan.entries if e.kind == "ConfigMap")
    swapped = other.model_copy(update={"sha256": secret.sha256, "size": secret.size})
    with pytest.raises(IntegrityError, match="failed authentication"):
        open_blob(swapped, stored[secret.key], KEY)


def test_encrypted_addresses_dedup_across_runs_with_the_same_key_only() -> None:
    first = _plan(_objects(), key=KEY)
    known = known_blobs([_index(first)])
    assert _plan(_objects(), T0 + timedelta(days=1), key=KEY, known=known).uploads == ()
    rotated = MasterKey(bytes(range(1, 33)))
    assert len(_plan(_objects(), T0 + timedelta(days=1), key=rotated, known=known).uploads) == 10


def test_open_blob_detects_corruption() -> None:
    plan = _plan(_objects())
    stored = {u.key: u.data for u in plan.uploads}
    entry, other = plan.entries[1], plan.entries[2]
    assert open_blob(entry, stored[entry.key], None)["kind"] == entry.kind
    with pytest.raises(IntegrityError, match="does not match its index"):
        open_blob(entry, stored[entry.key] + b" ", None)
    with pytest.raises(IntegrityError, match="does not match its index"):
        open_blob(entry, stored[other.key], None)
    lying = entry.model_copy(update={"sha256": other.sha256, "size": other.size})
    with pytest.raises(IntegrityError, match="does not match its address"):
        open_blob(lying, stored[other.key], None)


def test_stored_index_is_stable_compact_and_round_trips() -> None:
    index = _index(_plan(_objects(), key=KEY))
    data = encode_index(index, LAYOUT)
    assert data == encode_index(index, LAYOUT)  # gzip with mtime=0: the bytes are a function of the index
    assert decode_index(data, key="k", layout=LAYOUT) == index
    parsed = json.loads(gzip.decompress(data))
    assert list(parsed) == sorted(parsed)
    assert parsed["status"] == "complete" and parsed["format"] == INDEX_FORMAT
    assert parsed["metadata"]["kinds_listed"] == ["v1/ConfigMap", "v1/Secret"]
    assert parsed["started"] == "2026-11-21T22:05:01Z"
    entry = parsed["objects"][0]  # derivable fields are not stored
    assert set(entry) == {
        "api_version",
        "kind",
        "name",
        "address",
        "sha256",
        "size",
        "key_id",
        "stored_by",
        "blob_format",
    }
    assert "blobs/sha256" not in gzip.decompress(data).decode()
    plain = json.dumps(index.model_dump(mode="json"), indent=2).encode()
    assert len(data) < len(plain) / 4


def test_stored_index_under_another_prefix_derives_other_keys() -> None:
    index = _index(_plan(_objects()))
    other = StoreLayout("elsewhere")
    moved = decode_index(encode_index(index, LAYOUT), key="k", layout=other)
    assert isinstance(moved, BackupIndex)
    assert all(e.key.startswith("elsewhere/backups/site-a/nexus/blobs/") for e in moved.objects)
    assert [e.path for e in moved.objects] == [e.path for e in index.objects]


def test_encode_index_refuses_an_entry_it_could_not_derive_back() -> None:
    index = _index(_plan(_objects()))
    odd = index.objects[0].model_copy(update={"key": "somewhere/else.yaml"})
    with pytest.raises(ValueError, match="cannot be derived"):
        encode_index(index.model_copy(update={"objects": (odd, *index.objects[1:])}), LAYOUT)


def test_pointer_round_trips_and_resolves_to_its_target() -> None:
    first = _index(_plan(_objects(), key=KEY))
    stored = encode_index(first, LAYOUT)
    digest = hashlib.sha256(stored).hexdigest()
    second = _index(
        _plan(
            _objects(), T0 + timedelta(days=1), key=KEY, known=known_blobs([first]), previous_run=first.run_id
        )
    )
    assert same_entries(second.objects, first.objects)
    data = encode_pointer(second, target=first.run_id, target_sha256=digest)
    assert len(data) < 400
    pointer = decode_index(data, key="p", layout=LAYOUT)
    assert isinstance(pointer, IndexPointer) and pointer.format == POINTER_FORMAT
    target = decode_index(stored, key="t", layout=LAYOUT)
    resolved = resolve_pointer(pointer, target, target_sha256=digest, target_key="t")
    assert resolved.run_id == second.run_id and resolved.same_as == first.run_id
    assert resolved.objects == first.objects and resolved.started == second.started
    with pytest.raises(IntegrityError, match=r"does not match the sha256.*tampered"):
        resolve_pointer(pointer, target, target_sha256="0" * 64, target_key="t")
    with pytest.raises(IntegrityError, match="itself a pointer"):
        resolve_pointer(pointer, pointer, target_sha256=digest, target_key="p")


def test_one_changed_object_is_not_the_same_entries() -> None:
    first = _index(_plan(_objects()))
    changed = _objects()
    changed[8]["data"] = {"a": "changed"}
    second = _plan(changed, T0 + timedelta(days=1), known=known_blobs([first]))
    assert not same_entries(second.entries, first.objects)
    assert not same_entries(first.objects[1:], first.objects)


def test_warnings_make_a_partial_failure() -> None:
    index = _index(_plan(_objects()), warnings=("could not list networking.k8s.io/v1/Ingress: forbidden",))
    assert index.status == "partially-failed"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not gzip",
        gzip.compress(b"not json"),
        gzip.compress(b"{}"),
        gzip.compress(b'{"format": "standby.backup.index/1"}'),
    ],
    # fixed ids: gzip stamps the time into its bytes, and xdist workers must collect the same ids
    ids=["empty", "not-gzip", "gzip-not-json", "gzip-empty-object", "gzip-format-only"],
)
def test_bad_index_is_an_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError, match=r"standby/x/index\.json\.gz is not a valid backup index"):
        decode_index(data, key="standby/x/index.json.gz", layout=LAYOUT)


def test_index_refuses_naive_times() -> None:
    index = _index(_plan(_objects()))
    with pytest.raises(ValueError):
        BackupIndex.model_validate({**index.model_dump(), "started": datetime(2026, 1, 1)})


@pytest.mark.parametrize(
    ("kind", "workload", "rank"),
    [
        ("Namespace", "Nexus", 0),
        ("Secret", "Nexus", 1),
        ("ConfigMap", None, 1),
        ("PersistentVolume", "Nexus", 2),
        ("PersistentVolumeClaim", "Nexus", 3),
        ("VolumeReplication", "Nexus", 4),
        ("ServiceAccount", "Nexus", 5),
        ("Nexus", "Nexus", 6),
        ("Nexus", None, 5),
        ("StatefulSet", "StatefulSet", 6),
        ("Service", "Nexus", 7),
        ("Ingress", "Nexus", 7),
    ],
)
def test_restore_rank(kind: str, workload: str | None, rank: int) -> None:
    assert restore_rank(kind, workload) == rank
    assert len(RESTORE_ORDER) == 8


def test_sort_for_restore_is_stable() -> None:
    items = [("Service", 1), ("Secret", 2), ("Widget", 3), ("Secret", 4), ("Gadget", 5), ("Nexus", 6)]
    ordered = sort_for_restore(items, lambda i: i[0], NEXUS)
    assert ordered == [
        ("Secret", 2),
        ("Secret", 4),
        ("Widget", 3),
        ("Gadget", 5),
        ("Nexus", 6),
        ("Service", 1),
    ]


def test_canonical_yaml_is_independent_of_key_order() -> None:
    assert canonical_yaml({"b": 1, "a": {"d": 2, "c": 3}}) == canonical_yaml({"a": {"c": 3, "d": 2}, "b": 1})


def test_a_run_through_the_fake_store_resumes_after_a_failed_put() -> None:
    """Blobs are write-once: a run killed mid-upload is re-run, and only the missing blobs go up."""
    store = FakeObjectStore(fail_put_after=4)
    plan = _plan(_objects(), key=KEY)
    done = 0
    with pytest.raises(Exception, match="fail_put_after"):
        for upload in plan.uploads:
            store.put(upload.key, upload.data, if_none_match=True)
            done += 1
    assert done == 4
    store.fail_put_after = None
    present = {o.key for o in store.list(LAYOUT.blobs_prefix("site-a", "nexus"))}
    for upload in plan.uploads:
        if upload.key not in present:
            store.put(upload.key, upload.data, if_none_match=True)
    index = _index(plan)
    key = LAYOUT.index_key("site-a", "nexus", plan.run_id)
    store.put(key, encode_index(index, LAYOUT), if_none_match=True)
    loaded = decode_index(store.get(key), key=key, layout=LAYOUT)
    assert isinstance(loaded, BackupIndex)
    for entry in loaded.objects:
        assert open_blob(entry, store.get(entry.key), KEY)["metadata"]["name"] == entry.name


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML without libyaml: one emitter only")
def test_canonical_yaml_is_the_same_with_and_without_libyaml() -> None:
    """Content addresses must not depend on whether PyYAML was built with libyaml."""
    odd = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "odd", "namespace": "ns", "labels": {"a": "yes", "b": "0123", "c": ""}},
        "data": {
            "long": "word " * 60,
            "lines": "".join(f"key.{j}=value-{j}\n" for j in range(20)),
            "unicode": "ünïcode ✓ 日本",
            "lead": "  leading and trailing  ",
            "special": "a: b # c\t- [x]",
        },
        "list": [1, 2.5, None, True, "null", "~", {"nested": ["x", {"y": 1}]}],
    }
    corpus = [*seeds.common("pw"), *seeds.primary_app("http://nexus.lab.local"), *_objects(), odd]
    for obj in corpus:
        assert canonical_yaml(obj, dumper=yaml.CSafeDumper) == canonical_yaml(obj, dumper=yaml.SafeDumper)
