"""Parsing of rbd mirror status JSON into samples: every state, both peer-key spellings, zones, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drkit.domain.errors import ConfigError, ParseError, StandbyError
from drkit.domain.rbd_models import MirrorSample
from drkit.domain.rbd_readers import parse_ctime, parse_last_update
from drkit.domain.rbd_status import (
    DEFAULT_STALE_AFTER,
    parse_image_status,
    parse_pool_status,
    parse_snap_ls,
    parse_status,
)

T0 = 1795293323  # 2026-11-21 20:35:23 UTC
NOW = datetime.fromtimestamp(T0 + 40, UTC)
LAST_UPDATE = "2026-11-21 20:35:29"  # UTC, 34 s before NOW


def snap_desc(state: str = "replaying", **extra: Any) -> str:
    """A snapshot-mode description like rbd-mirror's (keys omitted when extra sets them to None)."""
    body: dict[str, Any] = {
        "bytes_per_second": 0.0,
        "bytes_per_snapshot": 0.0,
        "last_snapshot_bytes": 0,
        "last_snapshot_sync_seconds": 0,
        "local_snapshot_timestamp": T0,
        "remote_snapshot_timestamp": T0,
        "replay_state": "idle",
    }
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    return f"{state}, {json.dumps(body, separators=(',', ':'))}"


JOURNAL_DESC = (
    'replaying, {"bytes_per_second":0.0,"entries_behind_primary":3,"entries_per_second":1.5,'
    '"non_primary_position":{"entry_tid":0,"object_number":12,"tag_tid":8},'
    '"primary_position":{"entry_tid":3,"object_number":15,"tag_tid":9}}'
)


def image(
    state: str, description: str, last_update: str | None = LAST_UPDATE, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "nexus-data",
        "global_id": "7c3a-global",
        "state": state,
        "description": description,
        "daemon_service": {
            "service_id": "4151",
            "instance_id": "4153",
            "daemon_id": "rbd-mirror.local",
            "hostname": "lab",
        },
    }
    if last_update is not None:
        doc["last_update"] = last_update
    doc.update(extra)
    return doc


def peer(
    state: str,
    description: str,
    *,
    key: str = "mirror_uuids",
    site: str = "site-a",
    last_update: str = LAST_UPDATE,
) -> dict[str, Any]:
    return {
        "site_name": site,
        key: "5d1c-uuid",
        "state": state,
        "description": description,
        "last_update": last_update,
    }


def parse(doc: dict[str, Any], **kw: Any) -> MirrorSample:
    kw.setdefault("now", NOW)
    kw.setdefault("tz", "UTC")
    kw.setdefault("site", "site-b")
    return parse_image_status(json.dumps(doc), **kw)


# ------------------------------------------------------------------------------ states table

STATES = [
    # (state, description, health, role, local snapshot known)
    ("up+replaying", snap_desc(), "ok", "secondary", True),
    (
        "up+replaying",
        snap_desc(
            replay_state="syncing",
            syncing_snapshot_timestamp=T0 + 30,
            syncing_percent=42,
            seconds_until_synced=7,
        ),
        "syncing",
        "secondary",
        True,
    ),
    ("up+replaying", snap_desc(local_snapshot_timestamp=None), "unknown", "secondary", False),
    (
        "up+replaying",
        snap_desc(local_snapshot_timestamp=None, replay_state="syncing"),
        "syncing",
        "secondary",
        False,
    ),
    ("up+replaying", JOURNAL_DESC, "ok", "secondary", False),
    ("up+syncing", "bootstrapping, IMAGE_SYNC/COPY_IMAGE 12%", "syncing", "secondary", False),
    ("up+starting_replay", "starting replay", "unknown", "secondary", False),
    ("up+stopping_replay", "stopping replay", "unknown", "unknown", False),
    ("up+stopping_replay", "orphan (force promoting)", "unknown", "unknown", False),
    ("up+stopped", "orphan (force promoting)", "unknown", "unknown", False),
    ("up+stopped", "stopped", "unknown", "unknown", False),
    ("up+unknown", "remote image demoted", "unknown", "secondary", False),
    ("up+unknown", "remote image is not primary", "unknown", "secondary", False),
    ("up+unknown", "", "unknown", "unknown", False),
    ("up+error", "split-brain", "split-brain", "secondary", False),
    ("up+error", "failed to copy remote image", "error", "secondary", False),
    ("down+unknown", "status not found", "down", "unknown", False),
    ("down+stopped", "stopped", "down", "unknown", False),
    ("down+replaying", snap_desc(), "down", "secondary", True),
    ("down+error", "split-brain", "split-brain", "secondary", False),
]


@pytest.mark.parametrize(("state", "description", "health", "role", "known"), STATES)
def test_every_state_has_a_health_role_and_reason(
    state: str, description: str, health: str, role: str, known: bool
) -> None:
    sample = parse(image(state, description))
    assert sample.raw_state == state
    assert sample.up == state.startswith("up+")
    assert sample.state == state.split("+")[1]
    assert sample.health == health
    assert sample.role == role
    assert sample.reason and "\n" not in sample.reason
    assert (sample.local_snapshot_time is not None) == known


def test_replaying_snapshot_details_become_aware_times() -> None:
    sample = parse(image("up+replaying", snap_desc(last_snapshot_sync_seconds=3, last_snapshot_bytes=4096)))
    assert sample.mode == "snapshot" and sample.source == "status"
    assert sample.local_snapshot_time == datetime(2026, 11, 21, 20, 35, 23, tzinfo=UTC)
    assert sample.remote_snapshot_time == sample.local_snapshot_time
    assert sample.last_snapshot_sync == timedelta(seconds=3)
    assert sample.last_update == datetime(2026, 11, 21, 20, 35, 29, tzinfo=UTC)
    assert sample.image == "nexus-data" and sample.global_id == "7c3a-global" and sample.site == "site-b"


def test_syncing_progress_is_kept() -> None:
    desc = snap_desc(
        replay_state="syncing", syncing_snapshot_timestamp=T0 + 30, syncing_percent=42, seconds_until_synced=7
    )
    sample = parse(image("up+replaying", desc))
    assert sample.syncing is not None
    assert sample.syncing.percent == 42
    assert sample.syncing.eta == timedelta(seconds=7)
    assert sample.syncing.snapshot_time == datetime.fromtimestamp(T0 + 30, UTC)
    assert "42%" in sample.reason


def test_missing_local_snapshot_timestamp_is_unknown_never_zero() -> None:
    sample = parse(image("up+replaying", snap_desc(local_snapshot_timestamp=None)))
    assert sample.local_snapshot_time is None
    assert "local_snapshot_timestamp absent" in sample.reason
    zero = parse(image("up+replaying", snap_desc(local_snapshot_timestamp=0)))
    assert zero.local_snapshot_time is None


def test_journal_description() -> None:
    sample = parse(image("up+replaying", JOURNAL_DESC))
    assert sample.mode == "journal"
    assert sample.source == "journal-estimate"
    assert sample.entries_behind == 3
    assert sample.entries_per_second == 1.5
    assert sample.local_snapshot_time is None


@pytest.mark.parametrize("key", ["mirror_uuids", "mirror_uuid"])
def test_primary_status_reports_the_peer_side(key: str) -> None:
    doc = image(
        "up+stopped",
        "local image is primary",
        peer_sites=[peer("up+replaying", snap_desc(), key=key, site="site-b")],
        snapshots=[{"id": 5, "name": ".mirror.primary.x.y", "demoted": False, "mirror_peer_uuids": ["5d1c"]}],
    )
    sample = parse(doc, site="site-a")
    assert sample.from_peer
    assert sample.site == "site-b" and sample.observed_from == "site-a"
    assert sample.role == "secondary"
    assert sample.health == "ok"
    assert sample.local_snapshot_time == datetime.fromtimestamp(T0, UTC)


def test_primary_without_peer_sites_is_unknown() -> None:
    sample = parse(image("up+stopped", "local image is primary"), site="site-a")
    assert sample.role == "primary"
    assert sample.health == "unknown"
    assert "secondary" in sample.reason


def test_peer_with_unnamed_site_is_named_by_uuid() -> None:
    doc = image(
        "up+stopped", "local image is primary", peer_sites=[peer("up+replaying", snap_desc(), site="")]
    )
    sample = parse(doc)
    assert sample.site == "peer 5d1c-uuid"


def test_several_peers_pick_by_name_or_the_worst() -> None:
    doc = image(
        "up+stopped",
        "local image is primary",
        peer_sites=[
            peer("up+replaying", snap_desc(), site="site-b"),
            peer("down+stopped", "stopped", site="site-c"),
        ],
    )
    assert parse(doc).site == "site-c"
    assert parse(doc).health == "down"
    chosen = parse_image_status(json.dumps(doc), now=NOW, tz="UTC", peer_site="site-b")
    assert chosen.site == "site-b" and chosen.health == "ok"


def test_both_sides_primary_is_split_brain() -> None:
    doc = image(
        "up+stopped",
        "local image is primary",
        peer_sites=[peer("up+stopped", "local image is primary", site="site-b")],
    )
    sample = parse(doc, site="site-a")
    assert sample.health == "split-brain"
    assert "site-a" in sample.reason and "site-b" in sample.reason


def test_split_brain_error_state() -> None:
    sample = parse(
        image("up+error", "split-brain", peer_sites=[peer("up+stopped", "local image is primary")])
    )
    assert sample.health == "split-brain"
    assert "resync" in sample.reason


def test_secondary_view_ignores_primary_peer() -> None:
    doc = image("up+replaying", snap_desc(), peer_sites=[peer("up+stopped", "local image is primary")])
    sample = parse(doc)
    assert not sample.from_peer and sample.health == "ok" and sample.role == "secondary"


# ------------------------------------------------------------------------------------- time


def test_stale_status() -> None:
    old = (NOW - DEFAULT_STALE_AFTER - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    sample = parse(image("up+replaying", snap_desc(), last_update=old))
    assert sample.health == "stale"
    assert "last written" in sample.reason
    fresh = (NOW - DEFAULT_STALE_AFTER + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert parse(image("up+replaying", snap_desc(), last_update=fresh)).health == "ok"


def test_stale_limit_is_a_parameter() -> None:
    sample = parse(image("up+replaying", snap_desc()), stale_after=timedelta(seconds=10))
    assert sample.health == "stale"


def test_missing_last_update_is_unknown() -> None:
    assert parse(image("up+replaying", snap_desc(), last_update=None)).health == "unknown"


@pytest.mark.parametrize(
    ("zone", "text", "utc"),
    [
        ("Europe/Paris", "2026-11-21 21:35:29", datetime(2026, 11, 21, 20, 35, 29, tzinfo=UTC)),  # CET +1
        ("Europe/Paris", "2026-07-01 12:00:00", datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)),  # CEST +2
        ("America/New_York", "2026-11-21 15:35:29", datetime(2026, 11, 21, 20, 35, 29, tzinfo=UTC)),
        ("UTC", "2026-11-21 20:35:29", datetime(2026, 11, 21, 20, 35, 29, tzinfo=UTC)),
        # DST fall-back: 02:30 happens twice in Paris on 2026-10-25; the earlier instant is taken.
        ("Europe/Paris", "2026-10-25 02:30:00", datetime(2026, 10, 25, 0, 30, 0, tzinfo=UTC)),
    ],
)
def test_last_update_is_read_in_the_site_zone(zone: str, text: str, utc: datetime) -> None:
    assert parse_last_update(text, ZoneInfo(zone), "t") == utc


def test_paris_status_is_fresh_in_paris_and_stale_if_read_as_utc() -> None:
    doc = image("up+replaying", snap_desc(), last_update="2026-11-21 21:35:29")
    assert parse(doc, tz="Europe/Paris").health == "ok"
    assert parse(doc, tz=ZoneInfo("Europe/Paris")).last_update == datetime(
        2026, 11, 21, 20, 35, 29, tzinfo=UTC
    )
    assert parse(doc, tz="Asia/Tokyo").health == "stale"  # read 8 h in the past: stale
    future = parse(doc, tz="America/New_York")  # read 5 h in the future: a wrong zone
    assert future.health == "unknown" and "time zone" in future.reason


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse(image("up+replaying", snap_desc()), tz="Mars/Olympus")


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty input"),
        ("   \n", "empty input"),
        ('{"name": "x", "state": "up+repl', "invalid JSON"),
        ("not json", "invalid JSON"),
        ("[1, 2]", "got a JSON list"),
        ('"up+replaying"', "got a JSON str"),
        ('{"foo": 1}', "keys \\['foo'\\]"),
        ('{"images": {}}', "'images' to be a list"),
        ('{"summary": {"health": "OK"}}', "--verbose"),
        ('{"images": [42]}', "images\\[0\\]: expected an image object"),
        ('{"images": [{"state": "up+replaying"}]}', "'name'"),
        ('{"name": "x", "id": "104e", "size": 1, "mirroring": {"primary": true}}', "rbd info"),
        ('{"name": "x", "state": 3}', "'state' to be a string"),
        ('{"name": "x", "state": "up+replaying", "last_update": "yesterday"}', "YYYY-MM-DD"),
        ('{"name": "x", "peer_sites": {}}', "'peer_sites' to be a list"),
        ('{"name": "x", "peer_sites": ["a"]}', "peer_sites\\[0\\]"),
    ],
)
def test_bad_input_raises_one_line_parse_error(text: str, match: str) -> None:
    with pytest.raises(ParseError, match=match) as info:
        parse_status(text, now=NOW, tz="UTC")
    assert isinstance(info.value, StandbyError)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(("expected", "pool status", "image status"))


def test_unknown_extra_fields_are_tolerated() -> None:
    doc = image(
        "up+replaying",
        snap_desc(some_future_key=[1, 2]),
        new_top_level={"x": 1},
        peer_sites=[dict(peer("up+stopped", "local image is primary"), extra="y")],
    )
    assert parse(doc).health == "ok"


def test_unreadable_description_json_degrades_one_image_not_the_pool() -> None:
    sample = parse(image("up+replaying", 'replaying, {"local_snapshot_timestamp": 17'))
    assert sample.health == "unknown"
    assert "unreadable replay details" in sample.reason


def test_bytes_input_is_accepted() -> None:
    samples = parse_status(json.dumps(image("up+replaying", snap_desc())).encode(), now=NOW, tz="UTC")
    assert samples[0].health == "ok"


# ------------------------------------------------------------------------------ pool status


def pool_doc(images: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": {
            "health": "WARNING",
            "daemon_health": "OK",
            "image_health": "WARNING",
            "states": {"replaying": 1, "stopped": 1},
        },
        "daemons": [
            {
                "service_id": "4151",
                "instance_id": "4153",
                "client_id": "rbd-mirror.local",
                "hostname": "lab",
                "ceph_version": "16.2.15",
                "leader": True,
                "health": "OK",
            }
        ],
        "images": images,
    }


def test_pool_status_verbose() -> None:
    doc = pool_doc(
        [
            image("up+replaying", snap_desc()) | {"name": "a"},
            image("down+stopped", "stopped") | {"name": "b"},
            image("up+error", "split-brain") | {"name": "c"},
        ]
    )
    pool = parse_pool_status(json.dumps(doc), now=NOW, tz="UTC", site="site-b", pool="rbd")
    assert pool.health == "WARNING" and pool.daemon_health == "OK"
    assert pool.states == {"replaying": 1, "stopped": 1}
    assert pool.daemons[0].leader is True and pool.daemons[0].hostname == "lab"
    assert [(s.image, s.health) for s in pool.samples] == [("a", "ok"), ("b", "down"), ("c", "split-brain")]
    assert all(s.pool == "rbd" for s in pool.samples)
    assert (
        parse_status(json.dumps(doc), now=NOW, tz="UTC") == parse_pool_status(doc, now=NOW, tz="UTC").samples
    )


def test_pool_status_rbd_mirror_down_summary() -> None:
    doc = {
        "summary": {"health": "UNKNOWN", "daemon_health": "UNKNOWN", "image_health": "OK", "states": {}},
        "images": [],
    }
    pool = parse_pool_status(doc, now=NOW, tz="UTC")
    assert pool.daemon_health == "UNKNOWN" and pool.samples == ()


def test_samples_are_frozen_models() -> None:
    sample = parse(image("up+replaying", snap_desc()))
    with pytest.raises(ValueError):
        sample.health = "error"  # type: ignore[misc]


# ---------------------------------------------------------------------------------- snap ls


def test_snap_ls_mirror_namespace() -> None:
    doc = [
        {
            "id": 4,
            "name": "user-snap",
            "size": 1,
            "protected": "false",
            "timestamp": "Sat Nov 21 20:00:00 2026",
            "namespace": {"type": "user"},
        },
        {
            "id": 7,
            "name": ".mirror.non_primary.7c3a.aaa",
            "size": 1073741824,
            "protected": "false",
            "timestamp": "Sat Nov 21 21:35:29 2026",
            "namespace": {
                "type": "mirror",
                "state": "non-primary",
                "mirror_peer_uuids": [],
                "complete": True,
                "primary_mirror_uuid": "5d1c",
                "primary_snap_id": 12,
                "last_copied_object_number": 256,
            },
        },
        {
            "id": 9,
            "name": ".mirror.primary.7c3a.bbb",
            "size": 1,
            "protected": "false",
            "timestamp": "Sun Nov  1 09:05:00 2026",
            "namespace": {
                "type": "mirror",
                "state": "primary",
                "mirror_peer_uuids": ["p1"],
                "complete": True,
            },
        },
    ]
    snaps = parse_snap_ls(json.dumps(doc), tz="Europe/Paris")
    assert [s.id for s in snaps] == [7, 9]
    b = snaps[0]
    assert b.non_primary and b.complete and b.primary_snap_id == 12 and b.last_copied_object_number == 256
    assert b.created_at == datetime(2026, 11, 21, 20, 35, 29, tzinfo=UTC)
    a = snaps[1]
    assert not a.non_primary and a.mirror_peer_uuids == ("p1",)
    assert a.created_at == datetime(2026, 11, 1, 8, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["{}", "[1]", '[{"id": 1, "name": "x"}]', "[", ""])
def test_snap_ls_bad_shapes(text: str) -> None:
    with pytest.raises(ParseError):
        parse_snap_ls(text, tz="UTC")


def test_ctime_empty_and_bad() -> None:
    assert parse_ctime("", ZoneInfo("UTC"), "t") is None
    with pytest.raises(ParseError, match="Sat Nov 21"):
        parse_ctime("2026-11-21", ZoneInfo("UTC"), "t")
