"""RPO jobs on fakes: records (append, compact, read a window), breach memory, report figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drkit.adapters.fakes import FakeObjectStore
from drkit.domain.errors import ConfigError
from drkit.domain.layout import StoreLayout
from drkit.domain.rpo import SyncedPoint, worst_lag
from drkit.jobs import rpo as jobs
from drkit.jobs.rpo_report import app_points, parse_since

T0 = datetime(2026, 11, 21, 23, 50, tzinfo=UTC)


def _records(store: FakeObjectStore) -> jobs.RpoRecords:
    return jobs.RpoRecords({"site-b": store}, {"site-b": StoreLayout("standby")})


def _row(at: datetime, lag: float) -> dict[str, object]:
    return {c: None for c in jobs.COLUMNS} | {
        "kind": "app",
        "sampled_at": at,
        "app": "nexus",
        "lag_seconds": lag,
    }


def test_parts_are_per_site_and_utc_day_and_compaction_merges_them() -> None:
    store = FakeObjectStore()
    rec = _records(store)
    for i in range(4):  # 23:50, then 00:00, 00:10 and 00:20 of the next UTC day
        at = T0 + timedelta(minutes=10 * i)
        rec.append("site-b", [_row(at, float(i))], at)
    day1, day2 = T0.date(), (T0 + timedelta(days=1)).date()
    assert len(rec.day_keys("site-b", day1)) == 1 and len(rec.day_keys("site-b", day2)) == 3
    assert all(k.startswith("standby/rpo/site-b/2026-11-22/samples-") for k in rec.day_keys("site-b", day2))
    key = rec.compact("site-b", day2)
    assert key is not None and rec.day_keys("site-b", day2) == [key]
    assert rec.compact("site-b", day2) is None  # already one part
    df = rec.read(T0, T0 + timedelta(minutes=35))
    assert list(df["lag_seconds"]) == [0.0, 1.0, 2.0, 3.0]
    window = rec.read(T0 + timedelta(minutes=5), T0 + timedelta(minutes=25))
    assert list(window["lag_seconds"]) == [1.0, 2.0]


def test_interrupted_compaction_leaves_no_duplicates() -> None:
    store = FakeObjectStore()
    rec = _records(store)
    for i in range(2):
        rec.append("site-b", [_row(T0 + timedelta(minutes=i), float(i))], T0)
    parts = rec.day_keys("site-b", T0.date())
    rec.compact("site-b", T0.date())
    for key in parts:  # as if the deletes had not happened
        store.objects[key] = store.objects[rec.day_keys("site-b", T0.date())[0]]
    assert len(rec.read_day("site-b", T0.date())) == 2


def test_breach_memory_round_trips() -> None:
    rec = _records(FakeObjectStore())
    assert rec.load_memory("nexus") == jobs.RpoMemory()
    memory = jobs.RpoMemory(health={"img": "down"})
    rec.save_memory("nexus", memory)
    assert rec.load_memory("nexus").health == {"img": "down"}


def test_app_points_follow_the_oldest_image() -> None:
    a = [SyncedPoint(data_time=T0, completed_at=T0 + timedelta(seconds=5)),
         SyncedPoint(data_time=T0 + timedelta(seconds=60), completed_at=T0 + timedelta(seconds=65))]  # fmt: skip
    b = [SyncedPoint(data_time=T0, completed_at=T0 + timedelta(seconds=7)),
         SyncedPoint(data_time=T0 + timedelta(seconds=60), completed_at=T0 + timedelta(seconds=100))]  # fmt: skip
    app = app_points([a, b])
    worst = worst_lag(app, T0 + timedelta(seconds=10), T0 + timedelta(seconds=120))
    assert worst == timedelta(seconds=100)  # b's sync completing at +100 s decides
    assert worst_lag(a, T0 + timedelta(seconds=10), T0 + timedelta(seconds=120)) == timedelta(seconds=65)


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("90m", 5400), ("7d", 604800), ("30s", 30)])
def test_parse_since(text: str, seconds: int) -> None:
    assert parse_since(text).total_seconds() == seconds


def test_parse_since_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="24h"):
        parse_since("yesterday")
