"""Restore a backup run into a site, without Prefect. The drill and failover reuse :func:`restore_backup`.

1. Pick the run (given, or ``latest``: the newest complete run) and read its index.
2. Read and check every blob of the run (sha256, decryption) and that each manifest is the object
   its entry names (apiVersion, kind, namespace, name): a forged entry refuses the whole run.
3. Keep the kinds asked for and check each object against the app's allow-list
   (:mod:`drkit.domain.restore_scope`: its Namespace, the PVs of its images, its configured kinds
   and workload in its namespace); one object that is not the app's refuses the restore.
4. Sanitise each manifest for the target site (:func:`~drkit.domain.transforms.sanitize`: server
   fields, PV claimRef and ``Retain``, bind annotations, storage-class rewrite at the app's
   ``restore.storage_class_fields`` when the sites' classes differ, then the app's
   ``restore.transforms``; ``imageName`` is kept) and move namespaced objects into the target
   namespace: the app's own or its drill namespace (``<namespace>-drill``), nothing else.
5. Server-side validation: every object is sent once with ``dryRun=All`` in restore order; one
   refusal refuses the restore, before anything is applied. With ``dry_run`` the restore stops here.
6. Apply in the app's restore order (``restore.order``): create; an existing object is skipped
   (``skip``) or replaced (``update``).
7. Wait until every restored PVC is ``Bound`` (poll, with a timeout).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from drkit.adapters.clock import Clock, SystemClock
from drkit.adapters.kube import ClusterApi, kind_of
from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.backup_index import UNAUTHENTICATED, IndexEntry
from drkit.domain.blobs import open_blob
from drkit.domain.drill import scratch_namespace
from drkit.domain.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.layout import StoreLayout
from drkit.domain.models import KindRef, ProtectedApp, Site
from drkit.domain.restore_order import sort_for_restore
from drkit.domain.restore_scope import RestoreScope, entry_mismatch
from drkit.domain.transforms import context_for, sanitize
from drkit.jobs.backup_runs import read_index, resolve_run
from drkit.jobs.progress import Progress as Progress  # re-exported for the tasks
from drkit.jobs.requests import RestoreRequest, default
from drkit.jobs.world import World

Policy = Literal["skip", "update"]
PVC = KindRef(version="v1", kind="PersistentVolumeClaim")


@dataclass(frozen=True)
class RestoreSummary:
    """What a restore did (or, with ``dry_run``, would do)."""

    app: str
    run_id: str
    source_site: str
    target_site: str
    namespace: str
    dry_run: bool
    created: tuple[str, ...] = field(default=())
    updated: tuple[str, ...] = field(default=())
    skipped: tuple[str, ...] = field(default=())
    bound_pvcs: tuple[str, ...] = field(default=())
    notices: tuple[str, ...] = field(default=())
    """What the operator must know beyond the objects: backups unauthenticated (no key)."""

    def lines(self) -> list[str]:
        """Human summary."""
        verb = "would restore" if self.dry_run else "restored"
        out = [
            f"{verb} backup {self.run_id} of app {self.app} from site {self.source_site} into"
            f" site {self.target_site}, namespace {self.namespace}",
            f"created: {len(self.created)}, updated: {len(self.updated)}, skipped (exist): {len(self.skipped)}",
        ]
        out += [f"  created {p}" for p in self.created]
        out += [f"  updated {p}" for p in self.updated]
        out += [f"  skipped {p}" for p in self.skipped]
        if self.bound_pvcs:
            out.append(f"PVCs Bound: {', '.join(self.bound_pvcs)}")
        return out + [f"note: {n}" for n in self.notices]


def _retarget(obj: dict[str, Any], source_ns: str, target_ns: str) -> dict[str, Any]:
    if source_ns == target_ns:
        return obj
    meta = obj.setdefault("metadata", {})
    if obj.get("kind") == "Namespace" and meta.get("name") == source_ns:
        meta["name"] = target_ns
    elif meta.get("namespace") == source_ns:
        meta["namespace"] = target_ns
    ref = (obj.get("spec") or {}).get("claimRef")
    if isinstance(ref, dict) and ref.get("namespace") == source_ns:
        ref["namespace"] = target_ns
    return obj


def _label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def wait_pvcs_bound(
    cluster: ClusterApi,
    claims: list[tuple[str, str]],
    *,
    timeout: float,
    interval: float = 0.5,
    clock: Clock,
) -> tuple[str, ...]:
    """Poll until every ``(namespace, name)`` claim is ``Bound``; :class:`TransientError` names the rest."""
    deadline = clock.monotonic() + timeout
    pending = list(claims)
    while True:
        still = []
        for ns, name in pending:
            phase = (cluster.get(PVC, name, ns).get("status") or {}).get("phase")
            if phase != "Bound":
                still.append((ns, name, phase or "no phase"))
        if not still:
            return tuple(f"{ns}/{name}" for ns, name in claims)
        if clock.monotonic() >= deadline:
            named = ", ".join(f"{ns}/{name} ({phase})" for ns, name, phase in still)
            raise TransientError(
                f"PVC(s) not Bound on {cluster.site} after {timeout:.0f}s: {named}",
                hint="check that each PVC's PV was restored and that its volumeName matches",
                context={"site": cluster.site},
            )
        pending = [(ns, name) for ns, name, _ in still]
        clock.sleep(interval)


def _read_run(
    store: ObjectStore, entries: Iterable[IndexEntry], key: crypto.MasterKey | None, *, run: str, where: str
) -> list[tuple[IndexEntry, dict[str, Any]]]:
    """Every entry's manifest, checked against its blob (:func:`open_blob`) and its entry's identity.

    :class:`IntegrityError` at the first manifest that is not the object its entry names: nothing of
    the run is applied then.
    """
    read = []
    for entry in entries:
        manifest = open_blob(entry, store.get(entry.key), key)
        mismatch = entry_mismatch(entry, manifest)
        if mismatch is not None:
            raise IntegrityError(
                f"{mismatch} (backup {run}, {where}): the index was forged or the blob replaced;"
                " nothing of this run was applied",
                hint="restore an earlier run (`standby backup list`), run `standby backup verify`, and find"
                " out who can write to the bucket",
                context={"run": run, "store": where, "entry": entry.path},
            )
        read.append((entry, manifest))
    return read


def _namespaced(target: ClusterApi, kinds: Iterable[KindRef]) -> dict[KindRef, bool | None]:
    """What the target says of each kind: namespaced or not, ``None`` when it does not serve it."""
    answers: dict[KindRef, bool | None] = {}
    for kind in kinds:
        try:
            answers[kind] = target.discover(kind).namespaced
        except NotFound:
            answers[kind] = None
    return answers


def _check_scope(
    app: ProtectedApp,
    read: list[tuple[IndexEntry, dict[str, Any]]],
    chosen: list[dict[str, Any]],
    target: ClusterApi,
    *,
    run: str,
    where: str,
) -> None:
    """Refuse the restore when one object of ``chosen`` (as read) is not the app's (the allow-list)."""
    scope = RestoreScope.of(app)
    run_pvs = scope.app_pvs(manifest for _, manifest in read)
    scoped = _namespaced(target, {kind_of(obj) for obj in chosen})
    refused = []
    for obj in chosen:
        why = scope.refusal(obj, namespaced=scoped[kind_of(obj)], run_pvs=run_pvs)
        if why is not None:
            refused.append(f"{_label(obj)}: {why}")
    if refused:
        raise PreconditionFailed(
            f"backup {run} of app {app.name} ({where}) holds {len(refused)} object(s) that are not the app's,"
            f" refused: {'; '.join(refused)}; nothing was applied",
            hint="restore an earlier run and run `standby backup verify`; if the app's configuration changed"
            " since this run (kinds, volumes), restore a run taken after the change",
            context={"run": run, "store": where, "app": app.name, "refused": refused},
        )


def _apply(
    target: ClusterApi,
    manifests: list[dict[str, Any]],
    *,
    policy: Policy,
    dry_run: bool,
    progress: Progress | None,
) -> tuple[list[str], list[str], list[str], list[str], list[tuple[str, str]]]:
    """Create (or per ``policy`` skip or replace) each manifest in order; created, updated, skipped,
    failed and PVC ``(namespace, name)`` claims. With ``dry_run`` every request carries ``dryRun=All``."""
    created: list[str] = []
    updated: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    claims: list[tuple[str, str]] = []
    new_namespaces: set[str] = set()
    for done, obj in enumerate(manifests, start=1):
        label = _label(obj)
        try:
            target.create(obj, dry_run=dry_run)
            created.append(label)
            if obj.get("kind") == "Namespace":
                new_namespaces.add(str(obj["metadata"]["name"]))
        except NotFound as error:
            if dry_run and obj["metadata"].get("namespace") in new_namespaces:
                created.append(label)  # its namespace is only created for real
            else:
                failed.append(f"{label}: {error.message}")
        except Conflict:
            if policy == "skip":
                skipped.append(label)
            else:
                live = target.get(kind_of(obj), obj["metadata"]["name"], obj["metadata"].get("namespace"))
                body = {
                    **obj,
                    "metadata": {**obj["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]},
                }
                if "status" in live:
                    body.setdefault("status", live["status"])
                try:
                    target.replace(body, dry_run=dry_run)
                    updated.append(label)
                except TransientError:
                    raise
                except StandbyError as error:
                    failed.append(f"{label}: {error.message}")
        except TransientError:
            raise
        except StandbyError as error:
            failed.append(f"{label}: {error.message}")
        if obj.get("kind") == "PersistentVolumeClaim":
            claims.append((str(obj["metadata"].get("namespace")), str(obj["metadata"]["name"])))
        if progress is not None:
            verb = "validated" if dry_run else "applied"
            progress(done, len(manifests), f"{verb} {done} of {len(manifests)} object(s)")
    return created, updated, skipped, failed, claims


def restore_backup(
    store: ObjectStore,
    source: Site,
    app: ProtectedApp,
    target: ClusterApi,
    target_site: Site,
    *,
    key: crypto.MasterKey | None,
    run_id: str | None = None,
    namespace: str | None = None,
    policy: Policy = default(RestoreRequest, "policy"),
    dry_run: bool = False,
    exclude_kinds: Iterable[str] = (),
    include_kinds: Iterable[str] | None = None,
    bound_timeout: float = default(RestoreRequest, "bound_timeout"),
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
    layout: StoreLayout | None = None,
    store_name: str = "",
) -> RestoreSummary:
    """Restore run ``run_id`` (or ``latest``) of ``app`` from ``source``'s store into ``target``.

    ``namespace`` is the app's (the default) or its drill namespace, nothing else. ``exclude_kinds``
    names kinds left out (e.g. ``VolumeReplication`` while the source is still primary: restoring it
    would ask the target to promote its image); ``include_kinds``, when given, restores only those
    kinds (an operation restores volumes, workload and routing apart). ``rewrite``, when given,
    changes each manifest after sanitising and retargeting (an isolated drill points the PV at its
    scratch image). ``layout`` is the store's (``source``'s own by default), ``store_name`` names it
    in errors (the sites using it).

    With ``key`` the index and ``latest`` must be authenticated (their MACs) and every entry sealed
    (:mod:`drkit.domain.backup_index`). Nothing is applied until every entry of the run was read and
    matched its manifest, every object
    to restore passed the app's allow-list (:mod:`drkit.domain.restore_scope`) and the target's
    server-side validation (a ``dryRun=All`` pass); each failure refuses the whole restore.
    """
    check_restore_namespace(app, namespace)
    layout = layout or StoreLayout(source.s3.prefix)
    where = f"store of {store_name or source.name}"
    run = resolve_run(store, layout, source.name, app.name, run_id, key=key, label=store_name)
    index = read_index(store, layout, source.name, app.name, run, key=key, label=store_name)
    context = context_for(app, source, target_site)
    app_ns = app.kube_namespace("restore")
    target_ns = namespace or app_ns
    excluded = frozenset(exclude_kinds)
    included = None if include_kinds is None else frozenset(include_kinds)
    workload = app.kube_workload("restore").kind
    ordered = sort_for_restore(index.objects, lambda e: e.kind, workload, app.restore.order)
    read = _read_run(store, ordered, key, run=run, where=where)
    chosen = [
        manifest
        for entry, manifest in read
        if entry.kind not in excluded and (included is None or entry.kind in included)
    ]
    _check_scope(app, read, chosen, target, run=run, where=where)
    scope = RestoreScope.of(app)
    manifests = []
    for manifest in chosen:
        moved = _retarget(sanitize(manifest, context), app_ns, target_ns)
        final = rewrite(moved) if rewrite is not None else moved
        why = scope.landing_refusal(final, target_ns)
        if why is not None:
            raise PreconditionFailed(
                f"{_label(final)} of backup {run}: {why}; nothing was applied",
                hint="check the app's restore.transforms: they must not move objects out of its namespace",
                context={"run": run, "app": app.name},
            )
        manifests.append(final)
    created, updated, skipped, failed, _ = _apply(
        target, manifests, policy=policy, dry_run=True, progress=progress if dry_run else None
    )
    if failed:
        raise PreconditionFailed(
            f"restore of backup {run} into site {target_site.name}: the apiserver's validation (dry run)"
            f" refused {len(failed)} object(s): " + "; ".join(failed) + "; nothing was applied",
            hint="fix the objects named (or the app's restore transforms), then run the restore again",
            context={"run": run, "site": target_site.name, "failed": failed},
        )
    claims: list[tuple[str, str]] = []
    if not dry_run:
        created, updated, skipped, failed, claims = _apply(
            target, manifests, policy=policy, dry_run=False, progress=progress
        )
    if failed:
        raise StandbyError(
            f"restore of backup {run} into site {target_site.name} failed for {len(failed)} object(s): "
            + "; ".join(failed),
            hint="fix the objects named, then run the restore again (existing objects are skipped)",
            context={"run": run, "site": target_site.name, "failed": failed},
        )
    bound: tuple[str, ...] = ()
    if claims and not dry_run:
        bound = wait_pvcs_bound(target, claims, timeout=bound_timeout, clock=clock or SystemClock())
    return RestoreSummary(
        app=app.name,
        run_id=run,
        source_site=source.name,
        target_site=target_site.name,
        namespace=target_ns,
        dry_run=dry_run,
        created=tuple(created),
        updated=tuple(updated),
        skipped=tuple(skipped),
        bound_pvcs=bound,
        notices=() if key is not None else (UNAUTHENTICATED,),
    )


def saved_objects(
    store: ObjectStore,
    source: Site,
    app: ProtectedApp,
    *,
    key: crypto.MasterKey | None,
    run_id: str | None,
    kinds: Iterable[str],
    layout: StoreLayout | None = None,
    store_name: str = "",
) -> list[dict[str, Any]]:
    """The objects of ``kinds`` in run ``run_id`` (or ``latest``) of ``app`` from ``source``'s store,
    each checked against its blob and its entry as a restore checks them (for a driver that starts
    the app from saved records rather than by applying them: a VM app's)."""
    layout = layout or StoreLayout(source.s3.prefix)
    run = resolve_run(store, layout, source.name, app.name, run_id, key=key, label=store_name)
    index = read_index(store, layout, source.name, app.name, run, key=key, label=store_name)
    wanted = frozenset(kinds)
    entries = [e for e in index.objects if e.kind in wanted]
    where = f"store of {store_name or source.name}"
    return [manifest for _, manifest in _read_run(store, entries, key, run=run, where=where)]


def saved_reader(
    world: World, app: ProtectedApp, source: str, site: str, run_id: str, key: crypto.MasterKey | None
) -> Callable[[tuple[str, ...]], list[dict[str, Any]]]:
    """Reads the objects of given kinds in run ``run_id`` of ``app`` (taken on ``source``) from
    ``site``'s own store, checked (:func:`saved_objects`): what a driver that starts its app from
    saved records is handed, by the plan, the drill and the start step alike."""
    ref = world.stores(first=site)[0]

    def saved(kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        return saved_objects(
            ref.store,
            world.config.site(source),
            app,
            key=key,
            run_id=run_id,
            kinds=kinds,
            layout=ref.layout,
            store_name="/".join(ref.sites),
        )

    return saved


def restore_namespaces(app: ProtectedApp) -> tuple[str, str]:
    """The namespaces a restore of ``app`` may go into: its own, and its drill namespace."""
    return app.kube_namespace("restore"), scratch_namespace(app)


def check_restore_namespace(app: ProtectedApp, namespace: str | None) -> None:
    """Refuse a restore into any namespace but the app's or its drill namespace (empty: the app's).

    Whoever may start the restore flow must not be able to place the app's Secrets and workload in
    a namespace of their choosing.
    """
    allowed = restore_namespaces(app)
    if namespace and namespace not in allowed:
        raise PreconditionFailed(
            f"namespace {namespace} is not one app {app.name} may be restored into: only {allowed[0]} (its own)"
            f" or {allowed[1]} (its drill namespace); nothing was restored",
            hint=f"leave the namespace empty to restore into {allowed[0]}, or give {allowed[1]}",
            context={"app": app.name, "namespace": namespace},
        )


def run_restore(
    world: World,
    request: RestoreRequest,
    *,
    key: crypto.MasterKey | None,
    progress: Progress | None = None,
) -> RestoreSummary:
    """The restore use case (flow and CLI): ``request`` in ``world``.

    The source is ``request.source_site``, or the app's current primary (its placement,
    :meth:`World.placement`, where the backups are taken). The backup is read from the target
    site's own store only: a restore in a disaster must not depend on the lost site's store.
    """
    config = world.config
    app = config.app(request.app)
    check_restore_namespace(app, request.namespace)
    source = config.site(request.source_site or world.placement(app.name).primary)
    target = config.site(request.target_site)
    ref = world.stores(first=target.name)[0]
    try:
        return restore_backup(
            ref.store,
            source,
            app,
            world.bundle(target.name).cluster,
            target,
            key=key,
            run_id=request.run_id,
            namespace=request.namespace,
            policy=request.policy,
            dry_run=request.dry_run,
            exclude_kinds=request.exclude_kinds,
            bound_timeout=request.bound_timeout,
            progress=progress,
            layout=ref.layout,
            store_name="/".join(ref.sites),
        )
    except NotFound as error:
        if error.context.get("app") != app.name and "run" not in error.context:
            raise
        raise NotFound(
            f"store of {'/'.join(ref.sites)} (the target's own): {error.message}",
            hint=f"run `standby backup run --app {app.name}`, or `standby backup verify --app {app.name}` to copy"
            " the newest complete run into every store",
            context={**error.context, "store": "/".join(ref.sites)},
        ) from None
