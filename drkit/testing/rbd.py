"""One site's RBD mirroring in memory, shaped like Ceph 16's JSON: :class:`FakeRbdMirror`.

Its errors come from the builders in :mod:`drkit.adapters.rbd` and :mod:`drkit.adapters.runner`,
as the real adapter's do. For both sides of a mirrored pool see :mod:`drkit.testing.mirror`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drkit.adapters.rbd import copy_failed, image_missing, mirrored_image, not_json, rbd_failed
from drkit.adapters.runner import timed_out


class FakeRbdMirror:
    """:class:`drkit.adapters.rbd.RbdMirror` of one site, in memory, shaped like Ceph 16's JSON.

    Images are added with :meth:`add_image`; the status documents and ``snap ls --all`` lists it
    returns have the keys real ``rbd`` prints (see ``tests/golden/rbd``). Every call is recorded in
    ``calls`` as ``(subcommand, pool, image)``, e.g. ``("mirror pool status", "replicapool", "")``,
    so tests can count them.

    Fault knobs (set them at any time; they affect every later call):

    * ``malformed_json``: rbd "prints" truncated JSON: :class:`StandbyError` as :class:`RbdCli` raises;
    * ``timeout``: :class:`CommandTimedOut` (retryable) naming the argv;
    * ``exit_code=N``: :class:`CommandFailed` with that exit code (a retryable code such as 16 gives
      :class:`TransientError`, as :class:`RbdCli` does);
    * ``unknown_fields``: every document gains keys rbd never printed (forward compatibility);
    * ``wrong_shape``: the pool status lacks ``images`` (e.g. another command's output).
    """

    def __init__(self, *, site: str = "site-b", tz: str = "UTC", now: Callable[[], datetime] | None = None):
        self.site = site
        self.tz = ZoneInfo(tz)
        self.now = now or (lambda: datetime.now(UTC))
        self.malformed_json = False
        self.timeout = False
        self.exit_code: int | None = None
        self.unknown_fields = False
        self.wrong_shape = False
        self.calls: list[tuple[str, str, str]] = []
        self.images: dict[tuple[str, str], dict[str, Any]] = {}
        self.snaps: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.plain: dict[tuple[str, str], dict[str, Any]] = {}
        """Plain (not mirrored) images, e.g. scratch copies: ``(pool, name) -> record``."""
        self.daemon_up = True
        self.peers: list[dict[str, Any]] = [
            {
                "uuid": "1249475d-ff0c-4913-8db7-3fe35b267222",
                "direction": "rx-tx",
                "site_name": "site-b" if site == "site-a" else "site-a",
                "mirror_uuid": "d57da44b-a553-4649-afa9-015e079f0233",
                "client_name": "client.rbd-mirror-peer",
            }
        ]
        """The pool's peers, as ``rbd mirror pool info`` lists them."""
        self.schedules: list[dict[str, Any]] = []
        """Mirror-snapshot schedules, as ``rbd mirror snapshot schedule ls --recursive`` lists them."""

    def __repr__(self) -> str:
        return f"FakeRbdMirror(site={self.site!r}, images={len(self.images)})"

    # ------------------------------------------------------------------------------- set-up helpers
    def _stamp(self, when: datetime) -> str:
        return when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def add_image(
        self,
        pool: str,
        image: str,
        *,
        primary: bool = False,
        peer_site: str = "site-a",
        local_snapshot_time: datetime | None = None,
        last_update: datetime | None = None,
        state: str = "up+replaying",
        description: str | None = None,
        entries_behind: int | None = None,
        entries_per_second: float = 0.0,
    ) -> None:
        """Add (or replace) a mirrored image; a secondary gets a snapshot-mode replaying description,
        or a journal-mode one when ``entries_behind`` is given (see :meth:`journal_description`)."""
        when = last_update or self.now()
        if entries_behind is not None and description is None:
            description = self.journal_description(entries_behind, entries_per_second)
        doc: dict[str, Any] = {
            "name": image,
            "global_id": hashlib.md5(f"{pool}/{image}".encode(), usedforsecurity=False).hexdigest(),
            "daemon_service": {"service_id": "4151", "instance_id": "4153", "daemon_id": "local"},
            "last_update": self._stamp(when),
            "peer_sites": [],
        }
        self.images[(pool, image)] = doc
        self.snaps.setdefault((pool, image), [])
        if primary:
            doc.update(state="up+stopped", description="local image is primary", snapshots=[])
            doc["peer_sites"] = [
                {
                    "site_name": peer_site,
                    "mirror_uuids": "0f0f0f0f",
                    "state": state,
                    "description": description or self._replaying(local_snapshot_time),
                    "last_update": self._stamp(when),
                }
            ]
        else:
            doc.update(state=state, description=description or self._replaying(local_snapshot_time))
            doc["peer_sites"] = [
                {
                    "site_name": peer_site,
                    "mirror_uuids": "0f0f0f0f",
                    "state": "up+stopped",
                    "description": "local image is primary",
                    "last_update": self._stamp(when),
                }
            ]

    @staticmethod
    def journal_description(entries_behind: int, entries_per_second: float = 0.0) -> str:
        """A journal-mode replaying description, keys as Ceph 16 prints them (``tests/golden/rbd``):
        the primary's position is ``entries_behind`` entries ahead of the replayed one."""
        body: dict[str, Any] = {
            "bytes_per_second": round(entries_per_second * 4096, 1),
            "entries_behind_primary": entries_behind,
            "entries_per_second": entries_per_second,
            "non_primary_position": {"entry_tid": 100, "object_number": 4, "tag_tid": 3},
            "primary_position": {"entry_tid": 100 + entries_behind, "object_number": 4, "tag_tid": 3},
        }
        if entries_behind > 0 and entries_per_second > 0:
            body["seconds_until_synced"] = int(entries_behind / entries_per_second)
        return "replaying, " + json.dumps(body, separators=(",", ":"), sort_keys=True)

    @staticmethod
    def _replaying(local_snapshot_time: datetime | None) -> str:
        body: dict[str, Any] = {
            "bytes_per_second": 0.0,
            "bytes_per_snapshot": 0.0,
            "last_snapshot_bytes": 0,
            "last_snapshot_sync_seconds": 0,
            "replay_state": "idle",
        }
        if local_snapshot_time is not None:
            body["local_snapshot_timestamp"] = int(local_snapshot_time.timestamp())
            body["remote_snapshot_timestamp"] = int(local_snapshot_time.timestamp())
        return "replaying, " + json.dumps(body, separators=(",", ":"), sort_keys=True)

    def _ctime(self, when: datetime) -> str:
        """C ``ctime()`` text, as rbd prints snapshot timestamps: ``Sat Nov  1 20:35:29 2026``."""
        local = when.astimezone(self.tz)
        return f"{local:%a %b} {local.day:2d} {local:%H:%M:%S %Y}"

    def add_snapshot(
        self,
        pool: str,
        image: str,
        *,
        created_at: datetime,
        primary_snap_id: int | None = None,
        complete: bool = True,
    ) -> int:
        """Add a mirror snapshot (primary when ``primary_snap_id`` is None); returns its id."""
        snaps = self.snaps.setdefault((pool, image), [])
        snap_id = max((s["id"] for s in snaps), default=3) + 1
        ns: dict[str, Any] = {"type": "mirror", "mirror_peer_uuids": [], "complete": complete}
        if primary_snap_id is None:
            ns["state"] = "primary"
            name = f".mirror.primary.{snap_id:08x}"
        else:
            ns.update(
                state="non-primary",
                primary_mirror_uuid="0f0f0f0f",
                primary_snap_id=primary_snap_id,
                last_copied_object_number=16 if complete else 3,
            )
            name = f".mirror.non_primary.{snap_id:08x}"
        snaps.append(
            {
                "id": snap_id,
                "name": name,
                "size": 67108864,
                "protected": "false",
                "timestamp": self._ctime(created_at),
                "namespace": ns,
            }
        )
        return int(snap_id)

    # ------------------------------------------------------------------------------------- faults
    def _call(self, op: str, args: list[str], pool: str, image: str = "") -> None:
        words = " ".join(a for a in args if not a.startswith("-") and a != pool and "/" not in a)
        self.calls.append((words, pool, image))
        argv = ["rbd", *args, "--format", "json"]
        what = f"{op} of {pool}/{image}" if image else f"{op} of pool {pool}"
        if self.timeout:
            raise timed_out(
                f"{what} on {self.site}", argv=argv, timeout=30, output="", context={"site": self.site}
            )
        if self.exit_code is not None:
            raise rbd_failed(
                what,
                self.site,
                argv=argv,
                exit_code=self.exit_code,
                output=f"rbd: {op} failed: (fake) error {self.exit_code}",
            )
        if self.malformed_json:
            raise not_json(what, self.site, argv=argv, output='{"summary":{"hea')

    def _doc(self, pool: str, image: str) -> dict[str, Any]:
        doc = self.images.get((pool, image))
        if doc is None:
            argv = ["rbd", "mirror", "image", "status", f"{pool}/{image}", "--format", "json"]
            raise image_missing(f"mirror status of {pool}/{image}", self.site, argv=argv, image=image)
        return doc

    def _shown(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(doc))
        if not self.daemon_up:
            out["state"] = "down+" + str(out.get("state", "up+unknown")).split("+", 1)[-1]
        if self.unknown_fields:
            out["x_future_field"] = {"added_in": "ceph 99"}
        return out

    # ------------------------------------------------------------------------------- the protocol
    def pool_status(self, pool: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror status", ["mirror", "pool", "status", pool, "--verbose"], pool)
        images = [self._shown(doc) for (p, _), doc in sorted(self.images.items()) if p == pool]
        states: dict[str, int] = {}
        for img in images:
            key = str(img["state"]).split("+", 1)[-1]
            states[key] = states.get(key, 0) + 1
        health = "OK" if self.daemon_up else "UNKNOWN"
        out: dict[str, Any] = {
            "summary": {"health": health, "daemon_health": health, "image_health": "OK", "states": states},
            "daemons": [{"service_id": "4151", "hostname": "fake", "health": health, "leader": True}],
            "images": images,
        }
        if self.wrong_shape:
            out = {"summary": out["summary"], "mirror_images_v2": images}
        if self.unknown_fields:
            out["x_future_section"] = []
        return out

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror status", ["mirror", "image", "status", f"{pool}/{image}"], pool, image)
        return self._shown(self._doc(pool, image))

    def pool_info(self, pool: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror info", ["mirror", "pool", "info", pool], pool)
        return {"mode": "image", "site_name": self.site, "peers": json.loads(json.dumps(self.peers))}

    def snapshot_schedules(self, pool: str) -> list[dict[str, Any]]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call(
            "mirror snapshot schedules", ["mirror", "snapshot", "schedule", "ls", "--pool", pool], pool
        )
        return [dict(s) for s in json.loads(json.dumps(self.schedules)) if s.get("pool") == pool]

    def image_info(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("info", ["info", f"{pool}/{image}"], pool, image)
        if (pool, image) in self.plain:
            return {"name": image, "size": 67108864, "features": ["layering", "exclusive-lock"]}
        doc = self._doc(pool, image)
        descriptions = [doc.get("description", ""), *(p.get("description", "") for p in doc["peer_sites"])]
        journal = any("entries_behind_primary" in str(d) for d in descriptions)
        return {
            "name": image,
            "size": 67108864,
            "features": ["layering", "exclusive-lock", *(["journaling"] if journal else [])],
            "mirroring": {
                "mode": "journal" if journal else "snapshot",
                "state": "enabled",
                "global_id": doc["global_id"],
                "primary": doc.get("description") == "local image is primary",
            },
        }

    def snapshots(self, pool: str, image: str) -> list[dict[str, Any]]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("snapshots", ["snap", "ls", "--all", f"{pool}/{image}"], pool, image)
        self._doc(pool, image)
        snaps = json.loads(json.dumps(self.snaps.get((pool, image), [])))
        if self.unknown_fields:
            for snap in snaps:
                snap["x_future_field"] = 1
        return list(snaps)

    def promote(self, pool: str, image: str, *, force: bool = False) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("promote", ["mirror", "image", "promote", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="up+stopped", description="local image is primary", snapshots=[])

    def demote(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("demote", ["mirror", "image", "demote", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="up+unknown", description="local image is not primary")
        doc.pop("snapshots", None)

    def resync(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("resync", ["mirror", "image", "resync", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        doc.update(state="down+unknown", description="status not found")

    def mirror_snapshot(self, pool: str, image: str) -> None:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("mirror snapshot", ["mirror", "image", "snapshot", f"{pool}/{image}"], pool, image)
        doc = self._doc(pool, image)
        if doc.get("description") != "local image is primary":
            raise rbd_failed(
                f"mirror snapshot of {pool}/{image}",
                self.site,
                exit_code=22,
                argv=["rbd", "mirror", "image", "snapshot", f"{pool}/{image}"],
                output="rbd: failed to create mirror snapshot: (22) Invalid argument",
            )
        snap_id = self.add_snapshot(pool, image, created_at=self.now())
        doc.setdefault("snapshots", []).append(
            {
                "id": snap_id,
                "name": f".mirror.primary.{snap_id:08x}",
                "demoted": False,
                "mirror_peer_uuids": [],
            }
        )

    def copy_latest_synced(self, pool: str, image: str, dest: str) -> dict[str, Any]:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("copy latest synced", ["python3", "-c", "copy", f"{pool}/{image}"], pool, image)
        self._doc(pool, image)
        if (pool, dest) in self.images:
            raise copy_failed(
                pool, image, dest, self.site, code=3, message=f"image {dest} is mirrored: not a scratch copy"
            )
        if (pool, dest) in self.plain:
            return {**self.plain[(pool, dest)], "reused": True}
        done = [
            s
            for s in self.snaps.get((pool, image), [])
            if s["namespace"].get("primary_snap_id") is not None and s["namespace"].get("complete")
        ]
        if not done:
            raise copy_failed(
                pool,
                image,
                dest,
                self.site,
                code=5,
                message="a sync is in flight (no complete non-primary mirror snapshot)",
            )
        newest = max(done, key=lambda s: int(s["id"]))
        record = {
            "dest": dest,
            "snap_id": newest["id"],
            "primary_snap_id": newest["namespace"]["primary_snap_id"],
            "attempts": 1,
            "seconds": 0.0,
        }
        self.plain[(pool, dest)] = record
        return dict(record)

    def remove_image(self, pool: str, name: str) -> bool:
        """See :class:`drkit.adapters.rbd.RbdMirror`."""
        self._call("rm", ["rm", f"{pool}/{name}"], pool, name)
        if (pool, name) in self.images:
            raise mirrored_image(pool, name, self.site)
        return self.plain.pop((pool, name), None) is not None
