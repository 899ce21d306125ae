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
from drkit.jobs.operations import Changed, OperationHooks, OperationResult, read_journal, run_operation
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
        self.changes: list[Changed | None] = []

    def say(self, message: str) -> None:
        self.said.append(message)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        self.calls.append("consent" if changed is None else "consent again")
        self.changes.append(changed)
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


def _run(
    dr: FakeDr, hooks: Recorder, kind: str = "relocate", to: str = "site-b", **options: bool
) -> OperationResult:
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
        "progress",
        "ended",
        "release nexus",
    ]
    assert hooks.ended_with == (result.journal, None)
    outcomes = {s.name: s.outcome for s in result.journal.steps}
    assert set(outcomes.values()) <= {"done", "skipped"}
    assert result.as_dict() == {"status": "completed", "op_id": result.journal.op_id, "steps": outcomes}
    assert read_journal(dr.world, result.journal.op_id).status == "completed"
    assert set(dr.nexus) == {"site-b"}


def test_a_dry_run_stops_after_the_plan_without_asking() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    result = _run(dr, hooks, dry_run=True)
    assert (result.status, result.journal, hooks.calls) == (
        "dry-run",
        None,
        ["key"],
    )  # the plan tries the key
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
    assert hooks.said == [f"nothing to do: {reason}"] and hooks.calls == ["key"]


def test_a_refused_plan_raises_with_the_hooks_hint_before_asking() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    hooks = Recorder()
    hooks.refusal_hint = "see the operation-plan artifact"
    with pytest.raises(
        PreconditionFailed, match=r"relocate of nexus refused: .*planned move possible: site-a unreachable"
    ) as info:
        _run(dr, hooks)
    assert info.value.hint == "see the operation-plan artifact"
    assert hooks.calls == ["key"]


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


# ------------------------------------------------- guards that prove the recovery before any change

OTHER_KEY = crypto.MasterKey(bytes(range(1, 33)))


def _run_with(
    dr: FakeDr, hooks: Recorder, key: crypto.MasterKey | None, kind: str = "relocate", to: str = "site-b"
) -> OperationResult:
    request = (FailoverRequest if kind == "failover" else RelocateRequest)(app="nexus", to=to)
    return run_operation(dr.world, request, kind, to, hooks, key=lambda: key)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["relocate", "failover"])
def test_a_wrong_key_is_refused_by_the_plan_and_the_app_keeps_running_on_its_source(kind: str) -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    with pytest.raises(
        PreconditionFailed,
        match=rf"backup key opens the backup: run \S+ is sealed with key id"
        rf" {KEY.key_id}; the key given has id {OTHER_KEY.key_id}",
    ) as info:
        _run_with(dr, hooks, OTHER_KEY, kind)
    assert "load the key whose id is " + KEY.key_id in str(info.value)
    assert hooks.calls == []  # never asked: nothing to approve
    _untouched(dr)
    assert dr.nexus["site-a"].running


@pytest.mark.parametrize("kind", ["relocate", "failover"])
def test_no_key_for_a_sealed_backup_is_refused_naming_the_key_id_needed(kind: str) -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Recorder()
    with pytest.raises(
        PreconditionFailed, match=rf"holds sealed objects with key id {KEY.key_id} but no backup key"
    ):
        _run_with(dr, hooks, None, kind)
    _untouched(dr)


def test_a_key_whose_id_matches_but_does_not_decrypt_is_refused_by_the_trial() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    app = dr.world.config.app("nexus")
    ref = dr.world.stores()[0]
    from drkit.jobs.backup_runs import read_index, read_latest

    run = read_latest(ref.store, ref.layout, "site-a", "nexus", key=KEY)
    assert run is not None
    index = read_index(ref.store, ref.layout, "site-a", app.name, run, key=KEY)
    sealed = min((e for e in index.objects if e.encrypted), key=lambda e: e.size)
    blob = bytearray(ref.store.get(sealed.key))
    blob[-1] ^= 1  # one bit of the sealed object flipped: its tag no longer verifies
    ref.store.put(sealed.key, bytes(blob))
    with pytest.raises(
        PreconditionFailed,
        match=rf"key id {KEY.key_id} matches, but {sealed.path} of run {run} did not decrypt",
    ):
        _run_with(dr, Recorder(), KEY, "failover")
    _untouched(dr)


def test_a_failover_plan_names_the_backup_it_restores_and_its_age() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.clock.advance(3 * 3600)
    hooks = Recorder()
    result = _run_with(dr, hooks, KEY, "failover")
    assert result.plan.backup_run is not None and result.plan.backup_age_seconds == pytest.approx(
        3 * 3600, abs=5
    )
    check = next(c for c in result.plan.checks if c.name == "backup readable from the target")
    assert "taken 3.0h ago" in check.detail
    trial = next(c for c in result.plan.checks if c.name == "backup key opens the backup")
    assert trial.ok and f"key {KEY.key_id} decrypted" in trial.detail


def test_relocate_there_and_back_needs_no_backup_taken_by_hand() -> None:
    dr = fake_dr()  # no backup at all: each move takes its own of the running source
    there = _run_with(dr, Recorder(), KEY, "relocate", "site-b")
    assert there.journal is not None and there.journal.status == "completed", there.journal
    assert there.plan.final_backup and there.journal.steps[0].name == "final-backup"
    back = _run_with(dr, Recorder(), KEY, "relocate", "site-a")
    assert back.journal is not None and back.journal.status == "completed"
    assert set(dr.nexus) == {"site-a"} and dr.nexus["site-a"].running
    restored_from = back.journal.step("final-backup").observed["run"]
    assert back.journal.step("final-backup").site == "site-b" and restored_from


def test_a_relocate_with_no_key_is_refused_when_the_app_backs_up_secrets() -> None:
    dr = fake_dr()  # no backup yet: the final backup would have to seal the admin Secret
    with pytest.raises(
        PreconditionFailed, match="the backup this operation takes holds sealed objects but no backup key"
    ):
        _run_with(dr, Recorder(), None, "relocate")
    _untouched(dr)


# -------------------------------------------------------- the world observed again after approval


class ComesBack(Recorder):
    """Approves; while the first approval is pending, site-a comes back."""

    def __init__(self, dr: FakeDr) -> None:
        super().__init__(
            (
                Approval(
                    approver="tester",
                    reason="outage",
                    data_loss=True,
                    unfenced=True,
                    at=datetime(2026, 11, 30, tzinfo=UTC),
                ),
                "nexus",
            )
        )
        self.dr = dr

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        answer = super().consent(plan, changed)
        self.dr.regain("site-a")
        return answer


def test_a_failover_approved_after_site_a_came_back_is_planned_again_and_fences_instead_of_forcing() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    hooks = ComesBack(dr)
    result = _run_with(dr, hooks, KEY, "failover")
    assert hooks.calls[:2] == ["consent", "consent again"]
    changed = hooks.changes[1]
    assert changed is not None and changed.approved.forced and not changed.now.forced
    assert any("promote-target is no longer forced" in c for c in changed.changes)
    assert "## The plan approved before" in changed.markdown()
    assert result.journal is not None and result.journal.status == "completed"
    assert result.plan.unfenced == () and not result.plan.needs_unfenced_ack
    assert dr.mirror.promoted == [("site-b", dr.world.config.app("nexus").volumes[0].image, False)]
    fence = result.journal.step("fence-source").observed
    assert fence["reachable"] is True  # site-a was stopped and demoted, not skipped as unreachable
    assert set(dr.nexus) == {"site-b"} or not dr.nexus["site-a"].running


class Races(Recorder):
    """Approves; meanwhile another operation takes the app."""

    def __init__(self, dr: FakeDr) -> None:
        super().__init__()
        self.dr = dr

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        from drkit.domain.placement import begin
        from drkit.jobs.world import update_placement

        app = self.dr.world.config.app("nexus")
        update_placement(
            self.dr.world,
            app,
            lambda p: begin(p, "failover-20261130T080000Z-abcdef", "failover", self.dr.clock.now()),
            required="site-b",
        )
        return super().consent(plan, changed)


def test_an_approval_that_outlived_its_plan_is_refused_when_the_new_plan_is() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    hooks = Races(dr)
    with pytest.raises(
        PreconditionFailed, match="refused after its approval, the world having changed: no other operation"
    ):
        _run_with(dr, hooks, KEY, "relocate")
    assert dr.mirror.promoted == [] and dr.nexus["site-a"].running


def test_with_a_store_per_site_a_relocate_restores_its_final_backup_from_the_targets_own_store() -> None:
    dr = fake_dr(per_site_stores=True)  # no backup anywhere yet
    there = _run_with(dr, Recorder(), KEY, "relocate", "site-b")
    assert there.journal is not None and there.journal.status == "completed", there.journal.error
    run = there.journal.step("final-backup").observed["run"]
    for site in ("site-a", "site-b"):  # written to both stores, index last in each
        ref = next(r for r in dr.world.stores() if site in r.sites)
        assert ref.store.exists(ref.layout.index_key("site-a", "nexus", run)), site
    back = _run_with(dr, Recorder(), KEY, "relocate", "site-a")
    assert back.journal is not None and back.journal.status == "completed", back.journal.error
    assert set(dr.nexus) == {"site-a"}
