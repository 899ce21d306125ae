"""The typed records ``rbd`` JSON is read into: one site's status of an image, the replay details of
its description, the per-image :class:`MirrorSample`, a pool's status and a mirror snapshot; and the
literal types of their states, health, role, mode and lag source. Pure pydantic models, no parsing
(that is :mod:`drkit.domain.rbd_readers` and :mod:`drkit.domain.rbd_status`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, Field

from drkit.domain.model_base import Model

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
