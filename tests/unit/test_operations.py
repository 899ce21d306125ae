"""Relocate, failover and failback on the fake two-site world (drkit.testing.dr): guards, outcomes,
the kill-and-re-run matrix at every step boundary, S3 faults, and a second operation refused."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from drkit.domain import crypto
from drkit.domain.errors import ConfigError, Conflict, PreconditionFailed, StandbyError, TransientError
from drkit.domain.operations import Approval, Journal, StepRecord
from drkit.jobs.backup import run_backup
from drkit.jobs.operations import Timeouts, approve, execute, prepare, read_journal, resume
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, NEXUS, NS, FakeDr, fake_dr

KEY = crypto.MasterKey(bytes(range(32)))
FAST = Timeouts(default=30.0, poll=1.0)


class Killed(BaseException):
    """The process dies (not an error any code handles)."""


def _backup(dr: FakeDr, site: str) -> str:
    app = dr.world.config.app("nexus")
    assert read_placement(dr.world, app).record.primary == site
    b = dr.world.bundle(site)
    return run_backup(app, b.site, b.cluster, b.store, key=KEY, clock=dr.clock).run_id


def _approval(**acks: bool) -> Approval:
    return Approval(approver="tester", reason="unit", at=datetime(2026, 11, 30, tzinfo=UTC), **acks)


def _start(dr: FakeDr, kind: str, target: str | None, **acks: bool) -> Journal:
    prepared = prepare(dr.world, "nexus", kind, target, key=KEY)  # type: ignore[arg-type]
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    return approve(dr.world, prepared, _approval(**acks), "nexus")


def _canary(dr: FakeDr, site: str, name: str) -> str:
    api = dr.nexus[site]
    api.given_password = api.password
    api.ensure_raw_repository("canary")
    data = f"canary {name}".encode()
    api.upload("canary", name, data)
    return hashlib.sha256(data).hexdigest()


def _read(dr: FakeDr, site: str, name: str) -> str:
    return hashlib.sha256(dr.nexus[site].download("canary", name)).hexdigest()


def _sync(dr: FakeDr, primary: str) -> None:
    dr.mirror.site(primary).mirror_snapshot("replicapool", IMAGE)


def _home(dr: FakeDr) -> None:
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.primary == "site-a"
    assert dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}
    assert set(dr.nexus) == {"site-a"}


# -------------------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize("control", ["volume-replication", "rbd"])
def test_relocate_there_and_back_loses_nothing_and_forces_nothing(control: str) -> None:
    dr = fake_dr(control=control)
    sha = _canary(dr, "site-a", "one.bin")
    _backup(dr, "site-a")
    done = execute(dr.world, _start(dr, "relocate", "site-b"), key=KEY, timeouts=FAST)
    assert done.status == "completed" and done.error == ""
    assert _read(dr, "site-b", "one.bin") == sha
    assert dr.mirror.promoted == [("site-b", IMAGE, False)]
    assert set(dr.nexus) == {"site-b"}
    assert not dr.clusters["site-a"].objects.get(
        ("v1", "PersistentVolumeClaim", NS, f"nexus-data-{NEXUS}-nxrm-ha-0")
    )
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.primary == "site-b"
    _backup(dr, "site-b")
    back = execute(dr.world, _start(dr, "relocate", "site-a"), key=KEY, timeouts=FAST)
    assert back.status == "completed"
    assert _read(dr, "site-a", "one.bin") == sha
    assert all(not forced for _, _, forced in dr.mirror.promoted)
    _home(dr)


def test_failover_with_the_primary_lost_then_failback_brings_the_outage_writes_home() -> None:
    dr = fake_dr()
    before = _canary(dr, "site-a", "before.bin")
    _backup(dr, "site-a")
    _sync(dr, "site-a")
    dr.mirror.paused = True
    _canary(dr, "site-a", "lost.bin")  # written after the last complete snapshot: lost by the failover
    _sync(dr, "site-a")
    dr.lose("site-a")
    dr.mirror.paused = False
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    assert prepared.plan.needs_data_loss_ack and prepared.plan.needs_unfenced_ack
    with pytest.raises(PreconditionFailed, match="acknowledge the data loss"):
        approve(dr.world, prepared, _approval(), "nexus")
    journal = approve(dr.world, prepared, _approval(data_loss=True, unfenced=True), "nexus")
    done = execute(dr.world, journal, key=KEY, timeouts=FAST)
    assert done.status == "completed"
    assert dr.mirror.promoted == [("site-b", IMAGE, True)]
    assert _read(dr, "site-b", "before.bin") == before
    with pytest.raises(StandbyError):
        _read(dr, "site-b", "lost.bin")
    during = _canary(dr, "site-b", "during.bin")
    _backup(dr, "site-b")
    dr.regain("site-a")  # A comes back still primary: a silent split-brain
    assert prepare(dr.world, "nexus", "relocate", "site-a", key=KEY).plan.refusals
    back = execute(dr.world, _start(dr, "failback", None), key=KEY, timeouts=FAST)
    assert back.status == "completed", back.error
    _home(dr)
    assert _read(dr, "site-a", "during.bin") == during
    assert dr.mirror.images[IMAGE].split == set()


# ---------------------------------------------------------------------------------------- guards


def test_unknown_app_or_site_is_a_config_error_naming_the_known_ones() -> None:
    dr = fake_dr()
    with pytest.raises(ConfigError, match="unknown app 'nope'; known apps: nexus"):
        prepare(dr.world, "nope", "relocate", "site-b")
    with pytest.raises(ConfigError, match="unknown site 'site-z'; known sites: site-a, site-b"):
        prepare(dr.world, "nexus", "relocate", "site-z", key=KEY)


def test_a_target_already_primary_is_nothing_to_do() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    plan = prepare(dr.world, "nexus", "relocate", "site-a", key=KEY).plan
    assert plan.nothing_to_do == "nexus already runs on site-a (placement epoch 0)"
    assert not plan.runnable
    failback = prepare(dr.world, "nexus", "failback", None, key=KEY).plan
    assert "already runs on its home site" in failback.nothing_to_do


def test_split_brain_is_refused_naming_the_images_and_the_way_out() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.mirror.site("site-b").promote("replicapool", IMAGE, force=True)
    plan = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY).plan
    (split,) = [c for c in plan.refusals if c.name == "no split-brain"]
    assert f"{IMAGE} is primary on site-a and site-b" in split.detail
    assert "standby failback --app nexus" in split.detail and "rbd mirror image resync" in split.detail


def test_relocate_with_a_site_down_is_refused_pointing_to_failover() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.lose("site-a")
    plan = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY).plan
    (why,) = [c for c in plan.refusals if c.name == "planned move possible"]
    assert "site-a unreachable" in why.detail and "standby failover --app nexus --to site-b" in why.detail


def test_approval_needs_the_typed_app_name_an_approver_and_a_reason() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    prepared = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY)
    with pytest.raises(PreconditionFailed, match=r"type the app's name \('nexus'\)"):
        approve(dr.world, prepared, _approval(), "nexsu")
    blank = Approval(approver=" ", reason="", at=datetime(2026, 11, 30, tzinfo=UTC))
    with pytest.raises(PreconditionFailed, match="name the approver; give a reason"):
        approve(dr.world, prepared, blank, "nexus")
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.epoch == 0


def test_a_second_operation_on_the_same_app_is_refused() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    racing = prepare(
        dr.world, "nexus", "relocate", "site-b", key=KEY
    )  # planned before the first one took the app
    first = _start(dr, "relocate", "site-b")
    plan = prepare(dr.world, "nexus", "failover", "site-b", key=KEY).plan
    assert any(c.name == "no other operation" and first.op_id in c.detail for c in plan.refusals)
    with pytest.raises(Conflict, match=f"held by relocate operation {first.op_id}"):
        approve(dr.world, racing, _approval(), "nexus")
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation == first.op_id


# ----------------------------------------------------------------------------------- S3 faults


def test_s3_unreachable_before_the_start_refuses_and_changes_nothing() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    dr.store.unreachable = True
    with pytest.raises(TransientError, match="no object store answered for the placement of app nexus"):
        prepare(dr.world, "nexus", "relocate", "site-b", key=KEY)
    dr.store.unreachable = False
    _home(dr)


def test_s3_lost_during_the_operation_stops_at_the_next_step_boundary_and_resume_finishes() -> None:
    dr = fake_dr()
    _backup(dr, "site-a")
    journal = _start(dr, "relocate", "site-b")

    def cut(j: Journal, record: StepRecord) -> None:
        if record.name == "demote-source" and record.outcome == "done":
            dr.store.unreachable = True

    with pytest.raises(StandbyError, match=r"step wait-demotion on site-b failed.*unreachable"):
        execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=cut)
    assert dr.mirror.promoted == []  # stopped before the promote
    dr.store.unreachable = False
    written = read_journal(dr.world, journal.op_id)
    assert written.step("demote-source").outcome == "done"
    done = resume(dr.world, journal.op_id, key=KEY, timeouts=FAST)
    assert done.status == "completed"
    assert dr.mirror.promoted == [("site-b", IMAGE, False)]


# -------------------------------------------------------------------------------- kill matrix


def _boundaries(kind: str) -> int:
    dr = _scenario(kind)
    seen: list[str] = []
    execute(dr.world, _begin(dr, kind), key=KEY, timeouts=FAST, on_step=lambda j, r: seen.append(r.name))
    return len(seen)


def _scenario(kind: str) -> FakeDr:
    dr = fake_dr()
    _canary(dr, "site-a", "canary.bin")
    _backup(dr, "site-a")
    if kind in ("failover", "failback"):
        _sync(dr, "site-a")
        dr.lose("site-a")
    if kind == "failback":
        execute(
            dr.world, _start(dr, "failover", "site-b", data_loss=True, unfenced=True), key=KEY, timeouts=FAST
        )
        _backup(dr, "site-b")
        dr.regain("site-a")
        dr.mirror.promoted.clear()
    return dr


def _begin(dr: FakeDr, kind: str) -> Journal:
    acks = {"data_loss": True, "unfenced": True} if kind == "failover" else {}
    return _start(dr, kind, None if kind == "failback" else "site-b", **acks)


MATRIX: dict[str, tuple[int, int]] = {}


@pytest.mark.parametrize("kind", ["relocate", "failover", "failback"])
def test_killed_at_every_step_boundary_then_resumed_converges_and_never_promotes_twice(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    total = _boundaries(kind)
    converged = 0
    for boundary in range(total):
        dr = _scenario(kind)
        journal = _begin(dr, kind)
        count = [0]

        def die(j: Journal, r: StepRecord, at: int = boundary, n: list[int] = count) -> None:
            n[0] += 1
            if n[0] == at + 1:
                raise Killed

        with pytest.raises(Killed):
            execute(dr.world, journal, key=KEY, timeouts=FAST, on_step=die)
        done = resume(dr.world, journal.op_id, key=KEY, timeouts=FAST)
        target = "site-a" if kind == "failback" else "site-b"
        ok = (
            done.status == "completed"
            and [s for s, _, _ in dr.mirror.promoted] == [target]
            and _read(dr, target, "canary.bin") is not None
            and read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
            and {s for s, n in dr.nexus.items() if n.running} == {target}
        )
        converged += ok
        assert ok, (kind, boundary, done.status, dr.mirror.promoted, set(dr.nexus))
    MATRIX[kind] = (converged, total)
    with capsys.disabled():
        print(f"\nkill-and-re-run matrix: {kind}: {converged}/{total} boundaries converged, one promote each")
    assert total >= 10
