"""Bounded, parallel probes: how planning and ``standby status`` look at sites that may not answer.

A plan has to appear quickly whatever is down, so what it reads is asked in a way that cannot wait
long:

* :func:`bounded` wraps an adapter (``ClusterApi``, ``RbdMirror``, ``ObjectStore``) so each call
  runs in a daemon thread and is given up after the site's ``probe_timeout``. A call that has not
  answered by then raises :class:`NoAnswer` ("... no answer within 3s"), and so does every later
  call of the same adapter in that observation (its :class:`Probe`): a frozen site costs one timeout,
  not one per call. An error that comes back only after the time is spent (the adapter's own timeout
  firing) counts as no answer too. Iterators (``ObjectStore.list``) are bounded item by item.
* :func:`in_parallel` runs independent observations (both sites, every store) at the same time.

The abandoned call goes on in its thread until the adapter's own timeout ends it; that is why the
probing adapters are also built with short timeouts where the real adapter allows it
(:meth:`drkit.jobs.world.SiteBundle.probing`). Steps that act never go through here: they keep the
normal, long timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from drkit.domain.errors import TransientError

T = TypeVar("T")


class NoAnswer(TransientError):
    """A probe got no answer within its time: the site (or store) is shown unreachable, not waited for."""


@dataclass
class Probe:
    """One adapter's probes in one observation: its time limit and whether it has stopped answering."""

    label: str
    """What is asked, for messages: e.g. ``rbd of site-a``."""
    site: str
    timeout: float
    """Seconds one call may take."""
    silent: NoAnswer | None = None
    """Set by the first call that got no answer; later calls raise it at once."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def no_answer(self, what: str) -> NoAnswer:
        """Record (once) and return the error of a call ``what`` that did not answer in time."""
        with self._lock:
            if self.silent is None:
                self.silent = NoAnswer(
                    f"{self.label}: no answer within {self.timeout:g}s ({what})",
                    hint=f"planning does not wait longer; if {self.site} is only slow, raise"
                    f" sites[{self.site}].probe_timeout",
                    context={"site": self.site, "probe": self.label},
                )
            return self.silent

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, or :class:`NoAnswer` when it does not return within :attr:`timeout`."""
        if self.silent is not None:
            raise self.silent
        box: list[Any] = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append((True, fn()))
            except BaseException as error:  # handed to the waiting thread as it is
                box.append((False, error))
            finally:
                done.set()

        started = time.monotonic()
        threading.Thread(target=work, name=f"probe {self.label}", daemon=True).start()
        if not done.wait(self.timeout):
            raise self.no_answer(what)
        ok, value = box[0]
        if ok:
            return cast(T, value)
        if isinstance(value, TransientError) and time.monotonic() - started >= self.timeout:
            raise self.no_answer(what) from None  # the adapter's own timeout: no answer in time either
        raise value


class _BoundedIterator(Iterator[Any]):
    def __init__(self, probe: Probe, what: str, items: Iterator[Any]) -> None:
        self._probe, self._what, self._items = probe, what, items

    def __next__(self) -> Any:
        return self._probe.call(self._what, lambda: next(self._items))


class _Bounded:
    """Forwards attribute reads to the adapter; its methods run through :meth:`Probe.call`."""

    def __init__(self, adapter: object, probe: Probe, quick: Callable[[], object] | None) -> None:
        self._adapter, self._probe, self._quick = adapter, probe, quick

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._adapter, name)
        if name.startswith("_") or not callable(value):
            return value
        probe, quick = self._probe, self._quick

        def call(*args: Any, **kwargs: Any) -> Any:
            method = value if quick is None else getattr(quick(), name)  # built here, not in the time
            result = probe.call(name, lambda: method(*args, **kwargs))
            return _BoundedIterator(probe, name, result) if isinstance(result, Iterator) else result

        return call

    def __repr__(self) -> str:
        return f"bounded({self._adapter!r}, {self._probe.timeout:g}s)"


def bounded(adapter: T, probe: Probe, *, quick: Callable[[], T] | None = None) -> T:
    """``adapter`` with every method call bounded by ``probe`` (same protocol, same errors).

    ``quick``: a copy of the adapter with short timeouts of its own, built on the first call (in
    the caller's thread, outside the time limit) and used for the calls instead of ``adapter``.
    """
    return cast(T, _Bounded(adapter, probe, quick))


def in_parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at the same time, each in a daemon thread; their results in order.

    Waits for all of them (bound each by its adapters), then raises the first error in the order
    given. A daemon thread never keeps the process alive at exit.
    """
    if len(calls) == 1:
        return [calls[0]()]
    results: list[tuple[bool, Any]] = [(False, None)] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            results[i] = (True, fn())
        except BaseException as error:  # raised again by the caller's thread
            results[i] = (False, error)

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ok, value in results:
        if not ok:
            raise value
    return [value for _, value in results]


ASK_AGAIN_AFTER = 120.0
"""Seconds a store that did not answer a spare call is left alone before it is asked again."""


class SpareStore:
    """An object store asked for a copy the run can do without (see ``World.spare``).

    A call that fails with :class:`TransientError` after ``slow_after`` seconds or more (the store
    took the request and never answered, as a lost site's does) puts ``name`` in ``unanswered``; for
    the next :data:`ASK_AGAIN_AFTER` seconds every call fails at once, naming why. A quick refusal is
    not remembered: it costs nothing.
    """

    def __init__(self, store: Any, name: str, unanswered: dict[str, float], *, slow_after: float) -> None:
        self._store, self._name, self._unanswered, self._slow_after = store, name, unanswered, slow_after

    def __getattr__(self, attribute: str) -> Any:
        attr = getattr(self._store, attribute)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            since = self._unanswered.get(self._name)
            if since is not None and time.monotonic() - since < ASK_AGAIN_AFTER:
                raise TransientError(
                    f"{self._name}: not asked again, it did not answer earlier in this run",
                    hint="the copy there is caught up by the next run once it answers",
                )
            started = time.monotonic()
            try:
                return attr(*args, **kwargs)
            except TransientError:
                if time.monotonic() - started >= self._slow_after:
                    self._unanswered[self._name] = time.monotonic()
                raise

        return call
