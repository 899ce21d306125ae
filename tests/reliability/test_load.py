"""Load: the sampler on 1,000 images in two pools, a backup of 10,000 objects over HTTP, four jobs at once, a drill refused during a failover.

Assertions are on correctness only; the timings recorded as figures are information.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from drkit.adapters.clock import SystemClock
from drkit.adapters.kube import KubeCluster
from drkit.adapters.objectstore import S3ObjectStore
from drkit.domain.blobs import open_blob
from drkit.domain.layout import StoreLayout
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.backup import run_backup
from drkit.jobs.backup_runs import read_index, resolve_run
from drkit.jobs.drill import prepare_drill, start_drill
from drkit.jobs.operations import execute, list_journals
from drkit.jobs.rpo import RpoRecords, run_sample, sample_site
from drkit.jobs.rpo_watch import run_watch
from drkit.jobs.verify import require_ok, validate_manifest, verify_backup
from drkit.testing.clock import FakeClock
from drkit.testing.dr import fake_dr
from drkit.testing.rbd import FakeRbdMirror
from lab.kubeapi import KubeApiServer
from tests.reliability.faults_world import app_and_site, app_over_http
from tests.unit import test_drill as drills
from tests.unit import test_operations as ops

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
Figure = Callable[[str, object], None]


def _timed(record_property: Figure, what: str, started: float) -> None:
    record_property("figure", f"{what}: {time.monotonic() - started:.1f} s")


def test_sampler_on_1000_images_in_two_pools(record_property: Figure) -> None:
    rbd = FakeRbdMirror(site="site-b", now=lambda: NOW)
    expected: dict[tuple[str, str], float] = {}
    for i in range(1000):
        pool = "replicapool" if i % 2 == 0 else "fastpool"
        lag = float(i % 300 + 1)
        rbd.add_image(
            pool, f"csi-vol-{i:04d}", local_snapshot_time=NOW - timedelta(seconds=lag), last_update=NOW
        )
        expected[(pool, f"csi-vol-{i:04d}")] = lag
    site = fake_dr().world.config.site("site-b")
    started = time.monotonic()
    samplings = sample_site(rbd, site, clock=FakeClock(NOW), pools=("replicapool", "fastpool"))
    _timed(record_property, "1,000 images sampled", started)
    assert all(s.valid for s in samplings) and len(samplings) == 2
    seen = {(s.pool, sample.image): sample for s in samplings for sample in s.samples}
    assert set(seen) == set(expected)
    for key, sample in seen.items():
        assert sample.local_snapshot_time is not None
        assert (NOW - sample.local_snapshot_time).total_seconds() == pytest.approx(expected[key], abs=1)


@pytest.fixture(scope="module")
def big_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeApiServer, str]]:
    with app_over_http(tmp_path_factory.mktemp("load"), "load-pw", tick_interval=1.0) as (api, s3):
        yield api, s3


@pytest.mark.timeout(600)  # 1.5 to 3 minutes on a loaded 2-core machine: moto takes each PUT over HTTP
def test_backup_of_10000_objects_over_http(
    big_cluster: tuple[KubeApiServer, str], record_property: Figure
) -> None:
    api, s3 = big_cluster
    app, site = app_and_site(s3, f"load-{uuid.uuid4().hex[:8]}")
    for i in range(10_000):
        api.store.create(
            "configmaps",
            {
                "metadata": {"name": f"load-{i:05d}", "namespace": app.namespace},
                "data": {"i": str(i), "pad": "x" * (i % 200)},
            },
        )
    cfg = client.Configuration()
    cfg.host = api.url
    kube = KubeCluster(client.ApiClient(cfg), site="site-a", timeout=60)
    store = S3ObjectStore.from_location(site.s3, site="site-a")
    started = time.monotonic()
    summary = run_backup(app, site, kube, store, key=ops.KEY, clock=SystemClock())
    _timed(record_property, f"backup of {summary.objects} objects (fake apiserver + moto over HTTP)", started)
    assert summary.status == "complete" and summary.objects >= 10_000
    assert store.exists(summary.index_key)
    # A full verify re-reads and schema-checks every object one GET at a time (about 9 minutes
    # here): the index is checked whole and every 50th object opened and validated as verify does.
    started = time.monotonic()
    layout = StoreLayout(site.s3.prefix)
    index = read_index(
        store,
        layout,
        site.name,
        app.name,
        resolve_run(store, layout, site.name, app.name, summary.run_id),
        key=ops.KEY,
    )
    assert len(index.objects) == summary.objects
    assert len({e.path for e in index.objects}) == summary.objects
    assert sum(1 for e in index.objects if e.kind == "ConfigMap" and e.name.startswith("load-")) == 10_000
    sample = index.objects[::50]
    for entry in sample:
        manifest = open_blob(entry, store.get(entry.key), ops.KEY)
        assert validate_manifest(manifest, entry) is None, entry.path
    _timed(
        record_property,
        f"index of {len(index.objects)} entries read, {len(sample)} objects opened and checked",
        started,
    )


def test_backup_sampler_watcher_and_drill_at_once_lose_nothing(record_property: Figure) -> None:
    dr = drills._ready()
    rbds = {s: dr.mirror.site(s) for s in ("site-a", "site-b")}
    records = RpoRecords(
        {s: dr.world.bundle(s).store for s in rbds}, {s: dr.world.bundle(s).layout for s in rbds}
    )
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def job(name: str, fn: Callable[[], Any]) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = fn()
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

        return threading.Thread(target=run, name=name)

    def backups() -> list[Any]:  # with the drill's key: the drill restores from the newest backup
        b = dr.world.bundle("site-a")
        app = dr.world.config.app("nexus")
        return [
            run_backup(app, b.site, b.cluster, b.store, key=drills.KEY, clock=dr.clock).run_id
            for _ in range(3)
        ]

    def samples() -> list[Any]:
        return [run_sample(dr.world.config, rbds, clock=SystemClock(), records=records) for _ in range(5)]

    def watch() -> Any:
        return run_watch(
            dr.world.config,
            rbds,
            records=records,
            clock=SystemClock(),
            duration=timedelta(seconds=1.5),
            every=timedelta(seconds=0.1),
            busy_every=timedelta(seconds=0.1),
        )

    def drill() -> Any:
        return drills._drill(dr, mode="isolated")

    threads = [job("backup", backups), job("sampler", samples), job("watcher", watch), job("drill", drill)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    _timed(record_property, "backup x3, sampler x5, watcher 1.5 s and a drill at once", started)
    assert not errors, errors
    drill = results["drill"]
    assert drill.report.passed and not drill.store_error, (drill.report.failed_step, drill.journal.error)
    b = dr.world.bundle("site-a")
    for run_id in results["backup"]:
        assert require_ok(verify_backup(dr.store, b.site, "nexus", run_id=run_id, key=drills.KEY)).ok
    keys = [k for run in results["sampler"] for k in run.keys]
    assert len(keys) == len(set(keys)) and all(dr.store.exists(k) for k in keys)
    assert all(dr.store.exists(k) for k in results["watcher"].keys) and results["watcher"].unwritten_rows == 0
    frame = records.read(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1))
    assert len(frame) > 0
    assert drills._isolated_clean(dr)


def test_a_drill_is_refused_while_a_failover_runs() -> None:
    dr = ops._scenario("failover")
    journal = ops._begin(dr, "failover")
    refusals: list[Journal] = []

    def try_a_drill(_j: Journal, record: StepRecord) -> None:
        if record.outcome == "done" and not refusals:
            prepared = prepare_drill(dr.world, "nexus", "isolated")
            refusals.append(start_drill(dr.world, prepared))

    done = execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=try_a_drill)
    assert done.status == "completed"
    (refused,) = refusals
    assert refused.status == "refused"
    assert journal.op_id in (refused.error or "") or "operation" in (refused.error or "").lower(), (
        refused.error
    )
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]  # the failover was not disturbed
    drills_run = [j for j in list_journals(dr.world, "nexus") if j.kind == "drill"]
    assert [j.status for j in drills_run] == ["refused"]
