"""An S3 bucket in memory that speaks :class:`~drkit.adapters.objectstore.ObjectStore`: :class:`FakeObjectStore`.

Its errors come from the builders in :mod:`drkit.adapters.objectstore`, as the real adapter's do.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator

from drkit.adapters.objectstore import (
    ObjectInfo,
    bucket_missing,
    changed_since_read,
    exists_already,
    key_missing,
    unreachable,
)
from drkit.testing.hang import Hang


class FakeObjectStore:
    """:class:`~drkit.adapters.objectstore.ObjectStore` in a dict.

    Fault knobs (set them at any time):

    * ``unreachable``: every call raises :class:`TransientError` naming the endpoint;
    * ``hang`` (a :class:`~drkit.testing.hang.Hang`): while frozen, every call blocks, then raises
      :class:`TransientError` as a read timeout when its limit runs out;
    * ``bucket_exists=False``: every call raises :class:`NotFound` naming the bucket;
    * ``fail_put_after=N``: the first N puts succeed, every later put raises :class:`TransientError`
      (``None`` disables it); ``puts`` counts the puts attempted;
    * ``ignores_conditions``: puts ignore If-None-Match and If-Match and always write, as S3
      services without conditional writes do (the headers are unknown to them).
    """

    def __init__(
        self,
        *,
        site: str = "site-a",
        bucket: str = "standby",
        endpoint: str = "memory://fake-s3",
        page_size: int = 1000,
        fail_put_after: int | None = None,
        unreachable: bool = False,
        bucket_exists: bool = True,
    ) -> None:
        self.site = site
        self.bucket = bucket
        self.endpoint = endpoint
        self.page_size = page_size
        self.fail_put_after = fail_put_after
        self.unreachable = unreachable
        self.bucket_exists = bucket_exists
        self.ignores_conditions = False
        self.puts = 0
        self.list_pages = 0
        self.objects: dict[str, bytes] = {}
        self.hang = Hang()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeObjectStore(site={self.site!r}, bucket={self.bucket!r}, objects={len(self.objects)})"

    def _wait(self) -> None:
        """Block while :attr:`hang` is frozen (outside the lock: other calls block the same way)."""
        if not self.hang.hold():
            raise unreachable(self.endpoint, self.site, "ReadTimeoutError (fake: hang)")

    def _check(self) -> None:
        if self.unreachable:
            raise unreachable(self.endpoint, self.site, "connection refused (fake: unreachable=True)")
        if not self.bucket_exists:
            raise bucket_missing(self.bucket, self.endpoint, self.site)

    @staticmethod
    def _etag(data: bytes) -> str:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Store ``data``; the ``fail_put_after`` knob makes later puts fail."""
        self._wait()
        with self._lock:
            self._check()
            self.puts += 1
            if self.fail_put_after is not None and self.puts > self.fail_put_after:
                raise unreachable(self.endpoint, self.site, f"put #{self.puts} failed (fake: fail_put_after)")
            if self.ignores_conditions:
                if_none_match, if_match = False, None
            if if_none_match and key in self.objects:
                raise exists_already(key, self.bucket, self.endpoint, self.site)
            if if_match is not None and (
                key not in self.objects or self._etag(self.objects[key]) != if_match
            ):
                raise changed_since_read(key, self.bucket, self.endpoint, self.site)
            self.objects[key] = bytes(data)
            return self._etag(data)

    def get(self, key: str) -> bytes:
        """The stored bytes, or :class:`NotFound` naming the key."""
        return self.read(key)[0]

    def read(self, key: str) -> tuple[bytes, str]:
        """The stored bytes and their ETag, or :class:`NotFound` naming the key."""
        self._wait()
        with self._lock:
            self._check()
            if key not in self.objects:
                raise key_missing(key, self.bucket, self.endpoint, self.site)
            return self.objects[key], self._etag(self.objects[key])

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag, or ``None``."""
        self._wait()
        with self._lock:
            self._check()
            data = self.objects.get(key)
            return None if data is None else ObjectInfo(key, len(data), self._etag(data))

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return self.head(key) is not None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, fetched ``page_size`` at a time like S3."""
        after = ""
        while True:
            self._wait()
            with self._lock:
                self._check()
                self.list_pages += 1
                keys = sorted(k for k in self.objects if k.startswith(prefix) and k > after)[: self.page_size]
                page = [ObjectInfo(k, len(self.objects[k]), self._etag(self.objects[k])) for k in keys]
            yield from page
            if len(page) < self.page_size:
                return
            after = page[-1].key

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; missing keys are ignored."""
        doomed = [*keys]
        self._wait()
        with self._lock:
            self._check()
            for key in doomed:
                self.objects.pop(key, None)
