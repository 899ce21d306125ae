"""Verify a backup run without Prefect: every blob, every checksum, every manifest, optionally a dry run.

For each object of the run's index (:func:`verify_backup`):

1. GET its blob (a missing blob is named);
2. check size and sha256 of the stored bytes, decrypt it (encrypted blobs) and check its address
   (:func:`~drkit.domain.blobs.open_blob`);
3. validate the manifest offline: ``kubernetes-validate`` for built-in kinds (the schemas of the
   Kubernetes version given), structural checks for custom resources (apiVersion, kind, name, and
   that they match the index entry);
4. optionally create it with ``dryRun=All`` on a target cluster, after the restore-time sanitising.

Every bad object is named with its path and the reason; nothing stops at the first one.

:func:`run_verify` (flow and CLI) first catches up the stores of the app's sites
(:func:`~drkit.jobs.backup_sync.catch_up`: a complete run a store missed is copied from one that
holds it), then verifies the run in every store, so a backup is proven readable from each site.
Then every retained run of every store is checked against the key ring
(:func:`~drkit.jobs.keys.retained_run_keys`: the key ids it needs and one trial decrypt per id), and
a run whose key id the ring lacks is named: after a rotation, it shows which older keys are still needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from drkit.adapters.kube import ClusterApi
from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.backup_index import UNAUTHENTICATED, IndexEntry
from drkit.domain.blobs import open_blob
from drkit.domain.errors import Conflict, IntegrityError, NotFound, StandbyError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import Site
from drkit.domain.opennebula_backup import is_vm_record, record_problem
from drkit.domain.restore_spec import RestoreSpec
from drkit.domain.transforms import TransformContext, sanitize, storage_class_map
from drkit.jobs.backup import app_stores, store_label
from drkit.jobs.backup_runs import read_index, resolve_run
from drkit.jobs.backup_sync import CatchUp, catch_up
from drkit.jobs.keys import RunKeys, retained_run_keys
from drkit.jobs.progress import Progress
from drkit.jobs.requests import VerifyRequest
from drkit.jobs.world import StoreRef, World

INTEGRITY = "integrity check failed"
"""The words every integrity failure's message holds (counted by :attr:`VerifyResult.integrity_failures`)."""

K8S_VERSION = "1.31.0"
"""Kubernetes version whose schemas validate built-in kinds (the lab's apiserver reports v1.31)."""


@dataclass(frozen=True)
class BadObject:
    """One object that failed verification."""

    path: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.key}): {self.reason}"


@dataclass(frozen=True)
class VerifyReport:
    """The result of verifying one run."""

    app: str
    site: str
    run_id: str
    checked: int
    encrypted: int
    dry_run_site: str | None
    bad: tuple[BadObject, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    store: str = ""
    """The store verified (its sites, ``site-a/site-b`` when shared); empty: not named."""

    @property
    def ok(self) -> bool:
        """Whether every object passed."""
        return not self.bad

    def problems(self) -> list[str]:
        """Every bad object, one string each."""
        where = f"store of {self.store}: " if self.store else ""
        return [f"{where}{b}" for b in self.bad]

    def lines(self) -> list[str]:
        """Human report, naming every bad object."""
        verdict = "OK" if self.ok else f"FAILED: {len(self.bad)} bad object(s)"
        where = f" (store of {self.store})" if self.store else ""
        out = [
            f"verify {self.run_id} of app {self.app} (site {self.site}): {verdict}{where}",
            f"objects checked: {self.checked} ({self.encrypted} encrypted)",
        ]
        if self.dry_run_site:
            out.append(f"server-side dry-run restore on site {self.dry_run_site}: done")
        out += [f"bad: {b}" for b in self.bad]
        out += [f"note: {n}" for n in self.notes]
        return out


@lru_cache(maxsize=1)
def _validator() -> Any:
    import kubernetes_validate
    from kubernetes_validate import utils

    # kubernetes_validate parses its schema files (``_definitions.json`` is megabytes) on every call:
    # read each once per process (they are package data, never written; validation only reads them).
    utils.schema_contents = lru_cache(maxsize=None)(utils.schema_contents)
    return kubernetes_validate


def validate_manifest(
    obj: Mapping[str, Any], entry: IndexEntry, *, k8s_version: str = K8S_VERSION
) -> str | None:
    """Why ``obj`` is not a valid manifest for ``entry``, or ``None`` when it is."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        return "metadata.name is missing"
    found = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace") or None, meta.get("name"))
    wanted = (entry.api_version, entry.kind, entry.namespace, entry.name)
    if found != wanted:
        return f"manifest is {found[1]} {found[2] or ''}/{found[3]} ({found[0]}), the index says otherwise"
    if is_vm_record(obj):  # a VM app's record: its fields, not a Kubernetes schema
        return record_problem(obj)
    kv = _validator()
    try:
        kv.validate(dict(obj), k8s_version, strict=True)
    except kv.utils.SchemaNotFoundError:
        return None if isinstance(obj.get("spec", {}), dict) else "spec is not a mapping"
    except kv.utils.ValidationError as error:
        where = ".".join(str(p) for p in getattr(error, "path", ())) or "(top)"
        return f"schema validation failed at {where}: {getattr(error, 'message', error)}"
    except kv.utils.InvalidSchemaError as error:  # pragma: no cover - a broken schema bundle
        return f"cannot validate: {error}"
    return None


def verify_backup(
    store: ObjectStore,
    site: Site,
    app: str,
    *,
    run_id: str | None,
    key: crypto.MasterKey | None,
    target: ClusterApi | None = None,
    target_site: Site | None = None,
    k8s_version: str = K8S_VERSION,
    progress: Progress | None = None,
    restore: RestoreSpec | None = None,
    layout: StoreLayout | None = None,
    store_name: str = "",
) -> VerifyReport:
    """Verify run ``run_id`` (or ``latest``) of ``app`` stored by ``site`` (see the module docstring).

    ``restore`` is the app's restore configuration (storage-class fields and transforms) used for
    the dry-run creates; the defaults when not given. ``layout`` is the store's (the site's own by
    default); ``store_name`` names the store in the report.
    """
    layout = layout or StoreLayout(site.s3.prefix)
    run = resolve_run(store, layout, site.name, app, run_id, key=key, label=store_name)
    index = read_index(store, layout, site.name, app, run, key=key, label=store_name)
    spec = restore or RestoreSpec()
    context = TransformContext(
        source_site=site.name,
        target_site=(target_site or site).name,
        storage_classes=storage_class_map(site.storage_class, (target_site or site).storage_class),
        storage_class_fields=spec.storage_class_fields,
        transforms=spec.transforms,
    )
    bad: list[BadObject] = []
    notes: list[str] = [] if key is not None else [UNAUTHENTICATED]
    if index.same_as is not None:
        notes.append(f"run {run} is unchanged since run {index.same_as}: its objects are that run's")
    total = len(index.objects)
    for done, entry in enumerate(index.objects, start=1):
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total, f"verified {done} of {total} object(s)")
        try:
            manifest = open_blob(entry, store.get(entry.key), key)
        except NotFound:
            bad.append(BadObject(entry.path, entry.key, "blob is missing from the object store"))
            continue
        except IntegrityError as error:
            bad.append(BadObject(entry.path, entry.key, error.message))
            continue
        reason = validate_manifest(manifest, entry, k8s_version=k8s_version)
        if reason is not None:
            bad.append(BadObject(entry.path, entry.key, reason))
            continue
        if target is None:
            continue
        try:
            target.create(sanitize(manifest, context), dry_run=True)
        except Conflict:
            notes.append(f"{entry.path} already exists on {target.site}")
        except TransientError:
            raise
        except NotFound as error:
            if entry.namespace and "namespace" in error.message.lower():
                notes.append(f"{entry.path}: namespace {entry.namespace} does not exist yet on {target.site}")
            else:
                bad.append(BadObject(entry.path, entry.key, f"dry-run create refused: {error.message}"))
        except StandbyError as error:
            bad.append(BadObject(entry.path, entry.key, f"dry-run create refused: {error.message}"))
    return VerifyReport(
        app=app,
        site=site.name,
        run_id=run,
        checked=total,
        encrypted=sum(1 for e in index.objects if e.encrypted),
        dry_run_site=target.site if target is not None else None,
        bad=tuple(bad),
        notes=tuple(notes),
        store=store_name,
    )


@dataclass(frozen=True)
class VerifyResult:
    """A run verified in every store of the app's sites, after catching the stores up."""

    app: str
    reports: tuple[VerifyReport, ...]
    unverified: tuple[str, ...] = field(default=())
    """Stores that could not be verified (unreachable, or missing the run), with the reason."""
    sync: CatchUp | None = None
    unauthenticated: bool = False
    """No key was loaded: nothing read could be authenticated."""

    @property
    def integrity_failures(self) -> int:
        """How many objects, indexes and ``latest`` pointers failed their integrity check (MAC,
        authentication, or unsealed with a key), across stores and the catch-up."""
        return sum(1 for p in self.problems() if INTEGRITY in p)

    keys: tuple[RunKeys, ...] = field(default=())
    """Every retained run of every store against the key ring (empty: not checked)."""

    @property
    def ok(self) -> bool:
        """Whether every store was verified, every object passed in each, and the ring opens every retained run."""
        caught_up = self.sync is None or self.sync.ok
        opened = all(k.ok for k in self.keys)
        return (
            bool(self.reports)
            and all(r.ok for r in self.reports)
            and not self.unverified
            and caught_up
            and opened
        )

    @property
    def run_id(self) -> str:
        """The run verified (in the first store verified)."""
        return self.reports[0].run_id if self.reports else ""

    @property
    def checked(self) -> int:
        """Objects checked in the first store verified."""
        return self.reports[0].checked if self.reports else 0

    @property
    def encrypted(self) -> int:
        """Encrypted objects in the first store verified."""
        return self.reports[0].encrypted if self.reports else 0

    def problems(self) -> list[str]:
        """Every bad object (named with its store) and every store not verified."""
        missed = [f"not caught up: {p}" for p in self.sync.problems] if self.sync is not None else []
        keys = [k.problem() for k in self.keys if not k.ok]
        return [p for r in self.reports for p in r.problems()] + list(self.unverified) + missed + keys

    def lines(self) -> list[str]:
        """What was caught up, then each store's report, then the stores not verified."""
        out = self.sync.lines() if self.sync is not None else []
        for report in self.reports:
            out += report.lines()
        out += [f"not verified: {u}" for u in self.unverified]
        if self.keys:
            bad = [k for k in self.keys if not k.ok]
            out.append(f"key ring: {len(self.keys)} retained run(s) checked, {len(bad)} not opened")
            out += [f"bad: {k.problem()}" for k in bad]
        if self.integrity_failures:
            out.append(f"integrity check failures: {self.integrity_failures} (refused, never restored)")
        if self.unauthenticated and not self.reports:
            out.append(f"note: {UNAUTHENTICATED}")
        return out


Checked = TypeVar("Checked", VerifyReport, VerifyResult)


def require_ok(report: Checked) -> Checked:
    """``report``, or :class:`IntegrityError` naming every bad object and every store not verified."""
    if report.ok:
        return report
    problems = report.problems()
    named = "; ".join(problems[:10])
    more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
    raise IntegrityError(
        f"backup {report.run_id or '(none)'} of app {report.app} failed verification: {named}{more}",
        hint="restore from another run, and run a new backup now (a store that was down is caught up by"
        " the next backup or verify)",
        context={"run": report.run_id, "problems": problems[:50]},
    )


def verify_stores(
    refs: Sequence[StoreRef],
    site: Site,
    app: str,
    *,
    run_id: str | None,
    key: crypto.MasterKey | None,
    target: ClusterApi | None = None,
    target_site: Site | None = None,
    progress: Progress | None = None,
    restore: RestoreSpec | None = None,
    sync: bool = True,
    every_run: bool = True,
) -> VerifyResult:
    """Catch the stores up (``sync``), then verify the run in each store that answers, then
    (``every_run``) check every retained run of each store against the key ring.

    The dry-run creates on ``target`` are made once, from the first store verified. When no store
    can be verified at all, the first store's error is raised (a :class:`TransientError` is retried).
    """
    caught = catch_up(refs, site.name, app, key=key, runs=[run_id] if run_id else None) if sync else None
    reports: list[VerifyReport] = []
    unverified: list[str] = []
    first_error: StandbyError | None = None
    for ref in refs:
        try:
            reports.append(
                verify_backup(
                    ref.store,
                    site,
                    app,
                    run_id=run_id,
                    key=key,
                    target=None if reports else target,
                    target_site=target_site,
                    progress=progress,
                    restore=restore,
                    layout=ref.layout,
                    store_name=store_label(ref) if len(refs) > 1 else "",
                )
            )
        except StandbyError as error:
            first_error = first_error or error
            unverified.append(f"store of {store_label(ref)}: {error}")
    if not reports and first_error is not None and not isinstance(first_error, IntegrityError):
        raise first_error
    keys: list[RunKeys] = []
    if every_run:
        keys, unread = retained_run_keys(refs, site.name, app, key)
        unverified += unread
    return VerifyResult(
        app=app,
        reports=tuple(reports),
        unverified=tuple(unverified),
        sync=caught,
        keys=tuple(keys),
        unauthenticated=key is None,
    )


def run_verify(
    world: World,
    request: VerifyRequest,
    *,
    key: crypto.MasterKey | None,
    progress: Progress | None = None,
) -> VerifyResult:
    """The verify use case (flow and CLI): ``request`` in ``world``.

    The backups read are those taken on ``request.site``, or on the app's current primary (its
    placement, :meth:`World.placement`, as the backup took them); they are caught up and verified
    in every store of the app's sites (:func:`verify_stores`).
    """
    config = world.config
    app = config.app(request.app)
    where = config.site(request.site or world.placement(app.name).primary)
    vm = app.opennebula is not None  # a VM app's records have nothing to dry-run in Kubernetes
    target = config.site(request.dry_run_site) if request.dry_run_site and not vm else None
    return verify_stores(
        app_stores(world, app, where.name),
        where,
        app.name,
        run_id=request.run_id,
        key=key,
        target=world.bundle(target.name).cluster if target else None,
        target_site=target,
        progress=progress,
        restore=app.restore,
    )
