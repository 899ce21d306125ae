"""No stranded app, on the fake two-site world: ``standby operation abort`` before the point of no
return, its refusal after it, a failover that takes over a failed operation's hold (and is refused
without the acknowledgement, or for a live one), the hold's states, and each failure's next command."""

from __future__ import annotations

import pytest

from drkit.domain import crypto
from drkit.domain.abort import judge_hold, next_commands
from drkit.domain.errors import IntegrityError, OperationFailed, PreconditionFailed
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.abort import abort_operation, plan_abort
from drkit.jobs.drill import prepare_drill, run_drill, start_drill
from drkit.jobs.operations import (
    Timeouts,
    approve,
    execute,
    hold_of,
    list_journals,
    prepare,
    read_journal,
    resume,
)
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, NS, PVC, FakeDr, fake_dr
from tests.unit.test_operations import FAST, KEY, Killed, _approval, _backup, _canary, _read, _start

APP = "nexus"


def _held(dr: FakeDr) -> str | None:
    return read_placement(dr.world, dr.world.config.app(APP)).record.operation


def _only_source_serves(dr: FakeDr, source: str = "site-a") -> None:
    """The app runs and is writable on ``source`` only, its images primary there only, no hold."""
    assert dr.mirror.images[IMAGE].primary == {s: s == source for s in ("site-a", "site-b")}
    assert {s for s, n in dr.nexus.items() if n.running} == {source}
    assert dr.nexus[source].writable()
    assert _held(dr) is None


def _failed_relocate(dr: FakeDr) -> Journal:
    """A relocate that stops Nexus, demotes site-a and fails at restore-volumes: site-b's apiserver
    refuses the restore (403). (A missing or wrong key no longer gets this far: the plan tries it.)"""
    _canary(dr, "site-a", "before.bin")
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")

    def refuse_the_restore(_j: Journal, record: StepRecord) -> None:
        if record.name == "restore-volumes" and record.outcome == "running":
            dr.clusters["site-b"].fail_next(1, status=403)

    with pytest.raises(OperationFailed, match="step restore-volumes on site-b failed") as caught:
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=refuse_the_restore)
    assert f"standby operation abort {journal.op_id}" in caught.value.hint
    assert f"standby operation resume {journal.op_id}" in caught.value.hint
    assert not any(n.running for n in dr.nexus.values())  # stranded: running nowhere
    return read_journal(dr.world, journal.op_id)


# ------------------------------------------------------------------------------------------ abort


def test_a_relocate_failed_at_restore_volumes_is_aborted_back_to_the_source_writable_there() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    assert _held(dr) == failed.op_id
    done = abort_operation(dr.world, failed.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert done.status == "aborted" and done.abort is not None and done.abort.status == "completed"
    assert [(s.name, s.outcome) for s in done.abort.steps][:3] == [
        ("abort-promote-source", "done"),
        ("abort-start-source", "done"),
        ("abort-smoke-source", "done"),
    ]
    assert done.abort.steps[3].name == "abort-tidy-target"
    _only_source_serves(dr)
    assert _read(dr, "site-a", "before.bin")
    assert all(not forced for _, _, forced in dr.mirror.promoted) and [
        s for s, _, _ in dr.mirror.promoted
    ] == ["site-a"]
    assert ("v1", "PersistentVolumeClaim", NS, PVC) not in dr.clusters[
        "site-b"
    ].objects  # restored claim removed
    again = abort_operation(dr.world, failed.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert again.status == "aborted" and again == read_journal(dr.world, failed.op_id)
    with pytest.raises(PreconditionFailed, match="aborted"):
        resume(dr.world, failed.op_id, key=KEY, timeouts=FAST)
    relocate = execute(
        dr.world, _start(dr, "relocate", "site-b"), key=KEY, timeouts=FAST
    )  # the app is free again
    assert relocate.status == "completed"


def test_an_abort_needs_the_typed_approval_and_changes_nothing_without_it() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    with pytest.raises(PreconditionFailed, match=r"type the app's name \('nexus'\)"):
        abort_operation(dr.world, failed.op_id, _approval(), "nexsu", key=KEY, timeouts=FAST)
    assert read_journal(dr.world, failed.op_id).abort is None and _held(dr) == failed.op_id


def test_past_the_targets_promote_an_abort_is_refused_naming_resume_and_the_failover_back() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")
    dr.nexus_fail_writes.add("site-b")  # start-target never becomes writable
    with pytest.raises(OperationFailed, match="step start-target") as caught:
        execute(dr.world, journal, key=KEY, timeouts=FAST)
    assert "past the point of no return" in caught.value.hint
    plan, _ = plan_abort(dr.world, journal.op_id)
    assert "past its point of no return (step promote-target is done)" in plan.refusal
    assert f"standby operation resume {journal.op_id}" in plan.refusal
    assert f"standby failover --app nexus --to site-a --take-over {journal.op_id}" in plan.refusal
    with pytest.raises(PreconditionFailed, match="point of no return"):
        abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert dr.mirror.images[IMAGE].primary == {"site-a": False, "site-b": True}  # nothing re-promoted
    assert _held(dr) == journal.op_id


def test_a_promote_that_happened_but_was_not_journaled_is_seen_and_refused() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")

    def die_after_promote(j: Journal, r: object) -> None:
        if getattr(r, "name", "") == "promote-target" and getattr(r, "outcome", "") == "running":
            dr.mirror.site("site-b").promote("replicapool", IMAGE)  # the act, then the process dies
            raise Killed

    with pytest.raises(Killed):
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=die_after_promote)
    dr.clock.advance(3600)
    plan, _ = plan_abort(dr.world, journal.op_id)
    assert "site-b's images are primary" in plan.refusal
    dr.lose("site-b")
    plan, _ = plan_abort(dr.world, journal.op_id)
    assert "whether it is primary is unknown" in plan.refusal


def test_a_live_operation_is_not_aborted_until_it_goes_stale() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")

    def die(j: Journal, r: object) -> None:
        if getattr(r, "name", "") == "demote-source" and getattr(r, "outcome", "") == "done":
            raise Killed

    with pytest.raises(Killed):
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=die)
    with pytest.raises(PreconditionFailed, match=r"is live .*stale after 90s"):
        abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    dr.clock.advance(89)  # the step's limit (30 s) and the grace (60 s) not yet over
    with pytest.raises(PreconditionFailed, match="is live"):
        abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    dr.clock.advance(2)
    done = abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert done.status == "aborted"
    _only_source_serves(dr)


def test_the_target_promoted_during_an_abort_stops_it_before_two_primaries() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    dr.clock.advance(3600)

    def promote_b(j: Journal, r: object) -> None:
        if getattr(r, "name", "") == "abort-promote-source" and getattr(r, "outcome", "") == "running":
            dr.mirror.site("site-b").promote("replicapool", IMAGE)  # someone promotes B by hand meanwhile

    with pytest.raises(OperationFailed, match="primary on site-b: the target was promoted"):
        abort_operation(dr.world, failed.op_id, _approval(), APP, key=KEY, timeouts=FAST, on_step=promote_b)
    assert dr.mirror.images[IMAGE].primary == {"site-a": False, "site-b": True}  # never two primaries
    assert read_journal(dr.world, failed.op_id).abort.status == "failed"  # type: ignore[union-attr]


# -------------------------------------------------------------------------------------- take-over


def test_a_failover_takes_over_a_failed_relocate_only_with_the_acknowledgement() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    dr.lose("site-a")
    plan = prepare(dr.world, APP, "failover", "site-b", key=KEY).plan
    (hold,) = [c for c in plan.refusals if c.name == "no other operation"]
    assert f"failed relocate {failed.op_id} holds the app" in hold.detail
    assert f"standby failover --app nexus --to site-b --take-over {failed.op_id}" in hold.detail
    wrong = prepare(
        dr.world, APP, "failover", "site-b", take_over="relocate-20261130T080000Z-000000", key=KEY
    ).plan
    assert any("--take-over names relocate-20261130T080000Z-000000" in c.detail for c in wrong.refusals)
    prepared = prepare(dr.world, APP, "failover", "site-b", take_over=failed.op_id, key=KEY)
    assert prepared.plan.runnable and prepared.plan.takes_over == failed.op_id
    acks = {"data_loss": True, "unfenced": True}
    with pytest.raises(
        PreconditionFailed, match=f"acknowledge taking over the hold of operation {failed.op_id}"
    ):
        approve(dr.world, prepared, _approval(**acks), APP)
    assert _held(dr) == failed.op_id
    journal = approve(dr.world, prepared, _approval(take_over=True, **acks), APP)
    assert journal.took_over == failed.op_id
    done = execute(dr.world, journal, key=KEY, timeouts=FAST)
    assert done.status == "completed", done.error
    old = read_journal(dr.world, failed.op_id)
    assert old.taken_over_by == journal.op_id and "taken over by" in old.error
    assert _held(dr) is None and {s for s, n in dr.nexus.items() if n.running} == {"site-b"}
    assert _read(dr, "site-b", "before.bin")
    with pytest.raises(PreconditionFailed, match="taken over"):
        resume(dr.world, failed.op_id, key=KEY, timeouts=FAST)


def test_a_live_operation_is_never_taken_over() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    live = _start(dr, "relocate", "site-b")  # approved, its process about to run its first step
    plan = prepare(dr.world, APP, "failover", "site-b", take_over=live.op_id, key=KEY).plan
    (hold,) = [c for c in plan.refusals if c.name == "no other operation"]
    assert "is live" in hold.detail and not plan.runnable
    dr.clock.advance(361)  # the default step limit and the grace: its process is gone
    assert hold_of(dr.world, read_placement(dr.world, dr.world.config.app(APP)).record).state == "stale"  # type: ignore[union-attr]
    assert prepare(dr.world, APP, "failover", "site-b", take_over=live.op_id, key=KEY).plan.runnable


def test_hold_states_from_the_journal() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    now = dr.clock.now()
    limits = Timeouts()
    limit = lambda s: limits.of(s) if s else limits.default  # noqa: E731
    assert judge_hold(failed.op_id, "relocate", failed, now, limit).state == "failed"
    assert judge_hold(failed.op_id, "relocate", None, now, limit).state == "abandoned"
    running = failed.model_copy(update={"status": "running"})
    assert judge_hold(failed.op_id, "relocate", running, now, limit).state == "live"
    from datetime import timedelta

    assert judge_hold(failed.op_id, "relocate", running, now + timedelta(seconds=361), limit).state == "stale"
    done = failed.model_copy(update={"status": "completed"})
    assert judge_hold(failed.op_id, "relocate", done, now, limit).state == "abandoned"


def test_every_failed_step_names_its_next_commands() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    plan = prepare(dr.world, APP, "relocate", "site-b", key=KEY).plan
    op = "relocate-20261130T080000Z-abcdef"
    assert next_commands(plan, op, "demote-source").endswith(f"standby operation abort {op}")
    stall = next_commands(plan, op, "promote-target")
    assert f"standby failover --app nexus --to site-b --take-over {op}" in stall and "abort" in stall
    after = next_commands(plan, op, "smoke-target")
    assert f"standby operation resume {op}" in after
    assert f"standby failover --app nexus --to site-a --take-over {op}" in after


# ------------------------------------------------------------------------------------------ drill


def test_a_drill_whose_cleanup_failed_is_released_by_abort() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    journal = start_drill(dr.world, prepare_drill(dr.world, APP, "promote", key=KEY), _approval(), APP)

    def failing(ex: object, name: str) -> object:
        if name == "cleanup-volumes":
            dr.clusters["site-b"].fail_next(10_000)
        return ex.step(name)  # type: ignore[attr-defined]

    outcome = run_drill(dr.world, journal, key=KEY, timeouts=FAST, step=failing)
    assert outcome.cleanup_error and _held(dr) == journal.op_id
    dr.clusters["site-b"]._failures.clear()
    plan = prepare(dr.world, APP, "relocate", "site-b", key=KEY).plan
    assert any(f"standby operation abort {journal.op_id}" in c.detail for c in plan.refusals)
    dr.clock.advance(3600)
    abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert _held(dr) is None
    _only_source_serves(dr)


def test_operation_list_shows_every_operation_with_its_state() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    abort_operation(dr.world, failed.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    ok = execute(dr.world, _start(dr, "relocate", "site-b"), key=KEY, timeouts=FAST)
    states = {j.op_id: j.status for j in list_journals(dr.world, APP)}
    assert states == {failed.op_id: "aborted", ok.op_id: "completed"}


# -------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    """The ``standby`` commands over the fake two-site world; site-b's apiserver refuses to create
    PersistentVolumeClaims, so a relocate fails part-way, at restore-volumes, after site-a was stopped."""
    import base64

    from standby import ops_cli

    dr = fake_dr()
    _backup(dr, "site-a")
    dr.clusters["site-b"].uncreatable = {"PersistentVolumeClaim"}
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    return dr


def _cli(*argv: str) -> tuple[int, list[str]]:
    from typer.testing import CliRunner

    from standby.cli import app

    result = CliRunner().invoke(app, list(argv))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output.strip().splitlines()


def test_cli_exit_codes_tell_held_from_refused_and_abort_and_list_lead_out(cli_world: FakeDr) -> None:
    code, lines = _cli("relocate", "--app", "nexus", "--to", "site-b", "--yes")
    op_id = lines[-1]
    assert code == 3 and op_id.startswith("relocate-")  # failed part-way: the app is held
    assert any(f"standby operation abort {op_id}" in ln for ln in lines)
    code, lines = _cli("operation", "list", "--app", "nexus")
    assert code == 0 and lines == [
        f"{op_id}  relocate site-a -> site-b: failed, holds the app (failed: failed at step restore-volumes)"
    ]
    code, lines = _cli("relocate", "--app", "nexus", "--to", "site-b", "--yes")
    assert code == 1 and f"standby operation abort {op_id}" in lines[-1]  # refused: nothing changed
    code, lines = _cli("operation", "abort", op_id, "--yes")
    assert code == 0 and lines[-1] == op_id, lines
    assert any(ln.endswith(": aborted") for ln in lines)
    _only_source_serves(cli_world)
    code, lines = _cli("operation", "abort", op_id, "--yes")  # again: converged, nothing to do
    assert code == 0 and "Nothing to do" in "\n".join(lines)
    code, lines = _cli("operation", "list", "--app", "nexus")
    assert lines == [f"{op_id}  relocate site-a -> site-b: aborted"]


def test_cli_failover_takes_over_with_the_named_operation(
    cli_world: FakeDr, monkeypatch: pytest.MonkeyPatch
) -> None:

    _, lines = _cli("relocate", "--app", "nexus", "--to", "site-b", "--yes")
    op_id = lines[-1]
    cli_world.lose("site-a")
    cli_world.clusters["site-b"].uncreatable = set()
    acks = ("--acknowledge-data-loss", "--acknowledge-unfenced")
    code, lines = _cli("failover", "--app", "nexus", "--to", "site-b", "--yes", *acks)
    assert code == 1 and f"--take-over {op_id}" in lines[-1]
    code, lines = _cli("failover", "--app", "nexus", "--to", "site-b", "--yes", *acks, "--take-over", op_id)
    assert code == 0 and "took over" in "\n".join(lines)
    assert read_journal(cli_world.world, op_id).taken_over_by == lines[-1]
    code, lines = _cli("operation", "abort", op_id, "--yes")
    assert code == 1 and "taken over" in lines[-1]


def test_past_the_promote_the_named_failover_back_takes_over_and_brings_the_app_home() -> None:
    dr = fake_dr()
    sha = _canary(dr, "site-a", "before.bin")
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")
    dr.nexus_fail_writes.add("site-b")  # start-target never becomes writable on B: past the promote
    with pytest.raises(OperationFailed) as caught:
        execute(dr.world, journal, key=KEY, timeouts=FAST)
    back = f"standby failover --app nexus --to site-a --take-over {journal.op_id}"
    assert back in caught.value.hint
    prepared = prepare(dr.world, APP, "failover", "site-a", take_over=journal.op_id, key=KEY)
    plan = prepared.plan
    assert plan.runnable, plan.refusals
    assert (plan.source, plan.target, plan.backup_site, plan.forced) == ("site-b", "site-a", "site-a", ())
    taken = approve(dr.world, prepared, _approval(take_over=True), APP)
    done = execute(dr.world, taken, key=KEY, timeouts=FAST)
    assert done.status == "completed", done.error
    image = dr.mirror.images[IMAGE]
    assert image.primary == {"site-a": True, "site-b": False} and not image.split
    assert [(s, f) for s, _, f in dr.mirror.promoted] == [("site-b", False), ("site-a", False)]
    assert {s for s, n in dr.nexus.items() if n.running} == {"site-a"}
    assert _read(dr, "site-a", "before.bin") == sha
    assert _held(dr) is None and read_journal(dr.world, journal.op_id).taken_over_by == done.op_id


def test_a_failover_takes_over_a_drill_whose_cleanup_failed_when_the_primary_is_lost() -> None:
    dr = fake_dr()
    sha = _canary(dr, "site-a", "before.bin")
    _backup(dr, "site-a")
    journal = start_drill(dr.world, prepare_drill(dr.world, APP, "isolated", key=KEY))

    def failing(ex: object, name: str) -> object:
        if name == "scratch-cleanup-volumes":
            dr.clusters["site-b"].fail_next(10_000)
        return ex.step(name)  # type: ignore[attr-defined]

    outcome = run_drill(dr.world, journal, key=KEY, timeouts=FAST, step=failing)
    assert outcome.cleanup_error and _held(dr) == journal.op_id
    dr.clusters["site-b"]._failures.clear()
    dr.lose("site-a")
    prepared = prepare(dr.world, APP, "failover", "site-b", take_over=journal.op_id, key=KEY)
    assert prepared.plan.runnable, prepared.plan.refusals
    acks = {"data_loss": True, "unfenced": True, "take_over": True}
    done = execute(dr.world, approve(dr.world, prepared, _approval(**acks), APP), key=KEY, timeouts=FAST)
    assert done.status == "completed" and done.took_over == journal.op_id
    assert {s for s, n in dr.nexus.items() if n.running} == {"site-b"}
    assert _read(dr, "site-b", "before.bin") == sha
    assert _held(dr) is None


def test_a_failback_failed_before_its_promote_is_aborted_back_to_the_survivor() -> None:
    from tests.unit.test_operations import _scenario

    dr = _scenario("failback")  # site-b serves after a failover; site-a is back, stale
    journal = approve(dr.world, prepare(dr.world, APP, "failback", None, key=KEY), _approval(), APP)

    def hold_back(j: Journal, r: object) -> None:
        if getattr(r, "name", "") == "demote-source":
            dr.mirror.paused = True  # site-b's demotion snapshot never reaches site-a

    with pytest.raises(OperationFailed, match="step wait-demotion on site-a failed"):
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=hold_back)
    dr.mirror.resume_syncs()
    done = abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert done.status == "aborted"
    _only_source_serves(dr, "site-b")
    assert _read(dr, "site-b", "canary.bin")
    assert dr.mirror.site("site-a").image_status("replicapool", IMAGE)["state"] == "up+replaying"


def test_a_failback_failed_past_its_promote_fails_over_back_to_the_survivor_by_take_over() -> None:
    from tests.unit.test_operations import _scenario

    dr = _scenario("failback")
    journal = approve(dr.world, prepare(dr.world, APP, "failback", None, key=KEY), _approval(), APP)

    def refuse_the_start(_j: Journal, record: StepRecord) -> None:
        if record.name == "start-target" and record.outcome == "running":
            dr.clusters["site-a"].fail_next(1, status=403)  # A's apiserver refuses the workload

    with pytest.raises(OperationFailed, match="step start-target on site-a failed") as caught:
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=refuse_the_start)
    back = f"standby failover --app nexus --to site-b --take-over {journal.op_id}"
    assert back in caught.value.hint
    with pytest.raises(PreconditionFailed, match="point of no return"):
        abort_operation(dr.world, journal.op_id, _approval(), APP, key=KEY, timeouts=FAST)
    prepared = prepare(dr.world, APP, "failover", "site-b", take_over=journal.op_id, key=KEY)
    assert prepared.plan.runnable and prepared.plan.source == "site-a", prepared.plan.refusals
    done = execute(
        dr.world, approve(dr.world, prepared, _approval(take_over=True), APP), key=KEY, timeouts=FAST
    )
    assert done.status == "completed", done.error
    _only_source_serves(dr, "site-b")
    assert _read(dr, "site-b", "canary.bin") and not dr.mirror.images[IMAGE].split
    assert all(not forced for _, _, forced in dr.mirror.promoted)


def test_an_abort_without_the_key_that_opens_the_kept_workload_is_refused_before_any_change() -> None:
    dr = fake_dr()
    failed = _failed_relocate(dr)
    with pytest.raises(PreconditionFailed, match=f"abort of {failed.op_id} refused, nothing changed"):
        abort_operation(dr.world, failed.op_id, _approval(), APP, key=None, timeouts=FAST)
    assert read_journal(dr.world, failed.op_id).abort is None and _held(dr) == failed.op_id
    # another key does not even open the journal, which the operation's key signed
    with pytest.raises(IntegrityError, match=f"integrity check failed: journal of operation {failed.op_id}"):
        abort_operation(
            dr.world, failed.op_id, _approval(), APP, key=crypto.MasterKey(bytes(range(1, 33))), timeouts=FAST
        )
    dr.world.key = KEY
    assert read_journal(dr.world, failed.op_id).abort is None and _held(dr) == failed.op_id
    assert dr.mirror.promoted == []
