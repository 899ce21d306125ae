"""The fake front-end's state on disk and the lookups every call shares (:class:`OnedStore`).

:class:`~lab.opennebula.oned.Oned` builds on it; the calls are in :mod:`lab.opennebula.vm_calls`,
:mod:`lab.opennebula.image_calls` and :mod:`lab.opennebula.oned`.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.opennebula.codes import XML_RPC_API, OneError, locked_error, no_exists
from lab.opennebula.runtime import VmRuntime

STATE_FILE = "oned.json"
VERSION = "6.10.3"


class OnedStore:
    """One site's objects (a JSON document saved to ``path``), guarded by ``_lock``."""

    path: Path
    runtime: VmRuntime
    clock: Callable[[], float]
    data: dict[str, Any]
    _lock: threading.RLock

    # ------------------------------------------------------------------ persistence and helpers

    def save(self) -> None:
        """Write the state atomically (a crash leaves the old file or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def now(self) -> int:
        return int(self.clock())

    def _next_id(self, kind: str) -> int:
        value = int(self.data["next_id"][kind])
        self.data["next_id"][kind] = value + 1
        return value

    def _get(self, kind: str, oid: int, method: str, what: str) -> dict[str, Any]:
        if isinstance(oid, bool) or not isinstance(oid, int):
            raise OneError(XML_RPC_API, f"[{method}] the object ID must be an integer", -1)
        record = self.data[kind].get(str(oid))
        if record is None:
            raise no_exists(method, what, oid)
        return record  # type: ignore[no-any-return]

    def _check_unlocked(self, record: dict[str, Any], method: str, what: str) -> None:
        if record.get("lock"):
            raise locked_error(method, what, int(record["id"]))

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state (for tests and the lab's status)."""
        with self._lock:
            return copy.deepcopy(self.data)

    def set_lock(self, kind: str, oid: int, level: int) -> None:
        """Lock (``level`` 1-4, as ``onevm lock --use/--manage/--admin/--all``) or unlock (0) an object."""
        with self._lock:
            record = self._get(kind, oid, "lab.lock", kind)
            record["lock"] = {"level": level, "time": self.now()} if level else None
            self.save()


def in_range(records: dict[str, dict[str, Any]], flt: int, start: int, end: int) -> list[dict[str, Any]]:
    """The records a pool call's filter flag and range select, by ID (everything belongs to oneadmin)."""
    ordered = sorted(records.values(), key=lambda r: int(r["id"]))
    if flt >= 1:  # another user's resources: none here
        return []
    if end >= -1:
        return [r for r in ordered if (start < 0 or r["id"] >= start) and (end < 0 or r["id"] <= end)]
    offset = max(start, 0)
    return ordered[offset : offset - end]


def empty_state(site: str) -> dict[str, Any]:
    """A front-end with nothing in it."""
    return {
        "site": site,
        "version": VERSION,
        "next_id": {"vms": 0, "images": 0},
        "hosts": {},
        "datastores": {},
        "vnets": {},
        "images": {},
        "templates": {},
        "vms": {},
    }
