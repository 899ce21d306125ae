"""Apiserver 5xx and timeouts: at every call of a backup (fakes), over HTTP (the fake apiserver's fault rules), and at every step of a relocate that calls it.

A backup whose listing fails writes no index and the re-run completes; an operation whose
apiserver fails at a step stops there, naming it, and its resume completes with one promote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from drkit.adapters.clock import SystemClock
from drkit.adapters.kube import KubeCluster
from drkit.adapters.objectstore import S3ObjectStore
from drkit.domain.errors import StandbyError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.backup import run_backup
from drkit.jobs.backup_runs import read_latest
from drkit.jobs.operations import execute, resume
from drkit.jobs.verify import require_ok, verify_backup
from drkit.testing.dr import fake_dr
from lab.kubeapi import KubeApiServer
from lab.kubeapi.faults import Fault
from tests.reliability.faults_world import app_and_site, app_over_http, relocate_steps
from tests.reliability.helpers import assert_one_line, failed_step
from tests.unit import test_operations as ops


def _calls_of_backup() -> int:
    dr = fake_dr()
    cluster = dr.clusters["site-a"]
    before = cluster.requests
    ops._backup(dr, "site-a")
    return cluster.requests - before


BACKUP_CALLS = _calls_of_backup()


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("k", range(BACKUP_CALLS))
def test_backup_apiserver_call_fails_then_rerun_completes(k: int, status: int) -> None:
    dr = fake_dr()
    cluster = dr.clusters["site-a"]
    b = dr.world.bundle("site-a")
    calls = [0]
    real_enter = cluster._enter

    def enter(verb: str, what: str) -> None:  # the k-th call of this backup fails
        calls[0] += 1
        if calls[0] == k + 1:
            cluster.fail_next(1, status)
        real_enter(verb, what)

    cluster._enter = enter  # type: ignore[method-assign]
    with pytest.raises(TransientError) as info:
        ops._backup(dr, "site-a")
    assert_one_line(str(info.value), "site-a", str(status))
    assert read_latest(dr.store, b.layout, "site-a", "nexus") is None
    cluster._enter = real_enter  # type: ignore[method-assign]
    ops._backup(dr, "site-a")
    assert require_ok(verify_backup(dr.store, b.site, "nexus", run_id=None, key=ops.KEY)).ok


# ------------------------------------------------------------------------ over HTTP: 5xx and hangs


@dataclass
class Http:
    api: KubeApiServer
    s3: str


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    with app_over_http(tmp_path_factory.mktemp("http-faults"), "http-faults-pw") as (api, s3):
        yield Http(api, s3)


HTTP_FAULTS = {
    "503 on every Secret list": Fault(method="GET", path_regex="/secrets", status=503),
    "500 on the first list of each kind": Fault(method="GET", verb="list", status=500, count=3),
    "a hung apiserver (5 s, client timeout 1 s)": Fault(
        method="GET", path_regex="/configmaps", delay_seconds=5
    ),
    "429 throttled": Fault(method="GET", path_regex="/services", status=429),
}


@pytest.mark.parametrize("fault", list(HTTP_FAULTS))
def test_backup_over_http_fails_cleanly_then_rerun_completes(http: Http, fault: str) -> None:
    app, site = app_and_site(http.s3, f"rel-{uuid.uuid4().hex[:8]}")
    cfg = client.Configuration()
    cfg.host = http.api.url
    kube = KubeCluster(client.ApiClient(cfg), site="site-a", timeout=1.0)
    store = S3ObjectStore.from_location(site.s3, site="site-a", max_attempts=1)
    layout = StoreLayout(site.s3.prefix)
    rule = HTTP_FAULTS[fault]
    http.api.add_fault(Fault(**{k: v for k, v in vars(rule).items() if k != "hits"}))
    try:
        with pytest.raises(StandbyError) as info:
            run_backup(app, site, kube, store, key=ops.KEY, clock=SystemClock())
    finally:
        http.api.clear_faults()
    assert isinstance(info.value, TransientError), info.value
    assert_one_line(str(info.value), "site-a")
    assert read_latest(store, layout, "site-a", "nexus") is None
    summary = run_backup(app, site, kube, store, key=ops.KEY, clock=SystemClock())
    assert summary.status == "complete" and summary.objects > 0
    assert require_ok(verify_backup(store, site, "nexus", run_id=None, key=ops.KEY)).ok


# --------------------------------------------------------------------- operations: every step


def _steps_of_relocate() -> tuple[list[str], list[str]]:
    """Every step of a relocate in order, and those that call an apiserver (observed on a clean run)."""
    dr = fake_dr()
    ops._backup(dr, "site-a")
    return relocate_steps(dr, lambda: sum(c.requests for c in dr.clusters.values()))


_ORDER, RELOCATE_STEPS = _steps_of_relocate()


@pytest.mark.parametrize("step", RELOCATE_STEPS)
def test_relocate_apiservers_time_out_at_step_then_resume_converges(step: str) -> None:
    dr = fake_dr()
    ops._backup(dr, "site-a")
    journal = ops._start(dr, "relocate", "site-b")

    def cut(_j: Journal, record: StepRecord) -> None:
        if record.name == step and record.outcome == "running":
            for cluster in dr.clusters.values():
                cluster.unreachable = True  # every call times out (the fake's ConnectTimeoutError)

    with pytest.raises(StandbyError) as info:
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=cut)
    line = assert_one_line(str(info.value), "apiserver unreachable")
    assert failed_step(line) == step, line  # stopped at the step that met the fault
    for cluster in dr.clusters.values():
        cluster.unreachable = False
    done = resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST)
    assert done.status == "completed", done.error
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]
