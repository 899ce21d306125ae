"""Golden tests: real ``rbd`` JSON recorded on the two-cluster Ceph 16.2.15 lab (``tests/golden/rbd``).

Each ``NAME.json`` has a ``NAME.meta.json`` sidecar with the capture epoch (``captured_at_epoch``,
used as ``now``) and the host zone (``timezone.name``) rbd printed ``last_update`` in. Without a
sidecar the capture time is the newest ``last_update`` in the file and the zone UTC.

Every ``*.json`` is checked: status documents must parse to the verdict a DR operator needs (the
table ``EXPECTED`` for the recorded scenarios, name-based rules for new captures), ``snap ls`` must
parse, and other rbd outputs (``rbd info``, ``mirror pool info``, schedules, non-verbose pool status)
must be refused with a one-line :class:`ParseError`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drkit.domain.errors import ParseError
from drkit.domain.rbd_readers import parse_last_update
from drkit.domain.rbd_status import parse_image_status, parse_snap_ls, parse_status
from drkit.domain.rpo import exact_lag, image_lag
from drkit.domain.rpo_points import points_from_snapshots

GOLDEN = Path(__file__).parent / "rbd"
FILES = (
    sorted(p for p in GOLDEN.glob("*.json") if not p.name.endswith(".meta.json")) if GOLDEN.is_dir() else []
)

# file -> {image: (health, lag known?)}; "ok" with True means a number must come out (for a
# journal-mode image, the estimate: its measured lag is always None).
EXPECTED: dict[str, dict[str, tuple[str, bool]]] = {
    "image-status-primary-a.json": {"golden-snap": ("ok", True)},  # from peer_sites (site-b)
    "image-status-secondary-b-replaying.json": {"golden-snap": ("ok", True)},
    "pool-status-verbose-a.json": {"golden-snap": ("ok", True)},
    "pool-status-verbose-b.json": {"golden-snap": ("ok", True)},
    "image-status-journal-secondary-b.json": {"golden-journal": ("ok", True)},
    "image-status-journal-primary-a.json": {"golden-journal": ("ok", True)},
    "image-status-journal-secondary-b-caught-up.json": {"golden-journal": ("ok", True)},
    "pool-status-verbose-journal-b.json": {"golden-journal": ("ok", True), "golden-snap": ("ok", True)},
    "image-status-force-promoting-b.json": {"golden-snap": ("unknown", False)},
    "image-status-force-promoted-a.json": {"golden-snap": ("split-brain", False)},  # both primary
    "image-status-force-promoted-b.json": {"golden-snap": ("split-brain", False)},
    "pool-status-verbose-force-promoted-a.json": {
        "golden-snap": ("split-brain", False),
        "golden-journal": ("ok", True),
    },
    "pool-status-verbose-force-promoted-b.json": {
        "golden-snap": ("split-brain", False),
        "golden-journal": ("ok", True),
    },
    "image-status-split-brain-a.json": {"golden-snap": ("split-brain", False)},
    "image-status-split-brain-b.json": {"golden-snap": ("split-brain", False)},
    "pool-status-verbose-split-brain-a.json": {
        "golden-snap": ("split-brain", False),
        "golden-journal": ("ok", True),
    },
    "pool-status-verbose-split-brain-b.json": {
        "golden-snap": ("split-brain", False),
        "golden-journal": ("ok", True),
    },
    # no replay rate yet, entries behind: the journal estimate cannot give a figure
    "image-status-journal-secondary-b-initial.json": {"golden-journal": ("unknown", False)},
    # `rbd mirror image resync` on A, the three states seen in order (tests/golden/rbd/README.md);
    # golden-journal (primary on A) keeps replaying on B meanwhile.
    "image-status-resync-1-up-error-a.json": {"golden-snap": ("split-brain", False)},
    "pool-status-verbose-resync-1-up-error-a.json": {
        "golden-snap": ("split-brain", False),
        "golden-journal": ("ok", True),
    },
    "image-status-resync-2-down-unknown-a.json": {"golden-snap": ("down", False)},
    "pool-status-verbose-resync-2-down-unknown-a.json": {
        "golden-snap": ("down", False),
        "golden-journal": ("ok", True),
    },
    "image-status-resync-3-up-replaying-a.json": {"golden-snap": ("ok", True)},
    "pool-status-verbose-resync-3-up-replaying-a.json": {
        "golden-snap": ("ok", True),
        "golden-journal": ("ok", True),
    },
    "image-status-mirror-daemon-down-secondary-b.json": {"golden-journal": ("down", False)},
    "image-status-peer-daemon-down-a.json": {"golden-journal": ("down", False)},
    # golden-snap is primary on B: B's dead daemon does not matter, A's replica is replaying.
    "image-status-mirror-daemon-down-primary-b.json": {"golden-snap": ("ok", True)},
    "pool-status-verbose-mirror-daemon-down-b.json": {
        "golden-journal": ("down", False),
        "golden-snap": ("ok", True),
    },
}
NOT_STATUS = re.compile(r"^(image-info|mirror-pool-info|snapshot-schedule-ls|pool-status-[ab]\.json)")


def _meta(path: Path) -> dict[str, Any]:
    side = path.with_name(path.name[: -len(".json")] + ".meta.json")
    data = json.loads(side.read_text()) if side.exists() else {}
    return data if isinstance(data, dict) else {}


def _zone(meta: dict[str, Any]) -> ZoneInfo:
    value = meta.get("timezone", meta.get("tz", meta.get("zone")))
    if isinstance(value, dict):
        value = value.get("name")
    return ZoneInfo(value) if isinstance(value, str) and value else ZoneInfo("UTC")


def _now(meta: dict[str, Any], text: str, zone: ZoneInfo) -> datetime:
    epoch = meta.get("captured_at_epoch")
    if isinstance(epoch, int | float):
        return datetime.fromtimestamp(epoch, UTC)
    stamps = [parse_last_update(m, zone, "golden") for m in re.findall(r'"last_update":\s*"([^"]+)"', text)]
    known = [s for s in stamps if s is not None]
    return max(known) + timedelta(seconds=1) if known else datetime.now(UTC)


def _by_name(name: str) -> str:
    """The verdict a new capture's name promises: split-brain, down, replaying or any."""
    low = name.lower().replace("_", "-")
    if "split-brain" in low:
        return "split-brain"
    if "stopped" in low or "down" in low:
        return "down"
    if "replaying" in low:
        return "replaying"
    return "any"


@pytest.mark.skipif(not FILES, reason="no golden captures in tests/golden/rbd yet")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_capture(path: Path) -> None:
    text = path.read_text()
    meta = _meta(path)
    zone = _zone(meta)
    now = _now(meta, text, zone)
    if path.name.startswith("snap-ls"):
        snaps = parse_snap_ls(text, tz=zone)
        assert snaps and all(s.created_at is not None and s.complete for s in snaps)
        assert all((s.primary_snap_id is not None) == s.non_primary for s in snaps)
        return
    if NOT_STATUS.match(path.name):
        with pytest.raises(ParseError) as info:
            parse_status(text, now=now, tz=zone)
        assert "\n" not in str(info.value)
        return
    samples = parse_status(text, now=now, tz=zone, site=str(meta.get("site", "")))
    assert samples, f"{path.name}: no image in the capture"
    lags = {lag.image: lag for lag in (image_lag(s, now) for s in samples)}
    seen = {name: (lag.health, lag.lag_or_estimate_seconds, lag.reason) for name, lag in lags.items()}
    for lag in lags.values():
        assert lag.reason and "\n" not in lag.reason
        if lag.mode == "journal":  # an estimate, never in the measured lag
            assert lag.lag is None and lag.source == "journal-estimate", seen
        else:
            assert lag.lag_estimate is None, seen
        if lag.health not in ("ok", "syncing"):
            assert lag.lag_or_estimate is None, (
                f"{path.name}: {lag.image} is {lag.health} yet has a lag: {seen}"
            )
        if lag.lag_or_estimate is not None:
            assert timedelta(0) <= lag.lag_or_estimate < timedelta(minutes=10), seen
    if path.name in EXPECTED:
        for image, (health, known) in EXPECTED[path.name].items():
            assert lags[image].health == health, f"{path.name}: {seen}"
            assert (lags[image].lag_or_estimate is not None) == known, f"{path.name}: {seen}"
        return
    rule = _by_name(path.name)
    healths = {lag.health for lag in lags.values()}
    if rule == "split-brain":
        assert "split-brain" in healths, f"{path.name}: {seen}"
    elif rule == "down":
        assert healths & {"down", "stale"}, f"{path.name}: {seen}"
    elif rule == "replaying":
        for smp in samples:
            lag = lags[smp.image]
            assert lag.health in ("ok", "syncing"), f"{path.name}: {seen}"
            if smp.local_snapshot_time is not None:
                assert lag.lag is not None, f"{path.name}: {seen}"


def test_expected_table_names_real_files() -> None:
    if not FILES:
        pytest.skip("no golden captures yet")
    names = {p.name for p in FILES}
    assert set(EXPECTED) <= names, sorted(set(EXPECTED) - names)


def test_every_recorded_status_has_an_expected_verdict() -> None:
    """A new status capture must get a row in EXPECTED (the name rules are only a fallback)."""
    if not FILES:
        pytest.skip("no golden captures yet")
    status = {p.name for p in FILES if not p.name.startswith("snap-ls") and not NOT_STATUS.match(p.name)}
    assert status <= set(EXPECTED), sorted(status - set(EXPECTED))


def test_expected_names_every_image_of_a_pool_capture() -> None:
    for path in FILES:
        if path.name.startswith("pool-status-verbose") and path.name in EXPECTED:
            images = {i["name"] for i in json.loads(path.read_text()).get("images", [])}
            assert set(EXPECTED[path.name]) == images, path.name


def _load(name: str) -> tuple[str, datetime, ZoneInfo]:
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"{name} not recorded")
    meta = _meta(path)
    zone = _zone(meta)
    text = path.read_text()
    return text, _now(meta, text, zone), zone


def test_exact_points_match_the_status_consistency_point() -> None:
    """On real Ceph: B's complete non-primary snapshot -> A's primary snapshot time == local_snapshot_timestamp."""
    a_text, _, a_zone = _load("snap-ls-all-a.json")
    b_text, listed_at, b_zone = _load("snap-ls-all-b.json")
    status_text, now, zone = _load("image-status-secondary-b-replaying.json")
    primary_times = {s.id: s.created_at for s in parse_snap_ls(a_text, tz=a_zone) if s.created_at is not None}
    points = points_from_snapshots(parse_snap_ls(b_text, tz=b_zone), primary_times, listed_at=listed_at)
    sample = parse_image_status(status_text, now=now, tz=zone)
    assert points, "no complete synced point"
    assert points[-1].data_time == sample.local_snapshot_time
    later = max(now, listed_at)  # the listing bounds completion by its own capture time
    exact = exact_lag("golden-snap", points, later)
    status = image_lag(sample, later)
    assert exact.source == "exact" and status.source == "status"
    assert exact.lag is not None and status.lag is not None
    assert status.lag >= exact.lag  # the status figure is an upper bound
