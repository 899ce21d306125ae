"""A promote-mode drill pauses for the typed approval a failover asks for; an isolated one runs unattended.

Under the Prefect test harness on the fake two-site world (``drkit.testing.dr``): the ``drill``
flow runs in the test's thread and pauses; :class:`tests.approver.Approver` answers its form
through the Prefect API from another thread, as an operator does from the UI.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from prefect.artifacts import Artifact

import flows.drill as drill_flows
from drkit.jobs import drill_runbook
from drkit.jobs.backup import run_backup
from drkit.jobs.operations import list_journals
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from flows.drill import drill
from tests.approver import Approver
from tests.unit.test_drill import FAST, KEY


@pytest.fixture
def dr(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    """The fake world with a backup of nexus on site-a, the flow's seams pointed at it."""
    world = fake_dr()
    b = world.world.bundle("site-a")
    run_backup(world.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=world.clock)
    monkeypatch.setattr(drill_flows, "resolve_config", lambda _config: world.world.config)
    monkeypatch.setattr(drill_flows, "world_for_run", lambda _config, **_: world.world)
    monkeypatch.setattr(drill_runbook, "run_drill", _fast_run_drill)  # the sequence the flow runs
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(160, 192))).decode())  # KEY's bytes
    return world


def _fast_run_drill(*args: object, **kwargs: object) -> object:
    from drkit.jobs.drill import run_drill

    return run_drill(*args, **{**kwargs, "timeouts": FAST})  # type: ignore[arg-type]


def _untouched(dr: FakeDr) -> None:
    """Nothing of the drill happened: no journal, no hold, the secondary's image not promoted."""
    assert list_journals(dr.world, "nexus") == []
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    assert dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}


def test_a_promote_mode_drill_pauses_for_the_typed_approval_and_refuses_a_wrong_app_name(dr: FakeDr) -> None:
    name = f"drill-{uuid.uuid4().hex[:6]}"
    answers = [
        {"confirm_app": "nexsu", "approver": "oncall@example.com", "reason": "quarterly promote drill"},
        {"confirm_app": "nexus", "approver": "oncall@example.com", "reason": "quarterly promote drill"},
    ]
    with Approver(name, answers, before=lambda: _untouched(dr)) as approver:
        result = drill.with_options(flow_run_name=name)(
            app="nexus", mode="promote", key_source="env:STANDBY_BACKUP_KEY"
        )
    assert approver.keys == ["approval-1", "approval-2"]  # the misspelt name was asked again
    assert result["passed"] is True
    journal = list_journals(dr.world, "nexus")[-1]
    assert journal.kind == "drill" and journal.status == "completed"
    assert journal.approval is not None and journal.approval.approver == "oncall@example.com"
    assert journal.approval.reason == "quarterly promote drill"
    assert Artifact.get("drill-plan-nexus") is not None


def test_a_promote_mode_drill_whose_approval_never_comes_fails_with_nothing_changed(dr: FakeDr) -> None:
    state = drill(
        app="nexus",
        mode="promote",
        key_source="env:STANDBY_BACKUP_KEY",
        approval_timeout=2,
        return_state=True,
    )
    assert state.is_failed(), state.message
    _untouched(dr)


def test_an_isolated_drill_runs_unattended(dr: FakeDr) -> None:
    result = drill(app="nexus", key_source="env:STANDBY_BACKUP_KEY")  # the monthly default: isolated
    assert result["passed"] is True
    journal = list_journals(dr.world, "nexus")[-1]
    assert journal.approval is not None and journal.approval.approver == "standby (scheduled drill)"


def test_a_promote_mode_drill_of_every_app_is_refused_before_anything(dr: FakeDr) -> None:
    state = drill(mode="promote", key_source="env:STANDBY_BACKUP_KEY", return_state=True)
    assert state.is_failed()
    assert "promote-mode drill of every app is refused" in str(state.message)
    _untouched(dr)
