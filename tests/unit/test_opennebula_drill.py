"""Isolated drills of a VM app on the fake two-site VM world, through the real drill engine (plan,
journal, steps, cleanup, report): the scratch copies of the VMs' disks are registered on B's
front-end as non-persistent images and started there on the drill network, marked as the drill's;
the canary is reported as not checked; cleanup, after a pass, a failure or a kill, leaves no drill
VM, image or scratch RBD image behind."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from drkit.domain.drill import canary_check
from drkit.domain.errors import ConfigError, StandbyError
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.backup import back_up
from drkit.jobs.drill import DrillOutcome, leftovers, prepare_drill, run_drill, start_drill
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.drill_report import drill_reports
from drkit.jobs.drivers import drill_without_canary
from drkit.jobs.operations import Timeouts, list_journals
from drkit.jobs.requests import BackupRequest
from drkit.jobs.world import read_placement
from drkit.testing.vm_dr import VM_IMAGES, FakeVmDr, fake_vm_dr
from drkit.views.drill_report import report_markdown
from tests.unit.test_opennebula_backup import KEY, SECRET

FAST = Timeouts(default=30.0, poll=1.0)
STEPS = (  # canary and scratch-restore have nothing to do for a VM app: skipped, never running
    "canary",
    "drill-snapshot",
    "scratch-copy",
    "scratch-restore",
    "scratch-start",
    "drill-smoke",
    "scratch-cleanup-app",
    "scratch-cleanup-volumes",
    "scratch-remove-image",
    "drill-healthy",
)


class Killed(BaseException):
    """The process dies."""


def _world(**opennebula: object) -> FakeVmDr:
    dr = fake_vm_dr(**opennebula)
    back_up(dr.world, BackupRequest(app="vms"), key=KEY, clock=dr.clock)
    return dr


def _drill(dr: FakeVmDr, on_step: Callable[[Journal, StepRecord], None] | None = None) -> DrillOutcome:
    journal = start_drill(dr.world, prepare_drill(dr.world, "vms", "isolated", key=KEY))
    assert journal.status == "approved", journal.error
    return run_drill(dr.world, journal, key=KEY, timeouts=FAST, on_step=on_step)


def _drill_objects_on_b(dr: FakeVmDr) -> list[str]:
    fe = dr.fronts["site-b"]
    vms = [f"VM {vm.id} {vm.name}" for vm in (fe.vm(i) for i in sorted(fe.vms_)) if vm.state != "DONE"]
    images = [f"image {i.id} {i.name}" for i in fe.images()]
    scratch = [f"rbd {name}" for site, name in dr.mirror.scratch if site == "site-b"]
    return vms + images + scratch


def _clean(dr: FakeVmDr) -> bool:
    app = dr.world.config.app("vms")
    return (
        _drill_objects_on_b(dr) == []
        and leftovers(dr.world, app, "site-b") == ()
        and read_placement(dr.world, app).record.operation is None
        and [vm.state for vm in dr.fronts["site-a"].vms_labelled("STANDBY_APP", "vms")] == ["ACTIVE"] * 2
        and not dr.mirror.promoted
    )


def test_an_isolated_vm_drill_passes_and_its_cleanup_leaves_nothing_on_b() -> None:
    dr = _world(drill_network="drill-b")
    made: dict[str, object] = {}

    def look(journal: Journal, record: StepRecord) -> None:
        if record.name == "drill-smoke" and record.outcome == "done":
            fe = dr.fronts["site-b"]
            made["vms"] = [
                (
                    vm.name,
                    vm.running,
                    vm.user_template.get("STANDBY_DRILL"),
                    vm.user_template.get("STANDBY_APP"),
                )
                for vm in fe.vms_labelled("STANDBY_DRILL", "vms")
            ]
            made["images"] = sorted((i.name, i.source, i.persistent) for i in fe.images())
            made["nics"] = [n.network for vm in fe.vms_labelled("STANDBY_DRILL", "vms") for n in vm.nics]

    outcome = _drill(dr, on_step=look)
    report = outcome.report
    assert report.passed, [(c.name, c.value) for c in report.checks if not c.ok]
    assert report.mode == "isolated" and outcome.journal.status == "completed"
    assert made["vms"] == [("web-0-drill", True, "vms", None), ("db-0-drill", True, "vms", None)]
    assert made["images"] == [
        ("db-0-disk-drill", "one/one-1-drill", False),
        ("web-0-disk-drill", "one/one-0-drill", False),
    ]
    assert made["nics"] and set(made["nics"]) == {"drill-b"}  # every NIC on the drill network
    canary = next(c for c in report.checks if c.name == "canary readable with the same sha256")
    assert canary.ok and canary.value.startswith("not checked: ") and "VM runtime" in canary.value
    assert "web-0-drill" in report.smoke["started"] and "db-0-drill" in report.smoke["started"]
    text = report_markdown(report, [])
    assert "not checked" in text and "web-0-drill" in text
    assert _clean(dr)
    assert [r.drill_id for r in drill_reports(dr.world, "vms")] == [report.drill_id]  # the same history
    for data in dr.store.objects.values():  # journals, reports: db-0's context password never in clear
        assert SECRET.encode() not in bytes(data) and base64.b64encode(SECRET.encode()) not in bytes(data)
    second = _drill(dr)
    assert second.report.passed, [(c.name, c.value) for c in second.report.checks if not c.ok]
    assert _clean(dr)
    assert {r.drill_id for r in drill_reports(dr.world, "vms")} == {report.drill_id, second.report.drill_id}


def test_without_a_drill_network_the_drill_vms_have_no_nic_and_the_journal_says_so() -> None:
    dr = _world()
    nics: list[int] = []

    def look(journal: Journal, record: StepRecord) -> None:
        if record.name == "scratch-start" and record.outcome == "done":
            nics.extend(len(vm.nics) for vm in dr.fronts["site-b"].vms_labelled("STANDBY_DRILL", "vms"))

    outcome = _drill(dr, on_step=look)
    assert outcome.report.passed and nics == [0, 0]
    start = next(s for s in outcome.journal.steps if s.name == "scratch-start")
    decisions = start.observed.get("decisions") or []
    assert any("every NIC dropped" in d and "drill_network" in d for d in decisions), decisions
    assert _clean(dr)


def test_a_drill_network_the_secondary_lacks_refuses_the_drill_before_any_change() -> None:
    dr = _world(drill_network="no-such-network")
    plan = prepare_drill(dr.world, "vms", "isolated", key=KEY).plan
    refused = [c for c in plan.refusals if c.name == "the drill's copy fits the secondary"]
    assert refused and "no-such-network" in refused[0].detail and not plan.runnable
    journal = start_drill(dr.world, prepare_drill(dr.world, "vms", "isolated", key=KEY))
    assert journal.status == "refused" and _clean(dr)


def test_a_drill_failing_midway_names_the_step_and_is_cleaned_up() -> None:
    dr = _world(drill_network="drill-b")

    def lose_the_network(journal: Journal, record: StepRecord) -> None:
        if record.name == "scratch-copy" and record.outcome == "done":
            del dr.fronts["site-b"].vnets_[1]  # drill-b goes away after the plan

    outcome = _drill(dr, on_step=lose_the_network)
    assert not outcome.report.passed and outcome.report.failed_step == "scratch-start"
    failed = next(s for s in outcome.journal.steps if s.name == "scratch-start")
    assert "drill-b" in failed.error and "app vms" in failed.error
    assert _clean(dr)


@pytest.mark.parametrize("step", [s for s in STEPS if s not in ("canary", "scratch-restore")])
@pytest.mark.parametrize("outcome", ["running", "done"])
def test_a_vm_drill_killed_at_a_step_boundary_is_cleaned_up_by_drill_cleanup(step: str, outcome: str) -> None:
    dr = _world(drill_network="drill-b")

    def die(journal: Journal, record: StepRecord) -> None:
        if record.name == step and record.outcome == outcome:
            raise Killed

    with pytest.raises(Killed):
        _drill(dr, on_step=die)
    drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)
    last = [j for j in list_journals(dr.world, "vms") if j.kind == "drill"][-1]
    assert last.status in ("failed", "completed")
    assert _clean(dr), _drill_objects_on_b(dr)
    drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)  # again: converges, nothing to do
    assert _clean(dr)


def test_a_fresh_drill_cleanup_removes_what_any_drill_of_the_app_left() -> None:
    dr = _world(drill_network="drill-b")
    with pytest.raises(Killed):
        _drill(
            dr, on_step=lambda j, r: _raise() if r.name == "drill-smoke" and r.outcome == "running" else None
        )
    assert _drill_objects_on_b(dr)  # VMs, images and scratch copies stand
    drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)  # finishes the interrupted drill
    assert _clean(dr)
    drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)  # a fresh cleanup on a clean B: nothing to do
    assert _clean(dr)


def test_a_drill_cleanup_says_what_it_could_not_remove() -> None:
    dr = _world(drill_network="drill-b")
    with pytest.raises(Killed):
        _drill(
            dr, on_step=lambda j, r: _raise() if r.name == "drill-smoke" and r.outcome == "running" else None
        )
    dr.fronts["site-b"].running = False
    with pytest.raises(StandbyError) as caught:
        drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)
    assert "scratch-cleanup-app" in str(caught.value) or "site-b" in str(caught.value)
    dr.fronts["site-b"].running = True
    images = dr.fronts["site-b"].images_
    for image in images.values():
        image.locked = True
    with pytest.raises(StandbyError) as refused:
        drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)
    message = refused.value.message
    assert "could not remove from site-b" in message and message.count("locked") >= len(images) == 2
    assert "web-0-disk-drill" in message and "db-0-disk-drill" in message
    for image in images.values():
        image.locked = False
    drill_cleanup(dr.world, "vms", key=KEY, timeouts=FAST)
    assert _clean(dr)


def test_promote_mode_is_refused_for_a_vm_app_naming_the_app_and_the_mode() -> None:
    dr = _world()
    with pytest.raises(ConfigError) as caught:
        prepare_drill(dr.world, "vms", "promote", key=KEY)
    assert "app vms" in caught.value.message and "'promote'" in caught.value.message
    assert "isolated" in caught.value.hint
    assert _drill_objects_on_b(dr) == [] and not dr.mirror.promoted


def test_the_plan_of_a_vm_drill_names_its_vms_and_needs_no_drill_namespace() -> None:
    dr = _world(drill_network="drill-b")
    plan = prepare_drill(dr.world, "vms", "isolated", key=KEY).plan
    assert plan.runnable, [(c.name, c.detail) for c in plan.refusals]
    assert all(c.name != "drill namespace installed" for c in plan.checks)
    canary = next(c for c in plan.checks if c.name == "canary possible")
    assert canary.ok and canary.detail.startswith("not checked: ")
    titles = {s.name: s.title for s in plan.steps}
    assert "VMs marked STANDBY_DRILL" in titles["scratch-start"]
    assert all(f"{i}-drill" in titles["scratch-copy"] for i in VM_IMAGES)


def test_the_every_app_drill_knows_from_the_configuration_which_apps_drill_without_a_canary() -> None:
    dr = _world()
    app = dr.world.config.app("vms")
    assert "VM runtime" in drill_without_canary(app)
    assert canary_check(app, drill_without_canary(app)).ok and not canary_check(app).ok


def _raise() -> None:
    raise Killed
