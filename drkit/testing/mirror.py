"""Two sites' RBD mirroring of the same images, in memory: :class:`FakeMirrorPair`.

``pair.site("site-a")`` is an :class:`~drkit.adapters.rbd.RbdMirror` of one side; both sides share
each image's state, with Ceph 16's rules as the lab measured them:

* a mirror snapshot on the primary is copied, complete, to a secondary peer at once (``paused``
  holds the copies back: a sync in flight);
* ``demote`` takes a demotion snapshot, copied to a secondary peer; a plain ``promote`` answers
  EBUSY (exit 16, retryable) until this side holds that copy complete, except on the side that
  demoted itself (its newest snapshot is its own demotion snapshot: an orphan, which librbd
  promotes without force, even if the peer was promoted meanwhile and its snapshot has not
  arrived); ``promote --force`` always works, and leaves both sides primary when the peer was
  (split-brain, silent until one side is demoted, which then reports ``up+error`` "split-brain");
* ``resync`` on a secondary takes the peer's data again and clears the split-brain;
* every image holds a ``data`` dict per site (what an app wrote on it) that travels with snapshots.

Knobs: ``down`` (sites whose calls time out), ``hangs`` (per site, a :class:`~drkit.testing.hang.Hang`:
its calls block while frozen), ``paused`` (syncs held back), ``fail_promote`` (sites whose promotes
fail), ``calls`` (every call as ``(site, op, force)``); for ``standby doctor``: ``schedules`` (per
site, the mirror-snapshot schedules: image name, or ``""`` for the pool level, to intervals; every
image is scheduled every ``schedule`` on both sites at first, as the lab does), ``unpeered`` (sites
whose pool has no peer) and ``daemon_down`` (sites whose rbd-mirror is not running); for the RPO
of journal-mode images: ``journal`` (image name to ``(entries_behind, entries_per_second)``: that
image's secondary reports a journal-mode replaying status with these figures, its snapshots still
carrying the data).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drkit.adapters.rbd import copy_failed, image_missing, mirrored_image, rbd_failed
from drkit.adapters.runner import timed_out
from drkit.testing.hang import Hang
from drkit.testing.rbd import FakeRbdMirror


@dataclass
class _Image:
    primary: dict[str, bool]
    data: dict[str, dict[str, Any]]
    snaps: dict[str, list[dict[str, Any]]]
    split: set[str] = field(default_factory=set)
    next_id: int = 4


class FakeMirrorPair:
    """Both sides of snapshot-mode mirroring of a pool's images."""

    def __init__(
        self,
        pool: str,
        images: list[str],
        *,
        sites: tuple[str, str] = ("site-a", "site-b"),
        primary: str = "site-a",
        now: Callable[[], datetime] | None = None,
        schedule: str | None = "1m",
    ) -> None:
        self.pool = pool
        self.sites = sites
        self.now = now or (lambda: datetime.now(UTC))
        self.down: set[str] = set()
        self.hangs: dict[str, Hang] = {s: Hang() for s in sites}
        """Per site: while frozen, its calls block (``rbd`` against a frozen Ceph)."""
        self.paused = False
        self.fail_promote: set[str] = set()
        """Sites whose promotes fail (exit 22), as a broken cluster would."""
        self.calls: list[tuple[str, str, bool]] = []
        self.promoted: list[tuple[str, str, bool]] = []
        """Promotes that took effect, as ``(site, image, forced)``."""
        self.scratch: dict[tuple[str, str], dict[str, Any]] = {}
        """Plain (not mirrored) images per ``(site, name)``: ``{"data": ..., "record": ...}``."""
        self.images = {
            name: _Image(
                primary={s: s == primary for s in sites},
                data={s: {} for s in sites},
                snaps={s: [] for s in sites},
            )
            for name in images
        }
        for name in images:
            self._snapshot(name, primary, "primary")
        self.schedules: dict[str, dict[str, list[str]]] = {
            s: ({name: [schedule] for name in images} if schedule else {}) for s in sites
        }
        self.unpeered: set[str] = set()
        self.daemon_down: set[str] = set()
        self.journal: dict[str, tuple[int, float]] = {}
        """Images mirrored in journal mode: name -> (entries_behind, entries_per_second) reported."""

    def site(self, name: str) -> FakeSiteRbd:
        """The ``RbdMirror`` of one side."""
        return FakeSiteRbd(self, name)

    def peer(self, site: str) -> str:
        """The other side."""
        return self.sites[1] if site == self.sites[0] else self.sites[0]

    # ---------------------------------------------------------------------------------- mechanics
    def _ctime(self, when: datetime) -> str:
        return f"{when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}"

    def _snapshot(self, image: str, site: str, state: str) -> int:
        img = self.images[image]
        snap_id = img.next_id
        img.next_id += 1
        img.snaps[site].append(
            {
                "id": snap_id,
                "name": f".mirror.primary.{snap_id:08x}",
                "size": 67108864,
                "protected": "false",
                "timestamp": self._ctime(self.now()),
                "namespace": {
                    "type": "mirror",
                    "state": state,
                    "mirror_peer_uuids": ["peer"],
                    "complete": True,
                },
                "_data": copy.deepcopy(img.data[site]),
            }
        )
        self._copy(image, site)
        return snap_id

    def _copy(self, image: str, source: str) -> None:
        """Copy ``source``'s newest primary-side snapshot to a secondary peer that is up."""
        img, peer = self.images[image], self.peer(source)
        if self.paused or peer in self.down or img.primary[peer] or source in self.down:
            return
        mine = [s for s in img.snaps[source] if "primary_snap_id" not in s["namespace"]]
        if not mine:
            return
        newest = mine[-1]
        if any(s["namespace"].get("primary_snap_id") == newest["id"] for s in img.snaps[peer]):
            return
        copied = copy.deepcopy(newest)
        copied["id"] = img.next_id
        img.next_id += 1
        copied["name"] = f".mirror.non_primary.{copied['id']:08x}"
        copied["namespace"] = {
            "type": "mirror",
            "state": "demoted" if newest["namespace"]["state"] == "demoted" else "non-primary",
            "mirror_peer_uuids": [],
            "complete": True,
            "primary_mirror_uuid": "peer-uuid",
            "primary_snap_id": newest["id"],
            "last_copied_object_number": 16,
        }
        img.snaps[peer] = [
            *[s for s in img.snaps[peer] if "primary_snap_id" not in s["namespace"]][-1:],
            copied,
        ]
        img.data[peer] = copy.deepcopy(newest["_data"])

    def resume_syncs(self) -> None:
        """Let the syncs held back by ``paused`` (or a site being down) happen now: a primary's newest
        snapshot, or a demotion snapshot taken while its peer was down, reaches the peer."""
        self.paused = False
        for name, img in self.images.items():
            for site in self.sites:
                own = [s for s in img.snaps[site] if "primary_snap_id" not in s["namespace"]]
                demoted = bool(own) and own[-1]["namespace"].get("state") == "demoted"
                if (img.primary[site] or demoted) and not img.primary[self.peer(site)]:
                    self._copy(name, site)

    def _reach(self, site: str, op: str) -> None:
        """A pool-level call: it times out on a site that is down."""
        self.calls.append((site, op, False))
        if site in self.down:
            raise timed_out(
                f"{op} of pool {self.pool} on {site}",
                argv=["rbd", *op.split(), self.pool],
                timeout=30,
                output="",
                context={"site": site},
            )

    def _enter(self, site: str, op: str, image: str, *, force: bool = False) -> _Image:
        self.calls.append((site, op, force))
        argv = ["rbd", *op.split(), f"{self.pool}/{image}"]
        if site in self.down or not self.hangs[site].hold():
            raise timed_out(
                f"{op} of {self.pool}/{image} on {site}",
                argv=argv,
                timeout=30,
                output="",
                context={"site": site},
            )
        if image not in self.images:
            raise image_missing(f"{op} of {self.pool}/{image}", site, argv=argv, image=image)
        return self.images[image]

    def _status(self, site: str, image: str) -> dict[str, Any]:
        img, peer = self.images[image], self.peer(site)
        stamp = self.now().strftime("%Y-%m-%d %H:%M:%S")
        if img.primary[site]:
            state, description = "up+stopped", "local image is primary"
        elif site in img.split:
            state, description = "up+error", "split-brain"
        elif img.primary[peer]:
            done = [
                s
                for s in img.snaps[site]
                if s["namespace"].get("complete") and "primary_snap_id" in s["namespace"]
            ]
            body: dict[str, Any] = {
                "replay_state": "syncing" if self.paused else "idle",
                "last_snapshot_bytes": 0,
            }
            if done:
                source = next(
                    (p for p in img.snaps[peer] if p["id"] == done[-1]["namespace"]["primary_snap_id"]), None
                )
                when = datetime.strptime(source["timestamp"], "%a %b %d %H:%M:%S %Y") if source else None
                if when is not None:
                    body["local_snapshot_timestamp"] = int(when.replace(tzinfo=UTC).timestamp())
            state, description = "up+replaying", "replaying, " + json.dumps(body, separators=(",", ":"))
            if image in self.journal:
                state, description = "up+replaying", FakeRbdMirror.journal_description(*self.journal[image])
        else:
            state, description = "up+unknown", "remote image is not primary"
        return {
            "name": image,
            "global_id": f"gid-{image}",
            "state": state,
            "description": description,
            "daemon_service": {"service_id": "1", "instance_id": "1", "daemon_id": "local"},
            "last_update": stamp,
            "peer_sites": [],
        }


@dataclass
class FakeSiteRbd:
    """:class:`~drkit.adapters.rbd.RbdMirror` of one side of a :class:`FakeMirrorPair`."""

    pair: FakeMirrorPair
    site: str

    def pool_status(self, pool: str) -> dict[str, Any]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        if self.site in self.pair.down or self.pair.hangs[self.site].frozen:
            self.pair._enter(self.site, "mirror pool status", "")
        images = [self.pair._status(self.site, name) for name in sorted(self.pair.images)]
        if self.site in self.pair.daemon_down:  # as Ceph 16 reports a pool whose rbd-mirror is gone
            return {
                "summary": {
                    "health": "WARNING",
                    "daemon_health": "WARNING",
                    "image_health": "OK",
                    "states": {},
                },
                "daemons": [],
                "images": images,
            }
        daemon = {
            "service_id": "1",
            "instance_id": "1",
            "client_id": "local",
            "hostname": "fake",
            "leader": True,
            "health": "OK",
        }
        return {
            "summary": {"health": "OK", "daemon_health": "OK", "image_health": "OK", "states": {}},
            "daemons": [daemon],
            "images": images,
        }

    def pool_info(self, pool: str) -> dict[str, Any]:
        """See :class:`~drkit.adapters.rbd.RbdMirror` (shaped as Ceph 16.2 prints it)."""
        self.pair._reach(self.site, "mirror pool info")
        peer = self.pair.peer(self.site)
        peers = (
            []
            if self.site in self.pair.unpeered
            else [
                {
                    "uuid": f"uuid-{peer}",
                    "direction": "rx-tx",
                    "site_name": peer,
                    "mirror_uuid": f"mirror-{peer}",
                    "client_name": "client.rbd-mirror-peer",
                }
            ]
        )
        return {"mode": "image", "site_name": self.site, "peers": peers}

    def snapshot_schedules(self, pool: str) -> list[dict[str, Any]]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`: the pool level shows as namespace and image ``-``."""
        self.pair._reach(self.site, "mirror snapshot schedule ls")
        out = []
        for image, intervals in sorted(self.pair.schedules[self.site].items()):
            if intervals:
                out.append(
                    {
                        "pool": pool,
                        "namespace": "" if image else "-",
                        "image": image or "-",
                        "items": [{"interval": i, "start_time": ""} for i in intervals],
                    }
                )
        return out

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        self.pair._enter(self.site, "mirror image status", image)
        return self.pair._status(self.site, image)

    def image_info(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        if (self.site, image) in self.pair.scratch and self.site not in self.pair.down:
            return {"name": image, "mirroring": {"state": "disabled"}}
        img = self.pair._enter(self.site, "info", image)
        mode = "journal" if image in self.pair.journal else "snapshot"
        return {
            "name": image,
            "mirroring": {"mode": mode, "state": "enabled", "primary": img.primary[self.site]},
        }

    def snapshots(self, pool: str, image: str) -> list[dict[str, Any]]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        img = self.pair._enter(self.site, "snap ls", image)
        return [{k: copy.deepcopy(v) for k, v in s.items() if k != "_data"} for s in img.snaps[self.site]]

    def promote(self, pool: str, image: str, *, force: bool = False) -> None:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        img = self.pair._enter(self.site, "promote", image, force=force)
        if self.site in self.pair.fail_promote:
            raise rbd_failed(
                f"promote of {pool}/{image}",
                self.site,
                exit_code=22,
                argv=["rbd", "mirror", "image", "promote", f"{pool}/{image}"],
                output="rbd: error promoting image to primary: (22) Invalid argument (fake)",
            )
        peer = self.pair.peer(self.site)
        newest = img.snaps[self.site][-1] if img.snaps[self.site] else None
        demoted = newest is not None and newest["namespace"].get("state") == "demoted"
        own = demoted and newest is not None and "primary_snap_id" not in newest["namespace"]
        ready = own or (not img.primary[peer] and demoted)  # Ceph: a side that demoted itself is an orphan
        if not force and not ready:
            raise rbd_failed(
                f"promote of {pool}/{image}",
                self.site,
                exit_code=16,
                argv=["rbd", "mirror", "image", "promote", f"{pool}/{image}"],
                output="rbd: error promoting image to primary: image is primary within a remote"
                " cluster or demotion is not propagated yet",
            )
        img.primary[self.site] = True
        self.pair.promoted.append((self.site, image, force))
        self.pair._snapshot(image, self.site, "primary")

    def demote(self, pool: str, image: str) -> None:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        img = self.pair._enter(self.site, "demote", image)
        if img.primary[self.site]:
            self.pair._snapshot(image, self.site, "demoted")
            img.primary[self.site] = False
            if img.primary[self.pair.peer(self.site)]:
                img.split.add(self.site)

    def resync(self, pool: str, image: str) -> None:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        img = self.pair._enter(self.site, "resync", image)
        if img.primary[self.site]:
            raise rbd_failed(
                f"resync of {pool}/{image}",
                self.site,
                exit_code=22,
                argv=["rbd", "mirror", "image", "resync", f"{pool}/{image}"],
                output="rbd: cannot resync a primary image",
            )
        img.split.discard(self.site)
        img.snaps[self.site] = []
        self.pair._copy(image, self.pair.peer(self.site))

    def mirror_snapshot(self, pool: str, image: str) -> None:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        img = self.pair._enter(self.site, "mirror snapshot", image)
        if not img.primary[self.site]:
            raise rbd_failed(
                f"mirror snapshot of {pool}/{image}",
                self.site,
                exit_code=22,
                argv=["rbd", "mirror", "image", "snapshot", f"{pool}/{image}"],
                output="rbd: failed to create mirror snapshot: (22) Invalid argument",
            )
        self.pair._snapshot(image, self.site, "primary")

    def copy_latest_synced(self, pool: str, image: str, dest: str) -> dict[str, Any]:
        """See :class:`~drkit.adapters.rbd.RbdMirror`: the data of the newest complete non-primary snapshot."""
        img = self.pair._enter(self.site, "copy latest synced", image)
        if dest in self.pair.images:
            raise copy_failed(
                pool, image, dest, self.site, code=3, message=f"image {dest} is mirrored: not a scratch copy"
            )
        done = self.pair.scratch.get((self.site, dest))
        if done is not None:
            return {**done["record"], "reused": True}
        snaps = [
            s
            for s in img.snaps[self.site]
            if "primary_snap_id" in s["namespace"] and s["namespace"]["complete"]
        ]
        if not snaps:
            raise copy_failed(
                pool,
                image,
                dest,
                self.site,
                code=5,
                message="a sync is in flight (no complete non-primary mirror snapshot)",
            )
        newest = max(snaps, key=lambda s: s["id"])
        record = {
            "dest": dest,
            "snap_id": newest["id"],
            "primary_snap_id": newest["namespace"]["primary_snap_id"],
            "attempts": 1,
            "seconds": 0.0,
        }
        self.pair.scratch[(self.site, dest)] = {"data": copy.deepcopy(newest["_data"]), "record": record}
        return dict(record)

    def remove_image(self, pool: str, name: str) -> bool:
        """See :class:`~drkit.adapters.rbd.RbdMirror`."""
        if self.site in self.pair.down:
            self.pair._enter(self.site, "rm", name)
        if name in self.pair.images:
            raise mirrored_image(pool, name, self.site)
        return self.pair.scratch.pop((self.site, name), None) is not None
