"""Where RPO samples and the sampler's memory are kept: :class:`SampleStore`, and its parquet
implementation over the sites' object stores.

Samples are parquet parts per site and UTC day (``COLUMNS``), compacted per day and read back per
window; the memory (:class:`~drkit.domain.rpo_reading.RpoMemory`) is one small JSON per app.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from drkit.adapters.objectstore import ObjectStore
from drkit.domain.errors import NotFound
from drkit.domain.layout import StoreLayout
from drkit.domain.rpo import ImageLag, image_lag
from drkit.domain.rpo_reading import AppReading, RpoMemory, SiteSampling

COLUMNS = (
    "kind",
    "sampled_at",
    "site",
    "observed_from",
    "pool",
    "app",
    "image",
    "health",
    "state",
    "source",
    "lag_seconds",
    "target_seconds",
    "local_snapshot_time",
    "last_update",
    "data_time",
    "completed_at",
    "reason",
    "command",
    "lag_estimate_seconds",
    "entries_behind",
    "entries_per_second",
    "status_age_seconds",
)
"""Columns of a sample row. ``kind`` is status, image, app, point, watch or invalid.

``lag_seconds`` is a measure (status or exact); a journal-mode image's figure is an estimate, in
``lag_estimate_seconds``, with the ``entries_behind``, ``entries_per_second`` and
``status_age_seconds`` it comes from (parts written before these columns read them as empty)."""
_TIME_COLUMNS = ("sampled_at", "local_snapshot_time", "last_update", "data_time", "completed_at")
_FLOAT_COLUMNS = (
    "lag_seconds",
    "target_seconds",
    "lag_estimate_seconds",
    "entries_behind",
    "entries_per_second",
    "status_age_seconds",
)
PARQUET = "application/vnd.apache.parquet"


class SampleStore(Protocol):
    """Sample rows per site and day, and each app's sampler memory."""

    @property
    def sites(self) -> tuple[str, ...]:
        """The sites whose rows this store holds."""
        ...

    def append(self, site: str, rows: Sequence[Mapping[str, Any]], now: datetime) -> str | None:
        """Write ``rows`` (``COLUMNS``) as a new part of ``site``'s day of ``now``; its key."""
        ...

    def compact(self, site: str, day: date) -> str | None:
        """Merge one site's day into one part; its key (``None`` when there was nothing to merge)."""
        ...

    def read(self, start: datetime, end: datetime, sites: Iterable[str] | None = None) -> pd.DataFrame:
        """Rows of ``sites`` (default: all) sampled within ``[start, end]``, oldest first."""
        ...

    def load_memory(self, app: str) -> RpoMemory:
        """The memory of ``app`` (empty when none was saved)."""
        ...

    def save_memory(self, app: str, memory: RpoMemory) -> None:
        """Persist the memory of ``app``."""
        ...


def _journal(lag: ImageLag) -> dict[str, Any]:
    """The journal-mode columns of an image's row (all empty for a snapshot-mode image)."""
    return {
        "lag_estimate_seconds": lag.lag_estimate_seconds,
        "entries_behind": lag.entries_behind,
        "entries_per_second": lag.entries_per_second,
        "status_age_seconds": lag.status_age_seconds,
    }


def rows_for(
    samplings: Sequence[SiteSampling], readings: Sequence[AppReading]
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one sampler run, grouped by the site whose partition holds them.

    Status rows go to the sampled site; app rows and exact points to the app's secondary site.
    """
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(partition: str, **values: Any) -> None:
        rows.setdefault(partition, []).append({c: values.get(c) for c in COLUMNS})

    for s in samplings:
        if not s.valid:
            add(
                s.site,
                kind="invalid",
                sampled_at=s.taken_at,
                site=s.site,
                observed_from=s.site,
                pool=s.pool,
                reason=s.error,
                command=s.command,
            )
        for m in s.samples:
            lag = image_lag(m, s.taken_at)
            add(
                s.site,
                kind="status",
                sampled_at=s.taken_at,
                site=m.site,
                observed_from=s.site,
                pool=m.pool,
                image=m.image,
                health=lag.health,
                state=m.raw_state,
                source=m.source,
                lag_seconds=lag.lag_seconds,
                local_snapshot_time=m.local_snapshot_time,
                last_update=m.last_update,
                reason=lag.reason,
                **_journal(lag),
            )
    for r in readings:
        add(
            r.secondary_site,
            kind="app",
            sampled_at=r.lag.at,
            site=r.secondary_site,
            pool=r.pool,
            app=r.app,
            image=r.lag.worst_image,
            health=None,
            source=r.lag.source,
            lag_seconds=r.lag.lag_seconds,
            target_seconds=r.target.total_seconds(),
            reason=r.lag.reason,
            lag_estimate_seconds=r.lag.lag_estimate_seconds,
            entries_behind=r.lag.entries_behind,
        )
        for img in r.lag.images:
            add(
                r.secondary_site,
                kind="image",
                sampled_at=img.at,
                site=img.site,
                pool=r.pool,
                app=r.app,
                image=img.image,
                health=img.health,
                state=img.raw_state,
                source=img.source,
                lag_seconds=img.lag_seconds,
                target_seconds=r.target.total_seconds(),
                reason=img.reason,
                **_journal(img),
            )
        for image, pts in r.exact_points.items():
            for p in pts:
                add(
                    r.secondary_site,
                    kind="point",
                    sampled_at=r.lag.at,
                    site=r.secondary_site,
                    pool=r.pool,
                    app=r.app,
                    image=image,
                    source="exact",
                    data_time=p.data_time,
                    completed_at=p.completed_at,
                )
    return rows


def frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a typed frame: aware UTC times, float lags, strings elsewhere."""
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for col in _TIME_COLUMNS:
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col]).astype("float64")
    for col in COLUMNS:
        if col not in _TIME_COLUMNS and col not in _FLOAT_COLUMNS:
            df[col] = df[col].astype("string")
    return df


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


class ParquetSampleStore:
    """:class:`SampleStore` in the sites' object stores.

    ``stores`` and ``layouts`` are per site: a site's samples live in its own store under its own
    prefix. The memory lives in the store of ``state_site`` (by default the first site given).
    """

    def __init__(
        self,
        stores: Mapping[str, ObjectStore],
        layouts: Mapping[str, StoreLayout],
        *,
        state_site: str | None = None,
    ) -> None:
        self.stores = dict(stores)
        self.layouts = dict(layouts)
        self.state_site = state_site or next(iter(self.stores))

    @property
    def sites(self) -> tuple[str, ...]:
        """See :class:`SampleStore`."""
        return tuple(self.stores)

    @staticmethod
    def part_name(now: datetime) -> str:
        """A unique part name, ordered by time: ``20261121T223000Z-a1b2c3``."""
        return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

    def append(self, site: str, rows: Sequence[Mapping[str, Any]], now: datetime) -> str | None:
        """See :class:`SampleStore`."""
        if not rows:
            return None
        day = now.astimezone(UTC).date()
        key = self.layouts[site].rpo_samples_key(site, day, self.part_name(now))
        self.stores[site].put(key, _parquet(frame(rows)), content_type=PARQUET)
        return key

    def day_keys(self, site: str, day: date) -> list[str]:
        """Keys of the parquet parts of one site and day."""
        prefix = self.layouts[site].rpo_day_prefix(site, day)
        return [o.key for o in self.stores[site].list(prefix) if o.key.endswith(".parquet")]

    def read_day(self, site: str, day: date) -> pd.DataFrame:
        """Every row of one site and day (duplicates from an interrupted compaction removed)."""
        frames = [pd.read_parquet(io.BytesIO(self.stores[site].get(k))) for k in self.day_keys(site, day)]
        if not frames:
            return frame([])
        df = pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)
        for col in _FLOAT_COLUMNS:  # a part written before the column existed
            if col not in df.columns:
                df[col] = pd.Series(float("nan"), index=df.index, dtype="float64")
        return df

    def compact(self, site: str, day: date) -> str | None:
        """See :class:`SampleStore`: the merged part is written before the parts are deleted."""
        keys = self.day_keys(site, day)
        if len(keys) < 2:
            return None
        df = self.read_day(site, day).sort_values("sampled_at", kind="stable")
        stamp = datetime.combine(day, datetime.max.time(), tzinfo=UTC).replace(microsecond=0)
        key = self.layouts[site].rpo_samples_key(site, day, f"compacted-{self.part_name(stamp)}")
        self.stores[site].put(key, _parquet(df), content_type=PARQUET)
        self.stores[site].delete(keys)
        return key

    def read(self, start: datetime, end: datetime, sites: Iterable[str] | None = None) -> pd.DataFrame:
        """See :class:`SampleStore`."""
        frames: list[pd.DataFrame] = []
        for site in sites or self.stores:
            day = start.astimezone(UTC).date()
            while day <= end.astimezone(UTC).date():
                frames.append(self.read_day(site, day))
                day += timedelta(days=1)
        frames = [f for f in frames if not f.empty]
        if not frames:
            return frame([])
        df = pd.concat(frames, ignore_index=True)
        mask = (df["sampled_at"] >= pd.Timestamp(start)) & (df["sampled_at"] <= pd.Timestamp(end))
        return df[mask].sort_values("sampled_at", kind="stable").reset_index(drop=True)

    def load_memory(self, app: str) -> RpoMemory:
        """See :class:`SampleStore`."""
        key = self.layouts[self.state_site].rpo_state_key(app)
        try:
            data = json.loads(self.stores[self.state_site].get(key))
        except NotFound:
            return RpoMemory()
        return RpoMemory.from_json(data if isinstance(data, Mapping) else {})

    def save_memory(self, app: str, memory: RpoMemory) -> None:
        """See :class:`SampleStore`."""
        key = self.layouts[self.state_site].rpo_state_key(app)
        body = json.dumps(memory.to_json(), sort_keys=True).encode()
        self.stores[self.state_site].put(key, body, content_type="application/json")
