"""Controller runtime: one background thread feeding store changes and periodic ``TICK`` events to
controller callables ``fn(store, event_type, obj)``."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from lab.kubeapi.store import Event, Store

TICK = "TICK"
ControllerFn = Callable[[Store, str, "dict[str, Any] | None"], None]
log = logging.getLogger("lab.kubeapi.controllers")


class Reconciler:
    """Level-based controller helper: events map to keys; each key is reconciled ``delay`` seconds after it
    was first queued (later events for a queued key do not postpone it). Every ``TICK`` re-queues all keys
    of :attr:`resources` (a resync). Subclasses implement :meth:`keys_for` and :meth:`reconcile`."""

    resources: tuple[str, ...] = ()

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._pending: dict[Hashable, float] = {}

    def keys_for(self, store: Store, event_type: str, obj: dict[str, Any]) -> list[Hashable]:
        """Keys to reconcile for a change of ``obj``."""
        raise NotImplementedError

    def reconcile(self, store: Store, key: Any) -> None:
        """Make the world match the desired state for ``key``."""
        raise NotImplementedError

    def enqueue(self, key: Hashable, delay: float | None = None) -> None:
        """Queue ``key`` (keeps the earliest due time)."""
        due = time.monotonic() + (self.delay if delay is None else delay)
        self._pending[key] = min(self._pending.get(key, due), due)

    def next_due(self) -> float:
        """Monotonic time of the next due key (``inf`` when idle)."""
        return min(self._pending.values(), default=float("inf"))

    def __call__(self, store: Store, event_type: str, obj: dict[str, Any] | None) -> None:
        if event_type == TICK:
            for res in self.resources:
                for item in store.list(res):
                    for key in self.keys_for(store, "SYNC", item):
                        if key not in self._pending:
                            self.enqueue(key)
        elif obj is not None and obj.get("kind") in self.kinds():
            for key in self.keys_for(store, event_type, obj):
                self.enqueue(key)
        self.poll(store)

    def kinds(self) -> set[str]:
        """Kinds whose events are mapped to keys."""
        return set()

    def poll(self, store: Store) -> None:
        """Reconcile every due key."""
        now = time.monotonic()
        for key in [k for k, t in self._pending.items() if t <= now]:
            self._pending.pop(key, None)
            try:
                self.reconcile(store, key)
            except Exception:
                log.exception("reconcile %r failed", key)


class ControllerManager:
    """Runs controllers in one daemon thread. Events are delivered in order; ``TICK`` every
    ``tick_interval`` seconds; :class:`Reconciler` instances are also polled when their keys fall due."""

    def __init__(self, store: Store, tick_interval: float = 1.0) -> None:
        self.store = store
        self.tick_interval = tick_interval
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._controllers: list[ControllerFn] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        store.add_listener(self._queue.put)

    def add(self, fn: ControllerFn) -> None:
        """Register a controller."""
        self._controllers.append(fn)

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="kubeapi-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (pending events are dropped)."""
        self._stop.set()
        self._queue.put(None)  # wake the thread
        if self._thread:
            self._thread.join(timeout=5)

    def _call(self, fn: ControllerFn, etype: str, obj: dict[str, Any] | None) -> None:
        try:
            fn(self.store, etype, obj)
        except Exception:
            log.exception("controller %r failed on %s", fn, etype)

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_interval
        while not self._stop.is_set():
            due = min(
                [next_tick] + [getattr(fn, "next_due", lambda: float("inf"))() for fn in self._controllers]
            )
            try:
                ev = self._queue.get(timeout=max(0.0, min(due - time.monotonic(), self.tick_interval)))
            except queue.Empty:
                ev = None
            if self._stop.is_set():
                return
            if ev is not None:
                for fn in list(self._controllers):
                    self._call(fn, ev.type, ev.obj)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.tick_interval
                for fn in list(self._controllers):
                    self._call(fn, TICK, None)
            elif ev is None:
                for fn in list(self._controllers):
                    poll = getattr(fn, "poll", None)
                    if poll is not None:
                        try:
                            poll(self.store)
                        except Exception:
                            log.exception("controller poll failed")
