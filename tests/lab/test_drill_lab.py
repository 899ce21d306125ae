"""Two drills in a row on the lab's real Ceph, one in each mode: the first through the Prefect flow
(promote, approved through the Prefect API as from the run's form), the second isolated (a scratch
copy of B's latest complete snapshot in nexus-dr-drill; B's image is never promoted and
replication never stops).

Each proves a canary written on A is on B with the same sha256, uploads and downloads on B, then
cleans up: B a healthy replica (up+replaying, a fresh snapshot complete), nothing of the drill
left on B, Nexus still served by A throughout. The report is stored as JSON, Markdown and HTML.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from drkit.adapters.clock import SystemClock
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.drill import DrillReport
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs import backup as backups
from drkit.jobs.drill import leftovers, prepare_drill, run_drill, start_drill
from drkit.jobs.drill_report import drill_reports
from drkit.jobs.world import World, build_world, read_placement
from flows.drill import drill
from tests.approver import Approver
from tests.lab.conftest import Lab
from tests.labhelpers import LAB_KEY_TEXT

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
HTML_COPY = Path("/tmp/standby-drill-report.html")


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> crypto.MasterKey:
    monkeypatch.setenv("STANDBY_BACKUP_KEY", KEY_TEXT)
    found = backups.key_from_env("STANDBY_BACKUP_KEY")
    assert found is not None
    return found


def _clean(world: World) -> None:
    app = world.config.app("nexus")
    assert leftovers(world, app, "site-b") == ()
    b = world.bundle("site-b")
    status = b.rbd.image_status(b.site.pool, app.volumes[0].image)
    assert str(status["state"]).startswith("up+replaying")
    a = world.bundle("site-a")
    assert a.rbd.image_info(a.site.pool, app.volumes[0].image)["mirroring"]["primary"] is True
    assert b.rbd.image_info(b.site.pool, app.volumes[0].image)["mirroring"]["primary"] is False
    assert read_placement(world, app).record.operation is None


def _check(report: DrillReport) -> None:
    assert report.passed, [c for c in report.checks if not c.ok]
    assert report.canary["verified"] and report.smoke["round_trip"]
    assert report.rto_promotion_to_writable_s is not None and report.rto_promotion_to_writable_s <= 60
    assert report.availability.probes > 0 and report.availability.writable == report.availability.probes
    assert report.protection_gap_s is not None
    assert report.protection_gap_s > 0 if report.mode == "promote" else report.protection_gap_s == 0


def _timings(report: DrillReport) -> str:
    total = (report.ended_at - report.started_at).total_seconds() if report.ended_at else float("nan")
    steps = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in report.steps if s.seconds is not None)
    return (
        f"{report.mode}: total {total:.1f}s, RTO {report.rto_promotion_to_writable_s:.1f}s,"
        f" RPO {report.rpo_achieved_s}s, cleanup {report.cleanup_s}s, gap {report.protection_gap_s}s; {steps}"
    )


@pytest.mark.timeout(900)
def test_two_drills_in_a_row_pass_and_leave_b_a_healthy_replica(
    lab: Lab, prefect_harness: None, key: crypto.MasterKey, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(lab.root / "standby.yaml")
    world = build_world(config, timeout=20.0)
    b = world.bundle("site-a")
    stores = backups.app_stores(world, config.app("nexus"), "site-a", spare=False)
    backups.run_backup(config.app("nexus"), b.site, b.cluster, stores, key=key, clock=SystemClock())

    # A promote-mode drill pauses for the typed approval a failover asks for; answered through the API.
    run_name = f"drill-{uuid.uuid4().hex[:6]}"
    answer = {"confirm_app": "nexus", "approver": "lab-test", "reason": "promote-mode drill on the lab"}
    with Approver(run_name, [answer], timeout=300) as approver:
        first = drill.with_options(flow_run_name=run_name)(
            app="nexus",
            config=str(lab.root / "standby.yaml"),
            mode="promote",
            key_source="env:STANDBY_BACKUP_KEY",
        )
    assert first["passed"], first
    assert approver.keys == ["approval-1"]
    _clean(world)
    for name in ("drill-report-nexus", "drill-history-nexus", "drill-timeline-nexus", "drill-plan-nexus"):
        assert Artifact.get(name) is not None, name

    app = world.config.app("nexus")
    sb = world.bundle("site-b")
    during: dict[str, object] = {}

    def watch(journal: Journal, record: StepRecord) -> None:  # while Nexus runs on B's scratch copy
        if record.name == "drill-smoke" and record.outcome == "done":
            during["primary"] = sb.rbd.image_info(sb.site.pool, app.volumes[0].image)["mirroring"]["primary"]
            during["state"] = sb.rbd.image_status(sb.site.pool, app.volumes[0].image)["state"]

    journal = start_drill(world, prepare_drill(world, "nexus", "isolated", key=key))
    assert journal.status == "approved", journal.error
    second = run_drill(world, journal, key=key, on_step=watch)
    _check(second.report)
    assert second.report.mode == "isolated"
    assert during == {"primary": False, "state": "up+replaying"}, during
    _clean(world)
    promoted = drill_reports(world, "nexus")[-2]
    assert promoted.mode == "promote"
    with capsys.disabled():
        print(f"\n{_timings(promoted)}\n{_timings(second.report)}")

    # A second isolated drill in a row, through the CLI (isolated is its default mode).
    env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml"), "STANDBY_BACKUP_KEY": KEY_TEXT}
    cli = subprocess.run(
        [sys.executable, "-m", "standby.cli", "drill", "run", "--app", "nexus"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout[-1500:] + cli.stderr[-1500:]
    third_id = cli.stdout.strip().splitlines()[-1]
    _clean(world)

    reports = drill_reports(world, "nexus")
    assert [r.drill_id for r in reports][-3:] == [first["drill_id"], second.report.drill_id, third_id]
    _check(reports[-3])
    _check(reports[-1])
    assert reports[-1].mode == "isolated"
    html = b.store.get(second.stored["html"]).decode()
    assert "data:image/png;base64," in html and first["drill_id"] in html
    HTML_COPY.write_text(html)
