"""The ``failover`` flow's second approval pause: a plan approved while site-a was lost is planned
again after the approval, and the changed plan is put to the approver again (its own pause key, both
plans in the form), under the Prefect test harness on the fake two-site world."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from drkit.jobs.operations import list_journals
from drkit.testing.dr import fake_dr
from flows import operations as flows_ops
from tasks import operations as tasks_ops
from tests.unit.test_operations import KEY, _backup


def test_a_failover_approved_before_site_a_came_back_pauses_again_with_both_plans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    monkeypatch.setattr(flows_ops, "world_for_run", lambda _config, **_: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())  # KEY
    assert KEY.key_id
    pauses: list[tuple[str, str, set[str]]] = []

    def approver(wait_for_input: Any, timeout: int, poll_interval: int, key: str) -> Any:
        """What the UI's form submits: every acknowledgement the form offers; site-a answers again
        while the first form is open."""
        fields = set(wait_for_input.model_fields)
        description = str(getattr(wait_for_input, "_description", "") or "")  # what the Resume dialog shows
        pauses.append((key, description, fields))
        acks = {name: True for name in fields if name.startswith("acknowledge_")}
        if len(pauses) == 1:
            dr.regain("site-a")
        return wait_for_input(confirm_app="nexus", approver="ops", reason="site-a lost", **acks)

    monkeypatch.setattr(tasks_ops, "pause_flow_run", approver)
    result = flows_ops.failover(app="nexus", to="site-b", dry_run=False, key_source="env:STANDBY_BACKUP_KEY")

    assert [key for key, _, _ in pauses] == ["approval-1", "approval-2-1"], pauses
    first, second = pauses[0], pauses[1]
    assert {"acknowledge_data_loss", "acknowledge_unfenced"} <= first[2]  # site-a lost: forced, unfenced
    assert "acknowledge_unfenced" not in second[2]  # site-a answers: it is fenced now
    assert "## The plan approved before" in second[1] and "no longer forced" in second[1]
    assert result["status"] == "completed", result
    journal = list_journals(dr.world, "nexus")[-1]
    assert journal.status == "completed" and not journal.plan.forced and not journal.plan.unfenced
    assert journal.step("fence-source").observed["reachable"] is True
