"""The fake kube-apiserver through the official ``kubernetes`` Python client (real HTTP)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException as DynApiException
from kubernetes.stream import stream

from lab.kubeapi import KubeApiServer, allowlist_handler, pvcs_bound
from lab.kubeapi.testing import deployment, pv, pvc, wait_for

VR_GROUP, VR_VERSION, VR_PLURAL = "replication.storage.openshift.io", "v1alpha1", "volumereplications"


@pytest.fixture
def api(kubeapi: KubeApiServer) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = kubeapi.url
    return client.ApiClient(cfg)


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path) -> DynamicClient:
    return DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def _vr(name: str, pvc_name: str = "data") -> dict[str, Any]:
    return {
        "apiVersion": f"{VR_GROUP}/{VR_VERSION}",
        "kind": "VolumeReplication",
        "metadata": {"name": name},
        "spec": {
            "volumeReplicationClass": "rbd-vrc",
            "replicationState": "primary",
            "dataSource": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": pvc_name},
        },
    }


def test_create_get_list_with_label_and_field_selectors(core: client.CoreV1Api) -> None:
    for name, labels in [("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {"env": "dev"})]:
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})
    got = core.read_namespaced_config_map("a", "default")
    assert got.metadata.uid and int(got.metadata.resource_version) > 1 and got.metadata.creation_timestamp

    def names(**kw: Any) -> list[str]:
        return [i.metadata.name for i in core.list_namespaced_config_map("default", **kw).items]

    assert names(label_selector="tier=web") == ["a"]
    assert names(label_selector="tier==db") == ["b"]
    assert names(label_selector="tier!=web") == ["b", "c"]
    assert names(label_selector="tier in (web,db)") == ["a", "b"]
    assert names(label_selector="tier notin (web)") == ["b", "c"]
    assert names(label_selector="env") == ["a", "c"]
    assert names(label_selector="!env") == ["b"]
    assert names(label_selector="tier,env=prod") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    assert [
        i.metadata.name
        for i in core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=default").items
    ] == ["a", "b", "c"]
    with pytest.raises(client.ApiException) as exc:
        names(field_selector="data.x=1")
    assert exc.value.status == 400


def test_pagination_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for i in range(7):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        pages += 1
        seen += [i.metadata.name for i in page.items]
        assert len(page.items) <= 3
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert pages == 3
    assert seen == [f"cm-{i}" for i in range(7)]
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_config_map("default", limit=3, _continue="not-a-token")
    assert exc.value.status == 400


def test_already_exists_and_stale_resource_version_conflict(core: client.CoreV1Api) -> None:
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "x"}, "data": {"k": "1"}})
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"
    fresh = core.replace_namespaced_config_map(
        "x",
        "default",
        {"metadata": {"name": "x", "resourceVersion": cm.metadata.resource_version}, "data": {"k": "2"}},
    )
    assert fresh.data == {"k": "2"}
    assert int(fresh.metadata.resource_version) > int(cm.metadata.resource_version)
    with pytest.raises(client.ApiException) as exc:
        core.replace_namespaced_config_map(
            "x",
            "default",
            {"metadata": {"name": "x", "resourceVersion": cm.metadata.resource_version}, "data": {"k": "3"}},
        )
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("nope", {"metadata": {"name": "y"}})
    body = json.loads(exc.value.body)
    assert exc.value.status == 404 and body["details"] == {"name": "nope", "group": "", "kind": "namespaces"}


def test_unknown_fields_are_rejected_422(dyn: DynamicClient, api: client.ApiClient) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(DynApiException) as exc:
        cms.create(body={"metadata": {"name": "bad"}, "dataa": {"k": "v"}}, namespace="default")
    body = json.loads(exc.value.body)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "dataa"
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    manifest = deployment("web")
    manifest["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(DynApiException) as exc:
        deps.create(body=manifest, namespace="default")
    assert "spec.template.spec.containers[0].imagee" in exc.value.body
    vrs = dyn.resources.get(api_version=f"{VR_GROUP}/{VR_VERSION}", kind="VolumeReplication")
    bad_vr = _vr("v")
    bad_vr["spec"]["colour"] = "blue"
    with pytest.raises(DynApiException) as exc:
        vrs.create(body=bad_vr, namespace="default")
    assert exc.value.status == 422 and "spec.colour" in exc.value.body
    bad_vr = _vr("v")
    bad_vr["spec"]["replicationState"] = "primaryy"
    with pytest.raises(DynApiException) as exc:
        vrs.create(body=bad_vr, namespace="default")
    assert exc.value.status == 422 and "spec.replicationState" in exc.value.body
    nexus = dyn.resources.get(api_version="operator.alaudadevops.io/v1alpha1", kind="Nexus")
    created = nexus.create(
        body={
            "metadata": {"name": "nx"},
            "spec": {"externalURL": "http://n", "helmValues": {"anything": {"goes": [1, 2]}}},
        },
        namespace="default",
    )
    assert created.spec.helmValues.anything.goes == [1, 2]


def test_immutable_pvc_spec_and_vr_data_source(core: client.CoreV1Api, api: client.ApiClient) -> None:
    core.create_namespaced_persistent_volume_claim("default", pvc("data", None))
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_persistent_volume_claim(
            "data", "default", {"spec": {"storageClassName": "other"}}
        )
    assert exc.value.status == 422 and json.loads(exc.value.body)["details"]["causes"][0]["field"] == "spec"
    grown = core.patch_namespaced_persistent_volume_claim(
        "data", "default", {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    )
    assert grown.spec.resources.requests["storage"] == "2Gi"
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_persistent_volume_claim(
            "data", "default", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        )
    assert exc.value.status == 422
    core.create_persistent_volume(pv("pv-a", "h1"))
    with pytest.raises(client.ApiException) as exc:
        core.patch_persistent_volume("pv-a", {"spec": {"csi": {"volumeHandle": "h2"}}})
    assert exc.value.status == 422
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(VR_GROUP, VR_VERSION, "default", VR_PLURAL, _vr("vr"))
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object(
            VR_GROUP, VR_VERSION, "default", VR_PLURAL, "vr", {"spec": {"dataSource": {"name": "other"}}}
        )
    assert exc.value.status == 422 and "spec.dataSource" in exc.value.body
    ok = custom.patch_namespaced_custom_object(
        VR_GROUP, VR_VERSION, "default", VR_PLURAL, "vr", {"spec": {"replicationState": "secondary"}}
    )
    assert ok["spec"]["replicationState"] == "secondary" and ok["metadata"]["generation"] == 2


def test_patch_types(apps: client.AppsV1Api, core: client.CoreV1Api, dyn: DynamicClient) -> None:
    apps.create_namespaced_deployment("default", deployment("web"))
    # a dict body is a strategic merge patch: env merges by name, containers by name
    patched = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}}
            }
        },
    )
    env = patched.spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("A", "1"), ("B", "2")]
    assert patched.spec.template.spec.containers[0].image == "nginx:1.27"
    removed = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "main", "env": [{"name": "A", "$patch": "delete"}]}]}
                }
            }
        },
    )
    assert [e.name for e in removed.spec.template.spec.containers[0].env] == ["B"]
    # a list body is a JSON patch
    jp = apps.patch_namespaced_deployment(
        "web",
        "default",
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
        ],
    )
    assert jp.spec.replicas == 3 and jp.metadata.labels["extra"] == "yes"
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(body={"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}}, namespace="default")
    merged = cms.patch(
        name="m",
        namespace="default",
        body={"data": {"a": None, "c": "3"}},
        content_type="application/merge-patch+json",
    )
    assert dict(merged.data) == {"b": "2", "c": "3"}
    vrs = dyn.resources.get(api_version=f"{VR_GROUP}/{VR_VERSION}", kind="VolumeReplication")
    vrs.create(body=_vr("vr"), namespace="default")
    with pytest.raises(DynApiException) as exc:
        vrs.patch(name="vr", namespace="default", body={"spec": {"autoResync": True}})
    assert exc.value.status == 415 and json.loads(exc.value.body)["reason"] == "UnsupportedMediaType"
    ok = vrs.patch(
        name="vr",
        namespace="default",
        body={"spec": {"autoResync": True}},
        content_type="application/merge-patch+json",
    )
    assert ok.spec.autoResync is True


def test_status_changes_only_through_status_subresource(api: client.ApiClient, dyn: DynamicClient) -> None:
    vrs = dyn.resources.get(api_version=f"{VR_GROUP}/{VR_VERSION}", kind="VolumeReplication")
    created = vrs.create(body={**_vr("vr"), "status": {"state": "Primary"}}, namespace="default")
    assert created.status is None
    main = vrs.patch(
        name="vr",
        namespace="default",
        body={"status": {"state": "Primary"}},
        content_type="application/merge-patch+json",
    )
    assert main.status is None
    custom = client.CustomObjectsApi(api)
    st = custom.patch_namespaced_custom_object_status(
        VR_GROUP,
        VR_VERSION,
        "default",
        VR_PLURAL,
        "vr",
        {
            "status": {
                "state": "Primary",
                "lastSyncBytes": 5742592,
                "conditions": [{"type": "Completed", "status": "True", "reason": "Promoted"}],
            }
        },
    )
    assert st["status"]["state"] == "Primary" and st["metadata"]["generation"] == 1
    again = custom.patch_namespaced_custom_object_status(
        VR_GROUP,
        VR_VERSION,
        "default",
        VR_PLURAL,
        "vr",
        {"spec": {"replicationState": "secondary"}, "status": {"message": "ok"}},
    )
    assert again["spec"]["replicationState"] == "primary" and again["status"]["message"] == "ok"
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object_status(
            VR_GROUP, VR_VERSION, "default", VR_PLURAL, "vr", {"status": {"state": "Sideways"}}
        )
    assert exc.value.status == 422


def test_watch_streams_events(core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    events: list[tuple[str, str, str | None]] = []

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(
            core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=5
        ):
            obj = ev["object"]
            events.append((ev["type"], obj.metadata.name, (obj.data or {}).get("k")))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("w", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", "default")
    t.join(timeout=10)
    assert events == [("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]


def test_pvc_binds_to_static_pv_and_pv_is_released(core: client.CoreV1Api) -> None:
    core.create_persistent_volume(pv("pv-1", "csi-vol-1"))
    core.create_namespaced_persistent_volume_claim("default", pvc("wrong-sc", "pv-1", sc="fast"))
    claim = core.create_namespaced_persistent_volume_claim("default", pvc("data", "pv-1"))
    wait_for(
        lambda: core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Bound",
        what="PVC Bound",
    )
    vol = core.read_persistent_volume("pv-1")
    assert vol.status.phase == "Bound"
    assert (vol.spec.claim_ref.name, vol.spec.claim_ref.uid) == ("data", claim.metadata.uid)
    bound = core.read_namespaced_persistent_volume_claim("data", "default")
    assert bound.status.capacity == {"storage": "1Gi"} and bound.status.access_modes == ["ReadWriteOnce"]
    assert core.read_namespaced_persistent_volume_claim("wrong-sc", "default").status.phase == "Pending"
    core.create_namespaced_persistent_volume_claim("default", pvc("unbound", None))
    core.delete_namespaced_persistent_volume_claim("data", "default")
    wait_for(lambda: core.read_persistent_volume("pv-1").status.phase == "Released", what="PV Released")
    assert core.read_namespaced_persistent_volume_claim("unbound", "default").status.phase == "Pending"


def test_deployment_gets_ready_pods_scales_and_cascades(
    apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    dep = wait_for(
        lambda: (d := apps.read_namespaced_deployment("web", "default")).status.ready_replicas == 2 and d,
        what="2 ready replicas",
    )
    assert dep.status.observed_generation == 1 and dep.status.available_replicas == 2
    pods = core.list_namespaced_pod("default", label_selector="app=web").items
    assert len(pods) == 2 and all(p.status.phase == "Running" and p.status.pod_ip for p in pods)
    assert all(
        p.metadata.name.startswith("web-") and p.metadata.owner_references[0].kind == "ReplicaSet"
        for p in pods
    )
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running").items
    assert len(running) == 2
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    wait_for(
        lambda: apps.read_namespaced_deployment("web", "default").status.ready_replicas == 3,
        what="3 ready replicas",
    )
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}})
    wait_for(
        lambda: len(core.list_namespaced_pod("default", label_selector="app=web").items) == 1,
        what="scale down to 1 pod",
    )
    apps.delete_namespaced_deployment("web", "default")
    assert core.list_namespaced_pod("default").items == []
    assert apps.list_namespaced_replica_set("default").items == []


def test_statefulset_pods_wait_for_bound_claims(
    kubeapi: KubeApiServer, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    kubeapi.set_pod_can_start(pvcs_bound)
    sts = deployment("db")
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    sts["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "rbd",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    ]
    apps.create_namespaced_stateful_set("default", sts)
    pod = wait_for(lambda: core.list_namespaced_pod("default").items, what="pod db-0")[0]
    assert pod.metadata.name == "db-0"
    pending = wait_for(
        lambda: (p := core.read_namespaced_pod("db-0", "default")).status.conditions and p,
        what="Unschedulable condition",
    )
    assert pending.status.phase == "Pending" and "unbound" in pending.status.conditions[0].message
    claim = core.read_namespaced_persistent_volume_claim("data-db-0", "default")
    assert claim.status.phase == "Pending"
    bound_pv = pv("pv-db", "h")
    bound_pv["spec"]["claimRef"] = {"namespace": "default", "name": "data-db-0"}
    core.create_persistent_volume(bound_pv)
    wait_for(
        lambda: core.read_namespaced_pod("db-0", "default").status.phase == "Running", what="db-0 Running"
    )
    assert core.read_namespaced_persistent_volume_claim("data-db-0", "default").spec.volume_name == "pv-db"
    wait_for(
        lambda: apps.read_namespaced_stateful_set("db", "default").status.ready_replicas == 1,
        what="sts ready",
    )


def test_exec_stream_with_allowlist_handler(kubeapi: KubeApiServer, core: client.CoreV1Api) -> None:
    kubeapi.set_exec_handler(allowlist_handler({"echo"}, {}, ("app", "tools")))
    for name, labels in [("tools", {"app": "tools"}), ("other", {"app": "x"})]:
        core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        )
        wait_for(
            lambda n=name: core.read_namespaced_pod(n, "default").status.phase == "Running", what="Running"
        )
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "tools",
        "default",
        command=["echo", "hello", "rbd"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "hello rbd\n"
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "tools",
        "default",
        command=["cat", "/etc/passwd"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 126 and "not allowed" in resp.read_stderr()
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "other",
        "default",
        command=["echo", "x"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 126 and "lacks label app=tools" in resp.read_stderr()


def test_fault_knob_returns_503_then_success(kubeapi: KubeApiServer, core: client.CoreV1Api) -> None:
    r = httpx.post(
        f"{kubeapi.url}/_fake/faults",
        json={"match": {"method": "GET", "path_regex": "/configmaps$"}, "status": 503, "count": 2},
    )
    assert r.status_code == 201
    httpx.delete(f"{kubeapi.url}/_fake/stats")
    for _ in range(2):
        with pytest.raises(client.ApiException) as exc:
            core.list_namespaced_config_map("default")
        assert exc.value.status == 503 and json.loads(exc.value.body)["reason"] == "ServiceUnavailable"
    assert core.list_namespaced_config_map("default").items == []
    stats = httpx.get(f"{kubeapi.url}/_fake/stats").json()
    assert stats["by_verb"]["list"] == 3 and stats["by_code"]["503"] == 2
    assert stats["by_resource"]["list configmaps"] == 3
    assert httpx.delete(f"{kubeapi.url}/_fake/faults").json() == {"faults": []}


def test_state_persists_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "persist"
    first = KubeApiServer(state_dir=state)
    first.start()
    cfg = client.Configuration()
    cfg.host = first.url
    core = client.CoreV1Api(client.ApiClient(cfg))
    core.create_namespace({"metadata": {"name": "app"}})
    cm = core.create_namespaced_config_map("app", {"metadata": {"name": "keep"}, "data": {"k": "v"}})
    first.stop()
    second = KubeApiServer(state_dir=state)
    second.start()
    try:
        cfg.host = second.url
        core = client.CoreV1Api(client.ApiClient(cfg))
        again = core.read_namespaced_config_map("keep", "app")
        assert again.data == {"k": "v"} and again.metadata.uid == cm.metadata.uid
        newer = core.create_namespaced_config_map("app", {"metadata": {"name": "new"}})
        assert int(newer.metadata.resource_version) > int(cm.metadata.resource_version)
        assert second.store.try_get("customresourcedefinitions", None, f"{VR_PLURAL}.{VR_GROUP}")
    finally:
        second.stop()


def test_crd_created_at_runtime_appears_in_discovery(api: client.ApiClient, tmp_path: Path) -> None:
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(
        {
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {
                    "kind": "Widget",
                    "plural": "widgets",
                    "singular": "widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    dyn = DynamicClient(api, cache_file=str(tmp_path / "d2.json"))
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    made = widgets.create(body={"metadata": {"name": "w"}, "spec": {"size": 3}}, namespace="default")
    assert made.spec.size == 3 and made.metadata.generation == 1
    with pytest.raises(DynApiException) as exc:
        widgets.create(body={"metadata": {"name": "w2"}, "spec": {"size": "big"}}, namespace="default")
    assert exc.value.status == 422
    ext.delete_custom_resource_definition("widgets.example.com")
    r = httpx.get(f"{api.configuration.host}/apis/example.com/v1/namespaces/default/widgets")
    assert r.status_code == 404
