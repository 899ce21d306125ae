"""The runbook the flows and the CLI share (``run_operation``), on the fake two-site world: what it
asks of its hooks and in what order, and what each way of ending leaves behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from drkit.domain import crypto
from drkit.domain.errors import PreconditionFailed, StandbyError
from drkit.domain.operations import Approval, Journal, Plan, StepRecord
from drkit.jobs.operations import OperationHooks, OperationResult, read_journal, run_operation
from drkit.jobs.requests import FailoverRequest, RelocateRequest
from drkit.jobs.world import read_placement
from drkit.testing.dr import FakeDr, fake_dr
from tests.unit.test_operations import KEY, _backup

APPROVAL = Approval(approver="tester", reason="unit", at=datetime(2026, 11, 30, tzinfo=UTC))


class Recorder(OperationHooks):
    """Hooks that answer the approval with ``answer`` and note every call, in order."""

    def __init__(self, answer: tuple[Approval, str] | None = (APPROVAL, "nexus")) -> None:
        self.answer = answer
        self.calls: list[str] = []
        self.said: list[str] = []
        self.ended_with: tuple[Journal, StandbyError | None] | None = None

    def say(self, message: str) -> None:
        self.said.append(message)

    def consent(self, plan: Plan) -> tuple[Approval, str]:
        self.calls.append("consent")
        if self.answer is None:
            raise PreconditionFailed("the operator said no")
        return self.answer

    @contextmanager
    def hold(self, app: str) -> Iterator[None]:
        self.calls.append(f"hold {app}")
        try:
            yield
        finally:
            self.calls.append(f"release {app}")

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        if record.outcome in ("done", "skipped"):
            self.calls.append(f"step {record.name}")

    def progress(self, journal: Journal) -> None:
        self.calls.append("progress")

    def ended(self, journal: Journal, error: StandbyError | None) -> None:
        self.calls.append("ended")
        self.ended_with = (journal, error)


def _key(calls: list[str]) -> crypto.MasterKey:
    calls.append("key")
    return KEY


def _run(dr: FakeDr, hooks: Recorder, kind: str = "relocate", to: str = "site-b", **options: bool) -> OperationResult:
    """Run ``kind`` of nexus to ``to`` through the shared runbook; the key's loading is a call too."""
    request = (FailoverRequest if kind == "failover" else RelocateRequest)(app="nexus", to=to, **options)
    return run_operation(dr.world, request, kind, to, hooks, key=lambda: _key(hooks.calls))  # type: ignore[arg-type]


def _untouched(dr: FakeDr) -> None:
    record = read_placement(dr.world, dr.world.config.app("nexus")).record
    assert (record.primary, record.epoch, record.operation) == ("site-a", 0, None)
    assert dr.mirror.promoted == [] and set(dr.nexus) == {"site-a"}


def test_a_relocate_asks_once_holds_the_app_around_the_steps_and_reports_each() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    result = _run(dr, hooks)
    assert result.journal is not None and result.status == "completed"
    steps = [s.name for s in result.plan.steps]
    assert hooks.calls[:3] == ["key", "consent", "hold nexus"]
    assert hooks.calls[3:] == [c for name in steps for c in (f"step {name}", "progress")] + [
        "progress", "ended", "release nexus"
    ]  # fmt: skip
    assert hooks.ended_with == (result.journal, None)
    outcomes = {s.name: s.outcome for s in result.journal.steps}
    assert set(outcomes.values()) <= {"done", "skipped"}
    assert result.as_dict() == {"status": "completed", "op_id": result.journal.op_id, "steps": outcomes}
    assert read_journal(dr.world, result.journal.op_id).status == "completed"
    assert set(dr.nexus) == {"site-b"}


def test_a_dry_run_stops_after_the_plan_without_asking_or_loading_the_key() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    result = _run(dr, hooks, dry_run=True)
    assert (result.status, result.journal, hooks.calls) == ("dry-run", None, [])
    assert hooks.said == ["dry run: nothing was changed"]
    assert result.as_dict() == {"status": "dry-run", "steps": [s.name for s in result.plan.steps]}
    _untouched(dr)


def test_nothing_to_do_is_said_and_returned() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    result = _run(dr, hooks, to="site-a")
    reason = "nexus already runs on site-a (placement epoch 0)"
    assert result.as_dict() == {"status": "nothing-to-do", "reason": reason}
    assert hooks.said == [f"nothing to do: {reason}"] and hooks.calls == []


def test_a_refused_plan_raises_with_the_hooks_hint_before_asking() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    hooks = Recorder()
    hooks.refusal_hint = "see the operation-plan artifact"
    with pytest.raises(PreconditionFailed, match=r"relocate of nexus refused: .*planned move possible: site-a unreachable") as info:  # fmt: skip
        _run(dr, hooks)
    assert info.value.hint == "see the operation-plan artifact"
    assert hooks.calls == []


def test_no_approval_changes_nothing() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder(answer=None)
    with pytest.raises(PreconditionFailed, match="the operator said no"):
        _run(dr, hooks)
    assert hooks.calls == ["key", "consent"]
    _untouched(dr)


def test_an_approval_the_plan_does_not_accept_is_refused_before_the_app_is_taken() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    hooks = Recorder()  # no acknowledgement of the data loss the failover needs
    with pytest.raises(PreconditionFailed, match="acknowledge the data loss"):
        _run(dr, hooks, "failover")
    assert hooks.calls == ["key", "consent", "hold nexus", "release nexus"] and hooks.ended_with is None


def test_a_failed_step_is_reported_to_the_hooks_then_raised() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()

    def cut(journal: Journal, record: StepRecord) -> None:
        Recorder.on_step(hooks, journal, record)
        if record.name == "demote-source" and record.outcome == "done":
            dr.store.unreachable = True

    hooks.on_step = cut  # type: ignore[method-assign]
    with pytest.raises(StandbyError, match=r"step wait-demotion on site-b failed"):
        _run(dr, hooks)
    assert hooks.ended_with is not None
    journal, error = hooks.ended_with
    assert journal.status == "failed" and journal.step("wait-demotion").outcome == "failed"
    assert error is not None and "wait-demotion" in str(error)
    assert hooks.calls[-3:] == ["progress", "ended", "release nexus"]
    assert dr.mirror.promoted == []
