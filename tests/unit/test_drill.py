"""The drill on the fake two-site world: a passing drill and its report, the gate, and the fault
matrix (a failure at each step and a killed process: the drill fails naming the step, and its
cleanup or a later drill-cleanup leaves the secondary a healthy replica with nothing behind)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.domain import crypto
from drkit.domain.drill import Mode
from drkit.domain.errors import StandbyError
from drkit.domain.operations import Approval, Journal, StepRecord
from drkit.jobs.backup import run_backup
from drkit.jobs.drill import (
    DrillOutcome,
    leftovers,
    prepare_drill,
    run_drill,
    start_drill,
)
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.drill_report import drill_reports
from drkit.jobs.operations import Executor, Timeouts, list_journals
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, NS, PASSWORD, FakeDr, fake_dr

KEY = crypto.MasterKey(bytes(range(160, 192)))
APPROVAL = Approval(approver="tester", reason="promote-mode drill", at=datetime(2026, 11, 30, tzinfo=UTC))
"""The typed approval a promote-mode drill needs (an isolated drill ignores it)."""
FAST = Timeouts(default=30.0, poll=1.0)


class Killed(BaseException):
    """The process dies."""


def _ready(**knobs: object) -> FakeDr:
    dr = fake_dr(**knobs)  # type: ignore[arg-type]
    b = dr.world.bundle("site-a")
    run_backup(dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    return dr


def _drill(
    dr: FakeDr, on_step: Callable[[Journal, StepRecord], None] | None = None, mode: Mode = "promote"
) -> DrillOutcome:
    journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", mode, key=KEY), APPROVAL, "nexus")
    assert journal.status == "approved", journal.error
    return run_drill(dr.world, journal, key=KEY, timeouts=FAST, on_step=on_step)


def _healthy_and_clean(dr: FakeDr) -> bool:
    image = dr.mirror.images[IMAGE]
    return (
        image.primary == {"site-a": True, "site-b": False}
        and not image.split
        and dr.mirror.site("site-b").image_status("replicapool", IMAGE)["state"] == "up+replaying"
        and leftovers(dr.world, dr.world.config.app("nexus"), "site-b") == ()
        and read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
        and {s for s, n in dr.nexus.items() if n.running} == {"site-a"}
    )


def test_a_drill_proves_the_canary_on_b_and_leaves_b_a_healthy_replica() -> None:
    dr = _ready()
    outcome = _drill(dr)
    report = outcome.report
    assert report.passed, [c for c in report.checks if not c.ok]
    assert report.canary["verified"] and report.canary["verdict"] == "same sha256"
    assert report.smoke["round_trip"] and report.smoke["login"]
    assert report.rto_promotion_to_writable_s is not None and report.rpo_achieved_s is not None
    assert report.protection_gap_s is not None and report.cleanup_s is not None
    assert report.final_mirror_state == {IMAGE: "up+replaying"}
    assert report.availability.probes > 0 and report.availability.writable == report.availability.probes
    assert sorted(outcome.stored) == ["html", "json", "md", "png"] or set(outcome.stored) >= {
        "json",
        "md",
        "html",
    }
    assert _healthy_and_clean(dr)
    assert [f for s, _, f in dr.mirror.promoted] == [True]  # B force-promoted once, then demoted and resynced


def test_two_drills_in_a_row_both_pass_and_the_second_has_the_first_in_its_history() -> None:
    dr = _ready()
    first = _drill(dr)
    dr.clock.advance(3600)
    dr.mirror.site("site-a").mirror_snapshot("replicapool", IMAGE)  # the schedule's snapshot, an hour on
    second = _drill(dr)
    assert first.report.passed and second.report.passed
    assert [r.drill_id for r in drill_reports(dr.world, "nexus")] == [
        first.report.drill_id,
        second.report.drill_id,
    ]
    md = dr.store.get(second.stored["md"]).decode()
    assert first.report.drill_id in md


def test_the_gate_refuses_with_reasons() -> None:
    dr = _ready()
    dr.clusters["site-b"].seed(
        {
            "apiVersion": "operator.alaudadevops.io/v1alpha1",
            "kind": "Nexus",
            "metadata": {"name": "nexus-ddrs", "namespace": "nexus-dr"},
            "spec": {},
        }
    )
    for mode in ("promote", "isolated"):
        journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", mode, key=KEY))  # type: ignore[arg-type]
        assert journal.status == "refused"
        assert (
            "nothing of the app on the secondary: Nexus/nexus-ddrs; run: standby drill cleanup --app nexus"
            in journal.error
        )
        assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    with pytest.raises(StandbyError, match="unknown"):
        prepare_drill(dr.world, "nexus", "bogus")  # type: ignore[arg-type]


def test_no_secret_value_in_the_store_journals_or_reports() -> None:
    dr = _ready()
    _drill(dr)
    needles = [PASSWORD.encode(), base64.b64encode(PASSWORD.encode())]
    assert dr.store.objects
    for key, data in dr.store.objects.items():
        for needle in needles:
            assert needle not in data, key
    for journal in list_journals(dr.world, "nexus"):
        text = journal.model_dump_json()
        assert PASSWORD not in text and needles[1].decode() not in text


# --------------------------------------------------------------------------------- fault matrix


def _at(step: str, outcome: str, action: Callable[[], None]) -> Callable[[Journal, StepRecord], None]:
    def hook(journal: Journal, record: StepRecord) -> None:
        if record.name == step and record.outcome == outcome:
            action()

    return hook


def _corrupt_canary(dr: FakeDr) -> None:
    repos = dr.mirror.images[IMAGE].data["site-b"].setdefault("repositories", {})
    for assets in repos.values():
        for path in assets:
            if "standby-drill" in path:
                assets[path] = b"corrupted on the secondary"


def _faults() -> dict[str, tuple[str, Callable[[FakeDr], Callable[[Journal, StepRecord], None] | None]]]:
    """fault -> (the step that must be named, how to inject it)."""
    return {
        "Nexus not writable on B": ("start-target", lambda dr: dr.nexus_fail_writes.add("site-b")),  # type: ignore[func-returns-value]
        "canary checksum mismatch": (
            "drill-smoke",
            lambda dr: _at("start-target", "done", lambda: _corrupt_canary(dr)),
        ),
        "promote failing": ("drill-promote", lambda dr: dr.mirror.fail_promote.add("site-b")),  # type: ignore[func-returns-value]
        "apiserver 5xx": (
            "restore-volumes",
            lambda dr: _at("drill-snapshot", "done", lambda: dr.clusters["site-b"].fail_next(10_000)),
        ),
        "S3 down for the report": (
            "",
            lambda dr: _at("drill-healthy", "done", lambda: setattr(dr.store, "unreachable", True)),
        ),
        **{
            f"killed at {step}": (step, lambda dr, step=step: _at(step, "running", _die))
            for step in (
                "canary",
                "drill-snapshot",
                "restore-volumes",
                "drill-promote",
                "start-target",
                "drill-smoke",
                "cleanup-app",
                "cleanup-volumes",
                "demote-drill",
                "resync-drill",
                "drill-healthy",
            )
        },
    }


def _die() -> None:
    raise Killed


def _repair(dr: FakeDr) -> None:
    dr.clusters["site-b"]._failures.clear()
    dr.store.unreachable = False
    dr.mirror.fail_promote.clear()
    dr.nexus_fail_writes.clear()


def test_fault_matrix_each_failure_is_named_and_the_secondary_ends_a_healthy_replica(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = []
    for fault, (step, inject) in _faults().items():
        dr = _ready()
        hook = inject(dr)
        try:
            outcome = _drill(dr, on_step=hook)
            named = outcome.report.failed_step == step if step else bool(outcome.store_error)
            failed = not outcome.report.passed or bool(outcome.store_error)
        except Killed:
            named, failed = True, True
        _repair(dr)
        if not _healthy_and_clean(dr):
            drill_cleanup(dr.world, "nexus", key=KEY, timeouts=FAST)
        last = [j for j in list_journals(dr.world, "nexus") if j.kind == "drill"][-1]
        if fault.startswith("killed"):
            named = f"interrupted at step {step}" in last.error and last.status == "failed"
        ok = failed and named and _healthy_and_clean(dr) and last.status in ("failed", "completed")
        rows.append((fault, step or "(report)", ok))
        assert ok, (fault, step, last.status, [(s.name, s.outcome) for s in last.steps])
    with capsys.disabled():
        print(f"\ndrill fault matrix: {sum(ok for *_, ok in rows)}/{len(rows)} faults named and cleaned up")
        for fault, step, ok in rows:
            print(f"  {'ok ' if ok else 'BAD'} {fault:28} -> {step}")
    assert json.dumps(rows)


# ------------------------------------------------------------------------------- isolated mode

SCRATCH_NS = f"{NS}-drill"
SCRATCH_IMAGE = f"{IMAGE}-drill"


def _isolated_clean(dr: FakeDr) -> bool:
    b = dr.clusters["site-b"]
    return (
        _healthy_and_clean(dr)
        and ("site-b", SCRATCH_IMAGE) not in dr.mirror.scratch
        and not [k for k in b.objects if k[2] == SCRATCH_NS]  # emptied
        and ("v1", "Namespace", "", SCRATCH_NS) in b.objects  # not deleted: installed once, with its Role
        and not [k for k in b.objects if k[1] == "PersistentVolume"]
    )


def test_isolated_is_the_default_mode() -> None:
    dr = _ready()
    prepared = prepare_drill(dr.world, "nexus", key=KEY)
    names = [s.name for s in prepared.plan.steps]
    assert "scratch-copy" in names and "drill-promote" not in names and not prepared.plan.forced


def test_an_isolated_drill_proves_the_canary_on_a_scratch_copy_and_never_promotes_b() -> None:
    dr = _ready()
    seen: dict[str, object] = {}

    def watch(journal: Journal, record: StepRecord) -> None:
        if record.name == "drill-smoke" and record.outcome == "done":
            b = dr.clusters["site-b"]
            seen["pvc"] = b.objects.get(
                ("v1", "PersistentVolumeClaim", SCRATCH_NS, "nexus-data-nexus-ddrs-nxrm-ha-0")
            )
            seen["pvs"] = [o for k, o in b.objects.items() if k[1] == "PersistentVolume"]
            seen["app-ns-nexus"] = [k for k in b.objects if k[1] == "Nexus" and k[2] == NS]
            seen["replaying"] = dr.mirror.site("site-b").image_status("replicapool", IMAGE)["state"]

    outcome = _drill(dr, on_step=watch, mode="isolated")
    report = outcome.report
    assert report.passed, [c for c in report.checks if not c.ok]
    assert report.mode == "isolated"
    assert report.canary["verified"] and report.smoke["round_trip"] and report.smoke["login"]
    assert report.rto_promotion_to_writable_s is not None and report.rpo_achieved_s is not None
    assert report.recovery_point is not None and report.protection_gap_s == 0.0
    assert dr.mirror.promoted == []  # B's mirrored image never promoted
    assert seen["replaying"] == "up+replaying"  # mirroring went on while Nexus ran on the copy
    assert seen["app-ns-nexus"] == []
    (pv,) = seen["pvs"]  # type: ignore[misc]
    assert pv["metadata"]["name"].endswith("-drill")
    assert pv["spec"]["csi"]["volumeAttributes"]["imageName"] == SCRATCH_IMAGE
    assert (
        pv["spec"].get("claimRef", {"namespace": SCRATCH_NS})["namespace"] == SCRATCH_NS
    )  # sanitize drops it
    assert seen["pvc"]["spec"]["volumeName"] == pv["metadata"]["name"]  # type: ignore[index]
    assert [s.name for s in report.steps if s.phase == "cleanup"] == [
        "scratch-cleanup-app",
        "scratch-cleanup-volumes",
        "scratch-remove-image",
        "drill-healthy",
    ]
    assert _isolated_clean(dr)


def test_two_isolated_drills_in_a_row_pass() -> None:
    dr = _ready()
    first = _drill(dr, mode="isolated")
    dr.clock.advance(3600)
    dr.mirror.site("site-a").mirror_snapshot("replicapool", IMAGE)
    second = _drill(dr, mode="isolated")
    assert first.report.passed and second.report.passed
    assert dr.mirror.promoted == [] and _isolated_clean(dr)


def test_remove_image_refuses_a_mirrored_image() -> None:
    dr = _ready()
    with pytest.raises(StandbyError, match="mirrored"):
        dr.mirror.site("site-b").remove_image("replicapool", IMAGE)
    assert IMAGE in dr.mirror.images


ISOLATED_STEPS = (
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


@pytest.mark.parametrize("step", ISOLATED_STEPS)
def test_an_isolated_drill_killed_at_any_step_is_cleaned_up_by_drill_cleanup(step: str) -> None:
    dr = _ready()
    with pytest.raises(Killed):
        _drill(dr, on_step=_at(step, "running", _die), mode="isolated")
    drill_cleanup(dr.world, "nexus", key=KEY, timeouts=FAST)
    last = [j for j in list_journals(dr.world, "nexus") if j.kind == "drill"][-1]
    assert f"interrupted at step {step}" in last.error and last.status == "failed"
    assert dr.mirror.promoted == [] and _isolated_clean(dr)


def test_isolated_faults_are_named() -> None:
    dr = _ready()
    dr.nexus_fail_writes.add("site-b")
    outcome = _drill(dr, mode="isolated")
    assert outcome.report.failed_step == "scratch-start"
    assert dr.mirror.promoted == [] and _isolated_clean(dr)
    dr = _ready()
    outcome = _drill(dr, on_step=_at("scratch-start", "done", lambda: _corrupt_scratch(dr)), mode="isolated")
    assert outcome.report.failed_step == "drill-smoke" and not outcome.report.passed
    assert _isolated_clean(dr)


def _corrupt_scratch(dr: FakeDr) -> None:
    repos = dr.mirror.scratch[("site-b", SCRATCH_IMAGE)]["data"].setdefault("repositories", {})
    for assets in repos.values():
        for path in assets:
            if "standby-drill" in path:
                assets[path] = b"corrupted on the scratch copy"


def test_every_step_goes_through_the_callers_step_runner_and_a_failed_cleanup_is_told_apart() -> None:
    dr = _ready()
    journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", "promote", key=KEY), APPROVAL, "nexus")
    ran: list[str] = []

    def runner(ex: Executor, name: str) -> object:  # as the flow's Prefect task does
        ran.append(name)
        if name == "cleanup-volumes":
            dr.clusters["site-b"].fail_next(10_000)
        return ex.step(name)

    outcome = run_drill(dr.world, journal, key=KEY, timeouts=FAST, step=runner)
    assert ran[: ran.index("cleanup-volumes") + 1] == [s.name for s in journal.plan.steps][: len(ran)]
    assert "cleanup-volumes" in outcome.cleanup_error and not outcome.report.passed
    dr.clusters["site-b"]._failures.clear()
    drill_cleanup(dr.world, "nexus", key=KEY, timeouts=FAST)
    assert _healthy_and_clean(dr)
    assert _drill(dr).cleanup_error == ""


def test_an_app_without_a_nexus_api_is_refused_by_the_gate_not_midway() -> None:
    """The canary goes through the Nexus API: the gate says so for an ``http`` app, naming what does work."""
    from drkit.config import parse_config
    from drkit.domain.drill import make_drill_plan

    dr = fake_dr()
    nexus = prepare_drill(dr.world, "nexus", "isolated", key=KEY)
    assert all(c.name != "canary possible" for c in nexus.plan.refusals)
    root = Path(__file__).resolve().parents[2]
    example = (root / "standby.example.yaml").read_text(encoding="utf-8")
    web = parse_config(example, source=Path("standby.yaml"), base=root).app("web")
    for mode in ("promote", "isolated"):
        plan = make_drill_plan(web, nexus.facts, mode)  # type: ignore[arg-type]
        refused = [c for c in plan.refusals if c.name == "canary possible"]
        assert (
            refused
            and "checks.kind is 'http'" in refused[0].detail
            and "backup, restore" in refused[0].detail
        )
        assert not plan.runnable


@pytest.mark.parametrize("mode", ["isolated", "promote"])
def test_a_drill_with_a_key_that_does_not_open_the_backup_is_refused_at_the_gate(mode: str) -> None:
    dr = _ready()
    wrong = crypto.MasterKey(bytes(range(1, 33)))
    for key, said in ((wrong, f"the key given has id {wrong.key_id}"), (None, "but no backup key was given")):
        journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", mode, key=key))  # type: ignore[arg-type]
        assert (
            journal.status == "refused"
            and "backup key opens the backup" in journal.error
            and said in journal.error
        )
        assert f"load the key whose id is {KEY.key_id}" in journal.error
    assert (dr.mirror.promoted == [] and dr.mirror.scratch == {}) or not dr.mirror.scratch
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None


def test_an_isolated_drill_is_refused_before_any_change_when_its_namespace_is_not_installed() -> None:
    dr = _ready()
    del dr.clusters["site-b"].objects[("v1", "Namespace", "", SCRATCH_NS)]
    prepared = prepare_drill(dr.world, "nexus", "isolated", key=KEY)
    (check,) = [c for c in prepared.plan.checks if c.name == "drill namespace installed"]
    assert not check.ok and f"namespace {SCRATCH_NS} does not exist on site-b" in check.detail
    journal = start_drill(dr.world, prepared)
    assert journal.status == "refused" and "drill namespace installed" in journal.error
    assert ("v1", "Namespace", "", SCRATCH_NS) not in dr.clusters[
        "site-b"
    ].objects  # never created by Standby
    assert dr.mirror.scratch == {}
    promote = prepare_drill(dr.world, "nexus", "promote", key=KEY)  # promote mode does not use it
    assert "drill namespace installed" not in [c.name for c in promote.plan.checks]


def test_objects_left_in_the_drill_namespace_are_leftovers_and_drill_cleanup_empties_it() -> None:
    dr = _ready()
    dr.clusters["site-b"].seed(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray", "namespace": SCRATCH_NS}}
    )
    assert leftovers(dr.world, dr.world.config.app("nexus"), "site-b") == (
        f"ConfigMap/stray in {SCRATCH_NS}",
    )
    journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", "isolated", key=KEY))
    assert journal.status == "refused" and "ConfigMap/stray in nexus-dr-drill" in journal.error
