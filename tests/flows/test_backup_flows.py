"""The backup, verify-backup and restore flows under the Prefect test harness.

Real adapters over in-process servers: two fake kube-apiservers (site A seeded like the lab with both
of the example's apps, site B with the namespaces and the Secret) and a moto S3 server. Each test writes its own configuration
with its own S3 prefix, so the tests share the servers but not their backups.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from prefect import get_client
from prefect.artifacts import Artifact
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

import tasks.backup as backup_tasks
from drkit.domain.backup import BackupIndex, decode_index
from drkit.domain.crypto import MasterKey
from drkit.domain.layout import StoreLayout
from drkit.domain.models import KindRef
from flows.backup import backup
from flows.restore import restore
from flows.verify_backup import verify_backup
from lab import seeds
from lab.kubeapi import KubeApiServer
from lab.s3 import start_moto
from tests.apiservers import kube_cluster, seeded_sites

PASSWORD = "flow-test-admin-pw-7731"
KEY_TEXT = base64.b64encode(bytes(range(1, 33))).decode()
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    site_a: KubeApiServer
    site_b: KubeApiServer
    s3_url: str
    kubeconfig: Path

    def config(self, tmp: Path, prefix: str) -> str:
        data: dict[str, Any] = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
        for site in data["sites"]:
            site["kube"] = {"kubeconfig": str(self.kubeconfig), "context": site["name"]}
            site["ceph"] = {"mode": "local", "conf": "/nonexistent/ceph.conf"}
            site["s3"] = {
                "endpoint": self.s3_url,
                "bucket": "standby",
                "prefix": prefix,
                "access_key_id_env": "FLOW_TEST_S3_KEY",
                "secret_access_key_env": "FLOW_TEST_S3_SECRET",
            }
        path = tmp / "standby.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tmp = tmp_path_factory.mktemp("flows")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLOW_TEST_S3_KEY", "testing")
    mp.setenv("FLOW_TEST_S3_SECRET", "testing")
    mp.setenv("STANDBY_BACKUP_KEY", KEY_TEXT)
    moto, s3_url = start_moto("standby", access_key="testing", secret_key="testing")
    try:
        with seeded_sites(tmp, PASSWORD) as (a, b, kubeconfig):
            kube_a = kube_cluster(a, "site-a", tmp)
            for obj in seeds.web_app():  # the example's second app runs on site A, as in the lab
                kube_a.create(obj)
            yield Env(a, b, s3_url, kubeconfig)
    finally:
        moto.stop()
        mp.undo()


@pytest.fixture
def config(env: Env, tmp_path: Path) -> str:
    return env.config(tmp_path, f"t-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for t in (backup_tasks.back_up_app, backup_tasks.verify_run, backup_tasks.restore_app):
        monkeypatch.setattr(t, "retry_delay_seconds", 0)


@pytest.fixture(autouse=True)
def _clear_faults(env: Env) -> Iterator[None]:
    yield
    env.site_a.clear_faults()


def _events(name: str, resource: str, *, at_least: int = 1, timeout: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    flt = EventFilter(event=EventNameFilter(name=[name]), resource=EventResourceFilter(id=[resource]))
    while True:
        with get_client(sync_client=True) as c:
            found = list(c.read_events(filter=flt, limit=50).events)
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_backup_flow_completes_with_artifacts_and_event(config: str, env: Env) -> None:
    before = len(_events("standby.backup.completed", "standby.app.nexus", at_least=0, timeout=0))
    result = backup(app="nexus", config=config)
    assert result["status"] == "complete" and result["objects"] == 9 and result["objects_new"] == 9
    summary = Artifact.get("backup-nexus-site-a")
    assert (
        summary is not None and result["run_id"] in str(summary.data) and "| new | 9 |" in str(summary.data)
    )
    link = Artifact.get("backup-index-nexus-site-a")
    assert link is not None and f"{result['run_id']}/index.json" in str(link.data)
    progress = Artifact.get("backup-progress-nexus-site-a")
    assert progress is not None and float(progress.data) == 100.0  # type: ignore[arg-type]
    events = _events("standby.backup.completed", "standby.app.nexus", at_least=before + 1)
    assert any(e.payload.get("run_id") == result["run_id"] for e in events)
    for artifact in (summary, link):
        assert PASSWORD not in str(artifact.data)
        assert base64.b64encode(PASSWORD.encode()).decode() not in str(artifact.data)
    again = backup(app="nexus", config=config)
    assert again["objects_new"] == 0 and again["bytes_uploaded"] == 0
    assert verify_backup(app="nexus", config=config)["checked"] == 9  # through the re-run's pointer


def test_apiserver_5xx_is_retried_then_succeeds(config: str, env: Env, fast_retries: None) -> None:
    rule = env.site_a.add_fault(
        {"match": {"method": "GET", "path_regex": "/configmaps"}, "status": 503, "count": 2}
    )
    result = backup(app="nexus", config=config)
    assert result["status"] == "complete" and rule.hits == 2


def test_apiserver_5xx_forever_fails_clearly_after_retries(config: str, env: Env, fast_retries: None) -> None:
    before = len(_events("standby.backup.failed", "standby.app.nexus", at_least=0, timeout=0))
    rule = env.site_a.add_fault({"match": {"method": "GET", "path_regex": "/configmaps"}, "status": 503})
    state = backup(app="nexus", config=config, return_state=True)
    assert state.is_failed()
    assert "503" in str(state.message) and "site-a" in str(state.message)
    assert rule.hits == 1 + backup_tasks.RETRIES
    assert len(_events("standby.backup.failed", "standby.app.nexus", at_least=before + 1)) == before + 1


def test_no_key_fails_at_once_without_retry(
    config: str, env: Env, fast_retries: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STANDBY_BACKUP_KEY")
    rule = env.site_a.add_fault({"match": {"method": "GET", "path_regex": "/nothing-matches"}, "status": 503})
    state = backup(app="nexus", config=config, return_state=True)
    assert state.is_failed() and "no backup encryption key" in str(state.message)
    assert rule.hits == 0


def test_key_from_a_prefect_secret_block(config: str, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    monkeypatch.delenv("STANDBY_BACKUP_KEY")
    Secret(value=KEY_TEXT).save("standby-backup-key-test", overwrite=True)
    result = backup(app="nexus", config=config, key_source="secret:standby-backup-key-test")
    assert result["status"] == "complete"
    state = backup(app="nexus", config=config, key_source="secret:no-such-block", return_state=True)
    assert state.is_failed() and "no-such-block" in str(state.message)


def test_verify_flow_names_a_tampered_object(config: str, env: Env, fast_retries: None) -> None:
    result = backup(app="nexus", config=config)
    assert verify_backup(app="nexus", config=config, dry_run_site="site-b")["checked"] == 9
    prefix = yaml.safe_load(Path(config).read_text())["sites"][0]["s3"]["prefix"]
    s3 = boto3.client(
        "s3",
        endpoint_url=env.s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    layout = StoreLayout(prefix)
    key = layout.index_key("site-a", "nexus", result["run_id"])
    index = decode_index(
        s3.get_object(Bucket="standby", Key=key)["Body"].read(),
        key=key,
        layout=layout,
        secret=MasterKey.parse(KEY_TEXT),
    )
    assert isinstance(index, BackupIndex)
    victim = next(e for e in index.objects if e.kind == "Ingress")
    s3.put_object(Bucket="standby", Key=victim.key, Body=b"tampered")
    state = verify_backup(app="nexus", config=config, return_state=True)
    assert state.is_failed() and victim.path in str(state.message)
    report = Artifact.get("verify-backup-nexus-site-a")
    assert report is not None and victim.path in str(report.data)


def test_restore_flow_dry_run_then_real_into_site_b(config: str, env: Env) -> None:
    backup(app="nexus", config=config)
    dry = restore(app="nexus", target_site="site-b", config=config, dry_run=True, namespace="nexus-dr-drill")
    assert len(dry["created"]) == 9 and dry["bound_pvcs"] == []  # a new namespace: nothing exists there
    assert env.site_b.store.try_get("namespaces", None, "nexus-dr-drill") is None
    done = restore(
        app="nexus", target_site="site-b", config=config, namespace="nexus-dr-drill", bound_timeout=30
    )
    assert done["bound_pvcs"] == [f"nexus-dr-drill/{seeds.PVC_NAME}"]
    pv = env.site_b.store.get("persistentvolumes", None, seeds.PV_NAME)
    assert pv["spec"]["csi"]["volumeAttributes"]["imageName"] == seeds.IMAGE_NAME
    assert Artifact.get("restore-nexus-site-b") is not None
    kube_b = kube_cluster(env.site_b, "site-b", Path(config).parent)
    assert kube_b.delete(KindRef(version="v1", kind="PersistentVolume"), seeds.PV_NAME)


def test_restore_flow_refuses_a_namespace_not_the_apps_and_applies_nothing(config: str, env: Env) -> None:
    backup(app="nexus", config=config)
    state = restore(
        app="nexus", target_site="site-b", config=config, namespace="kube-system", return_state=True
    )
    message = str(state.message)
    assert state.is_failed() and "namespace kube-system" in message and "nexus-dr-drill" in message
    assert env.site_b.store.try_get("secrets", "kube-system", seeds.ADMIN_SECRET) is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("bucket", "no-such-bucket", "s3.bucket of site site-a"),
        ("endpoint", "http://127.0.0.1:9", "s3.endpoint of site site-a"),
    ],
)
def test_bad_bucket_or_endpoint_names_the_field_to_fix(
    config: str, env: Env, fast_retries: None, field: str, value: str, named: str
) -> None:
    data = yaml.safe_load(Path(config).read_text())
    data["sites"][0]["s3"][field] = value
    data["sites"][0]["s3"]["max_attempts"] = 1  # Prefect's retries still run; botocore's need not
    Path(config).write_text(yaml.safe_dump(data))
    state = backup(app="nexus", config=config, return_state=True)
    assert state.is_failed() and named in str(state.message)


def _child_runs(parent: Any) -> dict[str, Any]:
    """The subflow runs of the flow run ``parent`` (the state's run id), by name."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
        )
    return {r.name: r for r in runs}


def test_every_app_gets_its_own_backup_run_and_one_apps_failure_is_its_own(
    config: str, env: Env, fast_retries: None
) -> None:
    """No app given (the nightly deployment): the example's two apps, one run each. Site A refuses
    every read in web's namespace (403, never retried): web's run fails, nexus's completes and is
    kept, and the whole run fails naming web and why."""
    assert [a["name"] for a in yaml.safe_load(Path(config).read_text())["apps"]] == ["nexus", "web"]
    before = len(_events("standby.backup.failed", "standby.app.web", at_least=0, timeout=0))
    rule = env.site_a.add_fault(
        {"match": {"method": "GET", "path_regex": "/namespaces/web-dr/"}, "status": 403}
    )
    state = backup(config=config, return_state=True)
    assert state.is_failed() and rule.hits >= 1
    message = str(state.message)
    assert "backup of 2 app(s): 1 passed, 1 failed (web); web: " in message and "403" in message
    assert "nexus:" not in message and "app=web" in message
    children = _child_runs(state.state_details.flow_run_id)
    assert sorted(children) == ["backup of nexus", "backup of web"]
    assert children["backup of nexus"].state.is_completed() and children["backup of web"].state.is_failed()
    assert children["backup of nexus"].parameters["app"] == "nexus"
    table = Artifact.get("backup-apps")
    assert table is not None and "1 failed (web)" in str(table.description)
    rows = {r["app"]: r for r in json.loads(str(table.data))}
    assert rows["nexus"]["verdict"] == "passed" and "9 objects" in rows["nexus"]["detail"]
    assert rows["web"]["verdict"] == "failed" and "403" in rows["web"]["detail"]
    assert rows["web"]["flow run"] == str(children["backup of web"].id)
    # nexus's backup is complete and kept; its own artifacts are those of a single-app run
    assert verify_backup(app="nexus", config=config)["checked"] == 9
    assert Artifact.get("backup-nexus-site-a") is not None
    assert len(_events("standby.backup.failed", "standby.app.web", at_least=before + 1)) == before + 1
    assert not _events("standby.backup.failed", "standby.app.None", at_least=0, timeout=0)

    env.site_a.clear_faults()  # web's namespace readable again: the next run backs up both
    result = backup(app="", config=config)
    assert {app: o["verdict"] for app, o in result["apps"].items()} == {"nexus": "passed", "web": "passed"}
