"""Authentication, RBAC and the audit log of the fake apiserver, over HTTP with the official client
and kubectl: tokens minted by the TokenRequest API, Roles and bindings stored as normal API objects,
and the real 401 and 403 ``Status`` bodies."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import rbac as lab_rbac
from lab.kubeapi import KubeApiServer, write_kubeconfig
from tests.apiservers import bearer_client, rbac_server

ADMIN = "admin-token-for-tests"
SA_USER = "system:serviceaccount:standby:standby"


CA: list[str] = []


def _api(url: str, token: str) -> client.ApiClient:
    return bearer_client(url, token, CA[-1])


@dataclass
class Cluster:
    server: KubeApiServer
    admin: client.ApiClient
    tmp: Path

    def mint(self, seconds: int = 3600) -> str:
        core = client.CoreV1Api(self.admin)
        spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        answer = core.create_namespaced_service_account_token(
            "standby", "standby", client.AuthenticationV1TokenRequest(spec=spec)
        )
        return str(answer.status.token)

    def kubectl(self, token: str, *args: str) -> subprocess.CompletedProcess[str]:
        cfg = write_kubeconfig(
            self.tmp / f"kc-{token[:12]}",
            {"c": self.server.url},
            "c",
            {"c": token},
            ca_file=self.server.ca_file,
        )
        argv = ["kubectl", "--kubeconfig", str(cfg), "--cache-dir", str(self.tmp / "kcache"), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.tmp / "state" / "audit.jsonl").read_text().splitlines()]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["tools"], "verbs": ["get"]},
    ]
    with rbac_server(tmp_path, ADMIN, ("app", "tools"), {"app": rules}) as (srv, admin):
        CA.append(str(srv.ca_file))
        yield Cluster(srv, admin, tmp_path)


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def test_a_role_lets_the_service_account_do_what_it_names(cluster: Cluster) -> None:
    core = client.CoreV1Api(_api(cluster.server.url, cluster.mint()))
    core.create_namespaced_config_map("app", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert [c.metadata.name for c in core.list_namespaced_config_map("app").items] == ["c"]
    assert core.read_namespaced_config_map("c", "app").data == {"a": "1"}


def test_403_has_the_real_status_body(cluster: Cluster) -> None:
    core = client.CoreV1Api(_api(cluster.server.url, cluster.mint()))
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("c", "app")
    assert err.value.status == 403
    assert _status(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'configmaps "c" is forbidden: User "{SA_USER}" cannot delete resource "configmaps" in API '
        'group "" in the namespace "app"',
        "reason": "Forbidden",
        "details": {"name": "c", "kind": "configmaps", "group": ""},
        "code": 403,
    }
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("standby")  # a Role grants nothing outside its namespace
    assert _status(err.value)["message"] == (
        f'configmaps is forbidden: User "{SA_USER}" cannot list resource "configmaps" in API group "" '
        'in the namespace "standby"'
    )
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(core.api_client).read_namespaced_deployment("web", "app")  # not in resourceNames
    assert err.value.status == 403 and 'deployments.apps "web" is forbidden' in _status(err.value)["message"]


@pytest.mark.parametrize("token", ["not-a-token", ""])
def test_401_has_the_real_status_body(cluster: Cluster, token: str) -> None:
    api = _api(cluster.server.url, token) if token else _api(cluster.server.url, "x")
    if not token:
        api.configuration.api_key = {"authorization": "garbage"}
        api.configuration.api_key_prefix = {"authorization": "Basic"}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_namespaced_config_map("app")
    assert err.value.status == 401
    assert _status(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_a_token_stops_working_when_it_expires_or_its_service_account_goes(cluster: Cluster) -> None:
    short = cluster.mint(seconds=1)
    core = client.CoreV1Api(_api(cluster.server.url, short))
    core.list_namespaced_config_map("app")
    deadline = time.monotonic() + 10
    while True:  # poll until the token has expired (no fixed sleep, no assertion on time)
        try:
            core.list_namespaced_config_map("app")
        except ApiException as exc:
            assert exc.status == 401
            break
        assert time.monotonic() < deadline, "a 1 s token still works after 10 s"
        time.sleep(0.2)
    token = cluster.mint()
    core = client.CoreV1Api(_api(cluster.server.url, token))
    core.list_namespaced_config_map("app")
    client.CoreV1Api(cluster.admin).delete_namespaced_service_account("standby", "standby")
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("app")
    assert err.value.status == 401


def test_anonymous_may_read_the_version_only(cluster: Cluster) -> None:
    import httpx

    assert httpx.get(f"{cluster.server.url}/version", verify=CA[-1]).status_code == 200
    denied = httpx.get(f"{cluster.server.url}/api", verify=CA[-1])
    assert denied.status_code == 403
    assert denied.json()["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


def test_exec_needs_create_on_pods_exec(cluster: Cluster) -> None:
    from kubernetes.stream import stream

    apps = client.AppsV1Api(cluster.admin)
    apps.create_namespaced_deployment("app", _deployment("tools"))
    core_admin = client.CoreV1Api(cluster.admin)
    deadline = time.monotonic() + 15
    while not [p for p in core_admin.list_namespaced_pod("app").items if p.status.phase == "Running"]:
        assert time.monotonic() < deadline, "the toolbox pod never ran"
        time.sleep(0.1)
    pod = core_admin.list_namespaced_pod("app").items[0].metadata.name
    core = client.CoreV1Api(_api(cluster.server.url, cluster.mint()))
    with pytest.raises(ApiException) as err:
        stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            "app",
            command=["echo", "hi"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
    reason = str(err.value.reason).replace("\\", "")
    assert "Handshake status 403" in reason
    assert (
        f'User "{SA_USER}" cannot create resource "pods/exec" in API group "" in the namespace "app"'
        in reason
    )
    rbac = client.RbacAuthorizationV1Api(cluster.admin)
    role = rbac.read_namespaced_role("standby", "app")
    role.rules.append(client.V1PolicyRule(api_groups=[""], resources=["pods/exec"], verbs=["create"]))
    rbac.replace_namespaced_role("standby", "app", role)
    out = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        "app",
        command=["echo", "hi"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out.strip() == "hi"


def test_any_authenticated_user_may_ask_what_it_may_do(cluster: Cluster, tmp_path: Path) -> None:
    """``SelfSubjectAccessReview``: ``kubectl auth can-i`` and Standby's ``can_i`` get the RBAC answer,
    and asking is itself allowed by the default ``system:basic-user`` role, never denied."""
    import httpx

    from drkit.adapters.kube import Access, KubeCluster

    token = cluster.mint()
    yes = cluster.kubectl(token, "auth", "can-i", "create", "configmaps", "-n", "app")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    no = cluster.kubectl(token, "auth", "can-i", "delete", "configmaps", "-n", "app")
    assert (no.returncode, no.stdout.strip()) == (1, "no"), no.stderr
    named = cluster.kubectl(token, "auth", "can-i", "get", "deployments.apps/tools", "-n", "app")
    assert named.stdout.strip() == "yes", named.stderr
    kube = KubeCluster(_api(cluster.server.url, token), site="site-x", cache_dir=tmp_path)
    allowed, reason = kube.can_i(Access("list", "", "pods", "app"))
    assert allowed and reason.startswith("RBAC: allowed by")
    assert kube.can_i(Access("list", "", "pods", "other")) == (False, "")
    assert kube.can_i(Access("get", "apps", "deployments", "app", "not-tools"))[0] is False
    reviews = [e for e in cluster.audit() if e["resource"] == "selfsubjectaccessreviews"]
    assert reviews and all(e["code"] == 201 and "system:basic-user" in e["by"] for e in reviews)
    url = f"{cluster.server.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    for who, code in ((token, 403), (ADMIN, 405)):  # reviews are only created: RBAC first, then the method
        got = httpx.get(url, headers={"Authorization": f"Bearer {who}"}, verify=CA[-1])
        assert got.status_code == code, got.text
    with pytest.raises(Exception, match="401"):
        KubeCluster(_api(cluster.server.url, "expired-or-wrong"), site="site-x", cache_dir=tmp_path).can_i(
            Access("list", "", "pods", "app")
        )


def test_kubectl_mints_tokens_applies_the_shipped_manifests_and_shows_the_403(cluster: Cluster) -> None:
    for ns in ("nexus-dr", "web-dr", "rook-ceph"):  # the apps' and the toolbox's namespaces exist first
        client.CoreV1Api(cluster.admin).create_namespace({"metadata": {"name": ns}})
    manifests = lab_rbac.MANIFESTS / "site-b"
    applied = cluster.kubectl(ADMIN, "apply", "-f", str(manifests))
    assert applied.returncode == 0, applied.stderr
    assert "role.rbac.authorization.k8s.io/standby-toolbox created" in applied.stdout
    again = cluster.kubectl(ADMIN, "apply", "-f", str(manifests))
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    made = cluster.kubectl(ADMIN, "-n", "standby", "create", "token", "standby")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    ok = cluster.kubectl(token, "-n", "nexus-dr", "get", "secrets", "-o", "name")
    assert ok.returncode == 0, ok.stderr
    refused = cluster.kubectl(token, "-n", "nexus-dr", "get", "deployments")
    assert refused.returncode != 0
    assert (
        f'Error from server (Forbidden): deployments.apps is forbidden: User "{SA_USER}" cannot list resource '
        '"deployments" in API group "apps" in the namespace "nexus-dr"'
    ) in refused.stderr
    bad = cluster.kubectl("expired-or-wrong", "get", "ns")
    assert bad.returncode != 0 and "Unauthorized" in bad.stderr


def test_every_request_is_audited(cluster: Cluster) -> None:
    core = client.CoreV1Api(_api(cluster.server.url, cluster.mint()))
    core.read_namespaced_config_map  # noqa: B018
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("nope", "app")
    with pytest.raises(ApiException):
        core.delete_namespaced_config_map("nope", "app")
    with pytest.raises(ApiException):
        client.CoreV1Api(_api(cluster.server.url, "wrong")).list_namespace()
    entries = [e for e in cluster.audit() if e["resource"] == "configmaps" or e["code"] == 401]
    got = [
        (e["user"], e["verb"], e["resource"], e["namespace"], e["name"], e["code"], e.get("decision"))
        for e in entries
    ]
    assert got[-3:] == [
        (SA_USER, "get", "configmaps", "app", "nope", 404, "allow"),
        (SA_USER, "delete", "configmaps", "app", "nope", 403, "forbid"),
        ("system:anonymous", "list", "namespaces", "", "", 401, None),
    ]
    minted = [e for e in cluster.audit() if e["subresource"] == "token"]
    assert (
        minted
        and minted[0]["user"] == "lab-admin"
        and minted[0]["verb"] == "create"
        and minted[0]["code"] == 201
    )


def _deployment(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    }
