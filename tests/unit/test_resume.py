"""``standby operation resume`` observes again and plans again (drkit.testing.dr, the fake two-site
world): it proceeds unasked only when what is left is as approved; a changed plan is approved again
with both plans shown (``--yes`` refuses it); a plan now refused changes nothing."""

from __future__ import annotations

import base64

import pytest
from typer.testing import CliRunner

from drkit.domain.errors import PreconditionFailed
from drkit.domain.operations import Approval, Journal, Plan, StepRecord, StepSpec
from drkit.domain.resume import resume_changes
from drkit.jobs.operations import Changed, OperationHooks, execute, read_journal, resume, write_journal
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from standby import ops_cli
from standby.cli import app
from tests.unit.test_operations import FAST, KEY, Killed, _approval, _backup, _canary, _start, _sync


class Hooks(OperationHooks):
    """Records what a resume shows and asks; approves when asked (or refuses, with ``approve=False``)."""

    def __init__(self, *, approve: bool = True) -> None:
        self.asked: list[Changed] = []
        self.said: list[str] = []
        self.approve = approve

    def say(self, message: str) -> None:
        self.said.append(message)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        assert changed is not None
        self.asked.append(changed)
        if not self.approve:
            raise PreconditionFailed("the approver said no")
        return _approval(data_loss=plan.needs_data_loss_ack, unfenced=plan.needs_unfenced_ack), plan.app


def _killed_at(dr: FakeDr, journal: Journal, step: str, outcome: str = "done") -> Journal:
    """Run ``journal`` until ``step`` reaches ``outcome``, then the process dies."""

    def die(j: Journal, r: StepRecord) -> None:
        if r.name == step and r.outcome == outcome:
            raise Killed

    with pytest.raises(Killed):
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=die)
    return read_journal(dr.world, journal.op_id)


def _failover_with_site_a_lost(dr: FakeDr) -> Journal:
    _canary(dr, "site-a", "canary.bin")
    _backup(dr, "site-a")
    _sync(dr, "site-a")
    dr.lose("site-a")
    journal = _start(dr, "failover", "site-b", data_loss=True, unfenced=True)
    assert journal.plan.unfenced and journal.plan.forced
    return _killed_at(dr, journal, "restore-volumes")


def test_a_resume_whose_world_did_not_move_proceeds_without_asking() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    left = _killed_at(dr, _start(dr, "relocate", "site-b"), "demote-source")
    hooks = Hooks()
    done = resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=hooks)
    assert done.status == "completed" and hooks.asked == []
    assert "what is left is as approved" in hooks.said[0] and "promote-target" in hooks.said[0]
    assert dr.mirror.promoted == [("site-b", IMAGE, False)] and set(dr.nexus) == {"site-b"}
    assert done.reapprovals == ()


def test_a_failover_whose_source_is_still_down_resumes_without_asking() -> None:
    dr = fake_dr()
    left = _failover_with_site_a_lost(dr)
    hooks = Hooks()
    done = resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=hooks)
    assert done.status == "completed" and hooks.asked == []
    assert dr.mirror.promoted == [("site-b", IMAGE, True)]


def test_the_source_came_back_so_the_resume_asks_again_then_fences_instead_of_forcing() -> None:
    dr = fake_dr()
    left = _failover_with_site_a_lost(dr)
    assert left.step("fence-source").outcome == "skipped"  # nothing could be fenced then
    dr.regain("site-a")  # still primary, Nexus running on it: forcing now would make two primaries
    hooks = Hooks()
    done = resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=hooks)
    [asked] = hooks.asked
    text = asked.markdown()
    assert "promote-target is no longer forced" in text and "cannot be fenced" in text
    assert "## The plan now" in text and "## The plan approved before" in text and "restore-volumes" in text
    assert done.status == "completed", done.error
    assert dr.mirror.promoted == [("site-b", IMAGE, False)]  # fenced, then a plain promote
    assert {s for s, n in dr.nexus.items() if n.running} == {"site-b"} and dr.mirror.images[
        IMAGE
    ].split == set()
    assert done.step("fence-source").outcome == "done" and done.step("restore-volumes").outcome == "done"
    [again] = done.reapprovals
    assert again.plan_before.unfenced and not done.plan.unfenced and not done.plan.forced


def test_a_changed_plan_is_not_run_when_the_approver_refuses_or_no_one_is_asked() -> None:
    dr = fake_dr()
    left = _failover_with_site_a_lost(dr)
    dr.regain("site-a")
    with pytest.raises(PreconditionFailed, match="the approver said no"):
        resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=Hooks(approve=False))
    with pytest.raises(PreconditionFailed, match="the plan made again differs") as caught:
        resume(dr.world, left.op_id, key=KEY, timeouts=FAST)
    assert f"standby operation abort {left.op_id}" in caught.value.hint
    assert dr.mirror.promoted == [] and dr.nexus["site-a"].running
    assert read_journal(dr.world, left.op_id) == left


def test_the_target_promoted_behind_standbys_back_refuses_the_resume_and_changes_nothing() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    left = _killed_at(dr, _start(dr, "relocate", "site-b"), "final-backup", "running")
    dr.mirror.site("site-b").promote("replicapool", IMAGE, force=True)  # someone, by hand
    promoted = list(dr.mirror.promoted)
    with pytest.raises(
        PreconditionFailed, match=r"refused, the world having changed: .*exactly one primary"
    ) as caught:
        resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=Hooks())
    hint = caught.value.hint
    assert hint.startswith("nothing was changed") and f"standby operation abort {left.op_id}" in hint
    assert f"--take-over {left.op_id}" in hint
    assert dr.mirror.promoted == promoted and dr.nexus["site-a"].running
    assert read_journal(dr.world, left.op_id) == left
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation == left.op_id


def test_the_source_lost_after_its_fence_asks_again_for_a_forced_promote_and_its_acknowledgements() -> None:
    dr = fake_dr()
    _canary(dr, "site-a", "canary.bin")
    _backup(dr, "site-a")
    _sync(dr, "site-a")
    journal = _start(dr, "failover", "site-b")
    assert not journal.plan.forced and not journal.plan.needs_data_loss_ack
    left = _killed_at(dr, journal, "fence-source")
    dr.lose("site-a")
    hooks = Hooks()
    done = resume(dr.world, left.op_id, key=KEY, timeouts=FAST, hooks=hooks)
    [asked] = hooks.asked
    assert (
        "promote-target is now forced" in asked.markdown()
        and "data-loss acknowledgement: needed" in asked.markdown()
    )
    assert asked.done == ("fence-source",)  # done: kept, not run again
    assert done.status == "completed" and done.approval is not None and done.approval.data_loss
    assert dr.mirror.promoted == [("site-b", IMAGE, True)]


def test_a_resume_without_the_key_its_restore_needs_is_refused_before_anything_changes() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    left = _killed_at(dr, _start(dr, "relocate", "site-b"), "stop-source")
    with pytest.raises(PreconditionFailed, match="backup key opens the backup") as caught:
        resume(dr.world, left.op_id, key=None, timeouts=FAST, hooks=Hooks())
    assert "nothing was changed" in caught.value.hint
    assert read_journal(dr.world, left.op_id) == left and dr.mirror.promoted == []


def test_a_drill_is_not_resumed_but_cleaned_up() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    relocate = _killed_at(dr, _start(dr, "relocate", "site-b"), "final-backup")
    drill = relocate.model_copy(
        update={"op_id": relocate.op_id.replace("relocate", "drill", 1), "kind": "drill"}
    )
    write_journal(dr.world, drill)
    with pytest.raises(PreconditionFailed, match="standby drill cleanup --app nexus"):
        resume(dr.world, drill.op_id, key=KEY, timeouts=FAST)


def test_done_steps_are_kept_and_skipped_ones_compared() -> None:
    spec = StepSpec(name="fence-source", title="fence", site="site-a")
    promote = StepSpec(name="promote-target", title="promote", site="site-b", force=True)
    plan = Plan(
        kind="failover",
        app="nexus",
        source="site-a",
        target="site-b",
        checks=(),
        steps=(spec, promote),
        unfenced=("site-a (unreachable: refused)",),
        forced=("promote of x on site-b",),
    )
    other_reason = plan.model_copy(update={"unfenced": ("site-a (unreachable: timed out)",)})
    assert resume_changes(plan, other_reason, done=()) == []  # why it is unreachable may vary
    fencible = plan.model_copy(
        update={"unfenced": (), "forced": (), "steps": (spec, promote.model_copy(update={"force": False}))}
    )
    assert resume_changes(plan, fencible, done=()) != []
    assert (
        resume_changes(plan, fencible, done=("fence-source", "promote-target")) != []
    )  # done: not as it was done
    assert resume_changes(plan, plan.model_copy(update={"lag_seconds": 99.0}), done=("fence-source",)) == []


# ------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    dr = fake_dr()
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    return dr


def test_cli_resume_with_yes_refuses_a_changed_plan_showing_both_and_changes_nothing(
    cli_world: FakeDr,
) -> None:
    left = _failover_with_site_a_lost(cli_world)
    cli_world.regain("site-a")
    result = CliRunner().invoke(app, ["operation", "resume", left.op_id, "--yes"])
    assert result.exit_code == 1, result.output
    assert "## The plan now" in result.output and "## The plan approved before" in result.output
    assert "promote-target is no longer forced" in result.output
    assert "--yes resumes only an unchanged plan; nothing was changed" in result.output
    assert "Traceback" not in result.output
    assert cli_world.mirror.promoted == [] and cli_world.nexus["site-a"].running
    assert read_journal(cli_world.world, left.op_id) == left


def test_cli_resume_asks_for_the_typed_approval_of_the_new_plan(cli_world: FakeDr) -> None:
    left = _failover_with_site_a_lost(cli_world)
    cli_world.regain("site-a")
    result = CliRunner().invoke(
        app, ["operation", "resume", left.op_id], input="nexus\ntester\nsite-a is back\n"
    )
    assert result.exit_code == 0, result.output
    assert "The world changed since" in result.output
    assert result.output.strip().splitlines()[-1] == left.op_id
    assert cli_world.mirror.promoted == [("site-b", IMAGE, False)]


def test_cli_resume_with_yes_proceeds_when_nothing_moved(cli_world: FakeDr) -> None:
    _backup(cli_world, "site-a")
    left = _killed_at(cli_world, _start(cli_world, "relocate", "site-b"), "stop-source")
    result = CliRunner().invoke(app, ["operation", "resume", left.op_id, "--yes"])
    assert result.exit_code == 0, result.output
    assert "what is left is as approved" in result.output
    assert set(cli_world.nexus) == {"site-b"}
