"""RPO maths: per-image and per-app lag, journal estimate, exact mode, sawtooth, hysteresis."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drkit.domain.rbd_models import MirrorSample, MirrorSnapshot
from drkit.domain.rbd_status import parse_image_status
from drkit.domain.rpo import (
    AppLag,
    BreachState,
    ImageLag,
    app_lag,
    evaluate_breach,
    exact_lag,
    image_lag,
    journal_lag_estimate,
)
from drkit.domain.rpo_points import SyncedPoint, points_from_snapshots
from drkit.domain.rpo_sawtooth import (
    Window,
    lag_series,
    percentiles,
    time_within_target,
    worst_intervals,
    worst_lag,
)

T0 = datetime(2026, 11, 21, 20, 0, 0, tzinfo=UTC)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def at(seconds: float) -> datetime:
    return T0 + s(seconds)


def sample(
    state: str = "up+replaying",
    *,
    local: float | None = 0,
    last_update: float = 10,
    now: float = 20,
    desc: str | None = None,
    **extra: Any,
) -> MirrorSample:
    """A parsed sample: local snapshot at T0+local, status written at T0+last_update, judged at now."""
    if desc is None:
        body: dict[str, Any] = {"replay_state": "idle", "remote_snapshot_timestamp": at(0).timestamp()}
        if local is not None:
            body["local_snapshot_timestamp"] = int(at(local).timestamp())
        body.update(extra)
        desc = "replaying, " + json.dumps(body)
    doc = {
        "name": "img",
        "state": state,
        "description": desc,
        "last_update": at(last_update).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return parse_image_status(json.dumps(doc), now=at(now), tz="UTC", site="site-b")


# ---------------------------------------------------------------------------------- per image


@pytest.mark.parametrize(
    ("kwargs", "now", "lag", "health"),
    [
        ({}, 20, 20.0, "ok"),
        ({"local": 100, "last_update": 105}, 110, 10.0, "ok"),
        ({"local": None}, 20, None, "unknown"),
        ({"state": "down+replaying"}, 20, None, "down"),
        ({"state": "up+error", "desc": "split-brain"}, 20, None, "split-brain"),
        ({"state": "down+error", "desc": "split-brain"}, 20, None, "split-brain"),
        ({"state": "up+error", "desc": "failed to copy remote image"}, 20, None, "error"),
        ({"state": "down+stopped", "desc": "stopped"}, 20, None, "down"),
        ({"state": "down+unknown", "desc": "status not found"}, 20, None, "down"),
        ({"state": "up+unknown", "desc": "remote image demoted"}, 20, None, "unknown"),
        ({"state": "up+stopped", "desc": "local image is primary"}, 20, None, "unknown"),
        ({"state": "up+syncing", "desc": "bootstrapping"}, 20, None, "syncing"),
        ({"last_update": 10}, 86, None, "stale"),  # 76 s > 75 s limit
        ({"last_update": 10}, 85, 85.0, "ok"),
        ({"replay_state": "syncing", "syncing_percent": 10}, 30, 30.0, "syncing"),
    ],
)
def test_image_lag_table(kwargs: dict[str, Any], now: float, lag: float | None, health: str) -> None:
    result = image_lag(sample(now=now, **kwargs), at(now))
    assert result.health == health
    assert result.lag_seconds == lag
    assert result.reason
    assert result.source == "status"


def test_unknown_is_never_zero_and_split_brain_never_healthy() -> None:
    for state, desc in [("up+error", "split-brain"), ("down+error", "split-brain")]:
        for now in (0, 1, 20, 1000):
            lag = image_lag(sample(state, desc=desc, now=now), at(now))
            assert lag.lag is None and lag.health == "split-brain"


def test_staleness_is_rejudged_at_the_lag_time() -> None:
    fresh = sample(now=20)
    assert fresh.health == "ok"
    later = image_lag(fresh, at(500))
    assert later.health == "stale" and later.lag is None
    assert image_lag(fresh, at(500), stale_after=s(1000)).lag == s(500)


def test_small_negative_lag_is_clamped_and_flagged() -> None:
    lag = image_lag(sample(local=23, now=20), at(20))
    assert lag.lag == timedelta(0)
    assert lag.clock_skew == s(3)
    assert "clock skew" in lag.reason


def test_large_negative_lag_is_unknown() -> None:
    lag = image_lag(sample(local=80, now=20), at(20))
    assert lag.lag is None
    assert lag.clock_skew == s(60)
    assert "future" in lag.reason
    assert lag.health == "unknown"  # never "ok" without a figure


def test_status_lag_is_an_upper_bound() -> None:
    """A status written before a newer sync completed shows an older point: lag can only be larger."""
    # true timeline: snapshot at 0 synced at 5, snapshot at 60 synced at 65; status last written at 30.
    status_view = image_lag(sample(local=0, last_update=30, now=70), at(70))
    truth = lag_series([(at(0), at(5)), (at(60), at(65))], [at(70)])[0]
    assert status_view.lag is not None and truth is not None
    assert status_view.lag >= truth
    assert status_view.lag - truth <= s(60)


# ------------------------------------------------------------------------------------- journal

JOURNAL = (
    'replaying, {{"bytes_per_second":0.0,"entries_behind_primary":{behind},"entries_per_second":{eps},'
    '"non_primary_position":{{"entry_tid":0,"object_number":12,"tag_tid":8}},'
    '"primary_position":{{"entry_tid":3,"object_number":15,"tag_tid":9}}}}'
)


@pytest.mark.parametrize(
    ("behind", "eps", "lag"),
    [(0, 0.0, 10.0), (3, 1.5, 12.0), (3, 0.0, None), (30, 10.0, 13.0)],
)
def test_journal_estimate(behind: int, eps: float, lag: float | None) -> None:
    smp = sample(desc=JOURNAL.format(behind=behind, eps=eps), last_update=10, now=20)
    result = image_lag(smp, at(20))
    assert result.source == "journal-estimate"
    assert result.lag_seconds is None  # an estimate is never a measured lag
    assert result.lag_estimate_seconds == lag
    assert result.mode == "journal"
    if lag is None:
        assert "entries behind" in result.reason
        assert result.health == "unknown"


def test_journal_estimate_without_last_update() -> None:
    smp = sample(desc=JOURNAL.format(behind=0, eps=0.0)).model_copy(update={"last_update": None})
    assert journal_lag_estimate(smp, at(20))[0] is None


# ------------------------------------------------------------------------------------- per app


def lag_of(image: str, seconds: float | None, source: str = "status", health: str = "ok") -> ImageLag:
    return ImageLag(
        image=image,
        at=at(100),
        lag=None if seconds is None else s(seconds),
        health=health,
        reason=f"{image} reason",
        source=source,
    )  # type: ignore[arg-type]


def test_app_lag_is_the_oldest_image() -> None:
    result = app_lag("nexus", [lag_of("a", 10), lag_of("b", 40), lag_of("c", 5)])
    assert result.lag == s(40) and result.worst_image == "b" and "b" in result.reason


def test_app_lag_unknown_if_any_image_unknown() -> None:
    result = app_lag("nexus", [lag_of("a", 10), lag_of("b", None, health="down"), lag_of("c", 999)])
    assert result.lag is None and result.worst_image == "b"
    assert "b (down): b reason" in result.reason


def test_app_lag_source_is_the_least_exact() -> None:
    assert app_lag("x", [lag_of("a", 1, "exact"), lag_of("b", 2, "status")]).source == "status"
    assert app_lag("x", [lag_of("a", 1, "exact"), lag_of("b", 2, "journal-estimate")]).source == (
        "journal-estimate"
    )
    assert app_lag("x", [lag_of("a", 1, "exact")]).source == "exact"


def test_app_without_images() -> None:
    assert app_lag("x", [], at=at(0)).lag is None
    with pytest.raises(ValueError):
        app_lag("x", [])


# ---------------------------------------------------------------------------------- exact mode


def snap(id_: int, created: float | None, *, primary: int | None, complete: bool = True) -> MirrorSnapshot:
    return MirrorSnapshot(
        id=id_,
        name=f".mirror.non_primary.g.{id_}",
        created_at=None if created is None else at(created),
        state="non-primary" if primary is not None else "primary",
        non_primary=primary is not None,
        complete=complete,
        primary_snap_id=primary,
    )


def test_points_from_snapshots_use_primary_times_and_next_creation_as_bound() -> None:
    b = [snap(3, 62, primary=12), snap(5, 125, primary=14), snap(6, 185, primary=15, complete=False)]
    a_times = {12: at(60), 14: at(120), 15: at(180)}
    points = points_from_snapshots(b, a_times, listed_at=at(190))
    assert points == (
        # B's creation times are printed truncated to the second: + 1 s keeps them upper bounds
        SyncedPoint(data_time=at(60), completed_at=at(126)),
        SyncedPoint(data_time=at(120), completed_at=at(186)),
    )
    newest_only = points_from_snapshots(b[:2], a_times, listed_at=at(190))
    assert newest_only[-1].completed_at == at(190)
    assert points_from_snapshots(b, {}, listed_at=at(190)) == ()


def test_exact_lag() -> None:
    points = [(at(0), at(5)), (at(60), at(70)), (at(120), None)]
    assert exact_lag("img", points, at(65)).lag == s(65)
    assert exact_lag("img", points, at(75)).lag == s(15)
    now = exact_lag("img", points, at(130))
    assert now.lag == s(10) and now.source == "exact" and now.health == "ok"
    assert exact_lag("img", [], at(10)).lag is None
    # a point listed complete (time unknown) 3 s "in the future": clock skew, clamped and flagged
    skewed = exact_lag("img", [(at(23), None)], at(20))
    assert skewed.lag == timedelta(0) and skewed.clock_skew == s(3)


def test_synced_point_cannot_complete_before_it_exists() -> None:
    with pytest.raises(ValueError):
        SyncedPoint(data_time=at(10), completed_at=at(5))


# ------------------------------------------------------------------------------------ sawtooth

SAW = [(at(0), at(10)), (at(60), at(75)), (at(120), at(130)), (at(180), at(250))]


def test_lag_series() -> None:
    got = lag_series(SAW, [at(5), at(10), at(74.9), at(75), at(129), at(300)])
    assert got == [None, s(10), s(74.9), s(15), s(69), s(120)]


def test_worst_lag_is_just_before_a_completion() -> None:
    assert worst_lag(SAW, at(10), at(300)) == s(250 - 120)
    assert worst_lag(SAW, at(10), at(100)) == s(75)
    assert worst_lag(SAW, at(80), at(100)) == s(40)
    assert worst_lag(SAW, at(0), at(100)) is None  # unknown before the first completion


def test_out_of_order_and_none_points() -> None:
    pts = [(at(60), at(75)), (at(0), at(10)), (at(30), at(200)), (at(90), None)]
    assert lag_series(pts, [at(100), at(210)]) == [s(40), s(150)]


def brute_worst(
    points: list[tuple[datetime, datetime]], start: datetime, end: datetime, step: float
) -> float:
    n = int((end - start).total_seconds() / step)
    values = lag_series(points, [start + s(i * step) for i in range(n + 1)])
    assert all(v is not None for v in values)
    return max(v.total_seconds() for v in values if v is not None)


def random_timeline(rng: random.Random) -> list[tuple[datetime, datetime]]:
    """Snapshots every ~interval with random sync durations, some overlapping (late completions)."""
    points = []
    t = 0.0
    interval = rng.choice([60.0, 120.0, 300.0])
    for _ in range(rng.randint(3, 40)):
        t += interval * rng.uniform(0.5, 1.5)
        duration = rng.expovariate(1 / (interval * rng.choice([0.05, 0.3, 1.5])))
        points.append((at(t), at(t + duration)))
    return points


@pytest.mark.parametrize("seed", range(25))
def test_worst_lag_matches_a_dense_scan(seed: int) -> None:
    rng = random.Random(seed)
    points = random_timeline(rng)
    first_done = min(c for _, c in points)
    start = first_done + s(rng.uniform(0, 30))
    end = max(c for _, c in points) + s(rng.uniform(0, 500))
    exact = worst_lag(points, start, end)
    assert exact is not None
    step = 0.25
    scanned = brute_worst(points, start, end, step)
    assert exact.total_seconds() >= scanned - 1e-6  # the supremum is never below a sampled value
    assert exact.total_seconds() - scanned <= step + 1e-6  # and is approached within one grid step


@pytest.mark.parametrize("seed", range(10))
def test_time_within_target_and_percentiles_match_a_dense_scan(seed: int) -> None:
    rng = random.Random(1000 + seed)
    points = random_timeline(rng)
    window = Window(start=min(c for _, c in points), end=max(c for _, c in points) + s(100))
    step = 0.5
    n = int(window.length.total_seconds() / step)
    values = sorted(
        v.total_seconds()
        for v in lag_series(points, [window.start + s((i + 0.5) * step) for i in range(n)])
        if v is not None
    )
    target = s(rng.choice([60, 120, 300]))
    share = sum(v <= target.total_seconds() for v in values) / len(values)
    assert time_within_target(points, window, target) == pytest.approx(share, abs=0.01)
    for q, value in percentiles(points, window, (0, 50, 95, 99, 100)).items():
        assert value is not None
        idx = min(int(q / 100 * len(values)), len(values) - 1)
        assert value.total_seconds() == pytest.approx(values[idx], abs=2 * step + 1e-6)


def test_percentiles_simple_sawtooth_exactly() -> None:
    # one point completing at its data time: L(t) = t on [0, 100] -> uniform on [0, 100].
    window = Window(start=at(0), end=at(100))
    got = percentiles([(at(0), at(0))], window, (0, 50, 95, 99, 100))
    assert {q: v.total_seconds() for q, v in got.items() if v is not None} == pytest.approx(
        {0: 0.0, 50: 50.0, 95: 95.0, 99: 99.0, 100: 100.0}
    )


def test_percentiles_with_unknown_time() -> None:
    # unknown on [0, 50), L = t - 50 ... on [50, 100]: half the window is unknown.
    window = Window(start=at(0), end=at(100))
    got = percentiles([(at(50), at(50))], window, (25, 50, 75))
    assert got[25] == s(25) and got[50] == s(50) and got[75] is None
    with pytest.raises(ValueError):
        percentiles([], window, (101,))
    assert percentiles([], window) == {50: None, 95: None, 99: None}


def test_time_within_target() -> None:
    window = Window(start=at(10), end=at(250))
    # lag <= 60 on [10, 60] (50 s), [75, 120] (45 s), [130, 180] (50 s); > 60 elsewhere.
    assert time_within_target(SAW, window, s(60)) == pytest.approx(145 / 240)
    assert time_within_target(SAW, window, s(1000)) == 1.0
    assert time_within_target(SAW, Window(start=at(0), end=at(10)), s(1000)) == 0.0


def test_worst_intervals() -> None:
    window = Window(start=at(0), end=at(300))
    got = worst_intervals(SAW, window, s(60), k=5)
    assert got[0].peak is None and (got[0].start, got[0].end) == (at(0), at(10))  # unknown first
    known = got[1:]
    # over 60 s from 180 until 250, where L drops to 70 s: still over, so the run goes on to 300.
    assert (known[0].start, known[0].end, known[0].peak) == (at(180), at(300), s(130))
    assert (known[1].start, known[1].end, known[1].peak) == (at(60), at(75), s(75))
    assert (known[2].start, known[2].end, known[2].peak) == (at(120), at(130), s(70))
    assert len(worst_intervals(SAW, window, s(60), k=2)) == 2


def test_worst_intervals_merge_across_a_completion_still_over_target() -> None:
    pts = [(at(0), at(0)), (at(10), at(100)), (at(20), at(150))]  # L: t, then t-10, then t-20
    got = worst_intervals(pts, Window(start=at(0), end=at(200)), s(50))
    assert len(got) == 1
    assert (got[0].start, got[0].end, got[0].peak) == (at(50), at(200), s(180))
    assert got[0].duration == s(150)


# ---------------------------------------------------------------------------------- hysteresis

TARGET = s(300)


def app(seconds: float | None, when: float) -> AppLag:
    return AppLag(
        app="nexus",
        at=at(when),
        lag=None if seconds is None else s(seconds),
        reason="r",
        source="status",
        images=(),
    )


def run(lags: list[tuple[float | None, float]]) -> list[str | None]:
    state: BreachState | None = None
    events: list[str | None] = []
    for lag, when in lags:
        decision = evaluate_breach(state, app(lag, when), TARGET)
        state = decision.state
        events.append(decision.event)
    return events


@pytest.mark.parametrize(
    ("lags", "events"),
    [
        ([(100, 0), (200, 60)], [None, None]),
        ([(100, 0), (301, 60)], [None, "breach"]),
        ([(301, 0), (290, 60), (250, 120), (239, 180)], ["breach", None, None, "recovered"]),
        ([(301, 0), (299, 60), (301, 120), (299, 180)], ["breach", None, None, None]),  # no flapping
        ([(None, 0), (None, 200), (None, 301)], [None, None, "breach"]),  # unknown longer than target
        ([(None, 0), (None, 200), (100, 250), (None, 400)], [None, None, None, None]),  # reset by a figure
        ([(400, 0), (None, 60), (100, 120)], ["breach", None, "recovered"]),  # unknown keeps it open
    ],
)
def test_breach_hysteresis(lags: list[tuple[float | None, float]], events: list[str | None]) -> None:
    assert run(lags) == events


def test_breach_state_records_since() -> None:
    first = evaluate_breach(None, app(400, 0), TARGET)
    second = evaluate_breach(first.state, app(350, 60), TARGET)
    assert second.state.breached and second.state.breached_since == at(0)
    assert "still breached" in second.reason
    with pytest.raises(ValueError):
        evaluate_breach(None, app(1, 0), TARGET, clear_ratio=0)
