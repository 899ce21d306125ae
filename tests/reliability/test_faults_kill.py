"""The process killed at every step boundary of relocate, failover, failback, both drill modes and abort: a re-run converges.

One test per boundary (so the table counts what ran). The scenarios and checks are those of the
unit suites (``tests/unit/test_operations.py``, ``tests/unit/test_drill.py``), imported, not copied:
an operation killed after its k-th journal write is resumed and must complete with exactly one
promote, the canary readable on the target and the placement released; a drill killed at a step
must be recorded as interrupted there, and ``drill-cleanup`` must leave B a healthy replica; a
relocate or failover killed at any boundary before its target's promote is aborted, and the abort
killed at each of its own boundaries and re-run: it converges to the app writable on the source,
the hold released, and no promote but the source's own (never two primaries).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.abort import abort_operation
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.operations import execute, list_journals, read_journal, resume
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from tests.unit import test_drill as drills
from tests.unit import test_operations as ops

KINDS = ("relocate", "failover", "failback")
BOUNDARIES = [(kind, k) for kind in KINDS for k in range(ops._boundaries(kind))]


@pytest.mark.parametrize(("kind", "boundary"), BOUNDARIES, ids=[f"{k}-{b}" for k, b in BOUNDARIES])
def test_operation_killed_after_boundary_resumes_to_one_promote(kind: str, boundary: int) -> None:
    dr = ops._scenario(kind)
    journal = ops._begin(dr, kind)
    seen = [0]

    def die(_j: Journal, _r: StepRecord) -> None:
        seen[0] += 1
        if seen[0] == boundary + 1:
            raise ops.Killed

    with pytest.raises(ops.Killed):
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=die)
    done = resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST)
    target = "site-a" if kind == "failback" else "site-b"
    assert done.status == "completed", done.error
    assert [s for s, _, _ in dr.mirror.promoted] == [target]
    assert ops._read(dr, target, "canary.bin")
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    assert {s for s, n in dr.nexus.items() if n.running} == {target}


PROMOTE_STEPS = (
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
DRILL_KILLS = [("promote", s) for s in PROMOTE_STEPS] + [("isolated", s) for s in drills.ISOLATED_STEPS]


@pytest.mark.parametrize(("mode", "step"), DRILL_KILLS, ids=[f"{m}-{s}" for m, s in DRILL_KILLS])
def test_drill_killed_at_step_is_recorded_and_cleaned_up(mode: str, step: str) -> None:
    dr = drills._ready()
    with pytest.raises(drills.Killed):
        drills._drill(dr, on_step=drills._at(step, "running", drills._die), mode=mode)  # type: ignore[arg-type]
    drill_cleanup(dr.world, "nexus", key=drills.KEY, timeouts=drills.FAST)
    last = [j for j in list_journals(dr.world, "nexus") if j.kind == "drill"][-1]
    assert f"interrupted at step {step}" in last.error and last.status == "failed"
    assert drills._healthy_and_clean(dr) if mode == "promote" else drills._isolated_clean(dr)
    if mode == "isolated":
        assert dr.mirror.promoted == []


# ------------------------------------------------------------------------------------------ abort

ABORT_KINDS = ("relocate", "failover")


def _up(kind: str) -> FakeDr:
    """Both sites up: the operation fences (stops and demotes) the source, so an abort has all to undo."""
    dr = fake_dr()
    ops._canary(dr, "site-a", "canary.bin")
    ops._backup(dr, "site-a")
    ops._sync(dr, "site-a")
    return dr


def _kill_at(boundary: int) -> tuple[list[int], Callable[[Journal, StepRecord], None]]:
    count = [0]

    def die(_j: Journal, _r: StepRecord) -> None:
        count[0] += 1
        if count[0] == boundary + 1:
            raise ops.Killed

    return count, die


def _before_point(kind: str) -> int:
    """How many step boundaries an operation crosses before its target's promote acts."""
    dr = _up(kind)
    seen: list[tuple[str, str]] = []
    execute(
        dr.world,
        ops._start(dr, kind, "site-b"),
        key=ops.KEY,
        timeouts=ops.FAST,
        on_step=lambda j, r: seen.append((r.name, r.outcome)),
    )
    return seen.index(("promote-target", "running")) + 1


def _killed_operation(kind: str, boundary: int) -> tuple[FakeDr, str]:
    dr = _up(kind)
    journal = ops._start(dr, kind, "site-b")
    _, die = _kill_at(boundary)
    with pytest.raises(ops.Killed):
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=die)
    dr.clock.advance(3600)  # its process is gone: the operation goes stale
    return dr, journal.op_id


def _abort(dr: FakeDr, op_id: str, on_step: Callable[[Journal, StepRecord], None] | None = None) -> Journal:
    return abort_operation(
        dr.world, op_id, ops._approval(), "nexus", key=ops.KEY, timeouts=ops.FAST, on_step=on_step
    )


ABORT_BOUNDARIES = [(kind, k) for kind in ABORT_KINDS for k in range(_before_point(kind))]


@pytest.mark.parametrize(
    ("kind", "boundary"), ABORT_BOUNDARIES, ids=[f"{k}-{b}" for k, b in ABORT_BOUNDARIES]
)
def test_operation_killed_before_its_promote_is_aborted_and_a_killed_abort_re_run_converges(
    kind: str, boundary: int
) -> None:
    dr, op_id = _killed_operation(kind, boundary)
    counted: list[StepRecord] = []
    _abort(dr, op_id, on_step=lambda j, r: counted.append(r))
    runs = [(None, dr, op_id)] + [(j, *_killed_operation(kind, boundary)) for j in range(len(counted))]
    for abort_boundary, world, op in runs:
        if abort_boundary is not None:
            _, die = _kill_at(abort_boundary)
            with pytest.raises(ops.Killed):
                _abort(world, op, on_step=die)
            done = _abort(world, op)
        else:
            done = read_journal(world.world, op)
        assert done.status == "aborted" and done.abort is not None and done.abort.status == "completed", done
        assert all(site == "site-a" and not forced for site, _, forced in world.mirror.promoted), (
            world.mirror.promoted
        )
        assert world.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}
        assert {s for s, n in world.nexus.items() if n.running} == {"site-a"} and world.nexus[
            "site-a"
        ].writable()
        assert ops._read(world, "site-a", "canary.bin")
        assert read_placement(world.world, world.world.config.app("nexus")).record.operation is None
