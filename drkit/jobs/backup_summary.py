"""What one backup run did: :class:`BackupSummary` (objects, bytes, index, key id, warnings and
notices) and, per store it was meant for, :class:`StoreOutcome` (complete there or not, and why),
with the lines that tell the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class StoreOutcome:
    """What one backup run left in one store: complete there (its index is there) or not, and why."""

    store: str
    complete: bool
    reason: str = ""
    latest: bool = False
    index_key: str = ""
    index_bytes: int = 0
    bytes_uploaded: int = 0
    previous_run: str | None = None
    same_as: str | None = None

    def line(self) -> str:
        """One line: ``store of site-b: complete (...)`` or ``store of site-b: NOT complete: why``."""
        if not self.complete:
            return f"store of {self.store}: NOT complete (no index there): {self.reason}"
        if not self.latest:
            why = f": {self.reason}" if self.reason else ""
            return f"store of {self.store}: complete, `latest` not updated{why}"
        return (
            f"store of {self.store}: complete ({self.bytes_uploaded} bytes uploaded, index {self.index_key})"
        )


@dataclass(frozen=True)
class BackupSummary:
    """What one backup run did."""

    app: str
    site: str
    run_id: str
    status: str
    objects: int
    objects_new: int
    objects_reused: int
    bytes_uploaded: int
    duration: timedelta
    warnings: tuple[str, ...]
    index_key: str
    key_id: str | None
    previous_run: str | None
    list_calls: int
    index_bytes: int = 0
    same_as: str | None = None
    stores: tuple[StoreOutcome, ...] = ()
    """Per store the run was meant for (the source's own first): complete there or not, and why."""
    source_store: str = ""
    """The store of the source site (the first one written)."""
    notices: tuple[str, ...] = ()
    """What the operator must know that is not a warning of the run: a previous run not reused (its
    integrity check failed), backups unauthenticated (no key)."""

    @property
    def complete_on(self) -> tuple[str, ...]:
        """The stores that hold this run's index."""
        return tuple(o.store for o in self.stores if o.complete)

    @property
    def missed(self) -> tuple[StoreOutcome, ...]:
        """The stores that did not take this run whole (no index, or ``latest`` not updated)."""
        return tuple(o for o in self.stores if not o.complete or (self.status == "complete" and not o.latest))

    def store_lines(self) -> list[str]:
        """Per store, complete or not and why; a loud line when the source's own store missed the run."""
        if len(self.stores) < 2 and not self.missed:
            return []
        out = [o.line() for o in self.stores]
        if any(o.store == self.source_store for o in self.missed) and self.complete_on:
            out.append(
                f"WARNING: the store of {self.source_store} (the source's own) did not take run {self.run_id};"
                f" it is complete on the store of {', '.join(self.complete_on)} only, which a restore there reads"
            )
        if self.missed:
            out.append(
                f"catch up: the next `standby backup run --app {self.app}` writes to every store again;"
                f" `standby backup verify --app {self.app}` copies this run into the stores that missed it"
            )
        return out

    def lines(self) -> list[str]:
        """Human summary, one fact per line (no secret values: only the key id)."""
        out = [
            f"backup {self.run_id} of app {self.app} on site {self.site}: {self.status}",
            f"objects: {self.objects} ({self.objects_new} new, {self.objects_reused} reused"
            + (f" from {self.previous_run})" if self.previous_run else ")"),
            f"bytes uploaded: {self.bytes_uploaded}",
            f"LIST calls: {self.list_calls}",
            f"duration: {self.duration.total_seconds():.2f}s",
            f"encryption key id: {self.key_id or '(none: no Secrets, stored in plaintext)'}",
            f"index: {self.index_key} ({self.index_bytes} bytes"
            + (f", unchanged: points at run {self.same_as})" if self.same_as else ")"),
        ]
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"note: {n}" for n in self.notices]
        return out + self.store_lines()
