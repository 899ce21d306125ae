"""Relocate and failover of a VM app through the real operation engine (the shared runbook, plan,
journal and steps) on the fake two-site world: the steps reach the VMs through the OpenNebula
driver, the images through ``rbd``; the VMs run on B afterwards, one image per disk and one VM per
VM, and a re-run after a kill converges."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from drkit.domain.errors import PreconditionFailed
from drkit.domain.operations import Approval
from drkit.jobs.backup import back_up
from drkit.jobs.operations import OperationResult, Timeouts, list_journals, prepare, resume, run_operation
from drkit.jobs.requests import BackupRequest, FailbackRequest, FailoverRequest, RelocateRequest
from drkit.jobs.world import read_placement
from drkit.testing.vm_dr import FakeVmDr, fake_vm_dr
from tests.unit.test_opennebula_backup import KEY, SECRET
from tests.unit.test_run_operation import Recorder


def _approved(**acks: bool) -> Recorder:
    approval = Approval(approver="tester", reason="unit", at=datetime(2026, 11, 30, tzinfo=UTC), **acks)
    return Recorder((approval, "vms"))


def _run(dr: FakeVmDr, kind: str, hooks: Recorder) -> OperationResult:
    request = (FailoverRequest if kind == "failover" else RelocateRequest)(app="vms", to="site-b")
    return run_operation(dr.world, request, kind, "site-b", hooks, key=lambda: KEY)  # type: ignore[arg-type]


def _on_b(dr: FakeVmDr) -> list[tuple[str, bool, str]]:
    fe = dr.fronts["site-b"]
    vms = [fe.vm(i) for i in sorted(fe.vms_)]
    return [(vm.name, vm.running, str(vm.user_template.get("STANDBY_ORIGIN"))) for vm in vms]


def _world() -> FakeVmDr:
    dr = fake_vm_dr()
    back_up(dr.world, BackupRequest(app="vms"), key=KEY, clock=dr.clock)
    return dr


def test_a_vm_app_relocates_through_the_operation_engine() -> None:
    dr = _world()
    result = _run(dr, "relocate", _approved())
    assert result.journal is not None and result.journal.status == "completed"
    steps = {s.name: s.outcome for s in result.journal.steps}
    assert steps["stop-source"] == steps["start-target"] == steps["smoke-target"] == "done"
    assert [vm.state for vm in dr.fronts["site-a"].vms_labelled("STANDBY_APP", "vms")] == ["POWEROFF"] * 2
    assert _on_b(dr) == [("web-0", True, "vms/0"), ("db-0", True, "vms/1")]
    assert sorted(i.source for i in dr.fronts["site-b"].images()) == ["one/one-0", "one/one-1"]
    assert read_placement(dr.world, dr.world.config.app("vms")).record.primary == "site-b"
    assert sorted(image for site, image, _ in dr.mirror.promoted if site == "site-b") == ["one-0", "one-1"]
    for data in dr.store.objects.values():  # backups, journal, placement: db-0's password never in clear
        assert SECRET.encode() not in bytes(data) and base64.b64encode(SECRET.encode()) not in bytes(data)


def test_a_vm_app_fails_over_with_site_a_lost() -> None:
    dr = _world()
    dr.lose("site-a")
    result = _run(dr, "failover", _approved(data_loss=True, unfenced=True))
    assert result.journal is not None and result.journal.status == "completed"
    assert _on_b(dr) == [("web-0", True, "vms/0"), ("db-0", True, "vms/1")]
    assert [(image, forced) for site, image, forced in dr.mirror.promoted] == [
        ("one-0", True),
        ("one-1", True),
    ]


class Killed(BaseException):
    """The process dies."""


@pytest.mark.parametrize("kind", ["relocate", "failover"])
def test_an_operation_killed_inside_the_start_converges_when_resumed(kind: str) -> None:
    dr = _world()
    if kind == "failover":
        dr.lose("site-a")
    fe = dr.fronts["site-b"]
    allocate_vm = fe.allocate_vm
    calls = {"n": 0}

    def dies_on_the_second_vm(template: str, *, hold: bool = False) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return allocate_vm(template, hold=hold)

    fe.allocate_vm = dies_on_the_second_vm  # type: ignore[method-assign]
    with pytest.raises(Killed):
        _run(dr, kind, _approved(data_loss=True, unfenced=True))
    fe.allocate_vm = allocate_vm  # type: ignore[method-assign]
    (left,) = list_journals(dr.world, "vms")
    assert left.status != "completed"
    done = resume(dr.world, left.op_id, key=KEY, timeouts=Timeouts(default=30.0, poll=1.0))
    assert done.status == "completed"
    assert _on_b(dr) == [("web-0", True, "vms/0"), ("db-0", True, "vms/1")]
    assert sorted(i.source for i in fe.images()) == ["one/one-0", "one/one-1"]
    promoted = [image for site, image, _ in dr.mirror.promoted if site == "site-b"]
    assert sorted(promoted) == ["one-0", "one-1"]  # exactly one promote per image


def test_a_failback_brings_the_vms_home_resuming_the_originals() -> None:
    dr = _world()
    dr.lose("site-a")
    assert _run(dr, "failover", _approved(data_loss=True, unfenced=True)).journal is not None
    dr.regain("site-a")
    request = FailbackRequest(app="vms")
    result = run_operation(
        dr.world, request, "failback", None, _approved(data_loss=True, unfenced=True), key=lambda: KEY
    )
    assert result.journal is not None and result.journal.status == "completed"
    home = dr.fronts["site-a"].vms_labelled("STANDBY_APP", "vms")
    assert [(vm.id, vm.running) for vm in home] == [(0, True), (1, True)]  # no copy made at home
    # the copies on B are terminated, as the guide's failback does; their images stay registered
    assert {vm.state for vm in dr.fronts["site-b"].vms_labelled("STANDBY_APP", "vms")} <= {"DONE"}
    assert {s.name: s.outcome for s in result.journal.steps}["tidy-source"] == "done"
    assert len(dr.fronts["site-a"].images()) == 3 and len(dr.fronts["site-b"].images()) == 2
    assert read_placement(dr.world, dr.world.config.app("vms")).record.primary == "site-a"


GUARD = "the app's saved definition fits the target"


def _guard(dr: FakeVmDr, kind: str = "relocate") -> tuple[bool, str]:
    plan = prepare(dr.world, "vms", kind, "site-b", key=KEY).plan  # type: ignore[arg-type]
    (check,) = [c for c in plan.checks if c.name == GUARD]
    return check.ok, check.detail


def test_the_plan_proves_the_vms_can_be_created_on_the_target_before_any_change() -> None:
    ok, detail = _guard(_world())
    assert ok, detail


def test_a_nic_without_a_mapping_under_refuse_fails_the_plan_and_nothing_changes() -> None:
    dr = fake_vm_dr(unmapped_nic="refuse")
    back_up(dr.world, BackupRequest(app="vms"), key=KEY, clock=dr.clock)
    ok, detail = _guard(dr)
    assert not ok and "db-0" in detail and "backend-a" in detail, detail
    with pytest.raises(PreconditionFailed, match=GUARD):
        _run(dr, "relocate", _approved())
    assert dr.mirror.promoted == [] and _on_b(dr) == []
    assert [vm.state for vm in dr.fronts["site-a"].vms_labelled("STANDBY_APP", "vms")] == ["ACTIVE"] * 2


def test_an_image_name_taken_on_the_target_by_another_source_fails_the_plan() -> None:
    dr = _world()
    taken = dr.fronts["site-a"].image(0).name  # web-0's disk: its name, on B, over another image
    dr.fronts["site-b"].allocate_image(
        f'NAME = "{taken}"\nTYPE = "DATABLOCK"\nSOURCE = "one/elsewhere"\nSIZE = "16"\nFORMAT = "raw"', 100
    )
    ok, detail = _guard(dr, "failover")
    assert not ok and taken in detail and "one/elsewhere" in detail, detail


def test_after_a_failback_a_second_failover_makes_new_copies_on_the_images_it_registered() -> None:
    dr = _world()
    dr.lose("site-a")
    _run(dr, "failover", _approved(data_loss=True, unfenced=True))
    dr.regain("site-a")
    failback = run_operation(
        dr.world,
        FailbackRequest(app="vms"),
        "failback",
        None,
        _approved(data_loss=True, unfenced=True),
        key=lambda: KEY,
    )
    assert failback.journal is not None and failback.journal.status == "completed"
    back_up(dr.world, BackupRequest(app="vms"), key=KEY, clock=dr.clock)
    dr.lose("site-a")
    again = _run(dr, "failover", _approved(data_loss=True, unfenced=True))
    assert again.journal is not None and again.journal.status == "completed"
    running = [vm for vm in dr.fronts["site-b"].vms_labelled("STANDBY_APP", "vms") if vm.running]
    assert sorted(vm.name for vm in running) == ["db-0", "web-0"]
    assert len(dr.fronts["site-b"].images()) == 2  # the images registered by the first failover, reused
