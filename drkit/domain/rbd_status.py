"""The samples of ``rbd`` mirror status: each image's health (:func:`classify`), its role and its
:class:`~drkit.domain.rbd_models.MirrorSample`, and the entry points that parse ``rbd`` JSON (image
status, pool status, snapshot listings): pure, no I/O, time injected. The records are in
:mod:`drkit.domain.rbd_models`, the small readers (zones, times, descriptions, one site's status) in
:mod:`drkit.domain.rbd_readers`.

Every time leaves this module as an aware ``datetime``; malformed JSON or a wrong shape raises
:class:`~drkit.domain.errors.ParseError` in one line. What rbd prints and how it is read is in
docs/architecture.md, "What rbd prints".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from drkit.domain.errors import ParseError
from drkit.domain.rbd_models import (
    Health,
    MirrorDaemon,
    MirrorMode,
    MirrorSample,
    MirrorSnapshot,
    PoolStatus,
    Role,
    SiteStatus,
)
from drkit.domain.rbd_readers import _int, load_json, parse_ctime, parse_site_status, zone

STATUS_CADENCE = timedelta(seconds=30)
"""rbd-mirror rewrites each image status every 30 s (hard-coded), and at once on state changes."""
DEFAULT_STALE_AFTER = 2 * STATUS_CADENCE + timedelta(seconds=15)
"""A status whose ``last_update`` is older than this (two missed writes plus margin) is stale."""

FUTURE_TOLERANCE = timedelta(minutes=2)
"""A ``last_update`` further than this in the future means a wrong zone or a skewed clock: unknown."""

_PRIMARY = "local image is primary"


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
