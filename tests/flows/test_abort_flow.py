"""The ``abort-operation`` flow (typed approval, rollback, result) and the failover form's take-over
switch, under the Prefect test harness on the fake two-site world."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from drkit.domain.operations import Check, Plan, StepSpec
from drkit.jobs.operations import read_journal
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, fake_dr
from flows import operations as flows_ops
from tasks import operations as tasks_ops
from tasks.operations import approval_model
from tests.unit.test_abort import _failed_relocate


def test_the_failover_form_has_the_take_over_switch_only_when_the_plan_takes_over() -> None:
    base = Plan(
        kind="failover",
        app="nexus",
        source="site-a",
        target="site-b",
        checks=(Check(name="x", ok=True),),
        steps=(StepSpec(name="placement", title="t", site="site-b"),),
    )
    assert "acknowledge_take_over" not in approval_model(base).model_json_schema()["properties"]
    taking = base.model_copy(update={"takes_over": "relocate-20261130T080000Z-abcdef"})
    switch = approval_model(taking).model_json_schema()["properties"]["acknowledge_take_over"]
    assert switch["type"] == "boolean" and "relocate-20261130T080000Z-abcdef" in switch["description"]


def test_abort_operation_flow_asks_again_until_the_typed_approval_is_right_then_rolls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    monkeypatch.setattr(flows_ops, "world_for_run", lambda _config, **_: dr.world)
    monkeypatch.setenv(
        "STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode()
    )  # the key of _failed_relocate
    asked: list[str] = []

    def approver(wait_for_input: Any, timeout: int, poll_interval: int, key: str) -> Any:
        """What the UI's form submits: first a misspelt app name, then the right one."""
        asked.append(key)
        return wait_for_input(
            confirm_app="nexsu" if len(asked) == 1 else "nexus", approver="ops", reason="test"
        )

    monkeypatch.setattr(tasks_ops, "pause_flow_run", approver)
    result = flows_ops.abort_operation(app="nexus", op_id=failed.op_id, key_source="env:STANDBY_BACKUP_KEY")
    assert result["status"] == "aborted" and asked == ["abort-approval-1", "abort-approval-2"]
    assert result["steps"]["abort-start-source"] == "done"
    assert read_journal(dr.world, failed.op_id).abort.approval.approver == "ops"  # type: ignore[union-attr]
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    assert dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}
    again = flows_ops.abort_operation(app="nexus", op_id=failed.op_id, key_source="env:STANDBY_BACKUP_KEY")
    assert again["status"] == "aborted" and "aborted already" in again["reason"]
