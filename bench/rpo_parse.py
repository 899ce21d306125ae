"""Benchmark: parse a 1,000-image ``rbd mirror pool status --verbose`` and compute every lag.

Synthesises a pool status with mixed states (replaying idle/syncing, journal, primary with peers,
split-brain, down, stale, missing timestamps), then times ``parse_status`` + ``image_lag`` + ``app_lag``
(best of 5, ``time.perf_counter``) and prints the figure and its ratio to the 0.2 s target.

    .venv/bin/python bench/rpo_parse.py [IMAGES]
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from drkit.domain.rbd_status import parse_status
from drkit.domain.rpo import app_lag, image_lag

TARGET_SECONDS = 0.2
NOW = datetime(2026, 11, 21, 20, 36, 0, tzinfo=UTC)
ZONE = "Europe/Paris"


def _last_update(t: datetime) -> str:
    """rbd's zone-less local time in ZONE (CET in November: UTC+1)."""
    return (t + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")


def _snapshot_desc(rng: random.Random, syncing: bool, missing: bool) -> str:
    body: dict[str, Any] = {
        "bytes_per_second": round(rng.uniform(0, 1e6), 2),
        "bytes_per_snapshot": round(rng.uniform(0, 1e7), 2),
        "last_snapshot_bytes": rng.randint(0, 10**7),
        "last_snapshot_sync_seconds": rng.randint(0, 30),
        "remote_snapshot_timestamp": int((NOW - timedelta(seconds=rng.randint(0, 120))).timestamp()),
        "replay_state": "syncing" if syncing else "idle",
    }
    if not missing:
        body["local_snapshot_timestamp"] = int((NOW - timedelta(seconds=rng.randint(5, 400))).timestamp())
    if syncing:
        body |= {
            "syncing_snapshot_timestamp": int(NOW.timestamp()) - 10,
            "syncing_percent": rng.randint(0, 99),
            "seconds_until_synced": rng.randint(1, 60),
        }
    return "replaying, " + json.dumps(body, separators=(",", ":"))


def _image(i: int, rng: random.Random) -> dict[str, Any]:
    fresh = _last_update(NOW - timedelta(seconds=rng.randint(0, 30)))
    kind = rng.choices(
        ["idle", "syncing", "missing", "journal", "primary", "split", "down", "stale", "demoted"],
        weights=[55, 10, 3, 8, 10, 2, 5, 5, 2],
    )[0]
    base: dict[str, Any] = {
        "name": f"csi-vol-{i:05d}",
        "global_id": f"{i:08x}-0000-4000-8000-000000000000",
        "daemon_service": {"service_id": "4151", "instance_id": "4153", "daemon_id": "m", "hostname": "lab"},
        "last_update": fresh,
    }
    if kind in ("idle", "syncing", "missing", "stale"):
        base |= {
            "state": "up+replaying",
            "description": _snapshot_desc(rng, kind == "syncing", kind == "missing"),
        }
        if kind == "stale":
            base["last_update"] = _last_update(NOW - timedelta(minutes=10))
    elif kind == "journal":
        base |= {
            "state": "up+replaying",
            "description": "replaying, "
            + json.dumps(
                {
                    "bytes_per_second": 0.0,
                    "entries_behind_primary": rng.randint(0, 9),
                    "entries_per_second": 2.0,
                    "non_primary_position": {"entry_tid": 0, "object_number": 12, "tag_tid": 8},
                    "primary_position": {"entry_tid": 3, "object_number": 15, "tag_tid": 9},
                }
            ),
        }
    elif kind == "primary":
        base |= {
            "state": "up+stopped",
            "description": "local image is primary",
            "peer_sites": [
                {
                    "site_name": "site-b",
                    "mirror_uuids": "5d1c",
                    "state": "up+replaying",
                    "description": _snapshot_desc(rng, False, False),
                    "last_update": fresh,
                }
            ],
        }
    elif kind == "split":
        base |= {"state": "up+error", "description": "split-brain"}
    elif kind == "down":
        base |= {"state": "down+stopped", "description": "stopped"}
    else:
        base |= {"state": "up+unknown", "description": "remote image demoted"}
    return base


def synthesise(images: int, seed: int = 7) -> str:
    """A pool status --verbose JSON document with ``images`` images."""
    rng = random.Random(seed)
    doc = {
        "summary": {"health": "WARNING", "daemon_health": "OK", "image_health": "WARNING", "states": {}},
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
        "images": [_image(i, rng) for i in range(images)],
    }
    return json.dumps(doc)


def run(text: str) -> int:
    """Parse and compute; returns the number of images with a known lag."""
    samples = parse_status(text, now=NOW, tz=ZONE, site="site-b", pool="replicapool")
    lags = [image_lag(s, NOW) for s in samples]
    app_lag("all", lags)
    return sum(lag.lag is not None for lag in lags)


def main() -> None:
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    text = synthesise(images)
    known = run(text)  # warm-up
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run(text)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"rpo parse+lag: {images} images ({len(text) / 1e6:.2f} MB, {known} with a known lag)")
    print(
        f"best of 5: {best * 1000:.1f} ms; target {TARGET_SECONDS * 1000:.0f} ms; ratio {best / TARGET_SECONDS:.2f}"
        f" ({'OK' if best <= TARGET_SECONDS else 'OVER'})"
    )


if __name__ == "__main__":
    main()
