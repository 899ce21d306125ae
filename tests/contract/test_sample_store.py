"""One contract suite for SampleStore: the parquet store over the fake object store and over S3 (moto)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from drkit.adapters.rpo_store import COLUMNS, ParquetSampleStore, SampleStore
from drkit.domain.layout import StoreLayout
from drkit.domain.rpo import BreachState
from drkit.domain.rpo_points import SyncedPoint
from drkit.domain.rpo_reading import RpoMemory
from tests.contract.test_objectstore import _fake_factory, _s3_factory, moto_endpoint  # noqa: F401

T0 = datetime(2026, 11, 21, 23, 50, tzinfo=UTC)


@pytest.fixture(params=["fake", "s3"])
def make(request: pytest.FixtureRequest) -> Callable[[], SampleStore]:
    factory = (
        _fake_factory() if request.param == "fake" else _s3_factory(request.getfixturevalue("moto_endpoint"))
    )

    def build() -> SampleStore:
        stores: dict[str, Any] = {"site-a": factory(), "site-b": factory()}
        layouts = {s: StoreLayout("standby") for s in stores}
        return ParquetSampleStore(stores, layouts, state_site="site-b")

    return build


def _row(at: datetime, lag: float | None, **more: object) -> dict[str, object]:
    return (
        {c: None for c in COLUMNS}
        | {"kind": "app", "sampled_at": at, "app": "nexus", "lag_seconds": lag}
        | more
    )


def test_rows_come_back_per_window_and_site_with_their_types(make: Callable[[], SampleStore]) -> None:
    store = make()
    assert store.sites == ("site-a", "site-b")
    for i in range(4):  # 23:50, then 00:00, 00:10, 00:20 of the next UTC day
        at = T0 + timedelta(minutes=10 * i)
        store.append("site-b", [_row(at, float(i))], at)
    store.append("site-a", [_row(T0, None, kind="status")], T0)
    df = store.read(T0, T0 + timedelta(minutes=35))
    assert list(df["kind"]) == ["status", "app", "app", "app", "app"]  # oldest first; ties in site order
    assert df["lag_seconds"].dtype == "float64" and pd.isna(df["lag_seconds"][0])
    assert df["sampled_at"][0] == pd.Timestamp(T0) and str(df["sampled_at"].dt.tz) == "UTC"
    window = store.read(T0 + timedelta(minutes=5), T0 + timedelta(minutes=25), sites=["site-b"])
    assert list(window["lag_seconds"]) == [1.0, 2.0]
    assert store.append("site-b", [], T0) is None


def test_compaction_merges_a_day_and_keeps_every_row(make: Callable[[], SampleStore]) -> None:
    store = make()
    day = (T0 + timedelta(days=1)).date()
    for i in range(3):
        at = T0 + timedelta(minutes=10 * (i + 1))
        store.append("site-b", [_row(at, float(i))], at)
    before = store.read(T0, T0 + timedelta(hours=1))
    key = store.compact("site-b", day)
    assert key is not None and "compacted-" in key
    assert store.compact("site-b", day) is None  # one part left: nothing to merge
    pd.testing.assert_frame_equal(store.read(T0, T0 + timedelta(hours=1)), before)


def test_memory_round_trips_and_is_empty_when_never_saved(make: Callable[[], SampleStore]) -> None:
    store = make()
    assert store.load_memory("nexus") == RpoMemory()
    memory = RpoMemory(
        breach=BreachState(breached=True, breached_since=T0),
        health={"img": "down"},
        points={"img": (SyncedPoint(data_time=T0, completed_at=T0 + timedelta(seconds=4)),)},
    )
    store.save_memory("nexus", memory)
    assert store.load_memory("nexus") == memory
    assert store.load_memory("other") == RpoMemory()
