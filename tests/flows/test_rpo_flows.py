"""``rpo-sample`` and ``rpo-report`` under the Prefect test harness, on fakes (rbd and S3).

The run's World builds its adapters through ``drkit.jobs.sites``; the tests point those builders at
fakes with ``monkeypatch`` (the seam the World uses), then assert final state, artifacts and events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.artifacts import Artifact
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from drkit.jobs import sites as site_adapters
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.rbd import FakeRbdMirror
from flows.automations import AUTOMATION_NAME, ensure_rpo_breach_automation
from flows.rpo_report import rpo_report
from flows.rpo_sample import rpo_sample
from flows.rpo_watch import rpo_watch
from tasks.events import BREACH_EVENT
from tests.rpo_config import rpo_config_doc

POOL = "replicapool"
IMAGE = "csi-vol-flow"


def _write_config(tmp_path: Path, target: str = "5m") -> Path:
    doc = rpo_config_doc(IMAGE, pool=POOL, target=target)
    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Fakes:
    def __init__(self) -> None:
        self.store = FakeObjectStore()
        self.a = FakeRbdMirror(site="site-a")
        self.b = FakeRbdMirror(site="site-b")

    def set_lag(self, seconds: float) -> None:
        now = datetime.now(UTC)
        point = now - timedelta(seconds=seconds)
        self.a.add_image(POOL, IMAGE, primary=True, peer_site="site-b", local_snapshot_time=point)
        self.b.add_image(POOL, IMAGE, peer_site="site-a", local_snapshot_time=point)
        self.a.snaps[(POOL, IMAGE)] = []
        self.b.snaps[(POOL, IMAGE)] = []
        snap = self.a.add_snapshot(POOL, IMAGE, created_at=point)
        self.b.add_snapshot(POOL, IMAGE, created_at=point + timedelta(seconds=1), primary_snap_id=snap)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    f = Fakes()
    monkeypatch.setattr(site_adapters, "rbd_for", lambda site, *_: {"site-a": f.a, "site-b": f.b}[site.name])
    monkeypatch.setattr(site_adapters, "store_for", lambda site, **_: f.store)
    monkeypatch.setattr(
        site_adapters, "cluster_for", lambda site: FakeCluster(site=site.name)
    )  # the toolbox's apiserver
    return f


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorker]:
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    worker.started_at = datetime.now(UTC)  # type: ignore[attr-defined]
    yield worker
    worker.drain()


def _emitted(worker: EventsWorker, name: str) -> list[object]:
    """Events called ``name`` emitted since the fixture started (the worker outlives one test)."""
    worker.drain()
    since = worker.started_at  # type: ignore[attr-defined]
    return [e for c in AssertingEventsClient.all for e in c.events if e.event == name and e.occurred >= since]


def test_rpo_sample_records_and_emits_breach_once_then_recovered(
    tmp_path: Path, fakes: Fakes, events: EventsWorker
) -> None:
    config = str(_write_config(tmp_path, "5m"))
    t0 = datetime.now(UTC)
    fakes.set_lag(30)
    first = rpo_sample(config=config)
    t1 = datetime.now(UTC)
    assert first["events"] == [] and first["invalid_sites"] == []
    # The lag grows while the flow runs: bound it by the time actually spent, not a guess.
    assert 30 - 1 <= first["apps"]["nexus"] <= 30 + (t1 - t0).total_seconds() + 1  # type: ignore[index,operator]
    assert any(k.startswith("standby/rpo/site-b/") and k.endswith(".parquet") for k in fakes.store.objects)
    table = Artifact.get("rpo-current-lag")
    assert table is not None and json.loads(str(table.data))[0]["image"] == IMAGE

    fakes.set_lag(600)
    assert rpo_sample(config=config)["events"] == [BREACH_EVENT]
    assert rpo_sample(config=config)["events"] == []  # hysteresis: once per crossing
    fakes.set_lag(20)
    assert rpo_sample(config=config)["events"] == ["standby.rpo.recovered"]

    breaches = _emitted(events, BREACH_EVENT)
    assert len(breaches) == 1
    breach = breaches[0]
    assert breach.resource.id == "standby.app.nexus"  # type: ignore[attr-defined]
    assert breach.resource["standby.site"] == "site-b"  # type: ignore[attr-defined]
    assert breach.payload["lag_seconds"] > 300 and breach.payload["target_seconds"] == 300  # type: ignore[attr-defined]
    assert breach.payload["source"] == "exact"  # type: ignore[attr-defined]  # suspected breach: exact mode
    assert len(_emitted(events, "standby.rpo.recovered")) == 1


def test_rpo_sample_with_no_app_measures_every_configured_app_each_on_its_own(
    tmp_path: Path, fakes: Fakes
) -> None:
    """The sampler deployment names no app: one pool-status call per site serves every app, and an
    app whose image the sites do not report gets an unknown lag with its reason, the others a figure."""
    doc = rpo_config_doc(IMAGE, pool=POOL)
    web = {
        **doc["apps"][0],
        "name": "web",
        "namespace": "web-dr",
        "volumes": [{"pvc": "data-web-0", "image": "csi-vol-web"}],
    }
    doc["apps"].append(web)
    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(doc))
    fakes.set_lag(30)  # nexus's image only: web's is mirrored nowhere
    result = rpo_sample(config=str(path))
    assert sorted(result["apps"]) == ["nexus", "web"]  # type: ignore[call-overload]
    assert result["apps"]["nexus"] is not None and result["apps"]["web"] is None  # type: ignore[index]
    rows = {r["app"]: r for r in json.loads(str(Artifact.get("rpo-current-lag").data))}  # type: ignore[union-attr]
    assert rows["nexus"]["lag_seconds"] is not None and rows["nexus"]["image"] == IMAGE
    assert (
        rows["web"]["image"] == "csi-vol-web" and rows["web"]["lag_seconds"] is None and rows["web"]["reason"]
    )


def test_rpo_sample_marks_a_failed_site_invalid_and_goes_on(tmp_path: Path, fakes: Fakes) -> None:
    config = str(_write_config(tmp_path))
    fakes.set_lag(30)
    fakes.a.malformed_json = True
    result = rpo_sample(config=config)
    assert result["invalid_sites"] == ["site-a"]
    assert result["apps"]["nexus"] is not None  # type: ignore[index]
    sites = json.loads(str(Artifact.get("rpo-sample-sites").data))  # type: ignore[union-attr]
    bad = next(r for r in sites if r["site"] == "site-a")
    assert not bad["valid"] and "not JSON" in bad["reason"]


def test_rpo_sample_fails_naming_sites_and_command_when_no_site_answers(tmp_path: Path, fakes: Fakes) -> None:
    config = str(_write_config(tmp_path))
    fakes.set_lag(30)
    fakes.a.exit_code = 1
    fakes.b.exit_code = 1
    state = rpo_sample(config=config, return_state=True)
    assert state.is_failed()
    message = str(state.message) + str(state.result(raise_on_failure=False))
    assert "site-a" in message and "site-b" in message
    assert "rbd mirror pool status replicapool --verbose --format json" in message
    assert fakes.a.calls.count(("mirror pool status", POOL, "")) == 1  # not retried: not transient


def test_unhealthy_image_emits_once(tmp_path: Path, fakes: Fakes, events: EventsWorker) -> None:
    config = str(_write_config(tmp_path))
    fakes.set_lag(30)
    fakes.b.add_image(POOL, IMAGE, peer_site="site-a", state="up+error", description="split-brain")
    fakes.a.add_image(POOL, IMAGE, primary=True, state="up+error", description="split-brain")
    rpo_sample(config=config)
    rpo_sample(config=config)
    unhealthy = _emitted(events, "standby.mirror.unhealthy")
    assert len(unhealthy) == 1
    assert unhealthy[0].payload["health"] == "split-brain"  # type: ignore[attr-defined]


def test_rpo_report_publishes_chart_table_and_markdown(tmp_path: Path, fakes: Fakes) -> None:
    config_path = _write_config(tmp_path, "5m")
    from drkit.config import load_config
    from drkit.jobs import rpo as jobs

    # A recorded timeline: a synced point every 60 s, with one 400 s gap (a breach of the 5 m target).
    now = datetime.now(UTC)
    data = [now - timedelta(seconds=s) for s in (1500, 1440, 1380, 1320, 920, 860, 800, 740, 680, 620, 560)]
    rows = [
        {c: None for c in jobs.COLUMNS}
        | {
            "kind": "point",
            "sampled_at": d + timedelta(seconds=5),
            "site": "site-b",
            "pool": POOL,
            "app": "nexus",
            "image": IMAGE,
            "source": "exact",
            "data_time": d,
            "completed_at": d + timedelta(seconds=2),
        }
        for d in data
    ]
    records = jobs.records_for(load_config(config_path), {"site-a": fakes.store, "site-b": fakes.store})
    records.append("site-b", rows, now)
    markdown = rpo_report(config=str(config_path), since="1h")
    assert "# RPO report" in markdown and "nexus" in markdown
    table = json.loads(str(Artifact.get("rpo-report-table").data))  # type: ignore[union-attr]
    assert {r["series"] for r in table} == {"app nexus", IMAGE}
    row = next(r for r in table if r["series"] == IMAGE)
    assert row["max_s"] == pytest.approx(402, abs=1)  # the peak just before the gap closed
    assert row["within_target_pct"] < 100 and row["source"] == "exact"
    assert "peak 402s" in row["worst_interval"]
    assert row["longest_gap_s"] == pytest.approx(400, abs=1)  # the stretch with no observation
    image = Artifact.get("rpo-report-chart-nexus")
    assert image is not None and str(image.data).startswith("data:image/png;base64,")
    assert any(
        k.startswith("standby/rpo-reports/nexus/") and k.endswith("lag.png") for k in fakes.store.objects
    )
    assert Artifact.get("rpo-report") is not None


def test_rpo_watch_records_completion_points_the_report_reads(tmp_path: Path, fakes: Fakes) -> None:
    config = str(_write_config(tmp_path))
    fakes.set_lag(30)
    result = rpo_watch(config=config, minutes=0.05, every_seconds=0.5)  # 3 s of polls
    assert result["polls"] >= 2  # type: ignore[operator]
    image = result["images"][0]  # type: ignore[index]
    assert image["failures"] == 0 and image["points_written"] == 1
    assert fakes.a.calls.count(("snap ls", POOL, IMAGE)) == 1  # A only for the new snapshot
    table = json.loads(str(Artifact.get("rpo-watch").data))  # type: ignore[union-attr]
    assert table[0]["image"] == IMAGE and table[0]["polls"] == result["polls"]
    markdown = rpo_report(config=config, since="1h")
    row = next(r for r in json.loads(str(Artifact.get("rpo-report-table").data)) if r["series"] == IMAGE)  # type: ignore[union-attr]
    assert row["source"] == "watch" and "nexus" in markdown


def test_rpo_watch_fails_naming_site_image_and_command_when_every_listing_fails(
    tmp_path: Path, fakes: Fakes
) -> None:
    config = str(_write_config(tmp_path))
    fakes.set_lag(30)
    fakes.b.exit_code = 2
    state = rpo_watch(config=config, minutes=0.02, every_seconds=0.5, return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert f"{POOL}/{IMAGE} on site-b" in message and "snap ls --all" in message


def test_breach_automation_is_created_in_code() -> None:
    created = ensure_rpo_breach_automation()
    again = ensure_rpo_breach_automation()  # replaces, never duplicates
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(AUTOMATION_NAME)
    assert [a.id for a in found] == [again.id] != [created.id]
    trigger = found[0].trigger
    assert BREACH_EVENT in trigger.expect  # type: ignore[union-attr]
    assert trigger.match.model_dump().get("prefect.resource.id") == "standby.app.*"  # type: ignore[union-attr]
    assert found[0].actions[0].type == "do-nothing"


def test_rpo_sample_of_a_journal_mode_image_reports_an_estimate_and_a_breach_that_says_so(
    tmp_path: Path, fakes: Fakes, events: EventsWorker
) -> None:
    """The status reports journal mode: the figure is an ESTIMATE (never ``lag_seconds``), judged
    against the target, and ``rpo_max_entries_behind`` bounds the backlog."""
    doc = rpo_config_doc(IMAGE, pool=POOL, target="5m")
    doc["apps"][0]["rpo_max_entries_behind"] = 50_000
    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(doc))

    def journal(behind: int, rate: float) -> None:
        fakes.a.add_image(
            POOL, IMAGE, primary=True, peer_site="site-b", entries_behind=behind, entries_per_second=rate
        )
        fakes.b.add_image(POOL, IMAGE, peer_site="site-a", entries_behind=behind, entries_per_second=rate)

    journal(100, 50.0)  # 2 s of backlog
    first = rpo_sample(config=str(path))
    assert first["events"] == [] and first["apps"]["nexus"] is None  # type: ignore[index]
    assert 2 <= first["estimated"]["nexus"] < 30  # type: ignore[index,operator]
    (row,) = json.loads(str(Artifact.get("rpo-current-lag").data))  # type: ignore[union-attr]
    assert row["source"] == "journal-estimate" and row["lag_seconds"] is None
    assert row["entries_behind"] == 100 and row["lag_estimate_seconds"] >= 2
    assert not any(op == "snapshots" for op, _, _ in fakes.b.calls)  # no exact mode for journal

    journal(60_000, 100.0)  # 600 s of backlog, and over the entries limit
    assert rpo_sample(config=str(path))["events"] == [BREACH_EVENT]
    (breach,) = _emitted(events, BREACH_EVENT)
    assert breach.payload["estimated"] is True and breach.payload["lag_seconds"] is None  # type: ignore[attr-defined]
    assert breach.payload["lag_estimate_seconds"] >= 600 and breach.payload["entries_behind"] == 60_000  # type: ignore[attr-defined]
    assert breach.payload["reason"].startswith("estimated lag")  # type: ignore[attr-defined]
    assert breach.payload["source"] == "journal-estimate"  # type: ignore[attr-defined]
