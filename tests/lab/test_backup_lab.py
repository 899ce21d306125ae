"""Backup of lab site A, restored into site B; no Secret value in plaintext anywhere.

The VolumeReplication is left out of the restore: site A's image is primary, and a VR asking for
``primary`` on site B would make B's controller promote its image. Everything this test creates
on site B is deleted at the end, so the seeded state (namespace and Secret only) is back.
"""

from __future__ import annotations

import base64
import configparser
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)

from drkit.adapters.kube import KubeCluster, kind_of
from drkit.config import load_config
from drkit.domain.models import KindRef, StandbyConfig
from drkit.domain.transforms import TransformContext, sanitize
from flows.backup import backup
from flows.restore import restore
from lab import seeds
from tests.lab.conftest import Lab
from tests.labhelpers import LAB_KEY_TEXT

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
SEEDED_ON_B = {"Namespace", "Secret"}


@pytest.fixture
def config(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> StandbyConfig:
    monkeypatch.setenv("STANDBY_BACKUP_KEY", KEY_TEXT)
    return load_config(lab.root / "standby.yaml")


@pytest.fixture
def site_b(lab: Lab, config: StandbyConfig) -> Iterator[KubeCluster]:
    cluster = lab.admin_cluster("site-b")
    yield cluster
    for kind in ("Nexus", "Ingress", "Service", "VolumeReplication", "PersistentVolumeClaim", "ConfigMap"):
        ref = next((k for k in config.app("nexus").backup.kinds if k.kind == kind), None)
        if ref is None:
            continue
        for obj in cluster.list(ref, seeds.NAMESPACE):
            if not (kind == "ConfigMap" and obj["metadata"]["name"] == "kube-root-ca.crt"):
                cluster.delete(ref, obj["metadata"]["name"], seeds.NAMESPACE)
    cluster.delete(KindRef(version="v1", kind="PersistentVolume"), seeds.PV_NAME)


def _secret_needles(lab: Lab) -> list[bytes]:
    secret = lab.admin_cluster("site-a").get(
        KindRef(version="v1", kind="Secret"), seeds.ADMIN_SECRET, seeds.NAMESPACE
    )
    encoded = secret["data"]["password"]
    plain = base64.b64decode(encoded)
    assert len(plain) >= 8
    return [plain, encoded.encode()]


def _bucket_bytes(config: StandbyConfig) -> dict[str, bytes]:
    s3 = config.site("site-a").s3
    creds = configparser.ConfigParser()
    creds.read(str(s3.credentials_file))
    section = creds[s3.profile]
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name=s3.region,
        aws_access_key_id=section["aws_access_key_id"],
        aws_secret_access_key=section["aws_secret_access_key"],
    )
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=s3.bucket, Key=item["Key"])["Body"].read()
    return out


def _run_texts(flow_run_id: Any) -> list[str]:
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return (
        [log.message for log in logs]
        + [str(a.data) + str(a.description) for a in arts]
        + [str(r.parameters) for r in runs]
    )


def test_backup_a_restore_b_same_objects_and_no_plaintext_secret(
    lab: Lab, prefect_harness: None, config: StandbyConfig, site_b: KubeCluster
) -> None:
    cfg = str(lab.root / "standby.yaml")
    state = backup(app="nexus", config=cfg, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["status"] == "complete" and result["objects"] == 9

    done = restore(
        app="nexus", target_site="site-b", config=cfg, exclude_kinds=["VolumeReplication"], bound_timeout=60
    )
    assert done["bound_pvcs"] == [f"{seeds.NAMESPACE}/{seeds.PVC_NAME}"]
    assert sorted(p.split()[0] for p in done["skipped"]) == sorted(SEEDED_ON_B)

    # Same objects after sanitisation (A's live objects vs B's restored ones).
    site_a = lab.admin_cluster("site-a")
    context = TransformContext(source_site="site-a", target_site="site-b")
    for label in done["created"]:
        kind, _, where = label.partition(" ")
        ns, _, name = where.rpartition("/")
        ref = next(
            k
            for k in (*config.app("nexus").backup.kinds, KindRef(version="v1", kind="PersistentVolume"))
            if k.kind == kind
        )
        a_obj = sanitize(site_a.get(ref, name, ns or None), context)
        b_obj = sanitize(site_b.get(ref, name, ns or None), context)
        assert kind_of(b_obj) == ref
        if kind == "Nexus":
            b_obj.get("metadata", {}).pop("finalizers", None)
            a_obj.get("metadata", {}).pop("finalizers", None)
        assert b_obj == a_obj, kind
    pv = site_b.get(KindRef(version="v1", kind="PersistentVolume"), seeds.PV_NAME)
    assert pv["spec"]["csi"]["volumeAttributes"]["imageName"] == seeds.IMAGE_NAME
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    pvc = site_b.get(KindRef(version="v1", kind="PersistentVolumeClaim"), seeds.PVC_NAME, seeds.NAMESPACE)
    assert pvc["status"]["phase"] == "Bound"

    # No Secret value in plaintext: not in any stored object, nor in Prefect's logs and artifacts.
    needles = _secret_needles(lab)
    stored = _bucket_bytes(config)
    assert any(k.endswith(".yaml.enc") for k in stored)
    for key, data in stored.items():
        for needle in needles:
            assert needle not in data, key
    texts = _run_texts(state.state_details.flow_run_id)
    assert any(result["run_id"] in t for t in texts)
    for text in texts:
        for needle in needles:
            assert needle.decode() not in text
        assert KEY_TEXT not in text
