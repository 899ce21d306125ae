"""The small readers of ``rbd`` JSON: the site's time zone, JSON that fails in one line, rbd's
``last_update`` and ``ctime()`` texts, numbers that may be absent, the replay details of a status
description and one site's status of an image (:func:`parse_site_status`). Pure, no I/O; the
samples, their health and the entry points are in :mod:`drkit.domain.rbd_status`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drkit.domain.errors import ConfigError, ParseError
from drkit.domain.rbd_models import (
    JournalPosition,
    MirrorMode,
    MirrorState,
    ReplayDetails,
    SiteStatus,
    SyncProgress,
)

_MIRROR_STATES: frozenset[str] = frozenset(get_args(MirrorState))
_LAST_UPDATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}


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
