"""The backup, verify, restore and retention use cases on the fakes (FakeCluster, FakeObjectStore)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.domain.backup import BackupIndex, IndexPointer, decode_index, encode_index
from drkit.domain.crypto import MasterKey
from drkit.domain.errors import ConfigError, IntegrityError, NotFound, StandbyError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import KindRef, ProtectedApp, Site, StandbyConfig
from drkit.domain.retention import RetentionPolicy
from drkit.domain.selection import plan_lists
from drkit.jobs import backup as jobs
from drkit.jobs import backup_retention, backup_runs
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.restore import restore_backup
from drkit.jobs.verify import require_ok, verify_backup
from drkit.testing.clock import FakeClock
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from lab import seeds

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Nexus-admin-pw"
KEY = MasterKey(bytes(range(32)))
PV = KindRef(version="v1", kind="PersistentVolume")
PVC = KindRef(version="v1", kind="PersistentVolumeClaim")


@pytest.fixture(scope="module")
def config() -> StandbyConfig:
    return load_config(ROOT / "standby.example.yaml")


@pytest.fixture
def app(config: StandbyConfig) -> ProtectedApp:
    return config.app("nexus")


@pytest.fixture
def site_a(config: StandbyConfig) -> Site:
    return config.site("site-a")


@pytest.fixture
def site_b(config: StandbyConfig) -> Site:
    return config.site("site-b")


@pytest.fixture
def cluster() -> FakeCluster:
    fake = FakeCluster(site="site-a")
    fake.seed(*seeds.common(PASSWORD), *seeds.primary_app("http://nexus.lab.local"))
    return fake


@pytest.fixture
def store() -> FakeObjectStore:
    return FakeObjectStore(site="site-a")


class TickingClock(FakeClock):
    """A fake clock that moves ``step`` forward after every read (a run starts, then ends later)."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        super().__init__(start)
        self.step = step

    def now(self) -> datetime:
        read = super().now()
        self.advance(self.step.total_seconds())
        return read


def clock(
    start: datetime = datetime(2026, 11, 20, 1, 0, tzinfo=UTC), step: timedelta = timedelta(hours=1)
) -> TickingClock:
    return TickingClock(start, step)


def run(
    app: ProtectedApp, site: Site, cluster: FakeCluster, store: FakeObjectStore, **kw: object
) -> BackupSummary:
    options: dict[str, object] = {"key": KEY, "clock": clock()}
    options.update(kw)
    return jobs.run_backup(app, site, cluster, store, **options)  # type: ignore[arg-type]


def test_backup_lists_each_kind_once_and_never_gets(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    summary = run(app, site_a, cluster, store)
    assert summary.status == "complete" and summary.warnings == ()
    assert cluster.calls["get"] == 0
    assert cluster.calls["list"] == len(plan_lists(app)) == summary.list_calls
    kinds = {
        e.kind
        for e in backup_runs.read_index(
            store, StoreLayout("standby"), "site-a", "nexus", summary.run_id, key=KEY
        ).objects
    }
    assert kinds == {
        "Namespace",
        "Secret",
        "ConfigMap",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "VolumeReplication",
        "Nexus",
        "Service",
        "Ingress",
    }
    assert summary.objects == 9 and summary.objects_new == 9 and summary.key_id == KEY.key_id
    layout = StoreLayout("standby")
    stored = json.loads(store.get(layout.latest_key("site-a", "nexus")))
    assert stored["run_id"] == summary.run_id and stored["key_id"] == KEY.key_id and len(stored["mac"]) == 64


def test_no_plaintext_secret_anywhere_in_the_store(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    summary = run(app, site_a, cluster, store)
    assert summary.status == "complete" and summary.objects_new > 0 and store.objects
    index = backup_runs.read_index(store, StoreLayout("standby"), "site-a", "nexus", summary.run_id, key=KEY)
    assert any(e.kind == "Secret" for e in index.objects)  # the secret was backed up, just not in clear
    needles = [PASSWORD.encode(), base64.b64encode(PASSWORD.encode())]
    for key, data in store.objects.items():
        for needle in needles:
            assert needle not in data, key


def test_no_key_refuses_secrets_and_writes_nothing(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    with pytest.raises(
        ConfigError, match=r"nexus-root-password.*no backup encryption key.*STANDBY_BACKUP_KEY"
    ):
        run(app, site_a, cluster, store, key=None)
    assert store.objects == {}


def test_unchanged_rerun_uploads_nothing_and_changed_object_uploads_one(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store)
    second = run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 21, tzinfo=UTC)))
    assert (second.objects_new, second.bytes_uploaded, second.previous_run) == (0, 0, first.run_id)
    cluster.patch(
        KindRef(version="v1", kind="ConfigMap"),
        "nexus-ddrs-nxrm-ha-properties",
        "nexus-dr",
        {"data": {"x": "1"}},
    )
    third = run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 22, tzinfo=UTC)))
    assert third.objects_new == 1 and third.objects_reused == 8


def test_a_kind_that_cannot_be_listed_is_a_partial_failure(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store)
    cluster.unlistable.add("Ingress")
    summary = run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 21, tzinfo=UTC)))
    assert summary.status == "partially-failed"
    assert any("Ingress" in w and "403" in w for w in summary.warnings)
    layout = StoreLayout("standby")
    index = backup_runs.read_index(store, layout, "site-a", "nexus", summary.run_id, key=KEY)
    assert index.status == "partially-failed" and index.warnings == summary.warnings
    assert (
        backup_runs.read_latest(store, layout, "site-a", "nexus", key=KEY) == first.run_id
    )  # latest = newest complete


def test_apiserver_5xx_is_transient_and_raised(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    cluster.fail_next(1, 503)
    with pytest.raises(TransientError, match="503"):
        run(app, site_a, cluster, store)
    assert store.objects == {}


@pytest.mark.parametrize("fail_after", [0, 1])
def test_s3_failing_on_nth_put_leaves_no_index_and_latest_intact(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore, fail_after: int
) -> None:
    layout = StoreLayout("standby")
    first = run(app, site_a, cluster, store)
    cluster.patch(
        KindRef(version="v1", kind="ConfigMap"),
        "nexus-ddrs-nxrm-ha-properties",
        "nexus-dr",
        {"data": {"x": "2"}},
    )
    cluster.patch(
        KindRef(version="v1", kind="Service"),
        "nexus-ddrs-nxrm-ha",
        "nexus-dr",
        {"metadata": {"labels": {"x": "2"}}},
    )
    indexes_before = {k for k in store.objects if k.endswith("/index.json.gz")}
    assert len(indexes_before) == 1
    store.puts, store.fail_put_after = 0, fail_after
    with pytest.raises(TransientError, match="unreachable or failing"):
        run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 21, tzinfo=UTC)), workers=1)
    assert {k for k in store.objects if k.endswith("/index.json.gz")} == indexes_before
    assert backup_runs.read_latest(store, layout, "site-a", "nexus", key=KEY) == first.run_id
    store.fail_put_after = None
    again = run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 22, tzinfo=UTC)))
    assert again.status == "complete" and again.objects_new + again.objects_reused == 9
    assert backup_runs.read_latest(store, layout, "site-a", "nexus", key=KEY) == again.run_id
    require_ok(verify_backup(store, site_a, "nexus", run_id=None, key=KEY))


def test_s3_unreachable_fails_before_anything_is_written(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    store.unreachable = True
    with pytest.raises(TransientError, match="memory://fake-s3"):
        run(app, site_a, cluster, store)
    store.unreachable = False
    assert store.objects == {}
    assert run(app, site_a, cluster, store).status == "complete"


def test_verify_names_tampered_and_missing_objects(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    summary = run(app, site_a, cluster, store)
    assert verify_backup(store, site_a, "nexus", run_id=summary.run_id, key=KEY).ok
    index = backup_runs.read_index(store, StoreLayout("standby"), "site-a", "nexus", summary.run_id, key=KEY)
    secret = next(e for e in index.objects if e.kind == "Secret")
    service = next(e for e in index.objects if e.kind == "Service")
    data = bytearray(store.objects[secret.key])
    data[-1] ^= 1
    store.objects[secret.key] = bytes(data)
    del store.objects[service.key]
    report = verify_backup(store, site_a, "nexus", run_id=None, key=KEY)
    assert not report.ok
    assert {b.path for b in report.bad} == {secret.path, service.path}
    with pytest.raises(IntegrityError, match="nexus-root-password") as caught:
        require_ok(report)
    assert "nexus-ddrs-nxrm-ha" in str(caught.value)


def test_verify_with_a_wrong_key_names_the_key_ids(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    wrong = MasterKey(bytes(32))
    with pytest.raises(
        IntegrityError
    ) as caught:  # `latest` and the index are MACed: the key is checked first
        verify_backup(store, site_a, "nexus", run_id=None, key=wrong)
    assert KEY.key_id in caught.value.message and wrong.key_id in caught.value.message
    assert PASSWORD not in str(caught.value)


def test_verify_dry_run_on_a_target(
    app: ProtectedApp, site_a: Site, site_b: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    target = FakeCluster(site="site-b")
    target.seed(*seeds.common(PASSWORD))
    report = verify_backup(store, site_a, "nexus", run_id=None, key=KEY, target=target, target_site=site_b)
    assert report.ok, report.lines()
    assert target.calls["create"] == 9 and len(target.objects) == len(seeds.common(PASSWORD))


def test_restore_into_site_b(
    app: ProtectedApp, site_a: Site, site_b: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    target = FakeCluster(site="site-b")
    target.seed(*seeds.common(PASSWORD))
    before = dict(target.objects)
    dry = restore_backup(store, site_a, app, target, site_b, key=KEY, dry_run=True)
    assert target.objects == before and len(dry.created) == 7 and len(dry.skipped) == 2
    summary = restore_backup(store, site_a, app, target, site_b, key=KEY, clock=FakeClock())
    assert summary.bound_pvcs == (f"nexus-dr/{seeds.PVC_NAME}",)
    kinds = [c.split()[0] for c in summary.created]
    assert kinds == [
        "ConfigMap",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "VolumeReplication",
        "Nexus",
        "Service",
        "Ingress",
    ]
    pv = target.get(PV, seeds.PV_NAME)
    assert pv["spec"]["csi"]["volumeAttributes"]["imageName"] == seeds.IMAGE_NAME
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and "claimRef" not in pv["spec"]
    again = restore_backup(store, site_a, app, target, site_b, key=KEY, clock=FakeClock())
    assert again.created == () and len(again.skipped) == 9
    updated = restore_backup(store, site_a, app, target, site_b, key=KEY, policy="update", clock=FakeClock())
    assert len(updated.updated) == 9


def test_restore_rewrites_storage_class_and_namespace(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    other = site_a.model_copy(update={"name": "site-c", "storage_class": "fast-rbd"})
    target = FakeCluster(site="site-c")
    restore_backup(store, site_a, app, target, other, key=KEY, namespace="nexus-dr-drill", clock=FakeClock())
    pvc = target.get(PVC, seeds.PVC_NAME, "nexus-dr-drill")
    assert pvc["spec"]["storageClassName"] == "fast-rbd" and pvc["status"]["phase"] == "Bound"


def test_restore_times_out_naming_unbound_claims(
    app: ProtectedApp, site_a: Site, site_b: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    target = FakeCluster(site="site-b", bind_pvcs=False)
    clock = FakeClock()
    with pytest.raises(TransientError, match=f"not Bound.*{seeds.PVC_NAME}"):
        restore_backup(store, site_a, app, target, site_b, key=KEY, bound_timeout=3, clock=clock)
    assert clock.slept >= 3  # waited its timeout on the clock it was given


def test_restore_without_a_backup_says_what_to_do(
    app: ProtectedApp, site_a: Site, site_b: Site, store: FakeObjectStore
) -> None:
    with pytest.raises(NotFound, match=r"no complete backup.*standby backup run"):
        restore_backup(store, site_a, app, FakeCluster(site="site-b"), site_b, key=KEY)


def test_retention_keeps_newest_and_deletes_only_unreferenced_blobs(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    layout = StoreLayout("standby")
    runs = []
    for day in range(5):
        cluster.patch(
            KindRef(version="v1", kind="ConfigMap"),
            "nexus-ddrs-nxrm-ha-properties",
            "nexus-dr",
            {"data": {"day": str(day)}},
        )
        runs.append(
            run(app, site_a, cluster, store, clock=clock(datetime(2026, 11, 1 + day, tzinfo=UTC))).run_id
        )
    blobs_before = {i.key for i in store.list(layout.blobs_prefix("site-a", "nexus"))}
    result = backup_retention.apply_retention(
        store, site_a, app, RetentionPolicy(daily=2, weekly=0, monthly=0), key=KEY
    )
    assert result.decision.keep == (runs[4], runs[3]) and set(result.runs_deleted) == set(runs[:3])
    assert result.blobs_deleted == 3  # the three old ConfigMap versions; shared blobs stay
    assert [i.run_id for i in backup_runs.list_runs(store, layout, "site-a", "nexus", key=KEY)] == [
        runs[3],
        runs[4],
    ]
    assert len(blobs_before) - result.blobs_deleted == len(
        list(store.list(layout.blobs_prefix("site-a", "nexus")))
    )
    for kept in (runs[3], runs[4]):
        require_ok(verify_backup(store, site_a, "nexus", run_id=kept, key=KEY))


def test_key_from_env_names_the_variable_never_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        jobs.key_from_env("MY_KEY", {"MY_KEY": "not-a-key-value"})
    assert "MY_KEY" in str(caught.value) and "not-a-key-value" not in str(caught.value)
    assert jobs.key_from_env("MY_KEY", {}) is None
    text = base64.b64encode(bytes(range(32))).decode()
    key = jobs.key_from_env("MY_KEY", {"MY_KEY": text})
    assert key is not None and key.key_id == KEY.key_id and text not in repr(key)


def test_restore_reports_objects_the_target_refuses(
    app: ProtectedApp, site_a: Site, site_b: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store)
    target = FakeCluster(site="site-b")
    target.seed(*seeds.common(PASSWORD))
    del target.kinds[("operator.alaudadevops.io/v1alpha1", "Nexus")]
    with pytest.raises(StandbyError, match=r"Nexus nexus-dr/nexus-ddrs: kind .* not served"):
        restore_backup(store, site_a, app, target, site_b, key=KEY, clock=FakeClock())


# ------------------------------------------------------------------------------ pointer indexes

LAYOUT = StoreLayout("standby")
CM = KindRef(version="v1", kind="ConfigMap")


def _stored(store: FakeObjectStore, run_id: str) -> BackupIndex | IndexPointer:
    key = LAYOUT.index_key("site-a", "nexus", run_id)
    return decode_index(store.get(key), key=key, layout=LAYOUT, secret=KEY)


def _day(n: int) -> TickingClock:
    return clock(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=n))


def test_unchanged_rerun_writes_a_small_pointer_to_the_full_index(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store, clock=_day(0))
    second = run(app, site_a, cluster, store, clock=_day(1))
    third = run(app, site_a, cluster, store, clock=_day(2))
    assert first.same_as is None and isinstance(_stored(store, first.run_id), BackupIndex)
    for later in (second, third):
        pointer = _stored(store, later.run_id)
        # one hop: the third run points at the FULL index of the first, not at the second's pointer
        assert isinstance(pointer, IndexPointer) and pointer.same_as == first.run_id == later.same_as
        assert later.index_bytes < 1000 < first.index_bytes  # sealed: base64 ciphertext and a MAC
        assert pointer.previous_run == (first.run_id if later is second else second.run_id)
    resolved = backup_runs.read_index(store, LAYOUT, "site-a", "nexus", third.run_id, key=KEY)
    assert resolved.run_id == third.run_id and resolved.same_as == first.run_id
    assert (
        resolved.objects
        == backup_runs.read_index(store, LAYOUT, "site-a", "nexus", first.run_id, key=KEY).objects
    )
    assert backup_runs.read_latest(store, LAYOUT, "site-a", "nexus", key=KEY) == third.run_id
    listed = backup_runs.list_runs(store, LAYOUT, "site-a", "nexus", key=KEY)
    assert [(i.run_id, i.same_as, len(i.objects)) for i in listed] == [
        (first.run_id, None, 9),
        (second.run_id, first.run_id, 9),
        (third.run_id, first.run_id, 9),
    ]


def test_one_changed_object_writes_a_full_index_again(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    run(app, site_a, cluster, store, clock=_day(0))
    run(app, site_a, cluster, store, clock=_day(1))
    cluster.patch(CM, "nexus-ddrs-nxrm-ha-properties", "nexus-dr", {"data": {"x": "1"}})
    changed = run(app, site_a, cluster, store, clock=_day(2))
    assert changed.same_as is None and changed.objects_new == 1
    assert isinstance(_stored(store, changed.run_id), BackupIndex)
    after = run(app, site_a, cluster, store, clock=_day(3))
    assert after.same_as == changed.run_id


def test_verify_and_restore_through_a_pointer(
    app: ProtectedApp, site_a: Site, site_b: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store, clock=_day(0))
    second = run(app, site_a, cluster, store, clock=_day(1))
    report = require_ok(verify_backup(store, site_a, "nexus", run_id=None, key=KEY))
    assert report.run_id == second.run_id and report.checked == 9
    assert any(first.run_id in note for note in report.notes)
    target = FakeCluster(site="site-b")
    target.seed(*seeds.common(PASSWORD))
    summary = restore_backup(store, site_a, app, target, site_b, key=KEY, clock=FakeClock())
    assert summary.run_id == second.run_id and len(summary.created) == 7
    assert target.get(PV, seeds.PV_NAME)["spec"]["csi"]["volumeAttributes"]["imageName"] == seeds.IMAGE_NAME


def test_tampered_or_missing_pointer_target_is_detected(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store, clock=_day(0))
    second = run(app, site_a, cluster, store, clock=_day(1))
    target_key = LAYOUT.index_key("site-a", "nexus", first.run_id)
    genuine = store.objects[target_key]
    full = _stored(store, first.run_id)
    assert isinstance(full, BackupIndex)
    # a valid full index with one object less: only the pointer's recorded sha256 can tell
    forged = full.model_copy(update={"objects": full.objects[:-1]})
    store.objects[target_key] = encode_index(forged, LAYOUT, key=KEY)  # as a key holder could
    with pytest.raises(IntegrityError, match=f"{second.run_id} points at run {first.run_id}.*tampered"):
        verify_backup(store, site_a, "nexus", run_id=None, key=KEY)
    with pytest.raises(IntegrityError, match="tampered"):
        backup_runs.list_runs(store, LAYOUT, "site-a", "nexus", key=KEY)
    del store.objects[target_key]
    with pytest.raises(IntegrityError, match=f"points at run {first.run_id}, whose index is missing"):
        backup_runs.read_index(store, LAYOUT, "site-a", "nexus", second.run_id, key=KEY)
    store.objects[target_key] = genuine
    assert (
        backup_runs.read_index(store, LAYOUT, "site-a", "nexus", second.run_id, key=KEY).same_as
        == first.run_id
    )


def test_an_index_stored_under_another_run_id_is_refused(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    first = run(app, site_a, cluster, store, clock=_day(0))
    cluster.patch(CM, "nexus-ddrs-nxrm-ha-properties", "nexus-dr", {"data": {"x": "1"}})
    second = run(app, site_a, cluster, store, clock=_day(1))
    store.objects[LAYOUT.index_key("site-a", "nexus", second.run_id)] = store.objects[
        LAYOUT.index_key("site-a", "nexus", first.run_id)
    ]
    with pytest.raises(IntegrityError, match=f"holds the index of run {first.run_id}"):
        backup_runs.read_index(store, LAYOUT, "site-a", "nexus", second.run_id, key=KEY)


def test_retention_keeps_the_full_index_a_kept_pointer_names_and_its_blobs(
    app: ProtectedApp, site_a: Site, cluster: FakeCluster, store: FakeObjectStore
) -> None:
    cluster.patch(CM, "nexus-ddrs-nxrm-ha-properties", "nexus-dr", {"data": {"day": "0"}})
    old = run(app, site_a, cluster, store, clock=_day(0)).run_id
    cluster.patch(CM, "nexus-ddrs-nxrm-ha-properties", "nexus-dr", {"data": {"day": "1"}})
    full = run(app, site_a, cluster, store, clock=_day(1)).run_id
    pointers = [run(app, site_a, cluster, store, clock=_day(d)).run_id for d in (2, 3, 4)]
    result = backup_retention.apply_retention(
        store, site_a, app, RetentionPolicy(daily=2, weekly=0, monthly=0), key=KEY
    )
    assert result.decision.keep == (pointers[2], pointers[1], full)
    assert any("points here" in why for why in result.decision.reasons[full])
    assert set(result.runs_deleted) == {pointers[0], old}
    assert result.blobs_deleted == 1  # the ConfigMap of day 0 only
    for kept in (pointers[2], pointers[1], full):
        require_ok(verify_backup(store, site_a, "nexus", run_id=kept, key=KEY))
