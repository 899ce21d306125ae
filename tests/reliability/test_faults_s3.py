"""S3 PUT failures at every put of a backup, an RPO sampler run, an operation's journal and a drill's report.

On the fake two-site world (``drkit.testing.dr``), whose store fails every put after the k-th
(``fail_put_after``), for every k the run makes. A backup that fails leaves no index (so nothing
half-written is ever "latest") and the re-run completes and verifies; a sampler run that fails
is re-run and recorded; an operation stops at the next step boundary and its resume completes
with one promote; a drill that cannot store a journal or its report still ends with B a healthy
replica, and the next drill passes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from drkit.domain.errors import StandbyError, TransientError
from drkit.jobs.backup import run_backup
from drkit.jobs.backup_runs import read_latest
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.operations import execute, read_journal, resume
from drkit.jobs.rpo import RpoRecords, run_sample
from drkit.jobs.verify import require_ok, verify_backup
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from tests.reliability.helpers import assert_one_line
from tests.unit import test_drill as drills
from tests.unit import test_operations as ops


def _puts_of(action: object) -> int:
    dr = fake_dr()
    before = dr.store.puts
    action(dr)  # type: ignore[operator]
    return dr.store.puts - before


def _backup(dr: FakeDr) -> object:
    b = dr.world.bundle("site-a")
    return run_backup(dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=ops.KEY, clock=dr.clock)


BACKUP_PUTS = _puts_of(_backup)


@pytest.mark.parametrize("k", range(BACKUP_PUTS))
def test_backup_put_fails_then_rerun_completes_and_verifies(k: int) -> None:
    dr = fake_dr()
    b = dr.world.bundle("site-a")
    dr.store.fail_put_after = dr.store.puts + k
    with pytest.raises(TransientError) as info:
        _backup(dr)
    assert_one_line(str(info.value), "site-a", "memory://fake-s3")
    assert read_latest(dr.store, b.layout, "site-a", "nexus") is None  # nothing half-written is latest
    dr.store.fail_put_after = None
    summary = _backup(dr)
    report = require_ok(verify_backup(dr.store, b.site, "nexus", run_id=None, key=ops.KEY))
    assert report.ok and summary.status == "complete"  # type: ignore[attr-defined]


def _records(dr: FakeDr) -> RpoRecords:
    return RpoRecords(
        {s: dr.world.bundle(s).store for s in ("site-a", "site-b")},
        {s: dr.world.bundle(s).layout for s in ("site-a", "site-b")},
    )


def _sample(dr: FakeDr) -> object:
    rbds = {s: dr.mirror.site(s) for s in ("site-a", "site-b")}
    return run_sample(dr.world.config, rbds, clock=dr.clock, records=_records(dr))


SAMPLE_PUTS = _puts_of(_sample)


@pytest.mark.parametrize("k", range(SAMPLE_PUTS))
def test_rpo_record_put_fails_then_next_run_records(k: int) -> None:
    dr = fake_dr()
    dr.store.fail_put_after = dr.store.puts + k
    with pytest.raises(StandbyError) as info:
        _sample(dr)
    assert_one_line(str(info.value), "memory://fake-s3")
    dr.store.fail_put_after = None
    dr.clock.advance(60)
    run = _sample(dr)
    assert run.keys  # type: ignore[attr-defined]
    frame = _records(dr).read(dr.clock.now() - timedelta(minutes=5), dr.clock.now() + timedelta(seconds=1))
    assert IMAGE in set(frame["image"]) if "image" in frame else len(frame) > 0


def _relocate(dr: FakeDr) -> object:
    _backup(dr)
    journal = ops._start(dr, "relocate", "site-b")
    before = dr.store.puts  # the puts of the execution, as counted by the test below
    execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST)
    return dr.store.puts - before


_probe = fake_dr()
JOURNAL_PUTS = int(_relocate(_probe))  # type: ignore[call-overload]
del _probe


@pytest.mark.parametrize("k", range(JOURNAL_PUTS))
def test_operation_journal_put_fails_then_resume_completes_with_one_promote(k: int) -> None:
    dr = fake_dr()
    _backup(dr)
    journal = ops._start(dr, "relocate", "site-b")
    dr.store.fail_put_after = dr.store.puts + k
    with pytest.raises(StandbyError) as info:
        execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST)
    assert_one_line(str(info.value), "memory://fake-s3")
    dr.store.fail_put_after = None
    assert read_journal(dr.world, journal.op_id).status in ("running", "failed", "approved")
    done = resume(dr.world, journal.op_id, key=ops.KEY, timeouts=ops.FAST)
    assert done.status == "completed", done.error
    assert [s for s, _, _ in dr.mirror.promoted] == ["site-b"]


def _drill_puts() -> int:
    dr = drills._ready()
    before = dr.store.puts
    drills._drill(dr, mode="isolated")
    return dr.store.puts - before


DRILL_PUTS = _drill_puts()


@pytest.mark.parametrize("k", range(DRILL_PUTS))
def test_drill_put_fails_then_b_is_healthy_and_the_next_drill_passes(k: int) -> None:
    dr = drills._ready()
    dr.store.fail_put_after = dr.store.puts + k
    try:
        outcome = drills._drill(dr, mode="isolated")
        assert not outcome.report.passed or outcome.store_error, "a failed put went unnoticed"
    except StandbyError as exc:
        assert_one_line(str(exc), "memory://fake-s3")
    dr.store.fail_put_after = None
    drill_cleanup(dr.world, "nexus", key=drills.KEY, timeouts=drills.FAST)
    assert drills._isolated_clean(dr) and dr.mirror.promoted == []
    again = drills._drill(dr, mode="isolated")
    assert again.report.passed and not again.store_error, again.report.failed_step
