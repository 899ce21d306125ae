"""Nexus errors during a relocate, a failover and a drill: never writable on the target, a wrong admin password, a corrupted canary.

The operation stops at the step that needs Nexus, naming it; once Nexus is repaired the resume
completes. A drill whose Nexus fails is reported failed at that step, and B ends a healthy replica.
"""

from __future__ import annotations

import pytest

from drkit.domain.errors import StandbyError
from drkit.jobs.operations import execute, resume
from tests.reliability.helpers import assert_one_line
from tests.unit import test_drill as drills
from tests.unit import test_operations as ops


@pytest.mark.parametrize("kind", ["relocate", "failover"])
def test_nexus_never_writable_on_the_target_then_resume_converges(kind: str) -> None:
    dr = ops._scenario(kind)
    journal = ops._begin(dr, kind)
    dr.nexus_fail_writes.add("site-b")
    with pytest.raises(StandbyError) as info:
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST)
    line = assert_one_line(str(info.value), "site-b")
    assert "start-target" in line or "smoke" in line, line
    dr.nexus_fail_writes.clear()
    for nexus in dr.nexus.values():
        nexus.fail_writes = False
    done = resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST)
    assert done.status == "completed", done.error
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]


DRILL_NEXUS = {
    "never writable on B (promote)": (
        "promote",
        "start-target",
        lambda dr: dr.nexus_fail_writes.add("site-b"),
    ),
    "never writable on B (isolated)": (
        "isolated",
        "scratch-start",
        lambda dr: dr.nexus_fail_writes.add("site-b"),
    ),
    "canary corrupted on B": (
        "promote",
        "drill-smoke",
        lambda dr: drills._at("start-target", "done", lambda: drills._corrupt_canary(dr)),
    ),
    "scratch canary corrupted": (
        "isolated",
        "drill-smoke",
        lambda dr: drills._at("scratch-start", "done", lambda: drills._corrupt_scratch(dr)),
    ),
}


@pytest.mark.parametrize("case", list(DRILL_NEXUS))
def test_drill_nexus_fault_is_named_and_b_ends_healthy(case: str) -> None:
    mode, step, inject = DRILL_NEXUS[case]
    dr = drills._ready()
    hook = inject(dr)
    outcome = drills._drill(dr, on_step=hook if callable(hook) else None, mode=mode)  # type: ignore[arg-type]
    assert not outcome.report.passed and outcome.report.failed_step == step
    drills._repair(dr)
    assert drills._healthy_and_clean(dr) if mode == "promote" else drills._isolated_clean(dr)
    again = drills._drill(dr, mode=mode)  # type: ignore[arg-type]
    assert again.report.passed, again.report.failed_step
