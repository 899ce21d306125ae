"""The operation timeline artifact: per step, its start offset from the operation's start and its
duration in seconds, times to the second in UTC (never raw ISO timestamps with microseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from drkit.domain.operations import Journal, Plan, StepRecord, StepSpec
from drkit.views.operations import TIMELINE_COLUMNS, timeline_rows

T0 = datetime(2026, 11, 30, 8, 15, 0, 250_000, tzinfo=UTC)


def _journal(*records: StepRecord) -> Journal:
    specs = tuple(StepSpec(name=r.name, title=r.title, site=r.site) for r in records)
    plan = Plan(kind="failover", app="nexus", source="site-a", target="site-b", checks=(), steps=specs)
    return Journal(
        op_id="failover-20261130T081500Z-a1b2c3",
        kind="failover",
        app="nexus",
        source="site-a",
        target="site-b",
        status="running",
        created_at=T0 - timedelta(minutes=5),
        plan=plan,
        steps=records,
    )


def _step(name: str, start: float | None, seconds: float | None, outcome: str = "done") -> StepRecord:
    started = None if start is None else T0 + timedelta(seconds=start)
    ended = None if started is None or seconds is None else started + timedelta(seconds=seconds)
    return StepRecord(
        name=name, title=name, site="site-b", outcome=outcome, started_at=started, ended_at=ended
    )


def test_each_step_shows_its_offset_and_duration_in_seconds() -> None:
    journal = _journal(
        _step("fence-source", 0.0, 1.234567),
        _step("promote", 12.3456, 4.06),
        _step("start-target", 16.41, None, outcome="running"),
        _step("smoke", None, None, outcome="pending"),
    )
    rows = timeline_rows(journal)
    assert [tuple(r) for r in rows] == [TIMELINE_COLUMNS] * 4
    assert [(r["step"], r["outcome"], r["start"], r["duration"]) for r in rows] == [
        ("fence-source", "done", "+0.0 s", "1.2 s"),
        ("promote", "done", "+12.3 s", "4.1 s"),
        ("start-target", "running", "+16.4 s", ""),
        ("smoke", "pending", "", ""),
    ]
    assert rows[1]["started"] == "08:15:12Z"  # to the second, no microseconds, no offset


def test_times_are_shown_in_utc_whatever_zone_they_were_recorded_in() -> None:
    cet = timezone(timedelta(hours=1))
    step = _step("fence-source", 0.0, 2.0).model_copy(
        update={"started_at": T0.astimezone(cet), "ended_at": (T0 + timedelta(seconds=2)).astimezone(cet)}
    )
    (row,) = timeline_rows(_journal(step))
    assert (row["start"], row["duration"], row["started"]) == ("+0.0 s", "2.0 s", "08:15:00Z")


def test_a_journal_not_started_has_no_offsets() -> None:
    rows = timeline_rows(_journal(_step("fence-source", None, None, outcome="pending")))
    assert rows == [
        {
            "step": "fence-source",
            "site": "site-b",
            "outcome": "pending",
            "start": "",
            "duration": "",
            "started": "",
            "error": "",
        }
    ]
