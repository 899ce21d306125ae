"""In-process fake kube-apiservers (lab/kubeapi) set up for tests.

:func:`seeded_sites`: two sites seeded like the lab's, for the flow tests. :func:`primary_site`: site
A alone, seeded the same way, for the fault and load tests. :func:`rbac_server`: one TLS apiserver
with an admin token and the ``standby`` ServiceAccount bound to Roles, for the authentication and
access-error contract tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client

from drkit.adapters.kube import KubeCluster
from lab import seeds
from lab.kubeapi import KubeApiServer, allowlist_handler, write_kubeconfig


def kube_cluster(srv: KubeApiServer, site: str, tmp: Path) -> KubeCluster:
    """The real adapter over ``srv``, without authentication."""
    cfg = client.Configuration()
    cfg.host = srv.url
    return KubeCluster(client.ApiClient(cfg), site=site, cache_dir=tmp)


@contextlib.contextmanager
def primary_site(tmp: Path, password: str, *, tick_interval: float = 0.2) -> Iterator[KubeApiServer]:
    """Site A started and seeded like the lab's (the common objects and the app); stopped on exit."""
    srv = KubeApiServer(tick_interval=tick_interval)
    srv.start()
    try:
        kube = kube_cluster(srv, "site-a", tmp)
        for obj in [*seeds.common(password), *seeds.primary_app("http://nexus.lab.local")]:
            kube.create(obj)
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def seeded_sites(tmp: Path, password: str) -> Iterator[tuple[KubeApiServer, KubeApiServer, Path]]:
    """Sites A and B started and seeded, with the kubeconfig naming them; stopped on exit."""
    with primary_site(tmp, password) as a:
        b = KubeApiServer(tick_interval=0.2)
        b.start()
        try:
            kube_b = kube_cluster(b, "site-b", tmp)
            for obj in seeds.common(password):
                kube_b.create(obj)
            yield a, b, write_kubeconfig(tmp / "kubeconfig", {"site-a": a.url, "site-b": b.url}, "site-a")
        finally:
            b.stop()


def bearer_client(url: str, token: str, ca_file: str | Path) -> client.ApiClient:
    """The official client over HTTPS to ``url`` with a bearer ``token``."""
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = url, str(ca_file)
    cfg.api_key, cfg.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@contextlib.contextmanager
def rbac_server(
    tmp: Path, admin_token: str, exec_label: tuple[str, str], roles: dict[str, list[dict[str, Any]]]
) -> Iterator[tuple[KubeApiServer, client.ApiClient]]:
    """A TLS apiserver (kubectl sends a token only over TLS) and its admin client; stopped on exit.

    Namespace ``standby`` holds the ServiceAccount ``standby``; each namespace of ``roles`` gets a
    Role ``standby`` with those rules, bound to it. Exec runs ``echo`` in pods carrying the label
    ``exec_label`` (key, value).
    """
    srv = KubeApiServer(
        state_dir=tmp / "state",
        tick_interval=0.2,
        admin_token=admin_token,
        tls=True,
        exec_handler=allowlist_handler({"echo"}, {}, exec_label),
    )
    srv.start()
    try:
        admin = bearer_client(srv.url, admin_token, srv.ca_file)
        core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
        for ns in ("standby", *roles):
            core.create_namespace({"metadata": {"name": ns}})
        core.create_namespaced_service_account("standby", {"metadata": {"name": "standby"}})
        subjects = [{"kind": "ServiceAccount", "name": "standby", "namespace": "standby"}]
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "standby"}
        for ns, rules in roles.items():
            rbac.create_namespaced_role(ns, {"metadata": {"name": "standby"}, "rules": rules})
            rbac.create_namespaced_role_binding(
                ns, {"metadata": {"name": "standby"}, "roleRef": ref, "subjects": subjects}
            )
        yield srv, admin
    finally:
        srv.stop()
