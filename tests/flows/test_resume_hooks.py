"""A resume driven by the flows' hooks (``tasks.operations.FlowHooks``), under the Prefect test
harness on the fake two-site world: an unchanged plan resumes without a pause; a changed one pauses
for the approval form, which shows both plans."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow

from drkit.jobs.operations import resume
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from tasks import operations as tasks_ops
from tasks.operations import FlowHooks
from tests.unit.test_operations import FAST, KEY
from tests.unit.test_resume import _failover_with_site_a_lost


def _resume_in_a_flow(dr: FakeDr, op_id: str) -> dict[str, Any]:
    @flow(name="resume-under-test")
    def resume_flow() -> dict[str, Any]:
        done = resume(dr.world, op_id, key=KEY, timeouts=FAST, hooks=FlowHooks(dr.world, approval_timeout=60))
        return {"status": done.status, "reapprovals": len(done.reapprovals)}

    return resume_flow()


def test_a_flow_resume_pauses_for_the_new_plan_only_when_the_world_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forms: list[str] = []

    def approver(wait_for_input: Any, timeout: int, poll_interval: int, key: str) -> Any:
        """What the UI's form submits; the form's description is what the approver read."""
        forms.append(str(wait_for_input._description))
        return wait_for_input(confirm_app="nexus", approver="ops", reason="site-a is back")

    monkeypatch.setattr(tasks_ops, "pause_flow_run", approver)
    still = fake_dr()
    assert _resume_in_a_flow(still, _failover_with_site_a_lost(still).op_id) == {
        "status": "completed",
        "reapprovals": 0,
    }
    assert forms == []
    back = fake_dr()
    left = _failover_with_site_a_lost(back)
    back.regain("site-a")
    assert _resume_in_a_flow(back, left.op_id) == {"status": "completed", "reapprovals": 1}
    [form] = forms
    assert "## The plan now" in form and "## The plan approved before" in form
    assert "promote-target is no longer forced" in form
    assert back.mirror.promoted == [("site-b", IMAGE, False)]
