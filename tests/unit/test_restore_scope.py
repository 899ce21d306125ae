"""Restores apply only the app: the manifest must be its entry's object, the allow-list, the
namespaces, and server-side validation before the first apply.

The forgeries are written the way a bucket writer without the key would: a plaintext blob at its
content address and an index entry that names it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.config import load_config
from drkit.domain.backup import BackupIndex, decode_index, encode_index
from drkit.domain.backup_index import IndexEntry
from drkit.domain.crypto import MasterKey
from drkit.domain.errors import IntegrityError, PreconditionFailed
from drkit.domain.layout import StoreLayout, logical_path
from drkit.domain.models import KindRef, ProtectedApp, Site, StandbyConfig
from drkit.domain.restore_scope import RestoreScope, entry_mismatch
from drkit.jobs import backup as jobs
from drkit.jobs.restore import restore_backup
from drkit.testing.clock import FakeClock
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from lab import seeds
from lab.kubeapi import KubeApiServer
from tests.apiservers import kube_cluster

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Nexus-admin-pw"
KEY = MasterKey(bytes(range(32)))
LAYOUT = StoreLayout("standby")
PV = KindRef(version="v1", kind="PersistentVolume")


@pytest.fixture(scope="module")
def config() -> StandbyConfig:
    return load_config(ROOT / "standby.example.yaml")


@pytest.fixture
def app(config: StandbyConfig) -> ProtectedApp:
    return config.app("nexus")


@pytest.fixture
def keyless_app(app: ProtectedApp) -> ProtectedApp:
    """The app without Secrets, so a run needs no key (and its index is what a bucket writer forges)."""
    kinds = tuple(k for k in app.backup.kinds if k.kind != "Secret")
    return app.model_copy(update={"backup": app.backup.model_copy(update={"kinds": kinds})})


@pytest.fixture
def site_a(config: StandbyConfig) -> Site:
    return config.site("site-a")


@pytest.fixture
def site_b(config: StandbyConfig) -> Site:
    return config.site("site-b")


def _source() -> FakeCluster:
    fake = FakeCluster(site="site-a")
    fake.seed(*seeds.common(PASSWORD), *seeds.primary_app("http://nexus.lab.local"))
    return fake


def _target() -> FakeCluster:
    """Site B as seeded, with a ``kube-system`` namespace a forged object could land in."""
    fake = FakeCluster(site="site-b")
    fake.seed(
        *seeds.common(PASSWORD),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
    )
    return fake


def _backup(app: ProtectedApp, site: Site, store: FakeObjectStore, key: MasterKey | None) -> str:
    return jobs.run_backup(app, site, _source(), store, key=key, clock=FakeClock()).run_id


def _plant(
    store: FakeObjectStore,
    run_id: str,
    manifest: dict[str, Any],
    *,
    as_entry: tuple[str, str, str | None, str],
) -> None:
    """Add to run ``run_id`` a plaintext blob holding ``manifest`` and an entry naming ``as_entry``."""
    key = LAYOUT.index_key("site-a", "nexus", run_id)
    try:
        index = decode_index(store.get(key), key=key, layout=LAYOUT)
    except (
        IntegrityError
    ):  # sealed (a run with a key): read as a key holder; written back unsealed, as a forger can
        index = decode_index(store.get(key), key=key, layout=LAYOUT, secret=KEY)
    assert isinstance(index, BackupIndex)
    data = yaml.safe_dump(manifest).encode()
    digest = hashlib.sha256(data).hexdigest()
    blob = LAYOUT.blob_key("site-a", "nexus", digest, encrypted=False)
    store.put(blob, data)
    api_version, kind, namespace, name = as_entry
    entry = IndexEntry(
        api_version=api_version,
        kind=kind,
        namespace=namespace,
        name=name,
        path=logical_path(api_version, kind, namespace, name),
        key=blob,
        address=digest,
        sha256=digest,
        size=len(data),
        encrypted=False,
        stored_by=run_id,
    )
    store.objects[key] = encode_index(index.model_copy(update={"objects": (*index.objects, entry)}), LAYOUT)


def _plant_as_itself(store: FakeObjectStore, run_id: str, manifest: dict[str, Any]) -> None:
    meta = manifest["metadata"]
    _plant(
        store,
        run_id,
        manifest,
        as_entry=(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]),
    )


PWNED = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "pwned", "namespace": "kube-system"},
    "stringData": {"token": "attacker"},
}


def _pv(name: str, image: str) -> dict[str, Any]:
    pv = next(
        o
        for o in seeds.primary_app("http://x") + seeds.common(PASSWORD)
        if o.get("kind") == "PersistentVolume"
    )
    out = copy.deepcopy(pv)
    out["metadata"] = {"name": name}
    out["spec"]["csi"]["volumeAttributes"]["imageName"] = image
    out["spec"].pop("claimRef", None)
    return out


# ------------------------------------------------------------------------------- the forged entry


@pytest.mark.parametrize("exclude", [(), ("Secret",)])
def test_an_entry_whose_blob_holds_another_object_refuses_the_whole_run(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site, exclude: tuple[str, ...]
) -> None:
    store = FakeObjectStore(site="site-a")
    run_id = _backup(keyless_app, site_a, store, None)
    _plant(store, run_id, PWNED, as_entry=("v1", "ConfigMap", "nexus-dr", "harmless"))
    target = _target()
    before = dict(target.objects)
    with pytest.raises(IntegrityError) as caught:
        restore_backup(
            store,
            site_a,
            keyless_app,
            target,
            site_b,
            key=None,
            exclude_kinds=exclude,
            store_name="site-b",
            clock=FakeClock(),
        )
    message = str(caught.value)
    assert "the blob of ConfigMap nexus-dr/harmless holds Secret kube-system/pwned" in message
    assert run_id in message and "store of site-b" in message and "\n" not in message
    assert target.objects == before and target.calls["create"] == 0


@pytest.mark.parametrize("exclude", [(), ("Secret",)])
def test_the_forged_entry_with_a_key_creates_nothing(
    app: ProtectedApp, site_a: Site, site_b: Site, exclude: tuple[str, ...]
) -> None:
    store = FakeObjectStore(site="site-a")
    run_id = _backup(app, site_a, store, KEY)
    _plant(store, run_id, PWNED, as_entry=("v1", "ConfigMap", "nexus-dr", "harmless"))
    target = _target()
    before = dict(target.objects)
    with pytest.raises(IntegrityError):
        restore_backup(store, site_a, app, target, site_b, key=KEY, exclude_kinds=exclude, clock=FakeClock())
    assert target.objects == before and target.calls["create"] == 0


def test_a_manifest_of_another_api_version_is_a_mismatch(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    store = FakeObjectStore(site="site-a")
    run_id = _backup(keyless_app, site_a, store, None)
    forged = {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "nexus-dr"}}
    _plant(store, run_id, forged, as_entry=("v1", "ConfigMap", "nexus-dr", "other"))
    with pytest.raises(
        IntegrityError, match=r"ConfigMap nexus-dr/other \(v1\) holds ConfigMap nexus-dr/other \(v2\)"
    ):
        restore_backup(store, site_a, keyless_app, _target(), site_b, key=None, clock=FakeClock())


# ------------------------------------------------------------------------------- the allow-list


def _refused(app: ProtectedApp, site_a: Site, site_b: Site, manifest: dict[str, Any], match: str) -> None:
    """Plant ``manifest`` under its own entry: the restore is refused with ``match``, nothing created."""
    store = FakeObjectStore(site="site-a")
    run_id = _backup(app, site_a, store, None)
    _plant_as_itself(store, run_id, manifest)
    target = _target()
    before = dict(target.objects)
    with pytest.raises(PreconditionFailed, match=match) as caught:
        restore_backup(store, site_a, app, target, site_b, key=None, clock=FakeClock())
    assert "nothing was applied" in str(caught.value) and "\n" not in str(caught.value)
    assert target.objects == before and target.calls["create"] == 0


def test_a_pv_of_an_image_that_is_not_the_apps_is_refused(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    _refused(
        keyless_app,
        site_a,
        site_b,
        _pv("pvc-stolen", "csi-vol-of-another-app"),
        r"PersistentVolume pvc-stolen: it names image csi-vol-of-another-app, not one of the app's images",
    )


def test_an_object_in_another_namespace_is_refused(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}}
    _refused(
        keyless_app, site_a, site_b, cm, r"ConfigMap kube-system/x: it is not in the app's namespace nexus-dr"
    )


def test_a_kind_outside_the_allow_list_is_refused(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "grab", "namespace": "nexus-dr"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "nexus-dr"}],
    }
    _refused(
        keyless_app, site_a, site_b, role, r"RoleBinding nexus-dr/grab: its kind is not one of the app's"
    )


def test_a_cluster_scoped_object_is_refused(keyless_app: ProtectedApp, site_a: Site, site_b: Site) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "grab"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "nexus-dr"}],
    }
    _refused(keyless_app, site_a, site_b, binding, r"ClusterRoleBinding grab: it is cluster-scoped")


def test_a_restore_into_another_namespace_is_refused(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    store = FakeObjectStore(site="site-a")
    _backup(keyless_app, site_a, store, None)
    target = _target()
    before = dict(target.objects)
    with pytest.raises(
        PreconditionFailed, match="namespace kube-system is not one app nexus may be restored into"
    ):
        restore_backup(store, site_a, keyless_app, target, site_b, key=None, namespace="kube-system")
    assert target.objects == before


def test_the_drill_namespace_and_the_apps_own_are_accepted(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site
) -> None:
    store = FakeObjectStore(site="site-a")
    _backup(keyless_app, site_a, store, None)
    summary = restore_backup(
        store, site_a, keyless_app, _target(), site_b, key=None, namespace="nexus-dr-drill", clock=FakeClock()
    )
    assert summary.namespace == "nexus-dr-drill" and "Namespace nexus-dr-drill" in summary.created


# ------------------------------------------------------------------- server-side validation (HTTP)


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[KubeApiServer]:
    srv = KubeApiServer(tick_interval=0.2)
    srv.start()
    try:
        kube = kube_cluster(srv, "site-b", tmp_path)
        for obj in seeds.common(PASSWORD):
            kube.create(obj)
        yield srv
    finally:
        srv.stop()


def test_an_object_the_apiserver_rejects_in_dry_run_stops_the_restore_before_any_apply(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site, apiserver: KubeApiServer, tmp_path: Path
) -> None:
    store = FakeObjectStore(site="site-a")
    run_id = _backup(keyless_app, site_a, store, None)
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "zz-bad", "namespace": "nexus-dr"},
        "data": {"port": 8081},
    }
    _plant_as_itself(store, run_id, bad)
    target = kube_cluster(apiserver, "site-b", tmp_path)
    kinds = [*keyless_app.backup.kinds, PV]
    before = {str(k): target.list(k, None if k == PV else "nexus-dr") for k in kinds}
    with pytest.raises(
        PreconditionFailed, match=r"validation \(dry run\) refused 1 object\(s\): ConfigMap nexus-dr/zz-bad"
    ):
        restore_backup(store, site_a, keyless_app, target, site_b, key=None, clock=FakeClock())
    after = {str(k): target.list(k, None if k == PV else "nexus-dr") for k in kinds}
    assert after == before
    # without the bad object the same restore goes through (the dry run passes the app's objects)
    store2 = FakeObjectStore(site="site-a")
    _backup(keyless_app, site_a, store2, None)
    summary = restore_backup(
        store2, site_a, keyless_app, target, site_b, key=None, clock=FakeClock(), bound_timeout=20
    )
    assert "Nexus nexus-dr/nexus-ddrs" in summary.created


def test_dry_run_restore_sends_only_dry_run_requests(
    keyless_app: ProtectedApp, site_a: Site, site_b: Site, apiserver: KubeApiServer, tmp_path: Path
) -> None:
    store = FakeObjectStore(site="site-a")
    _backup(keyless_app, site_a, store, None)
    target = kube_cluster(apiserver, "site-b", tmp_path)
    kinds = [*keyless_app.backup.kinds, PV]
    before = {str(k): target.list(k, None if k == PV else "nexus-dr") for k in kinds}
    summary = restore_backup(store, site_a, keyless_app, target, site_b, key=None, dry_run=True)
    assert summary.dry_run and "Nexus nexus-dr/nexus-ddrs" in summary.created
    assert {str(k): target.list(k, None if k == PV else "nexus-dr") for k in kinds} == before


# ------------------------------------------------------------------------------- the pure parts


def _scope(app: ProtectedApp) -> RestoreScope:
    return RestoreScope.of(app)


def test_scope_accepts_the_apps_objects(app: ProtectedApp) -> None:
    scope = _scope(app)
    objects = seeds.primary_app("http://x") + [o for o in seeds.common(PASSWORD) if o["kind"] == "Namespace"]
    mine = [o for o in objects if (o.get("metadata") or {}).get("namespace") in (None, "nexus-dr")]
    pvs = scope.app_pvs(mine)
    assert seeds.PV_NAME in pvs
    for obj in mine:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] != "nexus-dr":
            assert scope.refusal(obj, namespaced=False) is not None
            continue
        if obj["kind"] in {"Namespace", "PersistentVolume"} or any(
            (k.api_version, k.kind) == (obj["apiVersion"], obj["kind"]) for k in app.backup.kinds
        ):
            assert (
                scope.refusal(
                    obj, namespaced=obj["kind"] not in {"Namespace", "PersistentVolume"}, run_pvs=pvs
                )
                is None
            ), obj


@pytest.mark.parametrize(
    ("obj", "namespaced", "why"),
    [
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
            False,
            "not the app's Namespace",
        ),
        (
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "p"}, "spec": {}},
            False,
            "no RBD image",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "p", "namespace": "nexus-dr"},
                "spec": {"csi": {"volumeAttributes": {"imageName": seeds.IMAGE_NAME}}},
            },
            False,
            "has no namespace",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "p"},
                "spec": {
                    "csi": {"volumeAttributes": {"imageName": seeds.IMAGE_NAME}},
                    "claimRef": {"namespace": "other", "name": "c"},
                },
            },
            False,
            "claimRef names namespace other",
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            True,
            "not in the app's namespace",
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nexus-dr"}},
            False,
            "cluster-scoped",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "nexus-dr"}},
            True,
            "kind is not one of the app's",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "t", "namespace": "nexus-dr"},
            },
            True,
            "the cluster makes",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "c", "namespace": "nexus-dr"},
                "spec": {"volumeName": "pvc-of-someone-else"},
            },
            True,
            "bound to PV pvc-of-someone-else",
        ),
        (
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"}},
            None,
            "cluster-scoped",
        ),
    ],
)
def test_scope_refuses(app: ProtectedApp, obj: dict[str, Any], namespaced: bool | None, why: str) -> None:
    reason = _scope(app).refusal(obj, namespaced=namespaced, run_pvs=frozenset({seeds.PV_NAME}))
    assert reason is not None and why in reason


def test_the_workload_is_allowed_by_name_when_its_kind_is_not_configured(app: ProtectedApp) -> None:
    kinds = tuple(k for k in app.backup.kinds if k.kind != "Nexus")
    scope = _scope(app.model_copy(update={"backup": app.backup.model_copy(update={"kinds": kinds})}))
    cr = seeds.nexus_cr("http://x")
    assert scope.refusal(cr, namespaced=True) is None
    other = {**cr, "metadata": {**cr["metadata"], "name": "another"}}
    assert "not one of the app's" in str(scope.refusal(other, namespaced=True))


def test_landing_outside_the_target_namespace_is_refused(app: ProtectedApp) -> None:
    scope = _scope(app)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nexus-dr"}}
    assert scope.landing_refusal(cm, "nexus-dr") is None
    assert "land in namespace nexus-dr" in str(scope.landing_refusal(cm, "nexus-dr-drill"))
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nexus-dr"}}
    assert scope.landing_refusal(ns, "nexus-dr-drill") is not None


def test_entry_mismatch_names_both() -> None:
    entry = IndexEntry(
        api_version="v1",
        kind="ConfigMap",
        namespace="nexus-dr",
        name="harmless",
        path=logical_path("v1", "ConfigMap", "nexus-dr", "harmless"),
        key="k",
        address="0" * 64,
        sha256="0" * 64,
        size=1,
        encrypted=False,
        stored_by="20260101T000000Z-abcdef",
    )
    assert (
        entry_mismatch(entry, PWNED)
        == "the blob of ConfigMap nexus-dr/harmless holds Secret kube-system/pwned"
    )
    same = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "harmless", "namespace": "nexus-dr"},
    }
    assert entry_mismatch(entry, same) is None
    assert (
        entry_mismatch(entry, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "harmless"}})
        is not None
    )
