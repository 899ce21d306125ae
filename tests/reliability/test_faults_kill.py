"""The process killed at every step boundary of relocate, failover, failback and both drill modes: a re-run converges.

One test per boundary (so the table counts what ran). The scenarios and checks are those of the
unit suites (``tests/unit/test_operations.py``, ``tests/unit/test_drill.py``), imported, not copied:
an operation killed after its k-th journal write is resumed and must complete with exactly one
promote, the canary readable on the target and the placement released; a drill killed at a step
must be recorded as interrupted there, and ``drill-cleanup`` must leave B a healthy replica.
"""

from __future__ import annotations

import pytest

from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.drill import drill_cleanup, list_journals
from drkit.jobs.operations import execute, resume
from drkit.jobs.world import read_placement
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


PROMOTE_STEPS = ("canary", "drill-snapshot", "restore-volumes", "drill-promote", "start-target", "drill-smoke",
                 "cleanup-app", "cleanup-volumes", "demote-drill", "resync-drill", "drill-healthy")  # fmt: skip
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
