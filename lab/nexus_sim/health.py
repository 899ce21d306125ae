"""``/v1/status``, ``/v1/status/writable`` and ``/v1/status/check`` answers."""

from __future__ import annotations

import os
import resource
import time
from datetime import UTC, datetime
from typing import Any

from lab.nexus_sim.device import DeviceIOError
from lab.nexus_sim.store import Store
from lab.nexus_sim.volume import SUPERBLOCK_SIZE

QUOTA_WARN_FRACTION = 0.95


def readable(store: Store) -> bool:
    """Tell whether the volume answers a read of its superblock."""
    if store.closed:
        return False
    with store.lock:
        try:
            return (
                len(store.mounted.run(lambda volume: volume.device.read(0, SUPERBLOCK_SIZE)))
                == SUPERBLOCK_SIZE
            )
        except DeviceIOError:
            return False


def writable(store: Store) -> bool:
    """Readable, not frozen, and the last write was not refused by a read-only device."""
    return readable(store) and not store.read_only.frozen and not store.device_read_only


def _result(healthy: bool, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    now = time.time()
    return {
        "healthy": healthy,
        "message": message,
        "error": None,
        "details": details,
        "time": int(now * 1000),
        "duration": 0,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
    }


def checks(store: Store) -> dict[str, dict[str, Any]]:
    """Run the system status checks, keyed by name like Nexus' ``SortedMap<String, Result>``."""
    ready = readable(store)
    device = store.volume.device
    size, used = device.size, store.volume.used
    report = store.replay_report
    volume_details = {
        "device": device.description,
        "formatUuid": store.volume.uuid,
        "sizeBytes": size,
        "usedBytes": used,
        "records": report.records if report else 0,
        "tornTailIgnored": report.torn_tail if report else None,
        "lastError": store.last_error,
    }
    if store.device_read_only:
        ready, ready_msg = False, f"Blob store 'default' on {device.description} refuses writes (read-only)"
    elif ready:
        ready_msg = "All blob stores are ready"
    else:
        ready_msg = f"Blob store 'default' on {device.description} is unreadable"
    full = used >= size * QUOTA_WARN_FRACTION
    quota_msg = (
        f"Blob store 'default' is {100 * used / size:.1f}% full ({used} of {size} bytes)"
        if full
        else "All blob stores are within quota"
    )
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    frozen = store.read_only.frozen
    return {
        "Available CPUs": _result(True, f"The host system is allocating a maximum of {os.cpu_count()} cores"),
        "Blob Stores Quota": _result(not full, quota_msg, volume_details),
        "Blob Stores Ready": _result(ready, ready_msg, volume_details),
        "File Descriptors": _result(True, f"The open file descriptor limit is {soft}."),
        "Lifecycle Phase": _result(not store.closed, "Phase: STOPPING" if store.closed else "Phase: TASKS"),
        "Read-Only Detector": _result(
            not frozen,
            f"Nexus Repository Manager is in read-only mode: {store.read_only.summary_reason}"
            if frozen
            else "Nexus Repository Manager is not in read-only mode",
        ),
    }
