"""rbd failures and timeouts: at every step of a relocate on the rbd path, a failing promote in a failover, and the sampler with a site's rbd hung.

An operation whose ``rbd`` times out at a step stops there, naming it; once ``rbd`` answers
again its resume completes with exactly one promote. A sampler with one site's ``rbd`` hung still
measures from the other site; with both hung it fails with one line naming both.
"""

from __future__ import annotations

import pytest

from drkit.domain.errors import StandbyError, TransientError
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.operations import execute, resume
from drkit.jobs.rpo import run_sample
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from tests.reliability.faults_world import relocate_steps
from tests.reliability.helpers import assert_one_line, failed_step
from tests.unit import test_operations as ops


def _dr() -> FakeDr:
    dr = fake_dr(control="rbd")
    ops._backup(dr, "site-a")
    return dr


def _rbd_steps() -> tuple[list[str], list[str]]:
    """Every step of a relocate in order, and those that call rbd (observed on a clean run)."""
    dr = _dr()
    return relocate_steps(dr, lambda: len(dr.mirror.calls))


ORDER, RBD_STEPS = _rbd_steps()


@pytest.mark.parametrize("site", ["site-a", "site-b"])
@pytest.mark.parametrize("step", RBD_STEPS)
def test_rbd_hangs_at_a_step_then_resume_converges(step: str, site: str) -> None:
    dr = _dr()
    journal = ops._start(dr, "relocate", "site-b")

    def hang(_j: Journal, record: StepRecord) -> None:
        if record.name == step and record.outcome == "running":
            dr.mirror.down.add(site)

    try:
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=hang)
        stopped = False
    except StandbyError as exc:
        line = assert_one_line(str(exc), site)
        # Stopped at the first step from here that needed that site's rbd.
        assert ORDER.index(failed_step(line)) >= ORDER.index(step), line
        stopped = True
    dr.mirror.down.clear()
    dr.mirror.resume_syncs()  # rbd-mirror catches up once the site's rbd answers again
    if stopped:
        done = resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST)
        assert done.status == "completed", done.error
    # Either way (a step that only reads the other site may pass), one promote, on the target.
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]
    assert dr.mirror.images[IMAGE].primary == {"site-a": False, "site-b": True}


def test_failover_promote_failing_is_named_then_resume_converges() -> None:
    dr = ops._scenario("failover")
    journal = ops._begin(dr, "failover")
    dr.mirror.fail_promote.add("site-b")
    with pytest.raises(StandbyError) as info:
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST)
    assert_one_line(str(info.value), "promote")
    assert dr.mirror.promoted == []
    dr.mirror.fail_promote.clear()
    assert resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST).status == "completed"
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]


def _sample(dr: FakeDr) -> object:
    return run_sample(dr.world.config, {s: dr.mirror.site(s) for s in ("site-a", "site-b")}, clock=dr.clock)


@pytest.mark.parametrize("site", ["site-a", "site-b"])
def test_sampler_with_one_site_hung_measures_from_the_other(site: str) -> None:
    dr = fake_dr()
    dr.mirror.down.add(site)
    run = _sample(dr)
    invalid = [s for s in run.samplings if not s.valid]  # type: ignore[attr-defined]
    assert [s.site for s in invalid] == [site] and invalid[0].transient
    assert run.readings[0].lag.lag_seconds is not None or run.readings[0].lag.reason  # type: ignore[attr-defined]


def test_sampler_with_both_sites_hung_is_one_transient_line_naming_both() -> None:
    dr = fake_dr()
    dr.mirror.down.update({"site-a", "site-b"})
    with pytest.raises(TransientError) as info:
        _sample(dr)
    assert_one_line(str(info.value), "site-a", "site-b")
