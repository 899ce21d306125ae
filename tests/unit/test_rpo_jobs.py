"""RPO jobs on fakes: records (append, compact, read a window), breach memory, report figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from drkit.domain.durations import parse_window
from drkit.domain.errors import ConfigError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import StandbyConfig
from drkit.domain.rpo_points import SyncedPoint
from drkit.domain.rpo_sawtooth import worst_lag
from drkit.jobs import rpo as jobs
from drkit.jobs.rpo_report import app_points
from drkit.testing.clock import FakeClock
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.rbd import FakeRbdMirror
from tests.rpo_config import rpo_config_doc

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
    a = [
        SyncedPoint(data_time=T0, completed_at=T0 + timedelta(seconds=5)),
        SyncedPoint(data_time=T0 + timedelta(seconds=60), completed_at=T0 + timedelta(seconds=65)),
    ]
    b = [
        SyncedPoint(data_time=T0, completed_at=T0 + timedelta(seconds=7)),
        SyncedPoint(data_time=T0 + timedelta(seconds=60), completed_at=T0 + timedelta(seconds=100)),
    ]
    app = app_points([a, b])
    worst = worst_lag(app, T0 + timedelta(seconds=10), T0 + timedelta(seconds=120))
    assert worst == timedelta(seconds=100)  # b's sync completing at +100 s decides
    assert worst_lag(a, T0 + timedelta(seconds=10), T0 + timedelta(seconds=120)) == timedelta(seconds=65)


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("90m", 5400), ("7d", 604800), ("30s", 30)])
def test_parse_window(text: str, seconds: int) -> None:
    assert parse_window(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["yesterday", "0", "0h", ""])
def test_parse_window_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--since .* is not a duration"):
        parse_window(text)


def _two_site_config() -> StandbyConfig:
    return StandbyConfig.model_validate(rpo_config_doc("img"))


def test_sampler_keeps_points_across_runs_and_a_later_listing_tightens_them() -> None:
    """B prunes the snapshot of point 1 once point 2 is synced: the memory still tightens point 1."""
    pool, image = "replicapool", "img"
    a, b = FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    store = FakeObjectStore()
    config = _two_site_config()
    records = jobs.records_for(config, {"site-a": store, "site-b": store})
    p1, p2 = T0, T0 + timedelta(seconds=20)
    rbds = {"site-a": a, "site-b": b}

    def state(point: datetime, status_point: datetime | None, written: datetime) -> None:
        a.add_image(
            pool,
            image,
            primary=True,
            peer_site="site-b",
            local_snapshot_time=status_point,
            last_update=written,
        )
        b.add_image(pool, image, peer_site="site-a", local_snapshot_time=status_point, last_update=written)
        a.snaps[(pool, image)], b.snaps[(pool, image)] = [], []
        snap = a.add_snapshot(pool, image, created_at=point)
        b.add_snapshot(pool, image, created_at=point + timedelta(seconds=1), primary_snap_id=snap)

    # run 1: point 1 listed complete, the status not rewritten since: bounded by the listing only
    state(p1, None, written=T0 - timedelta(seconds=5))
    run1 = jobs.run_sample(
        config, rbds, clock=FakeClock(T0 + timedelta(seconds=50)), records=records, exact="always"
    )
    assert run1.readings[0].exact_points[image] == (
        SyncedPoint(data_time=p1, completed_at=T0 + timedelta(seconds=50)),
    )

    # run 2: B and A pruned point 1; point 2 (created on B at 21 s) proves point 1 complete by 22 s
    state(p2, p2, written=T0 + timedelta(seconds=190))
    b.add_snapshot(pool, image, created_at=T0 + timedelta(seconds=150), primary_snap_id=99, complete=False)
    jobs.run_sample(
        config, rbds, clock=FakeClock(T0 + timedelta(seconds=200)), records=records, exact="always"
    )
    assert records.load_memory("nexus").points[image] == (
        SyncedPoint(data_time=p1, completed_at=T0 + timedelta(seconds=22)),
        SyncedPoint(
            data_time=p2, completed_at=T0 + timedelta(seconds=151)
        ),  # the sync in progress began at 150
    )
    rows = records.read(T0, T0 + timedelta(hours=1))
    points = rows[rows["kind"] == "point"]
    assert sorted(set(points["data_time"])) == [pd.Timestamp(p1), pd.Timestamp(p2)]


def test_longest_gap_counts_the_window_edges_and_ignores_times_outside() -> None:
    from drkit.jobs.rpo_report import longest_gap

    t = [T0 + timedelta(seconds=s) for s in (-50, 10, 20, 90, 500)]
    assert longest_gap(t, T0, T0 + timedelta(seconds=100)) == 70.0  # 20 -> 90
    assert longest_gap([], T0, T0 + timedelta(seconds=30)) == 30.0
    assert longest_gap(t, T0, T0) is None
