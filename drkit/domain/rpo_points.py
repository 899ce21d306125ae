"""Exact-mode RPO: synced points (a primary snapshot's time and when the secondary's copy was
complete, or an upper bound of it), built from ``rbd snap ls --all`` of both sites and a status
(:func:`points_from_snapshots`), tightened by the secondary's ordering and remembered between
samples. Pure; the lag they give is :func:`drkit.domain.rpo.exact_lag`, the sawtooth they draw is
:mod:`drkit.domain.rpo_sawtooth`. What bounds a completion is in docs/architecture.md, "What the RPO
figures mean".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from pydantic import AwareDatetime, Field, model_validator

from drkit.domain.model_base import Model
from drkit.domain.rbd_models import MirrorSample, MirrorSnapshot
from drkit.domain.rbd_readers import zone


class SyncedPoint(Model):
    """One consistency point: the primary's snapshot time and when B completed its copy."""

    data_time: AwareDatetime = Field(..., description="creation time on the primary: the recoverable point")
    completed_at: AwareDatetime | None = Field(
        None, description="when B's copy was complete (or an upper bound); None = complete, time unknown"
    )

    @model_validator(mode="after")
    def _order(self) -> SyncedPoint:
        if self.completed_at is not None and self.completed_at < self.data_time:
            raise ValueError("completed_at is before data_time: a snapshot cannot be synced before it exists")
        return self


PointLike = SyncedPoint | tuple[datetime, datetime | None]


def _points(points: Iterable[PointLike]) -> list[SyncedPoint]:
    return [
        p if isinstance(p, SyncedPoint) else SyncedPoint(data_time=p[0], completed_at=p[1]) for p in points
    ]


WHOLE_SECOND = timedelta(seconds=1)
"""rbd prints snapshot times and ``last_update`` in whole seconds (truncated)."""


def latest_instant(printed: datetime, tz: tzinfo | str | None = None) -> datetime:
    """An instant strictly after every instant that the whole-second wall-clock text of ``printed`` can denote.

    ``printed`` is what the parsers return for a time rbd printed without a zone (``snap ls``
    ``timestamp``, status ``last_update``): the whole second, read in the site's zone with
    ``fold=0``. The true instant is within ``[printed, printed + 1 s)``, or, in a DST fall-back
    hour, possibly one hour later (``fold=1``). Used where a time must be an UPPER bound.
    """
    out = printed
    if tz is not None:
        local = printed.astimezone(zone(tz))
        out = max(out, local.replace(fold=1).astimezone(UTC))
    return out + WHOLE_SECOND


def tighten(points: Iterable[PointLike]) -> tuple[SyncedPoint, ...]:
    """Merge points by data time (the smallest bound wins) and apply B's ordering.

    B syncs one snapshot at a time, in order: a point is complete no later than any newer point,
    so its bound is also the smallest bound of every newer point. A bound is never before the data
    time (clock skew between the sites' OSDs clamps it up, which can only raise the lag).
    """
    best: dict[datetime, datetime | None] = {}
    for p in _points(points):
        if p.data_time not in best:
            best[p.data_time] = p.completed_at
        elif p.completed_at is not None:
            old = best[p.data_time]
            best[p.data_time] = p.completed_at if old is None else min(old, p.completed_at)
    out: list[SyncedPoint] = []
    newer: datetime | None = None
    for data in sorted(best, reverse=True):
        bound = best[data]
        if newer is not None and (bound is None or newer < bound):
            bound = newer
        if bound is not None:
            bound = max(bound, data)
            newer = bound if newer is None else min(newer, bound)
        out.append(SyncedPoint(data_time=data, completed_at=bound))
    return tuple(reversed(out))


def remember(points: Iterable[PointLike], keep: int = 16) -> tuple[SyncedPoint, ...]:
    """The newest ``keep`` points after :func:`tighten`: what a sampler carries to its next run.

    Older points cannot get a tighter bound any more once a newer B snapshot was seen after them.
    """
    return tighten(points)[-keep:] if keep > 0 else ()


def points_from_snapshots(
    secondary: Sequence[MirrorSnapshot],
    primary_times: Mapping[int, datetime],
    listed_at: datetime | None = None,
    *,
    known: Iterable[PointLike] = (),
    status: MirrorSample | None = None,
    tz: tzinfo | str | None = None,
) -> tuple[SyncedPoint, ...]:
    """Synced points, with the tightest SOUND completion bounds one sample allows (see module doc).

    ``secondary`` is B's ``rbd snap ls --all``; ``primary_times`` maps A's snapshot id to its creation
    time (``{s.id: s.created_at for s in parse_snap_ls(a_json, tz=...)}``); ``listed_at`` is a time
    read AFTER both listings returned; ``known`` are the points kept from earlier samples
    (:func:`remember`); ``status`` is B's status of the image at this sample; ``tz`` is B's zone
    (for the DST fall-back hour, see :func:`latest_instant`).

    Evidence, each an upper bound of the completion time (the smallest wins):

    * a non-primary snapshot listed complete was complete by ``listed_at``;
    * B creates snapshot ``k + 1`` only once ``k`` is complete (one sync at a time, in order), so the
      creation of ANY listed non-primary snapshot, complete or not, bounds every older synced point,
      including the ones only seen in earlier samples. Its printed time is truncated to the second,
      hence :func:`latest_instant`;
    * a status whose ``local_snapshot_timestamp`` is ``T`` and ``last_update`` is ``u``: the point
      ``T`` was complete when the description was built, before ``u`` was written;
    * ordering: no point completes after a newer one (:func:`tighten`).

    ``last_snapshot_sync_seconds`` is NOT used: it times ``copy_image`` only, so creation + it is
    a LOWER bound of the completion (it would under-report the lag).
    """
    ordered = sorted((s for s in secondary if s.non_primary), key=lambda s: s.id)
    found: list[SyncedPoint] = list(_points(known))
    # (B snapshot creation bound, its primary data time or None): bounds every older point.
    starts: list[tuple[int, datetime, datetime | None]] = []
    for snap in ordered:
        data_time = primary_times.get(snap.primary_snap_id) if snap.primary_snap_id is not None else None
        if snap.created_at is not None:
            starts.append((snap.id, latest_instant(snap.created_at, tz), data_time))
        if snap.complete and data_time is not None:
            found.append(SyncedPoint(data_time=data_time, completed_at=listed_at))
    listed_ids = {
        primary_times[s.primary_snap_id]: s.id
        for s in ordered
        if s.complete and s.primary_snap_id is not None and s.primary_snap_id in primary_times
    }
    if (
        status is not None
        and status.health in ("ok", "syncing", "stale")
        and status.mode == "snapshot"
        and status.local_snapshot_time is not None
        and status.last_update is not None
    ):
        found.append(
            SyncedPoint(
                data_time=status.local_snapshot_time, completed_at=latest_instant(status.last_update, tz)
            )
        )
    out: list[SyncedPoint] = []
    for p in tighten(found):
        bound = p.completed_at
        own_id = listed_ids.get(p.data_time)
        for snap_id, created, data in starts:
            newer = (data is not None and data > p.data_time) or (own_id is not None and snap_id > own_id)
            if newer and (bound is None or created < bound):
                bound = created
        out.append(SyncedPoint(data_time=p.data_time, completed_at=bound))
    return tighten(out)
