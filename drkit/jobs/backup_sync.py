"""Backups in every store: what each store holds, and catching up a store that missed runs.

A backup run is written to every store of the app's sites that answers (:func:`~drkit.jobs.backup.run_backup`);
a store that was down misses it. Two things follow:

* :func:`holdings`: per store, the finished runs it holds and which of them are complete
  (``standby backup list``); a store that does not answer says why.
* :func:`catch_up`: each complete run a store misses (newer than its own newest complete run, or
  the runs asked for) is copied from a store that holds it complete: the blobs first (each GET
  checked against the recorded sha256 and size; blobs the store already holds are reused), the
  index last (the store's completion marker), then ``latest`` when the run is the store's newest.
  ``verify-backup`` runs it before verifying; the next backup run gives a missed store that new
  run anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from drkit.domain import crypto
from drkit.domain.backup_index import BackupIndex, IndexEntry, encode_index
from drkit.domain.backup_plan import BackupPlan, known_blobs
from drkit.domain.errors import Conflict, IntegrityError, StandbyError
from drkit.domain.layout import parse_run_id
from drkit.jobs.backup import plan_for_store, store_label, upload_blobs
from drkit.jobs.backup_runs import list_runs, missing_key_id, read_latest, write_latest
from drkit.jobs.world import StoreRef


@dataclass(frozen=True)
class StoreRuns:
    """The runs of one app (from one source site) that one store holds."""

    store: str
    runs: tuple[BackupIndex, ...] = ()
    latest: str | None = None
    error: str = ""
    """Why the store could not be read (then it holds nothing we know of)."""
    refused: tuple[str, ...] = ()
    """Runs (and ``latest``) left out because their integrity check failed, one line each."""
    unsealed: tuple[str, ...] = ()
    """With a key: runs (or ``latest``) written without one (by an older Standby), left out."""
    locked: tuple[str, ...] = ()
    """Runs (or ``latest``) sealed with a key the loaded ring lacks (or with no key loaded), left out."""
    failure: StandbyError | None = field(default=None, repr=False, compare=False)
    """The error itself (to raise when no store answered)."""

    @property
    def complete(self) -> tuple[str, ...]:
        """Run ids of the complete runs, oldest first."""
        return tuple(i.run_id for i in self.runs if i.status == "complete")


def _newest(runs: Sequence[str]) -> str | None:
    return max(runs, key=parse_run_id) if runs else None


def holdings(
    refs: Sequence[StoreRef], site: str, app: str, *, key: crypto.MasterKey | None = None
) -> list[StoreRuns]:
    """Per store (in ``refs`` order), the finished runs of ``app`` taken on ``site``.

    With ``key`` only authenticated runs count; the others (and a ``latest`` that fails its check)
    are named in :attr:`StoreRuns.refused`.
    """
    out: list[StoreRuns] = []
    for ref in refs:
        label = store_label(ref)
        refused: list[tuple[str, IntegrityError]] = []
        latest: str | None = None
        try:
            runs = tuple(list_runs(ref.store, ref.layout, site, app, key=key, label=label, refused=refused))
            try:
                latest = read_latest(ref.store, ref.layout, site, app, key=key, label=label)
            except IntegrityError as error:
                refused.append(("latest", error))
        except StandbyError as error:
            out.append(StoreRuns(store=label, error=str(error), failure=error))
            continue
        locked = tuple(run for run, e in refused if missing_key_id(e, key) is not None)
        failed = tuple(e.message for run, e in refused if not e.context.get("unsealed") and run not in locked)
        old = tuple(run for run, e in refused if e.context.get("unsealed"))
        out.append(
            StoreRuns(store=label, runs=runs, latest=latest, refused=failed, unsealed=old, locked=locked)
        )
    return out


@dataclass(frozen=True)
class Copied:
    """One run copied into a store that missed it."""

    run_id: str
    into: str
    source: str
    blobs: int
    bytes: int


@dataclass(frozen=True)
class CatchUp:
    """What :func:`catch_up` copied, and what it could not do (per store, with the reason)."""

    app: str
    site: str
    copied: tuple[Copied, ...] = field(default=())
    problems: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    """What is left out but is no failure: runs written without a key, with a key loaded."""

    @property
    def ok(self) -> bool:
        """Whether every store answered and holds every complete run it should."""
        return not self.problems

    def lines(self) -> list[str]:
        """One line per run copied and per problem."""
        out = [
            f"caught up: run {c.run_id} copied from the store of {c.source} into the store of {c.into}"
            f" ({c.blobs} blob(s), {c.bytes} bytes)"
            for c in self.copied
        ]
        return out + [f"not caught up: {p}" for p in self.problems] + [f"note: {n}" for n in self.notes]


def copy_run(
    source: StoreRef,
    into: StoreRef,
    index: BackupIndex,
    known: dict[str, IndexEntry],
    *,
    key: crypto.MasterKey | None,
    workers: int = 8,
) -> Copied:
    """Copy complete run ``index`` (as read from ``source``'s store) into ``into``'s store.

    Blobs first (``known``: what ``into`` holds already, by blob key; updated with what was copied),
    then a full index (keyed for ``into``'s layout, recording the bytes ``into`` holds), written
    only if absent: it marks the run complete there.
    """
    site, app = index.site, index.app
    plan = BackupPlan(parse_run_id(index.run_id), index.objects, (), index.previous_run)
    mine = plan_for_store(
        plan, into, known, source=source, site=site, app=app, previous_run=index.previous_run, workers=workers
    )
    stored = upload_blobs(into.store, mine, key, workers=workers)
    copy = index.model_copy(update={"objects": stored.entries, "same_as": None})
    try:
        into.store.put(
            into.layout.index_key(site, app, index.run_id),
            encode_index(copy, into.layout, key=key),
            if_none_match=True,
            content_type="application/gzip",
        )
    except Conflict:
        pass  # another writer finished it first: the run is complete there
    known.update(known_blobs([copy]))
    return Copied(
        index.run_id, store_label(into), store_label(source), len(stored.uploads), stored.bytes_to_upload
    )


def catch_up(
    refs: Sequence[StoreRef],
    site: str,
    app: str,
    *,
    key: crypto.MasterKey | None,
    runs: Sequence[str] | None = None,
    workers: int = 8,
) -> CatchUp:
    """Copy into each store the complete runs it misses, from a store that holds them (module docstring).

    Without ``runs``, a store is given the complete runs newer than its own newest complete run
    (older runs it lacks were pruned by retention, or predate it). With ``runs``, those runs.
    ``latest`` is moved to the store's newest complete run when it names an older one.
    """
    held = holdings(refs, site, app, key=key)
    problems = [f"store of {h.store}: {h.error}" for h in held if h.error]
    problems += [f"store of {h.store}: {why}" for h in held for why in h.refused]
    notes = [
        f"store of {h.store}: left out, written without a key (unauthenticated): {', '.join(h.unsealed)}"
        for h in held
        if h.unsealed
    ]
    notes += [
        f"store of {h.store}: left out, sealed with a key the loaded ring lacks: {', '.join(h.locked)}"
        for h in held
        if h.locked
    ]
    answering = [(ref, h) for ref, h in zip(refs, held, strict=True) if not h.error]
    by_run: dict[str, tuple[StoreRef, BackupIndex]] = {}
    for ref, h in answering:
        for index in h.runs:
            if index.status == "complete":
                by_run.setdefault(index.run_id, (ref, index))
    copied: list[Copied] = []
    for ref, h in answering:
        have = set(h.complete)
        newest = _newest(h.complete)
        if runs is not None:
            wanted = [r for r in runs if r not in have]
        else:
            wanted = [
                r
                for r in by_run
                if r not in have and (newest is None or parse_run_id(r) > parse_run_id(newest))
            ]
        known = known_blobs(h.runs)
        done = list(have)
        for run in sorted(wanted, key=parse_run_id):
            if run not in by_run:
                problems.append(f"store of {h.store}: run {run} is complete in no store that answered")
                continue
            source, index = by_run[run]
            try:
                copied.append(copy_run(source, ref, index, known, key=key, workers=workers))
            except StandbyError as error:
                problems.append(
                    f"store of {h.store}: run {run} could not be copied from the store of"
                    f" {store_label(source)}: {error}"
                )
                break
            done.append(run)
        top = _newest(done)
        if top is not None and (h.latest is None or parse_run_id(top) > parse_run_id(h.latest)):
            try:
                write_latest(ref.store, ref.layout, site, app, top, key)
            except StandbyError as error:
                problems.append(f"store of {h.store}: `latest` could not be moved to run {top}: {error}")
    return CatchUp(app=app, site=site, copied=tuple(copied), problems=tuple(problems), notes=tuple(notes))
