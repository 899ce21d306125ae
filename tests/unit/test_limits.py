"""Operation limits are configuration: each app's ``limits`` (and ``checks.startup_timeout``) bound
its steps in a real run (no ``timeouts`` given), on the fake two-site world and its fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drkit.config import parse_config
from drkit.domain import crypto
from drkit.domain.errors import ConfigError, StandbyError
from drkit.domain.models import StandbyConfig
from drkit.domain.operations import Approval, Journal
from drkit.domain.step_limits import STEP_LIMITS
from drkit.jobs.backup import run_backup
from drkit.jobs.drill import prepare_drill, run_drill, start_drill
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.jobs.steps import STEPS
from drkit.testing.dr import FakeDr, fake_dr

KEY = crypto.MasterKey(bytes(range(32)))
EXAMPLE = (Path(__file__).resolve().parents[2] / "standby.example.yaml").read_text()


def _configured(dr: FakeDr, **fields: Any) -> None:
    """Give the fake world's app ``fields`` (e.g. ``limits={...}``), validated as the file would be."""
    config = dr.world.config.model_dump(mode="json")
    for name, value in fields.items():
        if name == "checks":
            config["apps"][0]["checks"].update(value)
        else:
            config["apps"][0][name] = value
    dr.world.config = StandbyConfig.model_validate(config)


def _ready(**fields: Any) -> FakeDr:
    dr = fake_dr()
    _configured(dr, **fields)
    b = dr.world.bundle("site-a")
    run_backup(dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    dr.nexus_fail_writes.add("site-b")  # the app never becomes writable on B: start-up never ends
    return dr


def _relocate(dr: FakeDr) -> Journal:
    prepared = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY)
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    approval = Approval(approver="tester", reason="unit", at=datetime(2026, 11, 30, tzinfo=UTC))
    return approve(dr.world, prepared, approval, "nexus")


@pytest.mark.parametrize(
    ("fields", "seconds", "where"),
    [
        ({"limits": {"startup": "2m"}}, 120, "limits.startup of app nexus"),
        ({"checks": {"startup_timeout": "90s"}}, 90, "checks.startup_timeout of app nexus"),
        (
            {"limits": {"startup": "7m"}, "checks": {"startup_timeout": "7m"}},
            420,
            "limits.startup of app nexus",
        ),
        ({}, 300, "limits.startup of app nexus"),
    ],
)
def test_the_start_step_fails_after_the_configured_start_up_limit(
    fields: dict[str, Any], seconds: int, where: str
) -> None:
    dr = _ready(**fields)
    journal = _relocate(dr)
    started: dict[str, float] = {}

    def watch(j: Journal, record: Any) -> None:
        if record.name == "start-target" and record.outcome == "running":
            started["at"] = dr.clock.monotonic()

    with pytest.raises(StandbyError) as failed:
        execute(dr.world, journal, key=KEY, on_step=watch)
    message = str(failed.value)
    assert f"step start-target on site-b failed: not done after {seconds}s ({where})" in message, message
    waited = dr.clock.monotonic() - started["at"]
    assert seconds <= waited < seconds + 5  # the fake clock: the configured limit, not the 300 s constant


def test_a_drill_takes_the_app_limits_for_its_start_and_cleanup() -> None:
    dr = _ready(limits={"startup": "45s"})
    journal = start_drill(dr.world, prepare_drill(dr.world, "nexus", "isolated", key=KEY))
    assert journal.status == "approved", journal.error
    outcome = run_drill(dr.world, journal, key=KEY)
    failed = next(s for s in outcome.journal.steps if s.name == "scratch-start")
    assert failed.outcome == "failed" and failed.error.startswith(
        "not done after 45s (limits.startup of app nexus)"
    )
    assert failed.started_at is not None and failed.ended_at is not None
    assert 45 <= (failed.ended_at - failed.started_at).total_seconds() < 50
    assert not outcome.cleanup_error, outcome.cleanup_error


def test_explicit_timeouts_still_win() -> None:
    dr = _ready(limits={"startup": "20m"})
    with pytest.raises(StandbyError, match=r"step start-target on site-b failed: not done after 30s;?"):
        execute(dr.world, _relocate(dr), key=KEY, timeouts=Timeouts(default=30.0))


def test_timeouts_for_an_app_map_every_limit_to_its_steps() -> None:
    limits = {
        "startup": "1m",
        "smoke": "2m",
        "promote": "3m",
        "resync": "4h",
        "in_sync": "5h",
        "inflight_sync": "6s",
        "mirroring_healthy": "7m",
        "default": "8m",
    }
    dr = fake_dr()
    _configured(dr, limits=limits)
    t = Timeouts.for_app(dr.world.config.app("nexus"))
    expected = {
        "start-target": 60,
        "scratch-start": 60,
        "smoke-target": 120,
        "drill-smoke": 120,
        "promote-target": 180,
        "drill-promote": 180,
        "resync-old": 4 * 3600,
        "resync-drill": 4 * 3600,
        "wait-in-sync": 5 * 3600,
        "drill-healthy": 5 * 3600,
        "wait-inflight-sync": 6,
        "mirroring-healthy": 420,
        "stop-source": 480,
        "restore-volumes": 480,
        "cleanup-app": 480,
    }
    assert {step: t.of(step) for step in expected} == expected
    assert t.describe("resync-old") == "14400s (limits.resync of app nexus)"
    assert t.describe("tidy-source") == "480s (limits.default of app nexus)"
    assert "wait-inflight-sync" in t.continue_after  # its end is still not a failure


def test_the_default_limits_are_the_former_constants() -> None:
    app = fake_dr().world.config.app("nexus")
    assert app.checks.startup_timeout is None and app.limits.startup is None
    configured, constants = Timeouts.for_app(app), Timeouts()
    for step in (
        "wait-inflight-sync",
        "promote-target",
        "resync-old",
        "wait-in-sync",
        "mirroring-healthy",
        "start-target",
        "smoke-target",
        "stop-source",
    ):
        assert configured.of(step) == constants.of(step), step


def test_every_limited_step_exists() -> None:
    assert set(STEP_LIMITS) <= set(STEPS), set(STEP_LIMITS) - set(STEPS)


def test_the_example_configures_limits() -> None:
    config = parse_config(EXAMPLE, source=Path("standby.example.yaml"))
    assert Timeouts.for_app(config.app("nexus")).of("start-target") == 300
    assert Timeouts.for_app(config.app("web")).of("scratch-start") == 120


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("      startup: 5m", "      startup: soon"),
            "app nexus: apps[0].limits.startup: expected a duration like",
        ),
        (
            ("      resync: 15m", "      resync: 0s"),
            "app nexus: apps[0].limits.resync: must be a positive duration",
        ),
        (("      resync: 15m", "      resynch: 1h"), "app nexus: apps[0].limits.resynch: unknown field"),
        (
            (
                "      smoke_repository: dr-smoke",
                "      smoke_repository: dr-smoke\n      startup_timeout: 3m",
            ),
            "app nexus: apps[0]: limits.startup (0:05:00) and checks.startup_timeout (0:03:00) differ; keep one",
        ),
    ],
)
def test_bad_limits_are_one_line_naming_the_app_and_the_field(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in EXAMPLE, edit[0]
    with pytest.raises(ConfigError) as info:
        parse_config(EXAMPLE.replace(edit[0], edit[1], 1), source=Path("bad.yaml"))
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and expected in message and "\n" not in message, message
