"""The ``drill`` flow under the Prefect test harness, on the fake two-site world (drkit.testing.dr).

The world holds the example's two apps: ``nexus`` (checks.kind nexus: a canary is possible) and
``web`` (checks.kind http: the drill gate refuses it before changing anything). The flow's seams
(``world_for_run``, and ``resolve_config`` for the apps' names) are pointed at the fake world with
``monkeypatch``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.artifacts import Artifact
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

import flows.drill as drill_flows
from drkit.config import parse_config
from drkit.domain import crypto
from drkit.domain.drill import canary_check
from drkit.jobs.backup import run_backup
from drkit.testing.dr import FakeDr, fake_dr
from flows.drill import drill

ROOT = Path(__file__).resolve().parents[2]
RAW_KEY = bytes(range(170, 202))


def _two_apps(monkeypatch: pytest.MonkeyPatch, *, backed_up: bool) -> FakeDr:
    dr = fake_dr()
    example = (ROOT / "standby.example.yaml").read_text(encoding="utf-8")
    web = parse_config(example, source=Path("standby.yaml"), base=ROOT).app("web")
    dr.world.config = dr.world.config.model_copy(update={"apps": (*dr.world.config.apps, web)})
    if backed_up:
        b = dr.world.bundle("site-a")
        run_backup(
            dr.world.config.app("nexus"),
            b.site,
            b.cluster,
            b.store,
            key=crypto.MasterKey(RAW_KEY),
            clock=dr.clock,
        )
    monkeypatch.setattr(drill_flows, "resolve_config", lambda _config: dr.world.config)
    monkeypatch.setattr(drill_flows, "world_for_run", lambda _config, **_: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(RAW_KEY).decode())
    return dr


def _children(parent: Any) -> dict[str, Any]:
    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
        )
    return {r.name: r for r in runs}


def _rows() -> dict[str, dict[str, str]]:
    table = Artifact.get("drill-apps")
    assert table is not None
    return {r["app"]: r for r in json.loads(str(table.data))}


def test_the_drill_of_every_app_drills_nexus_and_skips_web_with_the_gates_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = _two_apps(monkeypatch, backed_up=True)
    reason = canary_check(dr.world.config.app("web")).detail
    assert "checks.kind is 'http'" in reason
    state = drill(return_state=True)
    assert state.is_completed(), state.message
    apps = state.result()["apps"]
    assert apps["nexus"]["verdict"] == "passed" and apps["nexus"]["detail"].endswith(" passed")
    assert apps["web"] == {
        "verdict": "skipped",
        "detail": f"drill refused by its gate: canary possible: {reason}",
        "flow_run": "",
    }
    rows = _rows()
    assert rows["web"]["verdict"] == "skipped" and reason in rows["web"]["detail"]
    assert rows["nexus"]["verdict"] == "passed"
    children = _children(state.state_details.flow_run_id)
    assert list(children) == ["drill of nexus"] and children["drill of nexus"].state.is_completed()
    assert rows["nexus"]["flow run"] == str(children["drill of nexus"].id)
    report = Artifact.get("drill-report-nexus")
    assert report is not None and "passed" in str(report.description)
    # web was refused before anything changed: no journal, no hold, nothing on its sites
    assert not [k for k in dr.store.objects if "/web/" in k]


def test_a_failed_drill_fails_the_run_naming_the_app_and_a_skip_is_not_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No backup of nexus: its gate refuses it ("backup readable"), a failure; web is still skipped."""
    _two_apps(monkeypatch, backed_up=False)
    state = drill(app="", return_state=True)
    assert state.is_failed()
    message = str(state.message)
    assert "drill of 2 app(s): 1 failed (nexus), 1 skipped (web); nexus: " in message
    assert "backup readable" in message and "web:" not in message and "app=nexus" in message
    rows = _rows()
    assert rows["nexus"]["verdict"] == "failed" and "backup readable" in rows["nexus"]["detail"]
    assert rows["web"]["verdict"] == "skipped"
