"""The fake kube-apiserver through real kubectl (the dispatcher picks kubectl 1.31 from /version)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.kubeapi import KubeApiServer, allowlist_handler, write_kubeconfig
from lab.kubeapi.testing import deployment, pv, pvc, wait_for

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


class Kubectl:
    """Runs kubectl against one kubeconfig."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def apply(
        self, *docs: dict[str, Any], extra: tuple[str, ...] = (), check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        path = self.workdir / "manifest.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        return self("apply", "-f", str(path), *extra, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    srv = KubeApiServer(state_dir=tmp_path_factory.mktemp("kubectl-state"), tick_interval=0.5)
    srv.set_exec_handler(allowlist_handler({"echo"}, {}, ("exec", "allowed")))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kubectl(server: KubeApiServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    work = tmp_path_factory.mktemp("kubectl")
    cfg = write_kubeconfig(work / "kubeconfig", {"site-a": server.url}, "site-a")
    return Kubectl(cfg, work)


def test_version_is_v131(kubectl: Kubectl) -> None:
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"].startswith("v1.31.")


def test_apply_create_then_reapply_uses_strategic_merge(kubectl: Kubectl, server: KubeApiServer) -> None:
    dep = deployment("web", replicas=1)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 80}, {"containerPort": 443}]
    assert "deployment.apps/web created" in kubectl.apply(dep).stdout
    container["env"] = [{"name": "B", "value": "2"}]
    container["ports"] = [{"containerPort": 443}]
    dep["spec"]["replicas"] = 2
    server.stats.reset()
    assert "deployment.apps/web configured" in kubectl.apply(dep).stdout
    assert server.stats.snapshot()["by_verb"].get("patch") == 1
    live = kubectl.json("deployment", "web")
    c = live["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "B", "value": "2"}]
    assert [p["containerPort"] for p in c["ports"]] == [443]
    assert live["spec"]["replicas"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    wait_for(
        lambda: kubectl.json("deployment", "web").get("status", {}).get("readyReplicas") == 2,
        what="2 ready replicas",
    )


def test_get_table_output(kubectl: Kubectl) -> None:
    kubectl.apply(
        pv("pv-t", "h-t"), {**pvc("claim-t", "pv-t"), "metadata": {"name": "claim-t", "namespace": "default"}}
    )
    kubectl("wait", "--for=jsonpath={.status.phase}=Bound", "pvc/claim-t", "--timeout=20s")
    lines = kubectl("get", "pvc", "claim-t").stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATUS", "VOLUME", "CAPACITY"]
    assert lines[1].split()[:4] == ["claim-t", "Bound", "pv-t", "1Gi"]
    pv_line = kubectl("get", "pv", "pv-t", "--no-headers").stdout.split()
    assert pv_line[:6] == ["pv-t", "1Gi", "RWO", "Retain", "Bound", "default/claim-t"]
    ns = kubectl("get", "ns").stdout
    assert "kube-system" in ns and "Active" in ns


def test_apply_custom_resource_uses_merge_patch_and_server_side_apply(
    kubectl: Kubectl, server: KubeApiServer
) -> None:
    vr = {
        "apiVersion": "replication.storage.openshift.io/v1alpha1",
        "kind": "VolumeReplication",
        "metadata": {"name": "vr1", "namespace": "default"},
        "spec": {
            "volumeReplicationClass": "rbd-vrc",
            "replicationState": "primary",
            "dataSource": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": "data"},
        },
    }
    kubectl.apply(vr)
    vr["spec"]["replicationState"] = "secondary"
    assert "configured" in kubectl.apply(vr).stdout
    assert kubectl.json("vr", "vr1")["spec"]["replicationState"] == "secondary"
    vr["spec"]["dataSource"]["name"] = "other"
    bad = kubectl.apply(vr, check=False)
    assert bad.returncode != 0 and "field is immutable" in bad.stderr
    table = kubectl("get", "volumereplications").stdout
    assert "DESIREDSTATE" in table and "secondary" in table
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": "default"},
        "data": {"a": "1"},
    }
    assert "serverside-applied" in kubectl.apply(cm, extra=("--server-side",)).stdout
    cm["data"]["b"] = "2"
    kubectl.apply(cm, extra=("--server-side", "--field-manager", "tests"))
    assert kubectl.json("configmap", "ssa")["data"] == {"a": "1", "b": "2"}


def test_patch_merge_and_json(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "p", "--from-literal=a=1")
    kubectl("patch", "configmap", "p", "--type", "merge", "-p", '{"data":{"b":"2"}}')
    kubectl("patch", "configmap", "p", "--type", "json", "-p", '[{"op":"remove","path":"/data/a"}]')
    assert kubectl.json("configmap", "p")["data"] == {"b": "2"}
    bad = kubectl(
        "patch", "configmap", "p", "--type", "json", "-p", '[{"op":"remove","path":"/data/zz"}]', check=False
    )
    assert bad.returncode != 0


def test_unknown_field_fails_with_clear_error(kubectl: Kubectl) -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bad", "namespace": "default"},
        "dataa": {"a": "1"},
    }
    proc = kubectl.apply(bad, check=False)
    assert proc.returncode != 0
    assert 'unknown field "dataa"' in proc.stderr
    assert kubectl("get", "configmap", "bad", check=False).returncode != 0


def test_scale_wait_exec_and_delete(kubectl: Kubectl, server: KubeApiServer) -> None:
    dep = deployment("web2", replicas=1)
    dep["spec"]["template"]["metadata"]["labels"]["exec"] = "allowed"
    kubectl.apply(dep)
    kubectl("scale", "deployment/web2", "--replicas=2")
    kubectl("wait", "--for=condition=Available", "deployment/web2", "--timeout=20s")
    wait_for(
        lambda: kubectl.json("deployment", "web2").get("status", {}).get("readyReplicas") == 2,
        what="2 ready replicas",
    )
    out = kubectl("exec", "deploy/web2", "--", "echo", "hello", "from", "exec")
    assert out.stdout == "hello from exec\n"
    refused = kubectl("exec", "deploy/web2", "--", "cat", "/etc/hostname", check=False)
    assert refused.returncode == 126 and "not allowed" in refused.stderr
    assert "deleted" in kubectl("delete", "deployment", "web2").stdout
    assert kubectl("get", "deployment", "web2", check=False).returncode != 0
    assert kubectl("get", "pods", "-l", "app=web2", "-o", "name").stdout == ""
    kubectl("create", "configmap", "gone")
    assert 'configmap "gone" deleted' in kubectl("delete", "configmap", "gone", "--wait=true").stdout
    unlabelled = kubectl("exec", "deploy/web", "--", "echo", "x", check=False)
    assert unlabelled.returncode == 126 and "lacks label exec=allowed" in unlabelled.stderr
