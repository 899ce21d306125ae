"""GFS retention over a year of synthetic nightly runs, and blob garbage collection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from drkit.domain.backup import BackupIndex, IndexEntry, RunMetadata
from drkit.domain.layout import new_run_id
from drkit.domain.retention import RetentionPolicy, RunInfo, plan_retention, unreferenced_blobs

START = datetime(2025, 11, 22, 22, 0, tzinfo=UTC)  # a Saturday


def _run(when: datetime, complete: bool = True, salt: int = 0) -> RunInfo:
    return RunInfo(run_id=str(new_run_id(when, bytes([salt, 0, 1]))), started=when, complete=complete)


def _year() -> list[RunInfo]:
    return [_run(START + timedelta(days=d)) for d in range(365)]


def test_a_year_of_nightly_runs() -> None:
    runs = _year()
    decision = plan_retention(runs, RetentionPolicy(daily=7, weekly=4, monthly=12))
    kept = {r.run_id: r for r in runs if r.run_id in decision.keep}
    newest = runs[-1]
    days = sorted({r.started.date() for r in kept.values()})
    # 7 dailies; weeklies and monthlies overlap them partly. The newest is all three.
    assert newest.run_id in decision.keep
    assert set(decision.reasons[newest.run_id]) >= {"newest complete run"}
    assert sum(1 for r in decision.reasons.values() if any(w.startswith("daily") for w in r)) == 7
    assert sum(1 for r in decision.reasons.values() if any(w.startswith("weekly") for w in r)) == 4
    assert sum(1 for r in decision.reasons.values() if any(w.startswith("monthly") for w in r)) == 12
    assert len({(d.year, d.month) for d in days}) == 12
    assert len(decision.keep) + len(decision.delete) == 365
    assert set(decision.keep).isdisjoint(decision.delete)
    # monthlies are the last run of each month
    for run_id, why in decision.reasons.items():
        if any(w.startswith("monthly") for w in why) and run_id != newest.run_id:
            started = kept[run_id].started
            assert (started + timedelta(days=1)).month != started.month
    assert decision.keep == tuple(sorted(decision.keep, reverse=True))


@pytest.mark.parametrize(
    ("daily", "weekly", "monthly", "kept"),
    [
        (0, 0, 0, 1),  # the newest complete run survives any policy
        (1, 0, 0, 1),
        (7, 0, 0, 7),
        (30, 0, 0, 30),
        (0, 0, 12, 12),
        (0, 52, 0, 52),
        (400, 0, 0, 365),
    ],
)
def test_policy_counts(daily: int, weekly: int, monthly: int, kept: int) -> None:
    decision = plan_retention(_year(), RetentionPolicy(daily=daily, weekly=weekly, monthly=monthly))
    assert len(decision.keep) == kept


def test_incomplete_runs() -> None:
    runs = _year()
    failed_old = _run(START + timedelta(days=100, hours=1), complete=False)
    running = _run(START + timedelta(days=365), complete=False)
    decision = plan_retention([*runs, failed_old, running], RetentionPolicy(daily=2, weekly=0, monthly=0))
    assert failed_old.run_id in decision.delete
    assert running.run_id in decision.keep
    assert runs[-1].run_id in decision.keep and runs[-2].run_id in decision.keep
    assert len(decision.keep) == 3


def test_only_incomplete_runs_are_all_kept() -> None:
    runs = [_run(START + timedelta(days=d), complete=False) for d in range(5)]
    assert plan_retention(runs, RetentionPolicy()).delete == ()


def test_newest_complete_is_kept_when_newer_runs_failed() -> None:
    good = _run(START)
    failed = [_run(START + timedelta(days=d), complete=False) for d in (1, 2)]
    decision = plan_retention([good, *failed], RetentionPolicy(daily=0, weekly=0, monthly=0))
    assert set(decision.keep) == {good.run_id, *(r.run_id for r in failed)}


def test_days_are_counted_in_the_given_zone() -> None:
    late = START.replace(hour=23, minute=30)  # 23:30 UTC is the next day in UTC+2
    runs = [_run(late), _run(late + timedelta(hours=1), salt=1)]
    assert len(plan_retention(runs, RetentionPolicy(daily=5, weekly=0, monthly=0)).keep) == 2
    plus2 = timezone(timedelta(hours=2))
    assert len(plan_retention(runs, RetentionPolicy(daily=5, weekly=0, monthly=0), tz=plus2).keep) == 1


def _index(run_id: str, keys: list[str]) -> BackupIndex:
    entries = tuple(
        IndexEntry(
            api_version="v1",
            kind="ConfigMap",
            namespace="ns",
            name=f"c{i}",
            path=f"core/v1/ConfigMap/ns/c{i}",
            key=k,
            address="0" * 64,
            sha256="0" * 64,
            size=1,
            encrypted=False,
            stored_by=run_id,
        )
        for i, k in enumerate(keys)
    )
    meta = RunMetadata(
        standby_version="0", cluster="c", kinds_listed=(), objects_new=0, objects_reused=0, bytes_uploaded=0
    )
    return BackupIndex(
        app="a",
        site="s",
        run_id=run_id,
        started=START,
        finished=START,
        objects=entries,
        metadata=meta,
        status="complete",
    )


def test_unreferenced_blobs() -> None:
    one, two = str(new_run_id(START, b"\1\1\1")), str(new_run_id(START, b"\2\2\2"))
    kept = [_index(one, ["b/1", "b/2"]), _index(two, ["b/2", "b/3"])]
    assert unreferenced_blobs(kept, ["b/4", "b/1", "b/2", "b/3", "b/0"]) == ["b/0", "b/4"]
    assert unreferenced_blobs([], ["b/1"]) == ["b/1"]
    assert unreferenced_blobs(kept, []) == []


def test_a_kept_pointer_run_keeps_the_full_run_it_names() -> None:
    runs = _year()
    full = runs[100]
    pointers = [r.model_copy(update={"same_as": full.run_id}) for r in runs[101:]]
    decision = plan_retention([*runs[:101], *pointers], RetentionPolicy(daily=3, weekly=0, monthly=0))
    assert decision.keep == (*(p.run_id for p in pointers[-3:][::-1]), full.run_id)
    assert decision.reasons[full.run_id] == tuple(
        f"holds the objects of kept run {p.run_id} (its index points here)" for p in pointers[-3:][::-1]
    )
    assert runs[99].run_id in decision.delete
    # a pointer run that is deleted keeps nothing alive
    alone = plan_retention([full, pointers[0]], RetentionPolicy(daily=0, weekly=0, monthly=0))
    assert alone.keep == (pointers[0].run_id, full.run_id)
    unkept = plan_retention(
        [*runs[:101], pointers[0], runs[300]], RetentionPolicy(daily=1, weekly=0, monthly=0)
    )
    assert unkept.keep == (runs[300].run_id,)
