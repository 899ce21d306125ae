"""Debounced JSON persistence of the store (atomic rename)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from lab.kubeapi.store import Event, Store

STATE_FILE = "kubeapi-state.json"


def load(store: Store, state_dir: Path) -> bool:
    """Load ``state_dir/kubeapi-state.json`` into ``store``; ``False`` when there is none."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return False
    store.load(json.loads(path.read_text()))
    return True


class Persister:
    """Writes the store snapshot at most every ``debounce`` seconds after a change, and on :meth:`flush`."""

    def __init__(self, store: Store, state_dir: Path, debounce: float = 0.2) -> None:
        self.store = store
        self.path = state_dir / STATE_FILE
        self.debounce = debounce
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kubeapi-persist", daemon=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        store.add_listener(self._on_change)

    def _on_change(self, _event: Event) -> None:
        self._dirty.set()

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def flush(self) -> None:
        """Write now (also used at shutdown)."""
        with self._write_lock:
            self._dirty.clear()
            snap: Any = self.store.snapshot()
            tmp = self.path.with_suffix(f".tmp.{os.getpid()}")
            tmp.write_text(json.dumps(snap, separators=(",", ":")))
            os.replace(tmp, self.path)

    def stop(self) -> None:
        """Stop the thread after a final write."""
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self.debounce)
            self.flush()
