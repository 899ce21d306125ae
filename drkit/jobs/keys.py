"""What a key ring opens: the key ids a backup run needs against the ring's, and a trial decrypt.

One place for it, used by ``standby doctor`` and ``standby key check`` (each store's newest run)
and by ``verify-backup`` (every retained run): :func:`run_keys` reads what one run needs and opens
one sealed object per key id the ring holds; :func:`retained_run_keys` does it for every run a
store keeps. The ring's format and the weak-key rule are :mod:`drkit.domain.keyring`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.backup_index import BackupIndex
from drkit.domain.blobs import open_blob
from drkit.domain.errors import IntegrityError, StandbyError
from drkit.jobs.backup import store_label
from drkit.jobs.backup_runs import list_runs, missing_key_id
from drkit.jobs.world import StoreRef


@dataclass(frozen=True)
class RunKeys:
    """What opening one run takes, and whether the ring given does."""

    run: str
    needed: tuple[str, ...]
    """Key ids that sealed the run's objects (sorted); empty: nothing sealed."""
    missing: tuple[str, ...]
    """Of ``needed``, the ids the ring lacks (all of them when no key was given)."""
    opened: int = 0
    """Sealed objects decrypted as a trial (one per key id the ring holds)."""
    error: str = ""
    """Why a trial decrypt failed."""
    store: str = ""

    @property
    def ok(self) -> bool:
        """Whether the ring holds every key the run needs and each trial decrypt passed."""
        return not self.missing and not self.error

    def problem(self) -> str:
        """One line naming the run, what it needs and what failed ('' when ok)."""
        where = f"store of {self.store}: " if self.store else ""
        if self.missing:
            return (
                f"{where}run {self.run} is sealed with key id {', '.join(self.missing)}, which the key ring"
                " lacks: it cannot be restored until that key is added to the ring"
            )
        if self.error:
            return f"{where}run {self.run}: a sealed object failed to open: {self.error}"
        return ""


def run_keys(
    store: ObjectStore, index: BackupIndex, key: crypto.MasterKey | None, *, store_name: str = ""
) -> RunKeys:
    """The key ids ``index``'s run needs against ``key``'s ring, and one trial decrypt per id it holds
    (the smallest object sealed with it: what a restore does first)."""
    sealed = [e for e in index.objects if e.encrypted]
    needed = tuple(sorted({e.key_id or "?" for e in sealed}))
    ring = key.key_ids if key is not None else ()
    missing = tuple(i for i in needed if i not in ring)
    opened, error = 0, ""
    for key_id in needed:
        if key is None or key_id in missing:
            continue
        entry = min((e for e in sealed if e.key_id == key_id), key=lambda e: e.size)
        try:
            open_blob(entry, store.get(entry.key), key)
            opened += 1
        except StandbyError as failure:
            error = f"{entry.path}: {failure.message}"
            break
    return RunKeys(
        run=index.run_id, needed=needed, missing=missing, opened=opened, error=error, store=store_name
    )


def retained_run_keys(
    refs: Sequence[StoreRef], site: str, app: str, key: crypto.MasterKey | None
) -> tuple[list[RunKeys], list[str]]:
    """:func:`run_keys` of every finished run of ``app`` (taken on ``site``) each store keeps, and
    the stores that could not be read (with the reason)."""
    found: list[RunKeys] = []
    unread: list[str] = []
    for ref in refs:
        name = store_label(ref) if len(refs) > 1 else ""
        refused: list[
            tuple[str, IntegrityError]
        ] = []  # runs whose index fails its check: named by the verify
        try:
            found += [
                run_keys(ref.store, index, key, store_name=name)
                for index in list_runs(
                    ref.store, ref.layout, site, app, key=key, label=store_label(ref), refused=refused
                )
            ]
        except StandbyError as error:
            unread.append(f"store of {store_label(ref)}: runs not read for the key check: {error}")
        for run, failure in refused:  # an index signed with a key the ring lacks: that key is missing
            needed = missing_key_id(failure, key)
            if needed is not None:
                found.append(RunKeys(run=run, needed=(needed,), missing=(needed,), store=name))
    return found, unread
