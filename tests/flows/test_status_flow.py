"""The ``status`` flow under the Prefect test harness, on the fake two-site world: the table artifact
``standby-status`` names the last backup (taken on site-a) after a failover to site-b."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from prefect.artifacts import Artifact

import flows.status as status_flows
from drkit.domain import crypto
from drkit.domain.operations import Approval
from drkit.jobs.backup import run_backup
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.testing.dr import fake_dr
from flows.status import status

KEY = crypto.MasterKey(bytes(range(32)))


def test_the_status_flow_publishes_one_row_per_app_with_the_backup_from_any_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = fake_dr()
    b = dr.world.bundle("site-a")
    run_id = run_backup(
        dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=dr.clock
    ).run_id
    dr.clock.advance(600)
    dr.lose("site-a")
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    approval = Approval(
        approver="tester",
        reason="outage",
        data_loss=True,
        unfenced=True,
        at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert (
        execute(
            dr.world,
            approve(dr.world, prepared, approval, "nexus"),
            key=KEY,
            timeouts=Timeouts(default=30.0, poll=1.0),
        ).status
        == "completed"
    )
    monkeypatch.setattr(status_flows, "world_for_run", lambda _config, **_kw: dr.world)
    state = status(key_source="none", return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["apps"]["nexus"]["last_backup"] == run_id
    table = Artifact.get("standby-status")
    assert table is not None and "site-a unreachable" in str(table.description)
    (row,) = json.loads(str(table.data))
    assert row["APP"] == "nexus" and row["PRIMARY"] == "site-b" and row["HOME"] == "site-a"
    assert row["LAST BACKUP"] == f"{run_id} (site-a)" and row["BACKUP AGE"].startswith("10m")  # with its unit
    assert row["MIRRORING SITE-A"] == "unreachable"


def test_an_unknown_app_fails_the_run_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    dr = fake_dr()
    monkeypatch.setattr(status_flows, "world_for_run", lambda _config, **_kw: dr.world)
    state = status(app="nope", key_source="none", return_state=True)
    assert state.is_failed() and "unknown app 'nope'" in str(state.message)
