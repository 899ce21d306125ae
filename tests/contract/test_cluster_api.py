"""One ClusterApi contract suite, run on FakeCluster and on KubeCluster over a fake apiserver (HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from drkit.adapters.kube import Access, ClusterApi, KubeCluster
from drkit.domain.errors import Conflict, NotFound, TransientError
from drkit.domain.models import KindRef
from drkit.testing.kube import FakeCluster
from lab.kubeapi import KubeApiServer

CM = KindRef(version="v1", kind="ConfigMap")
NS = KindRef(version="v1", kind="Namespace")
PV = KindRef(version="v1", kind="PersistentVolume")
VR = KindRef(group="replication.storage.openshift.io", version="v1alpha1", kind="VolumeReplication")


@dataclass
class Subject:
    """A ClusterApi under test, and how to make its next calls fail with a 5xx."""

    cluster: ClusterApi
    fail_next: Callable[[int], None]


@pytest.fixture(params=["fake", "kube"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "fake":
        fake = FakeCluster(site="site-x")
        fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        yield Subject(fake, lambda n: fake.fail_next(n, 503))
        return
    with served(tmp_path) as (srv, kube):

        def fail(n: int) -> None:
            srv.add_fault({"match": {"path_regex": "^/api/v1/"}, "status": 503, "count": n})

        yield Subject(kube, fail)


@contextmanager
def served(tmp_path: Path, **options: Any) -> Iterator[tuple[KubeApiServer, KubeCluster]]:
    """A fake apiserver over HTTP and a :class:`KubeCluster` of site-x on it; stopped on exit."""
    srv = KubeApiServer(tick_interval=0.5)
    srv.start()
    try:
        cfg = client.Configuration()
        cfg.host = srv.url
        yield srv, KubeCluster(client.ApiClient(cfg), site="site-x", cache_dir=tmp_path, **options)
    finally:
        srv.stop()


def cm(name: str, ns: str = "default", **labels: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"k": name},
    }


def test_discover(subject: Subject) -> None:
    info = subject.cluster.discover(CM)
    assert (info.plural, info.namespaced) == ("configmaps", True)
    assert subject.cluster.discover(PV).namespaced is False
    assert subject.cluster.discover(VR).plural == "volumereplications"
    with pytest.raises(NotFound, match="site-x"):
        subject.cluster.discover(KindRef(group="example.org", version="v1", kind="Nothing"))


def test_list_paginates_and_selects(subject: Subject) -> None:
    c = subject.cluster
    for i in range(5):
        c.create(cm(f"cm-{i}", tier="web" if i % 2 else "db"))
    names = sorted(o["metadata"]["name"] for o in c.list(CM, "default", limit=2))
    assert names == [f"cm-{i}" for i in range(5)]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in c.list(CM, "default", limit=2))
    assert sorted(o["metadata"]["name"] for o in c.list(CM, "default", label_selector="tier=web")) == [
        "cm-1",
        "cm-3",
    ]
    assert c.list(CM, "default", label_selector="tier in (none)") == []


def test_get_create_replace_patch_delete(subject: Subject) -> None:
    c = subject.cluster
    created = c.create(cm("one"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert c.create(cm("dry"), dry_run=True)["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        c.get(CM, "dry", "default")
    got = c.get(CM, "one", "default")
    assert got["data"] == {"k": "one"}
    body = cm("one")
    body["data"] = {"k": "replaced"}
    assert c.replace(body)["data"] == {"k": "replaced"}
    patched = c.patch(CM, "one", "default", {"data": {"extra": "1"}})
    assert patched["data"] == {"k": "replaced", "extra": "1"}
    assert c.delete(CM, "one", "default") is True
    assert c.delete(CM, "one", "default") is False


def test_error_mapping(subject: Subject) -> None:
    c = subject.cluster
    c.create(cm("dup"))
    with pytest.raises(Conflict, match="dup"):
        c.create(cm("dup"))
    with pytest.raises(NotFound, match="missing"):
        c.get(CM, "missing", "default")
    stale = c.get(CM, "dup", "default")
    c.patch(CM, "dup", "default", {"data": {"k": "newer"}})
    with pytest.raises(Conflict):
        c.replace(stale)


def test_an_access_review_answers_for_the_caller(subject: Subject) -> None:
    allowed, _ = subject.cluster.can_i(Access("create", "", "configmaps", "default"))
    assert allowed  # the fake's default and an apiserver without authentication: everything


def test_5xx_is_transient(subject: Subject) -> None:
    c = subject.cluster
    c.list(CM, "default")  # discovery is warm
    subject.fail_next(1)
    with pytest.raises(TransientError, match="503"):
        c.list(CM, "default")
    assert c.list(CM, "default") == []


def test_a_hung_apiserver_is_a_timeout_not_a_hang(tmp_path: Path) -> None:
    """Only the real adapter can hang: a delayed answer becomes a TransientError within its timeout."""
    with served(tmp_path, timeout=1.0) as (srv, kube):
        kube.list(CM, "default")  # discovery is warm
        srv.add_fault({"match": {"path_regex": "^/api/v1/"}, "delay_seconds": 5})
        try:
            with pytest.raises(TransientError, match=r"unreachable|timed out|Timeout"):
                kube.list(CM, "default")
        finally:
            srv.clear_faults()


def _failures(c: ClusterApi) -> list[tuple[str, str]]:
    """The type and words of each error a 409, a 404, a stale replace and an unserved kind give on ``c``."""
    c.create(cm("dup"))
    stale = c.get(CM, "dup", "default")
    c.patch(CM, "dup", "default", {"data": {"k": "newer"}})
    cases: list[Callable[[], object]] = [
        lambda: c.create(cm("dup")),
        lambda: c.get(CM, "missing", "default"),
        lambda: c.create(cm("x", ns="nope")),
        lambda: c.replace(stale),
        lambda: c.discover(KindRef(group="example.org", version="v1", kind="Nothing")),
    ]
    said = []
    for case in cases:
        with pytest.raises((Conflict, NotFound)) as caught:
            case()
        said.append((type(caught.value).__name__, str(caught.value)))
    return said


def test_fake_and_real_fail_with_the_same_words(tmp_path: Path) -> None:
    """The fake raises what KubeCluster raises over HTTP: same types, messages and hints (shared builders)."""
    fake = FakeCluster(site="site-x")
    fake.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    with served(tmp_path) as (_, real):
        assert _failures(fake) == _failures(real)
