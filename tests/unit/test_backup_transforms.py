"""Table-driven tests of the manifest transforms."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from drkit.domain.restore_spec import ObjectSelector, StorageClassField
from drkit.domain.transforms import (
    PvClaimRef,
    PvRetain,
    RewriteStorageClass,
    ServiceClusterIp,
    StripBindAnnotations,
    StripOwnerReferences,
    StripServerFields,
    Transform,
    TransformContext,
    normalize,
    restore_transforms,
    sanitize,
    storage_class_map,
)

CTX = TransformContext(source_site="site-a", target_site="site-b", storage_classes={"ceph-a": "ceph-b"})


def _pv(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "pv-1",
            "uid": "u",
            "annotations": {
                "pv.kubernetes.io/bound-by-controller": "yes",
                "pv.kubernetes.io/provisioned-by": "rbd",
            },
        },
        "spec": {
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": "ns",
                "name": "c",
                "uid": "x",
                "resourceVersion": "9",
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "ceph-a",
            "csi": {"volumeAttributes": {"imageName": "csi-vol-1", "pool": "p"}, "volumeHandle": "h"},
            **spec,
        },
        "status": {"phase": "Bound"},
    }


def _svc(cluster_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [{"port": 80}],
            "healthCheckNodePort": 3,
        },
    }


STEPS: list[tuple[Transform, str, bool]] = [
    (StripServerFields(), "ConfigMap", True),
    (StripOwnerReferences(), "Service", True),
    (StripBindAnnotations(), "PersistentVolumeClaim", True),
    (StripBindAnnotations(), "Secret", False),
    (PvClaimRef(), "PersistentVolume", True),
    (PvClaimRef(), "PersistentVolumeClaim", False),
    (PvRetain(), "PersistentVolume", True),
    (PvRetain(), "Service", False),
    (RewriteStorageClass({"a": "b"}), "PersistentVolumeClaim", True),
    (RewriteStorageClass({"a": "b"}), "StatefulSet", True),
    (RewriteStorageClass({"a": "b"}), "Nexus", False),
    (RewriteStorageClass({}), "PersistentVolume", False),
    (RewriteStorageClass({"a": "b"}), "Secret", False),
    (ServiceClusterIp(), "Service", True),
    (ServiceClusterIp(), "Ingress", False),
]


@pytest.mark.parametrize(("step", "kind", "expected"), STEPS, ids=lambda v: getattr(v, "name", str(v)))
def test_applies_to(step: Transform, kind: str, expected: bool) -> None:
    assert step.applies_to(kind) is expected


@pytest.mark.parametrize("step", restore_transforms(CTX), ids=lambda s: s.name)
def test_no_step_mutates_its_input(step: Transform) -> None:
    for obj in (_pv(), _svc("10.0.0.1")):
        before = copy.deepcopy(obj)
        out = step.apply(obj)
        assert obj == before
        assert out is not obj


def test_strip_server_fields() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "labels": {"a": "b"},
            "uid": "u",
            "resourceVersion": "1",
            "managedFields": [{}],
            "creationTimestamp": "t",
            "generation": 3,
            "selfLink": "/x",
            "deletionTimestamp": "t",
            "deletionGracePeriodSeconds": 30,
            "ownerReferences": [{"uid": "o"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
        },
        "data": {"k": "v"},
        "status": {"x": 1},
    }
    out = StripServerFields().apply(obj)
    assert out == {
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "labels": {"a": "b"},
            "ownerReferences": [{"uid": "o"}],
            "annotations": {"keep": "me"},
        },
        "data": {"k": "v"},
    }


def test_empty_annotations_are_removed() -> None:
    obj = {
        "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    }
    assert StripServerFields().apply(obj) == {"kind": "Secret", "metadata": {"name": "s"}}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("remove", None),
        ("keep-name", {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c"}),
    ],
)
def test_pv_claim_ref_modes(mode: Any, expected: dict[str, str] | None) -> None:
    out = PvClaimRef(mode).apply(_pv())
    assert out["spec"].get("claimRef") == expected


def test_pv_without_claim_ref_is_unchanged() -> None:
    pv = _pv()
    del pv["spec"]["claimRef"]
    assert PvClaimRef().apply(pv) == pv


def test_sanitize_pv() -> None:
    out = sanitize(_pv(), CTX)
    assert out["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert out["spec"]["storageClassName"] == "ceph-b"
    assert out["spec"]["csi"] == {
        "volumeAttributes": {"imageName": "csi-vol-1", "pool": "p"},
        "volumeHandle": "h",
    }
    assert "claimRef" not in out["spec"] and "status" not in out
    assert out["metadata"] == {"name": "pv-1", "annotations": {"pv.kubernetes.io/provisioned-by": "rbd"}}


def test_sanitize_pvc_drops_binding_annotations_keeps_volume_name() -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "rbd",
                "volume.kubernetes.io/selected-node": "n1",
                "team": "infra",
            },
        },
        "spec": {"volumeName": "pv-1", "storageClassName": "other"},
    }
    out = sanitize(pvc, CTX)
    assert out["metadata"]["annotations"] == {"team": "infra"}
    assert out["spec"] == {"volumeName": "pv-1", "storageClassName": "other"}


@pytest.mark.parametrize(("cluster_ip", "kept"), [("10.96.0.7", False), ("None", True)])
def test_service_cluster_ip(cluster_ip: str, kept: bool) -> None:
    out = ServiceClusterIp().apply(_svc(cluster_ip))
    assert ("clusterIP" in out["spec"]) is kept
    assert ("clusterIPs" in out["spec"]) is kept
    assert "healthCheckNodePort" not in out["spec"]
    assert out["spec"]["ports"] == [{"port": 80}]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [("a", "b", {"a": "b"}), ("a", "a", {}), (None, "b", {}), ("a", None, {})],
)
def test_storage_class_map(source: str | None, target: str | None, expected: dict[str, str]) -> None:
    assert storage_class_map(source, target) == expected


def test_storage_class_rewrite_of_a_custom_field_and_missing_paths() -> None:
    fields = tuple(
        StorageClassField(select=ObjectSelector(kind="Thing"), path=path)
        for path in ("spec.deep.sc", "spec.absent.sc")
    )
    step = RewriteStorageClass({"a": "b"}, fields)
    obj = {"kind": "Thing", "spec": {"deep": {"sc": "a"}}}
    assert step.apply(obj) == {"kind": "Thing", "spec": {"deep": {"sc": "b"}}}


def test_normalize_keeps_site_specific_fields_for_restore_time() -> None:
    out = normalize(_pv())
    assert out["spec"]["claimRef"]["uid"] == "x"
    assert out["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert "status" not in out and "uid" not in out["metadata"]


def test_sanitize_is_idempotent() -> None:
    for obj in (_pv(), _svc("10.0.0.1"), _svc("None")):
        once = sanitize(obj, CTX)
        assert sanitize(once, CTX) == once
