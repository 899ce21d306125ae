"""Parsing of ``rbd`` JSON (image status, pool status, snapshot listings) into typed mirror samples:
pure, no I/O, time injected.

Every time leaves this module as an aware ``datetime``; malformed JSON or a wrong shape raises
:class:`~drkit.domain.errors.ParseError` in one line. What rbd prints and how it is read is in
docs/architecture.md, "What rbd prints".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field

from drkit.domain.errors import ConfigError, ParseError
from drkit.domain.models import Model

MirrorState = Literal[
    "unknown", "error", "syncing", "starting_replay", "replaying", "stopping_replay", "stopped"
]
"""The replay state after ``up+``/``down+`` in rbd's ``state`` field."""
Health = Literal["ok", "syncing", "stale", "down", "split-brain", "error", "unknown"]
"""Standby's verdict on one image's replication."""
Role = Literal["primary", "secondary", "unknown"]
MirrorMode = Literal["snapshot", "journal", "unknown"]
LagSource = Literal["status", "exact", "journal-estimate"]
"""Where a lag figure comes from: the 30 s status, the exact synced points, or a journal estimate."""

STATUS_CADENCE = timedelta(seconds=30)
"""rbd-mirror rewrites each image status every 30 s (hard-coded), and at once on state changes."""
DEFAULT_STALE_AFTER = 2 * STATUS_CADENCE + timedelta(seconds=15)
"""A status whose ``last_update`` is older than this (two missed writes plus margin) is stale."""

FUTURE_TOLERANCE = timedelta(minutes=2)
"""A ``last_update`` further than this in the future means a wrong zone or a skewed clock: unknown."""

_MIRROR_STATES: frozenset[str] = frozenset(get_args(MirrorState))
_LAST_UPDATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
_PRIMARY = "local image is primary"


# ------------------------------------------------------------------------------------------- models


class SyncProgress(Model):
    """A snapshot sync running on the non-primary side."""

    snapshot_time: AwareDatetime | None = Field(
        None, description="creation time on the primary of the snapshot being synced"
    )
    percent: float | None = Field(None, description="share of the snapshot's objects copied, 0-100")
    eta: timedelta | None = Field(None, description="rbd-mirror's estimate of the time until synced")


class JournalPosition(Model):
    """A position in an image's journal (journal-mode mirroring)."""

    tag_tid: int = Field(..., description="journal tag transaction id")
    entry_tid: int = Field(..., description="journal entry transaction id")
    object_number: int = Field(..., description="journal object number")


class ReplayDetails(Model):
    """The JSON that follows ``"replaying, "`` in a description; absent keys stay ``None``."""

    mode: MirrorMode = Field(..., description="mirroring mode the keys belong to")
    replay_state: str | None = Field(None, description="snapshot mode: 'idle' or 'syncing'")
    local_snapshot_time: AwareDatetime | None = Field(
        None, description="consistency point of the newest complete snapshot on the non-primary side"
    )
    remote_snapshot_time: AwareDatetime | None = Field(
        None, description="creation time of the newest complete snapshot on the primary side"
    )
    last_snapshot_sync: timedelta | None = Field(None, description="how long the last snapshot sync took")
    last_snapshot_bytes: int | None = Field(None, description="bytes copied by the last snapshot sync")
    bytes_per_second: float | None = Field(None, description="recent replay throughput")
    bytes_per_snapshot: float | None = Field(None, description="rolling mean of bytes per snapshot")
    syncing: SyncProgress | None = Field(None, description="the sync in progress, if any")
    entries_behind_primary: int | None = Field(None, description="journal mode: entries not yet replayed")
    entries_per_second: float | None = Field(None, description="journal mode: replay rate")
    primary_position: JournalPosition | None = Field(None, description="journal mode: primary's position")
    non_primary_position: JournalPosition | None = Field(
        None, description="journal mode: position replayed on the non-primary side"
    )


class SiteStatus(Model):
    """One site's status of one image, as rbd prints it (the top level, or one ``peer_sites`` entry)."""

    site_name: str = Field("", description="site name ('' when rbd does not know it)")
    mirror_uuid: str | None = Field(None, description="peer's mirror uuid (peer entries only)")
    raw_state: str = Field("", description="rbd's state as printed, e.g. 'up+replaying'")
    up: bool = Field(False, description="whether an rbd-mirror daemon is reporting the image")
    state: MirrorState = Field("unknown", description="replay state after 'up+'/'down+'")
    description: str = Field("", description="rbd-mirror's free-text description")
    last_update: AwareDatetime | None = Field(None, description="when the status was last written")
    details: ReplayDetails | None = Field(None, description="parsed JSON part of the description")
    details_error: str | None = Field(None, description="why the description's JSON could not be read")


class MirrorSample(Model):
    """The replication state of one image's non-primary copy, read from one status document."""

    image: str = Field(..., description="RBD image name")
    global_id: str = Field("", description="mirror global image id")
    pool: str = Field("", description="RBD pool name ('' when not given)")
    site: str = Field("", description="site whose copy this sample describes ('' when unknown)")
    observed_from: str = Field("", description="site whose rbd printed the status ('' when not given)")
    from_peer: bool = Field(False, description="read from the primary's peer_sites[] entry")
    role: Role = Field(..., description="role of the image at 'site'")
    state: MirrorState = Field(..., description="replay state")
    up: bool = Field(..., description="whether an rbd-mirror daemon is reporting the image")
    raw_state: str = Field(..., description="rbd's state as printed, e.g. 'up+replaying'")
    description: str = Field(..., description="rbd-mirror's description")
    health: Health = Field(..., description="Standby's verdict at 'sampled_at'")
    reason: str = Field(..., description="human explanation of the health")
    mode: MirrorMode = Field(..., description="mirroring mode seen in the description")
    source: LagSource = Field(..., description="how a lag read from this sample is obtained")
    sampled_at: AwareDatetime = Field(..., description="the injected 'now' the health was judged at")
    last_update: AwareDatetime | None = Field(None, description="when rbd-mirror last wrote the status")
    local_snapshot_time: AwareDatetime | None = Field(
        None, description="newest complete consistency point on the non-primary side (snapshot mode)"
    )
    remote_snapshot_time: AwareDatetime | None = Field(
        None, description="newest complete snapshot on the primary side (snapshot mode)"
    )
    syncing: SyncProgress | None = Field(None, description="the snapshot sync in progress, if any")
    last_snapshot_sync: timedelta | None = Field(None, description="duration of the last snapshot sync")
    entries_behind: int | None = Field(None, description="journal mode: entries behind the primary")
    entries_per_second: float | None = Field(None, description="journal mode: replay rate")


class MirrorDaemon(Model):
    """One rbd-mirror daemon from ``pool status --verbose``."""

    service_id: str | None = Field(None, description="daemon service id")
    hostname: str | None = Field(None, description="host running it")
    health: str | None = Field(None, description="OK, WARNING, ERROR or UNKNOWN")
    leader: bool | None = Field(None, description="whether it leads the pool's replayers")


class PoolStatus(Model):
    """``rbd mirror pool status --verbose``: the summary and one sample per image."""

    health: str = Field("UNKNOWN", description="summary health (OK, WARNING, ERROR, UNKNOWN)")
    daemon_health: str = Field("UNKNOWN", description="rbd-mirror daemons' health")
    image_health: str = Field("UNKNOWN", description="images' health")
    states: dict[str, int] = Field(default_factory=dict, description="image count per replay state")
    daemons: tuple[MirrorDaemon, ...] = Field((), description="the rbd-mirror daemons")
    samples: tuple[MirrorSample, ...] = Field((), description="one sample per image")


class MirrorSnapshot(Model):
    """One mirror-namespace snapshot from ``rbd snap ls --all --format json``."""

    id: int = Field(..., description="snapshot id on this image")
    name: str = Field(..., description="e.g. .mirror.non_primary.<global-id>.<uuid>")
    created_at: AwareDatetime | None = Field(
        None, description="creation time on this cluster (OSD clock); None when rbd prints ''"
    )
    state: str = Field(..., description="'primary', 'non-primary' or 'demoted'")
    non_primary: bool = Field(..., description="a copy of a primary snapshot (has primary_snap_id)")
    complete: bool = Field(..., description="fully synced (non-primary) or fully created (primary)")
    primary_mirror_uuid: str | None = Field(None, description="mirror uuid of the primary (non-primary)")
    primary_snap_id: int | None = Field(None, description="id of the primary snapshot it copies")
    last_copied_object_number: int | None = Field(None, description="sync progress (non-primary)")
    mirror_peer_uuids: tuple[str, ...] = Field((), description="peers still linked to it")


# ---------------------------------------------------------------------------------- small readers


def zone(value: str | tzinfo) -> tzinfo:
    """The IANA zone ``value`` (``"Europe/Paris"``), or ``value`` itself when it is a ``tzinfo``."""
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {value!r}", hint="give an IANA zone such as 'UTC' or 'Europe/Paris'"
        ) from None


def load_json(text: str | bytes, what: str) -> Any:
    """``json.loads`` raising :class:`ParseError` that names ``what`` was expected."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        raise ParseError(f"expected {what}, got empty input")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"expected {what}, got invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def parse_last_update(value: object, tz: tzinfo, where: str) -> datetime | None:
    """Read rbd's ``"2026-11-21 20:35:29"`` (no zone) as a time in ``tz``; ``None`` when empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"{where}: expected last_update as 'YYYY-MM-DD HH:MM:SS', got {value!r}")
    match = _LAST_UPDATE.match(value.strip())
    if not match:
        raise ParseError(f"{where}: expected last_update as 'YYYY-MM-DD HH:MM:SS', got {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError as exc:
        raise ParseError(f"{where}: invalid last_update {value!r}: {exc}") from None
    if local.year <= 1970:  # timestr(0): never written
        return None
    return local.astimezone(UTC)


def parse_ctime(value: object, tz: tzinfo, where: str) -> datetime | None:
    """Read C ``ctime()`` text (``"Sat Nov 21 20:35:29 2026"``) in ``tz``; ``None`` when ``''``."""
    if value is None or value == "":
        return None
    parts = value.split() if isinstance(value, str) else []
    try:
        _, mon, day, hms, year = parts
        hour, minute, second = (int(p) for p in hms.split(":"))
        local = datetime(int(year), _MONTHS[mon], int(day), hour, minute, second, tzinfo=tz)
    except (ValueError, KeyError):
        raise ParseError(
            f"{where}: expected a timestamp like 'Sat Nov 21 20:35:29 2026', got {value!r}"
        ) from None
    return local.astimezone(UTC)


def _epoch(value: object) -> datetime | None:
    """An epoch number as an aware UTC time; ``None`` when absent or 0 (never "1970")."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _num(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    value = _num(obj, key)
    return None if value is None else int(value)


def _position(value: object) -> JournalPosition | None:
    if not isinstance(value, Mapping):
        return None
    tag, entry, number = _int(value, "tag_tid"), _int(value, "entry_tid"), _int(value, "object_number")
    if tag is None or entry is None or number is None:
        return None
    return JournalPosition(tag_tid=tag, entry_tid=entry, object_number=number)


def parse_description(description: str) -> tuple[ReplayDetails | None, str | None]:
    """Split ``"replaying, {json}"`` into its details; ``(None, reason)`` when the JSON is unreadable.

    A description without JSON (``"local image is primary"``) gives ``(None, None)``.
    """
    brace = description.find("{")
    if brace < 0:
        return None, None
    try:
        data = json.loads(description[brace:])
    except json.JSONDecodeError as exc:
        return None, f"unreadable replay details in description ({exc.msg})"
    if not isinstance(data, Mapping):
        return None, "replay details in description are not a JSON object"
    journal = "entries_behind_primary" in data or "primary_position" in data
    snapshot_keys = ("local_snapshot_timestamp", "remote_snapshot_timestamp", "replay_state")
    snapshot = any(k in data for k in snapshot_keys)
    mode: MirrorMode = "journal" if journal else "snapshot" if snapshot else "unknown"
    syncing = None
    if "syncing_snapshot_timestamp" in data or "syncing_percent" in data:
        eta = _num(data, "seconds_until_synced")
        syncing = SyncProgress(
            snapshot_time=_epoch(data.get("syncing_snapshot_timestamp")),
            percent=_num(data, "syncing_percent"),
            eta=None if eta is None else timedelta(seconds=eta),
        )
    sync_seconds = _num(data, "last_snapshot_sync_seconds")
    replay_state = data.get("replay_state")
    details = ReplayDetails(
        mode=mode,
        replay_state=replay_state if isinstance(replay_state, str) else None,
        local_snapshot_time=_epoch(data.get("local_snapshot_timestamp")),
        remote_snapshot_time=_epoch(data.get("remote_snapshot_timestamp")),
        last_snapshot_sync=None if sync_seconds is None else timedelta(seconds=sync_seconds),
        last_snapshot_bytes=_int(data, "last_snapshot_bytes"),
        bytes_per_second=_num(data, "bytes_per_second"),
        bytes_per_snapshot=_num(data, "bytes_per_snapshot"),
        syncing=syncing,
        entries_behind_primary=_int(data, "entries_behind_primary"),
        entries_per_second=_num(data, "entries_per_second"),
        primary_position=_position(data.get("primary_position")),
        non_primary_position=_position(data.get("non_primary_position")),
    )
    return details, None


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{where}: expected {key!r} to be a string, got {type(value).__name__}")
    return value


def parse_site_status(obj: Mapping[str, Any], tz: tzinfo, where: str, *, site_name: str = "") -> SiteStatus:
    """Read one status object (the image's top level, or a ``peer_sites`` entry)."""
    raw_state = _text(obj, "state", where).strip()
    up_text, plus, state_text = raw_state.partition("+")
    if not plus:
        up_text, state_text = "", raw_state
    state: MirrorState = state_text if state_text in _MIRROR_STATES else "unknown"  # type: ignore[assignment]
    description = _text(obj, "description", where)
    details, details_error = parse_description(description)
    uuid = obj.get("mirror_uuids", obj.get("mirror_uuid"))
    if isinstance(uuid, list):  # tolerated: a list of one uuid
        uuid = ",".join(str(u) for u in uuid)
    return SiteStatus(
        site_name=_text(obj, "site_name", where) or site_name,
        mirror_uuid=uuid if isinstance(uuid, str) and uuid else None,
        raw_state=raw_state,
        up=up_text == "up",
        state=state,
        description=description,
        last_update=parse_last_update(obj.get("last_update"), tz, where),
        details=details,
        details_error=details_error,
    )


# --------------------------------------------------------------------------------- classification


def _age(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}s"


def classify(status: SiteStatus, now: datetime, stale_after: timedelta) -> tuple[Health, str]:
    """Standby's health verdict and reason for one site's status at ``now``.

    Precedence: split-brain, then error, then down (daemon not reporting; ``last_update`` is then
    frozen on purpose), then unknown when ``last_update`` is in the future (a wrong zone), then
    stale (``last_update`` older than ``stale_after``), then the state.
    """
    desc = status.description.strip()
    low = desc.lower()
    brief = desc.split(", {", 1)[0] if "{" in desc else desc  # not the replay JSON
    shown = f"{status.raw_state or 'no state'} '{brief[:80]}'"
    if "split-brain" in low:
        return "split-brain", (
            f"{shown}: both sites were primary; demote the side that gives way, then resync it"
        )
    if status.state == "error":
        where = status.site_name or "the site"
        return "error", f"{shown}: rbd-mirror reports an error; read its log on {where}"
    if status.raw_state and not status.up:
        if low == "status not found":
            return "down", f"{shown}: no rbd-mirror status recorded (new image, or deleted for resync)"
        since = f" since {status.last_update.isoformat()}" if status.last_update else ""
        return "down", f"{shown}: no rbd-mirror daemon is reporting this image{since}; check the daemon"
    if not status.raw_state:
        return "unknown", "no local status in the document (rbd printed no 'state')"
    if status.last_update is None:
        return "unknown", f"{shown}: status has no last_update"
    age = now - status.last_update
    if -age > FUTURE_TOLERANCE:
        return "unknown", (
            f"{shown}: last_update is {_age(-age)} in the future: wrong site time zone, or clock skew"
        )
    if age > stale_after:
        return "stale", (
            f"{shown}: status last written {_age(age)} ago (limit {_age(stale_after)});"
            " rbd-mirror may be stuck"
        )
    return _classify_state(status, shown, low)


def _classify_state(status: SiteStatus, shown: str, low: str) -> tuple[Health, str]:
    details = status.details
    if status.state == "replaying":
        if details is None:
            return "unknown", f"{shown}: {status.details_error or 'no replay details in the description'}"
        if details.mode == "journal":
            return "ok", f"replaying (journal), {details.entries_behind_primary} entries behind the primary"
        syncing = details.replay_state == "syncing" or details.syncing is not None
        if details.local_snapshot_time is None:
            health: Health = "syncing" if syncing else "unknown"
            return health, (
                "no complete mirror snapshot on this side yet (local_snapshot_timestamp absent:"
                " initial sync, or just after a failover)"
            )
        if syncing:
            pct = details.syncing.percent if details.syncing else None
            done = f", {pct:.0f}% copied" if pct is not None else ""
            return "syncing", f"replaying (snapshot), syncing the next snapshot{done}"
        return "ok", "replaying (snapshot), idle: the newest primary snapshot is synced"
    if status.state == "syncing":
        return "syncing", f"{shown}: initial image sync in progress; no consistency point yet"
    if "orphan" in low:
        return "unknown", f"{shown}: a forced promote is in progress on this side"
    if low.startswith(_PRIMARY):
        return "ok", "local image is primary: its lag is read from the secondary's status"
    if "remote image demoted" in low:
        return "unknown", f"{shown}: the primary was demoted; waiting for a promote (planned failover)"
    if "remote image is not primary" in low:
        return "unknown", f"{shown}: no site is primary; promote one"
    if status.state == "starting_replay":
        return "unknown", f"{shown}: replay is starting"
    if status.state == "stopping_replay":
        return "unknown", f"{shown}: replay is stopping"
    return "unknown", f"{shown}: not replaying"


def _role_of(status: SiteStatus, has_primary_snapshots: bool) -> Role:
    low = status.description.strip().lower()
    if low.startswith(_PRIMARY):
        return "primary"
    if "orphan" in low:
        return "unknown"
    replaying = status.state in ("replaying", "syncing", "starting_replay")
    if replaying or "remote image" in low or "split-brain" in low:
        return "secondary"
    if has_primary_snapshots:
        return "primary"
    return "unknown"


_HEALTH_RANK: dict[str, int] = {
    "split-brain": 0,
    "error": 1,
    "down": 2,
    "stale": 3,
    "unknown": 4,
    "syncing": 5,
    "ok": 6,
}


def _sample(
    image: Mapping[str, Any],
    status: SiteStatus,
    *,
    role: Role,
    health: Health,
    reason: str,
    site: str,
    observed_from: str,
    pool: str,
    from_peer: bool,
    now: datetime,
) -> MirrorSample:
    details = status.details
    mode: MirrorMode = details.mode if details else "unknown"
    return MirrorSample(
        image=str(image.get("name", "")),
        global_id=str(image.get("global_id", "") or ""),
        pool=pool,
        site=site,
        observed_from=observed_from,
        from_peer=from_peer,
        role=role,
        state=status.state,
        up=status.up,
        raw_state=status.raw_state,
        description=status.description,
        health=health,
        reason=reason,
        mode=mode,
        source="journal-estimate" if mode == "journal" else "status",
        sampled_at=now,
        last_update=status.last_update,
        local_snapshot_time=details.local_snapshot_time if details else None,
        remote_snapshot_time=details.remote_snapshot_time if details else None,
        syncing=details.syncing if details else None,
        last_snapshot_sync=details.last_snapshot_sync if details else None,
        entries_behind=details.entries_behind_primary if details else None,
        entries_per_second=details.entries_per_second if details else None,
    )


def sample_image(
    image: Mapping[str, Any],
    *,
    now: datetime,
    tz: tzinfo,
    site: str = "",
    pool: str = "",
    peer_site: str | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    where: str = "image status",
) -> MirrorSample:
    """One :class:`MirrorSample` from an already-decoded image status object.

    When the local side is the primary, the secondary's replication state lives in ``peer_sites[]``:
    the sample is then built from that entry (``from_peer=True``, ``site`` = the peer's name). With
    several peers, ``peer_site`` picks one by name; otherwise the least healthy one is reported.
    When the peer also says "local image is primary", both sides are primary: split-brain.
    """
    if not isinstance(image, Mapping):
        raise ParseError(f"{where}: expected an image object, got {type(image).__name__}")
    name = image.get("name")
    if not isinstance(name, str) or not name:
        raise ParseError(f"{where}: expected an image object with a 'name' string")
    where = f"{where} of image {name!r}"
    if not any(key in image for key in ("global_id", "state", "peer_sites")):
        raise ParseError(
            f"{where}: expected mirror status keys (global_id, state, peer_sites), got {sorted(image)[:6]};"
            " is this `rbd info` output?"
        )
    local = parse_site_status(image, tz, where, site_name=site)
    peers_raw = image.get("peer_sites", [])
    if not isinstance(peers_raw, list):
        raise ParseError(f"{where}: expected 'peer_sites' to be a list, got {type(peers_raw).__name__}")
    peers = [
        parse_site_status(p, tz, f"{where} peer_sites[{i}]")
        if isinstance(p, Mapping)
        else _bad_peer(where, i, p)
        for i, p in enumerate(peers_raw)
    ]
    snapshots = image.get("snapshots")
    has_primary_snaps = isinstance(snapshots, list) and any(
        isinstance(s, Mapping) and not s.get("demoted", False) for s in snapshots
    )
    role: Role = _role_of(local, has_primary_snaps)
    if role == "primary" and peers:
        chosen = [p for p in peers if p.site_name == peer_site] or peers
        judged = [(p, *classify(p, now, stale_after)) for p in chosen]
        peer, health, reason = min(judged, key=lambda j: _HEALTH_RANK[j[1]])
        peer_name = peer.site_name or (f"peer {peer.mirror_uuid}" if peer.mirror_uuid else "peer")
        peer_role: Role = "secondary"
        if peer.description.strip().lower().startswith(_PRIMARY):
            peer_role = "primary"
            health, reason = (
                "split-brain",
                (
                    f"both {site or 'this site'} and {peer_name} report 'local image is primary' (forced"
                    " promote): demote the side that gives way, then resync it"
                ),
            )
        return _sample(
            image,
            peer,
            role=peer_role,
            health=health,
            reason=reason,
            site=peer_name,
            observed_from=site,
            pool=pool,
            from_peer=True,
            now=now,
        )
    health, reason = classify(local, now, stale_after)
    if role == "primary":
        health, reason = (
            "unknown",
            (
                "local image is primary and the status holds no peer_sites entry; read the lag on the secondary"
            ),
        )
    return _sample(
        image,
        local,
        role=role,
        health=health,
        reason=reason,
        site=site,
        observed_from=site,
        pool=pool,
        from_peer=False,
        now=now,
    )


def _bad_peer(where: str, index: int, value: object) -> SiteStatus:
    raise ParseError(f"{where}: expected peer_sites[{index}] to be an object, got {type(value).__name__}")


# ------------------------------------------------------------------------------------ entry points

_IMAGE_WHAT = "`rbd mirror image status --format json` (an object with 'name') or"
_STATUS_WHAT = f"{_IMAGE_WHAT} `rbd mirror pool status --verbose --format json` (an object with 'images')"


def parse_pool_status(
    data: str | bytes | Mapping[str, Any],
    *,
    now: datetime,
    tz: str | tzinfo,
    site: str = "",
    pool: str = "",
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> PoolStatus:
    """Parse ``rbd mirror pool status --verbose --format json`` into a :class:`PoolStatus`."""
    zone_ = zone(tz)
    doc = (
        load_json(data, "`rbd mirror pool status --verbose --format json`")
        if isinstance(data, str | bytes)
        else data
    )
    where = "pool status"
    if not isinstance(doc, Mapping):
        raise ParseError(
            f"{where}: expected a JSON object with 'summary' and 'images', got {type(doc).__name__}"
        )
    summary = doc.get("summary", {})
    if not isinstance(summary, Mapping):
        raise ParseError(f"{where}: expected 'summary' to be an object, got {type(summary).__name__}")
    images = doc.get("images")
    if images is None:
        raise ParseError(f"{where}: expected an 'images' list; run `rbd mirror pool status --verbose`")
    if not isinstance(images, list):
        raise ParseError(f"{where}: expected 'images' to be a list, got {type(images).__name__}")
    states = summary.get("states", {})
    daemons = doc.get("daemons", [])
    return PoolStatus(
        health=str(summary.get("health", "UNKNOWN")),
        daemon_health=str(summary.get("daemon_health", "UNKNOWN")),
        image_health=str(summary.get("image_health", "UNKNOWN")),
        states={str(k): int(v) for k, v in states.items() if isinstance(v, int)}
        if isinstance(states, Mapping)
        else {},
        daemons=tuple(
            MirrorDaemon(
                service_id=str(d["service_id"]) if d.get("service_id") is not None else None,
                hostname=d.get("hostname") if isinstance(d.get("hostname"), str) else None,
                health=d.get("health") if isinstance(d.get("health"), str) else None,
                leader=d.get("leader") if isinstance(d.get("leader"), bool) else None,
            )
            for d in (daemons if isinstance(daemons, list) else [])
            if isinstance(d, Mapping)
        ),
        samples=tuple(
            sample_image(
                img,
                now=now,
                tz=zone_,
                site=site,
                pool=pool,
                stale_after=stale_after,
                where=f"pool status images[{i}]",
            )
            for i, img in enumerate(images)
        ),
    )


def parse_image_status(
    data: str | bytes | Mapping[str, Any],
    *,
    now: datetime,
    tz: str | tzinfo,
    site: str = "",
    pool: str = "",
    peer_site: str | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> MirrorSample:
    """Parse ``rbd mirror image status --format json`` into one :class:`MirrorSample`."""
    what = "`rbd mirror image status --format json`"
    doc = load_json(data, what) if isinstance(data, str | bytes) else data
    return sample_image(
        doc, now=now, tz=zone(tz), site=site, pool=pool, peer_site=peer_site, stale_after=stale_after
    )


def parse_status(
    data: str | bytes | Mapping[str, Any],
    *,
    now: datetime,
    tz: str | tzinfo,
    site: str = "",
    pool: str = "",
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[MirrorSample, ...]:
    """Parse either an image status or a verbose pool status; one sample per image."""
    doc = load_json(data, _STATUS_WHAT) if isinstance(data, str | bytes) else data
    if not isinstance(doc, Mapping):
        raise ParseError(f"expected {_STATUS_WHAT}, got a JSON {type(doc).__name__}")
    if "images" in doc or "summary" in doc:
        return parse_pool_status(doc, now=now, tz=tz, site=site, pool=pool, stale_after=stale_after).samples
    if "name" in doc:
        return (parse_image_status(doc, now=now, tz=tz, site=site, pool=pool, stale_after=stale_after),)
    raise ParseError(f"expected {_STATUS_WHAT}, got an object with keys {sorted(doc)[:6]}")


def parse_snap_ls(data: str | bytes | Sequence[Any], *, tz: str | tzinfo) -> tuple[MirrorSnapshot, ...]:
    """Mirror-namespace snapshots from ``rbd snap ls --all --format json`` (others are skipped).

    Keys follow ``src/tools/rbd/action/Snap.cc``: ``{id, name, size, protected, timestamp,
    namespace:{type:"mirror", state, mirror_peer_uuids:[...], complete, primary_mirror_uuid,
    primary_snap_id, last_copied_object_number}}``; the last three only on non-primary snapshots.
    ``timestamp`` is ``ctime()`` text in the zone of the host running rbd, or ``''``.
    """
    zone_ = zone(tz)
    doc = (
        load_json(data, "`rbd snap ls --all --format json` (a JSON list)")
        if isinstance(data, str | bytes)
        else data
    )
    if not isinstance(doc, list):
        raise ParseError(
            f"expected `rbd snap ls --all --format json` (a JSON list), got {type(doc).__name__}"
        )
    snaps: list[MirrorSnapshot] = []
    for i, entry in enumerate(doc):
        where = f"snap ls [{i}]"
        if not isinstance(entry, Mapping):
            raise ParseError(f"{where}: expected a snapshot object, got {type(entry).__name__}")
        ns = entry.get("namespace")
        if not isinstance(ns, Mapping):
            raise ParseError(f"{where}: expected a 'namespace' object; run `rbd snap ls --all`")
        if ns.get("type") != "mirror":
            continue
        snap_id, name = entry.get("id"), entry.get("name")
        if not isinstance(snap_id, int) or not isinstance(name, str):
            raise ParseError(f"{where}: expected 'id' (integer) and 'name' (string)")
        peers = ns.get("mirror_peer_uuids", [])
        primary_snap_id = ns.get("primary_snap_id")
        snaps.append(
            MirrorSnapshot(
                id=snap_id,
                name=name,
                created_at=parse_ctime(entry.get("timestamp"), zone_, where),
                state=str(ns.get("state", "unknown")),
                non_primary=isinstance(primary_snap_id, int),
                complete=ns.get("complete") is True,
                primary_mirror_uuid=ns.get("primary_mirror_uuid")
                if isinstance(ns.get("primary_mirror_uuid"), str)
                else None,
                primary_snap_id=primary_snap_id if isinstance(primary_snap_id, int) else None,
                last_copied_object_number=_int(ns, "last_copied_object_number"),
                mirror_peer_uuids=tuple(str(p) for p in peers) if isinstance(peers, list) else (),
            )
        )
    return tuple(snaps)
