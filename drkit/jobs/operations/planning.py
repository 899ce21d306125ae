"""Observe and plan an operation (nothing changes): :func:`prepare`, and :func:`prepare_resume` for a
resume; the backup the target can read (:func:`find_backup`) and the trial of the backup key on it
(:func:`trial_key`).
"""

from __future__ import annotations

from dataclasses import dataclass

from drkit.domain import crypto
from drkit.domain.errors import (
    IntegrityError,
    NotFound,
    StandbyError,
)
from drkit.domain.layout import parse_run_id
from drkit.domain.models import ProtectedApp
from drkit.domain.operation_plan import make_plan
from drkit.domain.operations import (
    Facts,
    Journal,
    KeyTrial,
    Kind,
    Plan,
)
from drkit.jobs.backup_runs import missing_key_id, read_index, resolve_run
from drkit.jobs.drivers import Preflight, driver_for
from drkit.jobs.keys import run_keys
from drkit.jobs.operations.journal import hold_of
from drkit.jobs.restore import saved_reader
from drkit.jobs.world import (
    PlacementRead,
    World,
    observe_placed,
)


@dataclass(frozen=True)
class Prepared:
    """A plan, what it was made from, and the placement record as read (with each store's ETag)."""

    plan: Plan
    facts: Facts
    placement: PlacementRead | None = None
    """Taking the app writes against these ETags: a record changed since the plan is a conflict."""


def find_backup(
    world: World, app_name: str, source: str, target: str, key: crypto.MasterKey | None = None
) -> tuple[str | None, str]:
    """The newest complete backup of ``app`` taken on ``source``, in the target's own store only
    (the store the restore reads; a disaster may have taken the other); authenticated with ``key``."""
    run_id, error, _ = _find_backup(world, app_name, source, target, key)
    return run_id, error


def _find_backup(
    world: World, app_name: str, source: str, target: str, key: crypto.MasterKey | None = None
) -> tuple[str | None, str, bool]:
    """:func:`find_backup`, and whether the target's store answered (it may answer with no backup).

    With ``key``, ``latest`` and the run's index must be authenticated: a forged or rolled-back
    backup is an error here, so the plan's backup guard fails before anything changes."""
    ref = world.stores(first=target)[0]
    label = "/".join(ref.sites)
    try:
        try:
            run = resolve_run(ref.store, ref.layout, source, app_name, None, key=key, label=label)
            if key is not None:
                read_index(ref.store, ref.layout, source, app_name, run, key=key, label=label)
        except IntegrityError as error:
            if missing_key_id(error, key) is None:
                raise
            # sealed with a key this ring does not hold: the key guard (trial_key) names the key needed
            run = resolve_run(ref.store, ref.layout, source, app_name, None, label=label)
        return run, "", True
    except NotFound as error:
        return None, f"store of {'/'.join(ref.sites)} (the target's own): {error}", True
    except StandbyError as error:
        return None, f"store of {'/'.join(ref.sites)} (the target's own): {error}", False


def _seals(app: ProtectedApp, key: crypto.MasterKey | None) -> bool:
    """Whether a backup of ``app`` taken now seals objects (with a key every blob is sealed; without
    one, an app that backs up Secrets is refused, which the trial reports as needing a key)."""
    return key is not None or any(k.kind == "Secret" for k in app.backup.kinds)


def trial_key(
    world: World,
    app: ProtectedApp,
    source: str,
    target: str,
    run_id: str | None,
    key: crypto.MasterKey | None,
) -> KeyTrial:
    """Whether ``key`` opens backup ``run_id`` (taken on ``source``) as the target's store holds it.

    Reads the run's index and decrypts one sealed object (its address checked too): what a restore
    would do first. With no run yet (a planned move backs up the source itself), only whether a key
    is needed. Store errors propagate; the caller decides what they mean.
    """
    given = key.key_id if key is not None else None
    if run_id is None:
        return KeyTrial(run=None, sealed=_seals(app, key), given_key_id=given)
    for ref in world.stores(first=target)[:1]:  # the target's own store: the one the restore reads
        try:
            index = read_index(
                ref.store, ref.layout, source, app.name, run_id, key=key, label="/".join(ref.sites)
            )
        except IntegrityError as error:
            needed = missing_key_id(error, key)
            if needed is None:
                raise
            return KeyTrial(run=run_id, sealed=True, needed_key_id=needed, given_key_id=given)
        sealed = [e for e in index.objects if e.encrypted]
        if not sealed:
            return KeyTrial(run=run_id, sealed=False, given_key_id=given)
        entry = min(sealed, key=lambda e: e.size)  # the cheapest trial
        if key is not None and entry.key_id in key.key_ids:
            given = entry.key_id  # a key ring: its older key that sealed the run
        trial = KeyTrial(
            run=run_id, sealed=True, needed_key_id=entry.key_id, given_key_id=given, path=entry.path
        )
        if key is None or entry.key_id not in key.key_ids:
            return trial
        keys = run_keys(ref.store, index, key)  # one trial decrypt per key id, as verify and doctor do
        if keys.missing:  # objects reused from a run sealed with a key the ring lacks
            return trial.model_copy(update={"needed_key_id": keys.missing[0]})
        if keys.error:
            path, _, why = keys.error.partition(": ")
            return trial.model_copy(update={"opened": False, "path": path, "error": why[:200]})
        return trial.model_copy(update={"opened": True})
    raise NotFound(f"backup {run_id} of app {app.name}: no store for {target}")


def _backup_age(
    world: World, app: str, source: str, target: str, run_id: str, key: crypto.MasterKey | None = None
) -> float | None:
    ref = world.stores(first=target)[0]
    try:
        index = read_index(ref.store, ref.layout, source, app, run_id, key=key)
    except StandbyError:
        return None
    return (world.clock.now() - index.finished).total_seconds()


def _app_refusals(
    world: World,
    app: ProtectedApp,
    source: str,
    target: str,
    run_id: str | None,
    key: crypto.MasterKey | None,
    trial: KeyTrial | None,
) -> tuple[str, ...] | None:
    """What ``target`` would refuse of the app as backup ``run_id`` saved it, asked of the app's
    driver there (:class:`~drkit.jobs.drivers.base.Preflight`); None when its driver has no such
    check, or when there is no backup the key opens to read it from."""
    if run_id is None or (trial is not None and trial.sealed and not trial.opened):
        return None
    bundle = world.bundle(target)
    driver = driver_for(app, bundle.site, bundle.cluster, world)
    if not isinstance(driver, Preflight):
        return None
    try:
        refusals: tuple[str, ...] = driver.refusals(saved_reader(world, app, source, target, run_id, key))
        return refusals
    except StandbyError as failure:
        return (f"could not be checked on {target}: {failure.message[:200]}",)


def prepare(
    world: World,
    app_name: str,
    kind: Kind,
    target: str | None,
    *,
    key: crypto.MasterKey | None = None,
    take_over: str | None = None,
) -> Prepared:
    """Observe and plan (nothing changes). See the module docstring.

    ``key`` is the backup key the operation will restore with: the plan's guard tries it.
    ``take_over``: the operation whose hold a failover is asked to take over (``--take-over``).
    """
    app = world.config.app(app_name)
    if target is not None:
        world.config.site(target)
    world.use_key(key)  # the placement and the holder's journal are checked with it
    probing = world.probing()  # bounded, parallel probes: what does not answer is shown unreachable
    placement, view = observe_placed(probing, app)
    record = placement.record
    backup_target = app.home_site if kind == "failback" else (target or record.secondary)
    run_id, error, reachable = _find_backup(probing, app.name, record.primary, backup_target, key)
    trial: KeyTrial | None = None
    age: float | None = None
    try:
        if run_id is not None or reachable:
            trial = trial_key(probing, app, record.primary, backup_target, run_id, key)
        if run_id is not None:
            age = _backup_age(probing, app.name, record.primary, backup_target, run_id, key)
    except StandbyError as failure:
        error = f"{error}; {failure.message}" if error else failure.message
        trial = KeyTrial(
            run=run_id,
            sealed=True,
            given_key_id=key.key_id if key else None,
            opened=False,
            error=f"the backup could not be read: {failure.message[:200]}",
        )
    refusals = _app_refusals(probing, app, record.primary, backup_target, run_id, key, trial)
    facts = Facts(
        placement=record,
        view=view,
        backup_run=run_id,
        backup_error=error,
        backup_age_seconds=age,
        store_reachable=reachable,
        key=trial,
        holder=hold_of(probing, record),
        take_over=take_over,
        app_refusals=refusals,
    )
    return Prepared(plan=make_plan(app, facts, kind, target), facts=facts, placement=placement)


def prepare_resume(world: World, journal: Journal, *, key: crypto.MasterKey | None = None) -> Prepared:
    """Observe again and plan the operation of ``journal`` anew (nothing changes), for a resume.

    As :func:`prepare` (through :meth:`World.probing`), for the journal's kind, source and target:
    the record is read as this operation holding the app from its source (its own hold passes the
    hold guard; the placement step may already have moved the record), the backup is the one the
    operation restores (a failover's stored run, a planned move's final backup once taken: checked
    still readable in the target's store and tried with ``key``). Compare the result with the
    stored plan with :func:`drkit.domain.resume.resume_changes`.
    """
    stored = journal.plan
    app = world.config.app(journal.app)
    probing = world.probing()  # observation only: the resume acts through the world itself
    placement, view = observe_placed(probing, app)
    record = placement.record.model_copy(
        update={
            "primary": stored.source,
            "secondary": stored.target,
            "operation": journal.op_id,
            "operation_kind": journal.kind,
        }
    )
    taken = _final_backup_run(journal)
    run_id = taken or stored.backup_run
    made_on = stored.backup_site or stored.source
    reachable, error, age = True, "", None
    trial: KeyTrial | None = None
    try:
        if run_id is not None:
            age = _index_age(probing, app.name, made_on, stored.target, run_id, key)
        trial = trial_key(probing, app, made_on, stored.target, run_id, key)
    except StandbyError as failure:  # NotFound: the store answered without the run
        reachable = isinstance(failure, NotFound)
        error = f"store of {stored.target} (the target's own): {failure.message}"
        trial = KeyTrial(
            run=run_id,
            sealed=True,
            given_key_id=key.key_id if key else None,
            opened=False,
            error=f"backup {run_id} could not be read: {failure.message[:200]}",
        )
        run_id = None if not stored.final_backup else run_id
    facts = Facts(
        placement=record,
        view=view,
        backup_run=None if stored.final_backup else run_id,
        backup_error=error,
        backup_age_seconds=age,
        store_reachable=reachable,
        key=trial,
        resuming=journal.op_id,
    )
    plan = make_plan(app, facts, journal.kind, stored.target)
    # a hold it took over is taken already (both journals record it): not asked again; where the
    # restored backup was made is kept from the approval
    plan = plan.model_copy(update={"takes_over": None, "backup_site": stored.backup_site})
    return Prepared(plan=plan, facts=facts, placement=placement)


def _final_backup_run(journal: Journal) -> str | None:
    """The final backup a planned move took (its ``final-backup`` step done), or None."""
    for record in journal.steps:
        if record.name == "final-backup" and record.outcome == "done" and record.observed.get("run"):
            return str(record.observed["run"])
    return None


def _index_age(
    world: World, app: str, made_on: str, target: str, run_id: str, key: crypto.MasterKey | None = None
) -> float:
    """The age of backup ``run_id`` in the target's own store (:class:`NotFound` when it is not there),
    its index authenticated with ``key``; sealed for a key not loaded, from its run id (the key guard
    names the key needed)."""
    ref = world.stores(first=target)[0]
    try:
        finished = read_index(
            ref.store, ref.layout, made_on, app, run_id, key=key, label="/".join(ref.sites)
        ).finished
    except IntegrityError as error:
        if missing_key_id(error, key) is None:
            raise
        finished = parse_run_id(run_id).started
    return (world.clock.now() - finished).total_seconds()
