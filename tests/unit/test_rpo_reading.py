"""Rules of one RPO sample (drkit.domain.rpo_reading), the alerts' events and the sampler's JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drkit.domain.rpo import AppLag, ImageLag
from drkit.domain.rpo_reading import AppReading, RpoMemory, evaluate, merge_exact, needs_exact
from drkit.jobs.rpo import SampleRun
from drkit.views.rpo import sample_json
from tasks.events import BREACH_EVENT, RECOVERED_EVENT, UNHEALTHY_EVENT, rpo_event

T = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TARGET = timedelta(minutes=5)


def _lag(health: str, seconds: float | None, source: str = "status", reason: str = "r") -> ImageLag:
    return ImageLag(
        image="img",
        pool="p",
        site="site-b",
        at=T,
        health=health,  # type: ignore[arg-type]
        lag=None if seconds is None else timedelta(seconds=seconds),
        reason=reason,
        source=source,
        raw_state="up+replaying",
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("health", "seconds", "mode", "expected"),
    [
        ("ok", 10, "auto", False),  # well within target: the status is enough
        ("ok", 241, "auto", True),  # over 0.8 x target: a breach is suspected
        ("ok", 240, "auto", False),  # exactly 0.8 x target: not yet
        ("down", None, "auto", True),  # no figure from the status
        ("stale", None, "auto", True),
        ("ok", 10, "always", True),
        ("ok", 999, "never", False),
        ("split-brain", None, "always", False),  # never a lag for split-brain or error
        ("error", None, "auto", False),
    ],
)
def test_needs_exact(health: str, seconds: float | None, mode: str, expected: bool) -> None:
    assert needs_exact(_lag(health, seconds), mode, TARGET) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status_health", "exact_seconds", "health", "seconds", "reason"),
    [
        ("ok", 12, "ok", 12, "exact"),
        ("unknown", 12, "ok", 12, "exact"),
        ("down", 12, "down", 12, "status; exact"),  # a down daemon stays down, with the exact figure
        ("stale", 30, "stale", 30, "status; exact"),
        ("syncing", 5, "syncing", 5, "status; exact"),
        ("ok", None, "ok", 40, "status"),  # no exact figure: the status lag stands
    ],
)
def test_merge_exact(
    status_health: str, exact_seconds: float | None, health: str, seconds: float, reason: str
) -> None:
    status = _lag(status_health, 40, reason="status")
    exact = _lag("ok", exact_seconds, source="exact", reason="exact").model_copy(
        update={"pool": "", "site": ""}
    )
    merged = merge_exact(status, exact, "p", "site-b")
    assert (merged.health, merged.lag_seconds, merged.reason) == (health, seconds, reason)
    assert (merged.pool, merged.site, merged.raw_state) == ("p", "site-b", "up+replaying")


def _reading(seconds: float | None, health: str = "ok") -> AppReading:
    image = _lag(health, seconds)
    lag = AppLag(
        app="nexus",
        at=T,
        lag=image.lag,
        images=(image,),
        worst_image="img",
        source="status",
        reason=image.reason,
    )
    return AppReading(app="nexus", target=TARGET, lag=lag, secondary_site="site-b", pool="p")


def test_alerts_once_per_crossing_and_their_events() -> None:
    memory, alerts = evaluate(_reading(400), RpoMemory())
    assert [a.kind for a in alerts] == ["breach"]
    event = rpo_event(alerts[0])
    assert event.event == BREACH_EVENT and event.resource["prefect.resource.id"] == "standby.app.nexus"
    assert event.payload["lag_seconds"] == 400 and event.payload["target_seconds"] == 300
    memory, alerts = evaluate(_reading(400), memory)
    assert alerts == []
    memory, alerts = evaluate(_reading(10), memory)
    assert [rpo_event(a).event for a in alerts] == [RECOVERED_EVENT]


def test_an_image_entering_split_brain_is_one_unhealthy_event_about_the_image() -> None:
    memory, alerts = evaluate(_reading(None, "split-brain"), RpoMemory())
    (event,) = [rpo_event(a) for a in alerts if a.kind == "unhealthy"]
    assert event.event == UNHEALTHY_EVENT
    assert event.resource["prefect.resource.id"] == "standby.rbd-image.p.img"
    assert event.payload["health"] == "split-brain"
    assert [a for a in evaluate(_reading(None, "split-brain"), memory)[1] if a.kind == "unhealthy"] == []


def test_sample_json_names_alerts_by_kind() -> None:
    reading = _reading(400)
    _, alerts = evaluate(reading, RpoMemory())
    run = SampleRun(at=T, samplings=(), readings=(reading,), keys=("k",), alerts=tuple(alerts))
    doc = sample_json(run)
    assert doc["alerts"][0]["kind"] == "breach" and doc["keys"] == ["k"]
    assert doc["apps"][0]["images"][0]["lag_seconds"] == 400.0
