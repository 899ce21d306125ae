"""Core of the object store: objects, the global resourceVersion, the event log, listeners, reads and
snapshots. Writes live in :mod:`lab.kubeapi.store`."""

from __future__ import annotations

import bisect
import builtins
import copy
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.kubeapi.errors import not_found
from lab.kubeapi.resources import Registry, ResourceType

Obj = dict[str, Any]
_LOG_CAP = 20000
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_GENERATION = {"deployments", "statefulsets", "replicasets", "ingresses", "customresourcedefinitions"}


def has_generation(rt: ResourceType) -> bool:
    """Whether the kind tracks ``metadata.generation`` (custom resources and a few built-ins do)."""
    return not rt.builtin or rt.plural in _GENERATION


@dataclass(frozen=True)
class Event:
    """One change: ``ADDED``, ``MODIFIED`` or ``DELETED`` of ``obj`` (``old`` is the previous state)."""

    type: str
    rv: int
    rt: ResourceType
    obj: Obj
    old: Obj | None


def rand_suffix(n: int = 5) -> str:
    """Random suffix in the alphabet Kubernetes uses for generateName."""
    return "".join(random.choice(_GEN_CHARS) for _ in range(n))


def _body(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class StoreCore:
    """Thread-safe storage and reads; see :class:`lab.kubeapi.store.Store` for the full API."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._objs: dict[str, dict[tuple[str, str], Obj]] = {}
        self._rv = 1
        self._log: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []

    # -- plumbing -------------------------------------------------------------------------------------
    def rt(self, resource: ResourceType | str) -> ResourceType:
        """Resolve a resource reference to its type (KeyError when unknown)."""
        return resource if isinstance(resource, ResourceType) else self.registry.resolve(resource)

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` (under the store lock: keep it quick) after every change."""
        self._listeners.append(fn)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        with self._lock:
            return self._rv

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objs.setdefault(f"{rt.group}/{rt.plural}", {})

    def _commit(self, rt: ResourceType, etype: str, obj: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        key = (meta.get("namespace", ""), meta["name"])
        if etype == "DELETED":
            self._bucket(rt).pop(key, None)
        else:
            self._bucket(rt)[key] = obj
        ev = Event(etype, self._rv, rt, copy.deepcopy(obj), old)
        self._log.append(ev)
        if len(self._log) > 2 * _LOG_CAP:
            del self._log[:_LOG_CAP]
        for fn in self._listeners:
            fn(ev)
        self.changed.notify_all()
        return copy.deepcopy(obj)

    # -- reads ----------------------------------------------------------------------------------------
    def try_get(self, resource: ResourceType | str, namespace: str | None, name: str) -> Obj | None:
        """The object or ``None``."""
        rt = self.rt(resource)
        with self._lock:
            obj = self._bucket(rt).get(((namespace or "") if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def get(self, resource: ResourceType | str, namespace: str | None, name: str) -> Obj:
        """The object, or ApiError 404."""
        rt = self.rt(resource)
        obj = self.try_get(rt, namespace, name)
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return obj

    def list(
        self,
        resource: ResourceType | str,
        namespace: str | None = None,
        match: Callable[[Obj], bool] | None = None,
    ) -> list[Obj]:
        """Objects sorted by (namespace, name); ``namespace=None`` lists across namespaces."""
        rt = self.rt(resource)
        with self._lock:
            items = sorted(self._bucket(rt).items())
            return [
                copy.deepcopy(o)
                for (ns, _), o in items
                if (namespace is None or not rt.namespaced or ns == namespace) and (match is None or match(o))
            ]

    def events_since(self, rv: int) -> builtins.list[Event] | None:
        """Events newer than ``rv``; ``None`` when ``rv`` is older than the retained log (410 Gone)."""
        with self._lock:
            if self._log and rv < self._log[0].rv - 1:
                return None
            idx = bisect.bisect_right(self._log, rv, key=lambda e: e.rv)
            return self._log[idx:]

    def wait_change(self, after_rv: int, timeout: float) -> None:
        """Block until the resourceVersion moves past ``after_rv`` or ``timeout`` passes."""
        with self._lock:
            self.changed.wait_for(lambda: self._rv > after_rv, timeout)

    # -- persistence ----------------------------------------------------------------------------------
    def snapshot(self) -> Obj:
        """Serializable state: resourceVersion and every object (CRDs first)."""
        with self._lock:
            objs = [o for bucket in self._objs.values() for o in bucket.values()]
            objs.sort(key=lambda o: o["kind"] != "CustomResourceDefinition")
            return {"resourceVersion": self._rv, "objects": copy.deepcopy(objs)}

    def load(self, state: Obj) -> None:
        """Replace the contents with a :meth:`snapshot` (no events are emitted)."""
        with self._lock:
            self._objs.clear()
            self._log.clear()
            for obj in state.get("objects", []):
                if obj["kind"] == "CustomResourceDefinition":
                    self.registry.set_crd(obj)
                rt = self.registry.by_kind(obj["apiVersion"], obj["kind"])
                if rt is not None:
                    self._bucket(rt)[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
            self._rv = max(self._rv, int(state.get("resourceVersion", 1)))
