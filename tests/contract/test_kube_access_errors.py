"""What Standby says when a site's apiserver answers 403 or 401, over HTTPS with a ServiceAccount token
minted by the fake apiserver: one line naming the verb, the resource, the site and the rule to add (or,
for 401, that the token is expired or wrong and how to mint another), never retried."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from prefect.states import Failed

from drkit.adapters.kube import KubeCluster
from drkit.adapters.kube_exec import KubeExecRunner
from drkit.domain.errors import AccessDenied, PreconditionFailed, TransientError, is_retryable
from drkit.domain.models import KindRef, KubeAccess
from lab.kubeapi import KubeApiServer, write_kubeconfig
from tasks.retrying import retry_transient
from tests.apiservers import rbac_server

ADMIN = "admin-token-for-access-tests"
SECRET = KindRef(version="v1", kind="Secret")
CONFIGMAP = KindRef(version="v1", kind="ConfigMap")
PV = KindRef(version="v1", kind="PersistentVolume")


@dataclass
class Site:
    server: KubeApiServer
    kubeconfig: Path

    def cluster(self) -> KubeCluster:
        return KubeCluster.from_access(
            KubeAccess(kubeconfig=self.kubeconfig, context="site-x"), site="site-x"
        )

    def forbidden_count(self) -> int:
        return int(self.server.stats.snapshot()["by_code"].get("403", 0))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    rules = {
        "app": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        "rook-ceph": [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": ["rook-ceph-tools"],
                "verbs": ["get"],
            },
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        ],
    }
    with rbac_server(tmp_path, ADMIN, ("app", "rook-ceph-tools"), rules) as (srv, admin):
        core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
        apps.create_namespaced_deployment(
            "rook-ceph",
            {
                "metadata": {"name": "rook-ceph-tools", "labels": {"app": "rook-ceph-tools"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "rook-ceph-tools"}},
                    "template": {
                        "metadata": {"labels": {"app": "rook-ceph-tools"}},
                        "spec": {"containers": [{"name": "tools", "image": "rook/ceph"}]},
                    },
                },
            },
        )
        token = core.create_namespaced_service_account_token(
            "standby",
            "standby",
            client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
        ).status.token
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", {"site-x": srv.url}, "site-x", {"site-x": token}, ca_file=srv.ca_file
        )
        yield Site(srv, kubeconfig)


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def _not_retried(error: BaseException) -> None:
    assert isinstance(error, PreconditionFailed) and not is_retryable(error)
    assert retry_transient(None, None, Failed(data=error)) is False  # type: ignore[arg-type]


def test_a_missing_namespaced_permission_names_the_rule_to_add(site: Site) -> None:
    cluster = site.cluster()
    assert cluster.list(CONFIGMAP, "app") == []  # what the Role grants works
    before = site.forbidden_count()
    with pytest.raises(AccessDenied) as err:
        cluster.list(SECRET, "app")
    text = _one_line(err.value)
    assert text == (
        "list v1/Secret in app on site-x: 403 Forbidden: system:serviceaccount:standby:standby may not list secrets "
        'in namespace app (next: add to the standby Role in namespace app in site-x: apiGroups [""] '
        'resources ["secrets"] verbs ["list"])'
    )
    assert err.value.code == 403 and err.value.rule == 'apiGroups [""] resources ["secrets"] verbs ["list"]'
    assert site.forbidden_count() == before + 1  # asked once: the adapter does not retry
    _not_retried(err.value)


def test_a_missing_cluster_scoped_permission_names_the_cluster_role(site: Site) -> None:
    with pytest.raises(AccessDenied) as err:
        site.cluster().delete(PV, "pv-1")
    text = _one_line(err.value)
    assert "delete PersistentVolume pv-1 on site-x: 403 Forbidden" in text
    assert (
        'add to the standby ClusterRole in site-x: apiGroups [""] resources ["persistentvolumes"] verbs ["delete"]'
        in text
    )
    _not_retried(err.value)


def test_exec_without_pods_exec_names_the_rule(site: Site) -> None:
    runner = KubeExecRunner(site.cluster().api_client, "rook-ceph/rook-ceph-tools", site="site-x", timeout=5)
    deadline = time.monotonic() + 15
    while True:  # the toolbox pod starts a moment after its Deployment
        try:
            runner.run(["echo", "hi"], description="echo in the toolbox")
        except AccessDenied as exc:
            error = exc
            break
        except TransientError as exc:  # "no running pod" while it starts
            assert time.monotonic() < deadline, f"toolbox never became exec-able: {exc}"
            time.sleep(0.2)
    text = _one_line(error)
    assert "exec into rook-ceph/rook-ceph-tools-" in text and "on site-x: 403 Forbidden" in text
    assert text.endswith(
        'add to the standby Role in namespace rook-ceph in site-x: apiGroups [""] resources ["pods/exec"] '
        'verbs ["create"])'
    )
    _not_retried(error)


def test_an_expired_or_wrong_token_is_a_401_saying_what_to_do(site: Site, tmp_path: Path) -> None:
    bad = write_kubeconfig(
        tmp_path / "bad",
        {"site-x": site.server.url},
        "site-x",
        {"site-x": "expired"},
        ca_file=site.server.ca_file,
    )
    cluster = KubeCluster.from_access(KubeAccess(kubeconfig=bad, context="site-x"), site="site-x")
    with pytest.raises(AccessDenied) as err:
        cluster.list(CONFIGMAP, "app")
    text = _one_line(err.value)
    assert err.value.code == 401
    assert "on site-x: 401 Unauthorized: the apiserver of site-x does not accept Standby's token" in text
    assert "expired" in text and "kubectl --context site-x -n standby create token standby" in text
    _not_retried(err.value)
