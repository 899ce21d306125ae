"""GFS retention of an app's backup runs in one store, without Prefect: which runs are kept
(:func:`~drkit.domain.retention.plan_retention`), then the deletion of the others' indexes and of
the blobs no kept run references (:func:`apply_retention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.backup_index import BackupIndex
from drkit.domain.errors import IntegrityError
from drkit.domain.layout import StoreLayout, parse_run_id
from drkit.domain.models import ProtectedApp, Site
from drkit.domain.retention import (
    RetentionDecision,
    RetentionPolicy,
    RunInfo,
    plan_retention,
    unreferenced_blobs,
)
from drkit.jobs.backup_runs import list_runs, read_index


@dataclass(frozen=True)
class RetentionResult:
    """What retention decided and deleted."""

    decision: RetentionDecision
    runs_deleted: tuple[str, ...]
    blobs_deleted: int


def _retention_runs(
    store: ObjectStore, layout: StoreLayout, site: str, app: str, key: crypto.MasterKey | None
) -> list[BackupIndex]:
    refused: list[tuple[str, IntegrityError]] = []
    runs = list_runs(store, layout, site, app, key=key, refused=refused)
    for run, error in refused:  # unsealed (older) runs are pruned by their own index; anything else stops
        try:
            runs.append(read_index(store, layout, site, app, run))
        except IntegrityError:
            raise error from None
    return sorted(runs, key=lambda i: parse_run_id(i.run_id))


def apply_retention(
    store: ObjectStore,
    site: Site,
    app: ProtectedApp,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    tz: tzinfo | None = None,
    layout: StoreLayout | None = None,
    key: crypto.MasterKey | None = None,
) -> RetentionResult:
    """GFS retention of ``app``'s runs, then the blobs no kept run references.

    Only a ``complete`` run counts as complete; the newest complete run is never deleted. Must not
    run while a backup of the same app runs (its new blobs are in no index yet): the flows hold one
    concurrency slot per app for both. ``layout`` is the store's (the site's own by default):
    each store of a run is pruned on its own. With ``key``, sealed indexes are read (and checked);
    a run an older Standby wrote unsealed is still pruned by its own index (read, not trusted: it
    only decides what is deleted), so an upgrade keeps its history until retention lets it go.
    """
    layout = layout or StoreLayout(site.s3.prefix)
    indexes = {i.run_id: i for i in _retention_runs(store, layout, site.name, app.name, key)}
    runs = [
        RunInfo(run_id=r, started=i.started, complete=i.status == "complete", same_as=i.same_as)
        for r, i in indexes.items()
    ]
    decision = plan_retention(runs, policy, **({"tz": tz} if tz is not None else {}))
    kept = [indexes[r] for r in decision.keep]
    if not kept:
        return RetentionResult(decision, (), 0)
    blobs = [i.key for i in store.list(layout.blobs_prefix(site.name, app.name))]
    doomed = unreferenced_blobs(kept, blobs)
    if not dry_run:
        # Indexes first: a run is gone as soon as its index is; its blobs may go after.
        store.delete(layout.index_key(site.name, app.name, r) for r in decision.delete)
        store.delete(doomed)
    return RetentionResult(decision, decision.delete, len(doomed))
