"""The completion watcher on fakes, with a scripted world and a fake clock.

The world: A takes a mirror snapshot, B starts its copy (an incomplete non-primary snapshot), marks
it complete, and prunes the older one, at scripted instants between the watcher's polls. The tests
check the bound of each completion against the scripted truth: never early, at most one poll late.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from drkit.adapters.rpo_store import ParquetSampleStore
from drkit.domain.errors import ConfigError, StandbyError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import StandbyConfig
from drkit.domain.rpo_points import SyncedPoint, tighten
from drkit.domain.rpo_sawtooth import worst_lag
from drkit.jobs import rpo_watch as watch
from drkit.jobs.rpo_report import image_points
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.rbd import FakeRbdMirror
from tests.rpo_config import rpo_config_doc

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POOL, IMAGE = "replicapool", "img"


def _config() -> StandbyConfig:
    return StandbyConfig.model_validate(rpo_config_doc(IMAGE, pool=POOL))


class World:
    """Two fake sites, a fake clock, and scripted changes applied as the clock passes them."""

    def __init__(self) -> None:
        self.now = T0
        self.a = FakeRbdMirror(site="site-a", now=lambda: self.now)
        self.b = FakeRbdMirror(site="site-b", now=lambda: self.now)
        self.a.add_image(POOL, IMAGE, primary=True, peer_site="site-b")
        self.b.add_image(POOL, IMAGE, peer_site="site-a")
        self.script: list[tuple[datetime, Callable[[], None]]] = []
        self.truth: dict[datetime, datetime] = {}  # data time -> completion
        self.listings: list[tuple[datetime, str]] = []  # when B answered each listing
        self.call_before = self.call_after = 0.0
        self._b_snapshots = self.b.snapshots
        self.b.snapshots = self._listing  # type: ignore[method-assign]
        self._base: int | None = None

    @property
    def rbds(self) -> dict[str, FakeRbdMirror]:
        return {"site-a": self.a, "site-b": self.b}

    def clock(self, skew: timedelta = timedelta(0)) -> WorldClock:
        """The world's time as a :class:`~drkit.adapters.clock.Clock` (``skew`` off the truth)."""
        return WorldClock(self, skew)

    def sleep(self, seconds: float) -> None:
        target = self.now + timedelta(seconds=max(seconds, 0.001))
        while self.script and self.script[0][0] <= target:
            at, change = self.script.pop(0)
            self.now = max(self.now, at)
            change()
        self.now = target

    def slow_calls(self, before: float = 0.3, after: float = 0.1) -> None:
        """Each listing of B takes time: the world moves ``before`` s, B answers, then ``after`` s pass.

        So a completion can happen during the call, before the answer: a clock read BEFORE the
        call would bound it too early, which the tests must catch.
        """
        self.call_before, self.call_after = before, after

    def _listing(self, pool: str, image: str) -> list[dict[str, object]]:
        self.sleep(self.call_before)
        self.listings.append((self.now, image))
        out = self._b_snapshots(pool, image)
        self.sleep(self.call_after)
        return out

    def snapshot(self, data: datetime, start: float, done: float) -> None:
        """A snapshot on A at ``data``; B starts it ``start`` s later and completes it ``done`` s later."""
        ids: dict[str, int] = {}

        def take() -> None:
            ids["a"] = self.a.add_snapshot(POOL, IMAGE, created_at=data)

        def begin() -> None:
            ids["b"] = self.b.add_snapshot(
                POOL,
                IMAGE,
                created_at=data + timedelta(seconds=start),
                primary_snap_id=ids["a"],
                complete=False,
            )

        def finish() -> None:
            snaps = self.b.snaps[(POOL, IMAGE)]
            for s in snaps:
                if s["id"] == ids["b"]:
                    s["namespace"]["complete"] = True
            self.b.snaps[(POOL, IMAGE)] = [s for s in snaps if s["id"] >= ids["b"]]  # B prunes the older one

        self.script += [
            (data, take),
            (data + timedelta(seconds=start), begin),
            (data + timedelta(seconds=done), finish),
        ]
        self.script.sort(key=lambda e: e[0])
        self.truth[data] = data + timedelta(seconds=done)


class WorldClock:
    """:class:`~drkit.adapters.clock.Clock` of a :class:`World`: sleeping plays its script."""

    def __init__(self, world: World, skew: timedelta) -> None:
        self.world, self.skew = world, skew

    def now(self) -> datetime:
        return self.world.now + self.skew

    def monotonic(self) -> float:
        return (self.world.now - T0).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.world.sleep(seconds)


def _run(
    world: World, seconds: float, records: ParquetSampleStore | None = None, **kw: object
) -> watch.WatchReport:
    return watch.run_watch(
        _config(),
        world.rbds,
        records=records,
        duration=timedelta(seconds=seconds),
        clock=world.clock(),
        **kw,  # type: ignore[arg-type]
    )


def _records(store: FakeObjectStore) -> ParquetSampleStore:
    return ParquetSampleStore({"site-b": store}, {"site-b": StoreLayout("standby")})


def _points(store: FakeObjectStore) -> list[SyncedPoint]:
    rows = _records(store).read(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    got = rows[(rows["kind"] == "point") & (rows["source"] == "watch")]
    return list(
        tighten(
            (d.to_pydatetime(), c.to_pydatetime())
            for d, c in zip(got["data_time"], got["completed_at"], strict=True)
        )
    )


def test_each_completion_is_bounded_never_early_and_within_one_poll() -> None:
    world = World()
    world.slow_calls()
    # completions at many sub-second phases, some during a listing call, some while B is idle
    for k in range(12):
        world.snapshot(
            T0 + timedelta(seconds=2 + 20 * k), start=0.4, done=1.0 + 0.137 * k + (5 if k % 3 else 0)
        )
    store = FakeObjectStore(site="site-b")
    report = _run(world, 250, records=_records(store), flush_every=timedelta(seconds=30))
    points = {p.data_time: p.completed_at for p in _points(store)}
    assert len(world.truth) == 12
    late = []
    for data, done in world.truth.items():
        data_s = data.replace(microsecond=0)  # rbd prints whole seconds
        assert data_s in points, f"no point for the snapshot of {data}"
        bound = points[data_s]
        assert bound is not None
        late.append((bound - done).total_seconds())
    assert min(late) >= 0, f"a completion was bounded before it happened: {late}"
    # one busy-mode round (0.25 s) plus one call (0.4 s), or one idle round (1 s) plus a call
    assert max(late) <= 1.4 + 1e-6, late
    assert report.polls >= 250
    # a part per 30 s flush, each with a coverage row: the points up to its time are complete
    assert report.unwritten_rows == 0 and len(report.keys) >= 8
    rows = _records(store).read(T0, T0 + timedelta(hours=1))
    covered = rows[rows["kind"] == "watch"]["sampled_at"]
    assert len(covered) == len(report.keys) and covered.max() >= T0 + timedelta(seconds=249)


def test_a_sync_in_progress_is_polled_fast_and_only_for_a_while() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=8)  # an 8 s sync
    world.snapshot(T0 + timedelta(seconds=30), start=0.4, done=200)  # stalled (rbd-mirror down)
    _run(world, 150, records=None)
    calls = [t for t, what in world.listings]
    fast = sum(1 for a, b in itertools.pairwise(calls) if (b - a).total_seconds() < 0.5)
    # ~6 s of the first sync and the first 30 s of the stalled one at 4/s; the rest at 1/s
    assert 100 <= fast <= 160, fast
    assert len(calls) <= 150 + 160


def test_the_worst_case_lag_from_watched_points_is_within_one_poll_of_the_truth() -> None:
    world = World()
    for k in range(5):
        world.snapshot(T0 + timedelta(seconds=2 + 60 * k), start=0.3, done=1.5 + 7 * k)
    store = FakeObjectStore(site="site-b")
    _run(world, 300, records=_records(store))
    truth = [SyncedPoint(data_time=d.replace(microsecond=0), completed_at=c) for d, c in world.truth.items()]
    window = (T0 + timedelta(seconds=70), T0 + timedelta(seconds=295))
    true, got = worst_lag(truth, *window), worst_lag(_points(store), *window)
    assert true is not None and got is not None
    assert timedelta(0) <= got - true <= timedelta(seconds=1)


def test_primary_is_listed_only_for_new_snapshots_and_unchanged_listings_add_nothing() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    world.snapshot(T0 + timedelta(seconds=32), start=0.4, done=3.3)
    report = _run(world, 60, records=None)
    b_calls = [c for c in world.b.calls if c[0] == "snap ls"]
    a_calls = [c for c in world.a.calls if c[0] == "snap ls"]
    assert len(b_calls) == report.polls >= 60
    assert len(a_calls) == 2, "A is listed once per new primary snapshot B names, not once per poll"
    assert report.images[0]["points_written"] >= 2


def test_watched_points_reach_the_report() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    store = FakeObjectStore(site="site-b")
    _run(world, 20, records=_records(store))
    rows = _records(store).read(T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
    points, label = image_points(rows, _config().apps[0].secondary_site, IMAGE)
    assert label == "watch"
    assert [p.data_time for p in points] == [(T0 + timedelta(seconds=2)).replace(microsecond=0)]


def test_failed_listings_are_counted_not_fatal() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    world.script.append((T0 + timedelta(seconds=10), lambda: setattr(world.b, "timeout", True)))
    world.script.append((T0 + timedelta(seconds=15), lambda: setattr(world.b, "timeout", False)))
    world.script.sort(key=lambda e: e[0])
    report = _run(world, 30, records=None)
    image = report.images[0]
    assert 3 <= image["failures"] <= 6
    assert "timed out" in str(image["last_error"]) and "site-b" in str(image["last_error"])


def test_every_listing_failing_fails_the_run_naming_site_image_and_next_action() -> None:
    world = World()
    world.b.exit_code = 2
    with pytest.raises(StandbyError) as err:
        _run(world, 5, records=None)
    text = str(err.value)
    assert "could not be listed" in text and f"{POOL}/{IMAGE} on site-b" in text and "(next:" in text
    assert "last good listing: never" in text


def test_points_that_cannot_be_written_are_kept_then_fail_the_run_loudly() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    store = FakeObjectStore(site="site-b", unreachable=True)
    with pytest.raises(StandbyError) as err:
        _run(world, 20, records=_records(store), flush_every=timedelta(seconds=5))
    assert "could not be written" in str(err.value) and "S3" in str(err.value)


def test_a_flush_that_fails_once_is_retried_at_the_next_flush() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    store = FakeObjectStore(site="site-b", unreachable=True)
    world.script.append((T0 + timedelta(seconds=12), lambda: setattr(store, "unreachable", False)))
    world.script.sort(key=lambda e: e[0])
    report = _run(world, 20, records=_records(store), flush_every=timedelta(seconds=5))
    assert report.unwritten_rows == 0
    assert [p.data_time for p in _points(store)] == [(T0 + timedelta(seconds=2)).replace(microsecond=0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"apps": ["gitlab"]}, "unknown app 'gitlab'; known apps: nexus"),
        ({"every": timedelta(0)}, "must be positive"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _run(World(), 5, records=None, **kwargs)


def test_a_site_without_rbd_access_is_a_config_error() -> None:
    world = World()
    with pytest.raises(ConfigError, match="no rbd access to site site-a"):
        watch.run_watch(
            _config(),
            {"site-b": world.b},
            records=None,
            duration=timedelta(seconds=1),
            clock=world.clock(),
        )


def test_a_primary_that_cannot_be_listed_fails_the_run_and_claims_no_coverage() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    world.a.exit_code = 2  # B answers, A never does: no point can be dated
    store = FakeObjectStore(site="site-b")
    with pytest.raises(StandbyError) as err:
        _run(world, 20, records=_records(store), flush_every=timedelta(seconds=5))
    text = str(err.value)
    assert "1 of 1 images could not be listed" in text and "on site-a" in text, text
    rows = _records(store).read(T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
    covered = rows[rows["kind"] == "watch"]["sampled_at"]
    # coverage only up to the last listing whose points could be computed: before the snapshot
    assert covered.max() < T0 + timedelta(seconds=3), "no coverage past the first failed poll"


def test_a_worker_clock_behind_the_cluster_is_detected() -> None:
    world = World()
    world.snapshot(T0 + timedelta(seconds=2), start=0.4, done=3.3)
    report = watch.run_watch(
        _config(),
        world.rbds,
        records=None,
        duration=timedelta(seconds=20),
        clock=world.clock(timedelta(seconds=-5)),
    )
    assert report.images[0]["skew_clamps"] >= 1
