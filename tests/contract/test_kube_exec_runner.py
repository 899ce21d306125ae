"""The toolbox runner's failures, against the project's fake apiserver (no Ceph needed).

The happy path (rbd through ``rook-ceph-tools``) runs in the lab contract suite
(``test_rbd_mirror.py``, ``toolbox``); here: what an operator sees when the toolbox or the
apiserver is missing. Each is a Standby error naming the site, never a raw client exception.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from drkit.adapters.kube_exec import KubeExecRunner
from drkit.domain.errors import NotFound, TransientError
from lab.kubeapi import KubeApiServer


def _runner(host: str, timeout: float = 2.0) -> KubeExecRunner:
    cfg = client.Configuration()
    cfg.host = host
    return KubeExecRunner(client.ApiClient(cfg), "rook-ceph/rook-ceph-tools", site="site-x", timeout=timeout)


def test_no_toolbox_deployment_is_not_found_with_the_next_action(kubeapi: KubeApiServer) -> None:
    with pytest.raises(NotFound) as err:
        _runner(kubeapi.url).run(["rbd", "ls"], description="list images")
    text = str(err.value)
    assert "deployment rook-ceph/rook-ceph-tools on site-x: 404" in text and "deploy Rook's toolbox" in text


def test_an_unreachable_apiserver_is_a_transient_error_naming_the_site() -> None:
    with pytest.raises(TransientError) as err:
        _runner("http://127.0.0.1:9", timeout=1.0).run(["rbd", "ls"], description="list images")
    assert "on site-x: apiserver unreachable" in str(err.value)


def test_a_hung_apiserver_is_a_timeout_not_a_hang(kubeapi: KubeApiServer) -> None:
    kubeapi.add_fault({"match": {"path_regex": "^/apis/apps/"}, "delay_seconds": 5})
    with pytest.raises(TransientError, match="site-x"):
        _runner(kubeapi.url, timeout=1.0).run(["rbd", "ls"], description="list images")


def test_a_named_toolbox_pod_that_is_missing_is_not_found_and_nothing_is_listed(
    kubeapi: KubeApiServer,
) -> None:
    cfg = client.Configuration()
    cfg.host = kubeapi.url
    runner = KubeExecRunner(
        client.ApiClient(cfg), "rook-ceph/pod/standby-tools-0", site="site-x", timeout=2.0
    )
    kubeapi.stats.reset()
    with pytest.raises(NotFound) as err:
        runner.run(["rbd", "ls"], description="list images")
    assert "toolbox pod rook-ceph/standby-tools-0 on site-x: 404" in str(err.value)
    assert kubeapi.stats.snapshot()["by_verb"] == {"get": 1}  # one get of that pod: no list, no Deployment


@pytest.mark.parametrize(
    "text", ["rook-ceph", "rook-ceph/", "rook-ceph/deploy/x", "rook-ceph/pod/", "a/b/c/d"]
)
def test_a_toolbox_setting_of_another_shape_is_refused(text: str) -> None:
    from drkit.domain.models import toolbox_target

    with pytest.raises(ValueError, match="namespace/pod/name"):
        toolbox_target(text)
