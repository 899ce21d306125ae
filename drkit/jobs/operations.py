"""Relocate, failover and failback: plan, approve, execute and resume, without Prefect.

1. :func:`prepare` reads the placement, observes both sites, finds the backup the target can read,
   tries the backup key on it (:func:`trial_key`: one sealed object decrypted) and makes the plan
   (:func:`drkit.domain.operation_plan.make_plan`). It looks through :meth:`World.probing`: sites and
   stores are asked in parallel, each call bounded by the site's ``probe_timeout``, so a site that
   is down shows as unreachable in the plan within seconds.
2. :func:`approve` checks the approval against the plan, takes the app (the placement record's
   hold, by compare-and-swap against the ETag read when planning: a second operation, or any write
   since the plan, is refused) and writes the journal.
3. :func:`execute` runs each step not yet done: observe; if not satisfied, act and poll until it
   is (bounded per step); the journal is written after every step, to the target's store and the
   other store when it answers. A failed journal write stops the run at that step boundary.
4. :func:`resume` reads a journal back, observes and plans again (:func:`prepare_resume`), and
   executes what is left when it is as approved; a changed plan is approved again through
   :meth:`OperationHooks.consent`, a guard that now fails refuses it (see :mod:`drkit.domain.resume`).

:func:`run_operation` is the whole runbook (plan, approval, execution), shared by the flows and
the CLI; each supplies an :class:`OperationHooks` for what differs (the approval, what is shown).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from drkit.domain import crypto
from drkit.domain.abort import judge_hold, next_commands, progress
from drkit.domain.blobs import open_blob
from drkit.domain.errors import (
    CommandFailed,
    Conflict,
    IntegrityError,
    NotFound,
    OperationFailed,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.layout import parse_run_id
from drkit.domain.markdown import md_inline
from drkit.domain.models import ProtectedApp
from drkit.domain.operation_plan import make_plan, plan_changes
from drkit.domain.operations import (
    Approval,
    Facts,
    HoldState,
    Journal,
    KeyTrial,
    Kind,
    Plan,
    Reapproval,
    StepRecord,
    check_approval,
    new_journal,
    new_op_id,
    parse_op_id,
    plan_markdown,
)
from drkit.domain.placement import Placement, begin, released
from drkit.domain.resume import (
    done_steps,
    rebased_steps,
    refused_hint,
    resume_changes,
    resume_refusals,
    way_back,
)
from drkit.domain.signed_state import journal_context, seal, unseal
from drkit.domain.step_limits import STEP_LIMITS
from drkit.jobs.backup_runs import missing_key_id, read_index, resolve_run
from drkit.jobs.requests import OperationRequest
from drkit.jobs.steps import STEPS, RoutingHook, Run
from drkit.jobs.world import (
    PlacementRead,
    World,
    observe_placed,
    read_placement,
    update_placement,
    write_placement,
)

StepCallback = Callable[[Journal, StepRecord], None]


@dataclass(frozen=True)
class Timeouts:
    """How long a step may take before it fails, in seconds, and how often it is polled.

    A real run takes the app's configured limits (:meth:`for_app`, ``limits`` in the configuration);
    the constants here are for callers that pass their own (tests pass fast ones).
    """

    default: float = 300.0
    poll: float = 1.0
    per_step: dict[str, float] = field(
        default_factory=lambda: {
            "wait-inflight-sync": 60.0,  # bounded: a failover does not wait for ever on a sync
            "promote-target": 180.0,
            "resync-old": 900.0,  # a resync is a full copy: budget it by image size
            "wait-in-sync": 900.0,
            "mirroring-healthy": 300.0,
        }
    )
    continue_after: frozenset[str] = frozenset({"wait-inflight-sync"})
    """Steps whose timeout is not a failure (the bounded wait is over, the run goes on)."""
    app: str = ""
    """The app whose configured limits these are (:meth:`for_app`), named in a timeout's message."""
    sources: dict[str, str] = field(default_factory=dict)
    """The configuration field of each step's limit (``"*"``: every other step's), for that message."""

    def of(self, step: str) -> float:
        """The timeout of ``step``."""
        return self.per_step.get(step, self.default)

    def describe(self, step: str) -> str:
        """The timeout of ``step`` for a message: ``120s``, and where it is configured when known."""
        where = self.sources.get(step) or self.sources.get("*")
        return f"{self.of(step):.0f}s" + (f" ({where} of app {self.app})" if where and self.app else "")

    @classmethod
    def for_app(cls, app: ProtectedApp, *, poll: float = 1.0) -> Timeouts:
        """The limits configured for ``app`` (its ``limits``, and ``checks.startup_timeout``)."""
        older = app.limits.startup is None and app.checks.startup_timeout is not None
        startup = "checks.startup_timeout" if older else "limits.startup"
        fields = {step: startup if name == "startup" else f"limits.{name}" for step, name in STEP_LIMITS.items()}
        return cls(
            default=app.limits.default.total_seconds(),
            poll=poll,
            per_step={step: app.step_limit(step).total_seconds() for step in STEP_LIMITS},
            app=app.name,
            sources={**fields, "*": "limits.default"},
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
    world: World, app: ProtectedApp, source: str, target: str, run_id: str | None, key: crypto.MasterKey | None
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
            index = read_index(ref.store, ref.layout, source, app.name, run_id, key=key, label="/".join(ref.sites))
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
        trial = KeyTrial(run=run_id, sealed=True, needed_key_id=entry.key_id, given_key_id=given, path=entry.path)
        if key is None or entry.key_id not in key.key_ids:
            return trial
        try:
            open_blob(entry, ref.store.get(entry.key), key)
        except StandbyError as error:
            return trial.model_copy(update={"opened": False, "error": error.message[:200]})
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
    backup_target = app.primary_site if kind == "failback" else (target or record.secondary)
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
        trial = KeyTrial(run=run_id, sealed=True, given_key_id=key.key_id if key else None, opened=False,
                         error=f"the backup could not be read: {failure.message[:200]}")  # fmt: skip
    facts = Facts(placement=record, view=view, backup_run=run_id, backup_error=error, backup_age_seconds=age,
                  store_reachable=reachable, key=trial, holder=hold_of(probing, record), take_over=take_over)  # fmt: skip
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
    record = placement.record.model_copy(update={
        "primary": stored.source, "secondary": stored.target, "operation": journal.op_id,
        "operation_kind": journal.kind})  # fmt: skip
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
        trial = KeyTrial(run=run_id, sealed=True, given_key_id=key.key_id if key else None, opened=False,
                         error=f"backup {run_id} could not be read: {failure.message[:200]}")  # fmt: skip
        run_id = None if not stored.final_backup else run_id
    facts = Facts(placement=record, view=view, backup_run=None if stored.final_backup else run_id,
                  backup_error=error, backup_age_seconds=age, store_reachable=reachable, key=trial,
                  resuming=journal.op_id)  # fmt: skip
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
        finished = read_index(ref.store, ref.layout, made_on, app, run_id, key=key, label="/".join(ref.sites)).finished
    except IntegrityError as error:
        if missing_key_id(error, key) is None:
            raise
        finished = parse_run_id(run_id).started
    return (world.clock.now() - finished).total_seconds()


# ------------------------------------------------------------------------------------------ journal


def write_journal(world: World, journal: Journal, *, required: str | None = "") -> None:
    """Write the journal to the store of ``required`` (the target's by default; None: none is) and
    every other store that answers; signed with the world's key (see :func:`read_journal`)."""
    must = journal.target if required == "" else required
    sealed = seal(journal.model_dump(mode="json"), world.state_key(), what="journal",
                  context=journal_context(journal.app, journal.op_id))  # fmt: skip
    body = json.dumps(sealed, indent=1).encode()
    for ref in world.stores(first=must):
        spare = must is None or must not in ref.sites
        try:
            store = world.spare(ref).store if spare else ref.store
            store.put(ref.layout.journal_key(journal.app, journal.op_id), body, content_type="application/json")
        except StandbyError:
            if not spare:
                raise


def _open_journal(world: World, data: bytes, app: str, op_id: str, store: str) -> Journal:
    """A stored journal once its MAC is checked against where it was found (app, operation id);
    :class:`IntegrityError` naming it and ``store`` when it fails (warned about once)."""
    name = f"journal of operation {op_id} of app {app} in the store of {store}"
    try:
        body = unseal(json.loads(data), world.key, what="journal", context=journal_context(app, op_id), name=name)
    except IntegrityError as error:
        world.warn(f"{error.message}; that copy is not used")
        raise
    return Journal.model_validate(body)


def read_journal(world: World, op_id: str, app: str | None = None) -> Journal:
    """The journal of ``op_id`` from the first store that holds it (the one that got furthest when
    several do).

    With a key (:attr:`World.key`) only copies whose MAC passes are used; :class:`IntegrityError`
    (one line naming the journal and the store) when copies were found and none passes: a forged
    journal is never resumed or aborted.
    """
    parse_op_id(op_id)
    world.state_key()  # says once when the state is unauthenticated
    apps = [app] if app else [a.name for a in world.config.apps]
    found: list[Journal] = []
    errors: list[str] = []
    refused: list[IntegrityError] = []
    refs = world.stores()
    for ref in [world.spare(r) for r in refs] if len(refs) > 1 else refs:  # any copy will do
        for name in apps:
            try:
                data = ref.store.get(ref.layout.journal_key(name, op_id))
                found.append(_open_journal(world, data, name, op_id, ref.name))
            except NotFound:
                continue
            except IntegrityError as error:
                refused.append(error)
            except StandbyError as error:
                errors.append(str(error))
    if not found and refused:
        raise IntegrityError(
            "; ".join(e.message for e in refused) + f"; operation {op_id} is not resumed or aborted from it",
            hint=f"nothing was changed; {refused[0].hint} (see \"integrity check failed\" in the operator's guide)",
            context={"op_id": op_id},
        )
    if not found:
        raise NotFound(
            f"no journal of operation {op_id} in any reachable store" + (f" ({'; '.join(errors)})" if errors else ""),
            hint="check the id (the last line of the command that started it) and the stores' reachability",
        )
    return max(found, key=progress)


def list_journals(world: World, app: str) -> list[Journal]:
    """Every journal of ``app`` in the reachable stores whose integrity check passes, oldest first
    (a copy that fails it is warned about and left out)."""
    world.state_key()  # says once when the state is unauthenticated
    out: dict[str, Journal] = {}
    refs = world.stores()
    for ref in [world.spare(r) for r in refs] if len(refs) > 1 else refs:  # any copy will do
        prefix = ref.layout.operations_prefix(app)
        try:
            keys = [o.key for o in ref.store.list(prefix)]
            for key in keys:
                op_id = key[len(prefix) :].removesuffix(".json")
                try:
                    journal = _open_journal(world, ref.store.get(key), app, op_id, ref.name)
                except IntegrityError:
                    continue
                known = out.get(journal.op_id)
                if known is None or progress(journal) > progress(known):  # the copy that got furthest
                    out[journal.op_id] = journal
        except StandbyError:
            continue
    return sorted(out.values(), key=lambda j: j.created_at)


def hold_of(world: World, record: Placement, timeouts: Timeouts | None = None) -> HoldState | None:
    """The state of the operation holding the app of ``record`` (None: no hold); see
    :func:`drkit.domain.abort.judge_hold`."""
    if not record.operation:
        return None
    try:
        journal: Journal | None = read_journal(world, record.operation, record.app)
    except StandbyError:
        journal = None
    limits = timeouts or Timeouts()
    return judge_hold(record.operation, record.operation_kind or "", journal, world.clock.now(),
                      lambda step: limits.of(step) if step else limits.default)  # fmt: skip


def _mark_taken_over(world: World, old_id: str, app: str, new_id: str) -> str:
    """Write "taken over by ``new_id``" into ``old_id``'s journal (every store that answers); what
    could not be done, for the new journal, or ''."""
    try:
        old = read_journal(world, old_id, app)
    except StandbyError as error:
        return f"the journal of {old_id} could not be read: {error.message}"
    note = f"taken over by {new_id}"
    status = "failed" if old.status in ("approved", "running") else old.status
    why = f"{old.error}; {note}" if old.error else note
    try:
        write_journal(world, old.model_copy(update={"taken_over_by": new_id, "status": status, "error": why}),
                      required=None)  # fmt: skip
    except StandbyError as failure:
        return f"the journal of {old_id} could not be written: {failure.message}"
    return ""


# ---------------------------------------------------------------------------------------- approval


def approve(
    world: World, prepared: Prepared, approval: Approval, typed_app: str, *, op_id: str | None = None
) -> Journal:
    """Check ``approval``, take the app and write the journal; the operation is ready to execute.

    :class:`PreconditionFailed` when the plan is refused or the approval is not enough (nothing
    changes); :class:`Conflict` when another operation holds the app.
    """
    plan = prepared.plan
    if not plan.runnable:
        reasons = "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals) or plan.nothing_to_do
        raise PreconditionFailed(f"{plan.kind} of {plan.app} refused: {reasons}", hint="see the plan")
    problems = check_approval(plan, approval, typed_app)
    if problems:
        raise PreconditionFailed(f"approval of {plan.kind} of {plan.app} refused: " + "; ".join(problems))
    now = world.clock.now()
    op_id = op_id or new_op_id(plan.kind, now, secrets.token_bytes(3))
    app = world.config.app(plan.app)
    took = plan.takes_over
    journal = new_journal(op_id, plan, now).model_copy(update={"status": "approved", "approval": approval,
                                                               "took_over": took})  # fmt: skip
    write_journal(world, journal)
    read = prepared.placement or read_placement(world, app)
    try:
        taken = begin(read.record, op_id, plan.kind, now, take_over=took)
        write_placement(world, app, read, taken, required=plan.target)
    except Conflict as error:
        refused = _not_taken(world, app, plan, op_id, error)
        with suppress(StandbyError):  # the journal says why it never ran; the refusal is what matters
            write_journal(world, journal.model_copy(update={"status": "refused", "error": refused.message}))
        raise refused from None
    if took:
        problem = _mark_taken_over(world, took, plan.app, op_id)
        if problem:
            journal = journal.model_copy(update={"error": f"took over {took}; {problem}"})
            write_journal(world, journal)
    return journal


def _not_taken(world: World, app: ProtectedApp, plan: Plan, op_id: str, error: Conflict) -> Conflict:
    """Why taking the app failed: another operation holds it now, or the record moved since the plan."""
    try:
        begin(read_placement(world, app).record, op_id, plan.kind, world.clock.now(), take_over=plan.takes_over)
    except Conflict as held:
        return held
    except StandbyError:
        pass
    to = f" --to {plan.target}" if plan.kind != "failback" else ""
    return Conflict(
        f"{plan.kind} of {plan.app}: the placement record changed after the plan was made ({error.message});"
        " nothing was changed",
        hint=f"plan again: standby {plan.kind} --app {plan.app}{to}",
        context={"app": plan.app},
    )


# ---------------------------------------------------------------------------------------- execution


def _finish(world: World, journal: Journal, status: str, error: str = "") -> Journal:
    done = journal.model_copy(update={"status": status, "error": error, "finished_at": world.clock.now()})
    write_journal(world, done)
    return done


def _run_step(run: Run, journal: Journal, record: StepRecord, timeouts: Timeouts, on_step: StepCallback) -> Journal:
    world, spec = run.world, next(s for s in run.plan.steps if s.name == record.name)
    step = STEPS[spec.name]
    seen = step.observe(run, spec)
    if step.satisfied(seen):
        now = world.clock.now()
        record = record.model_copy(update={"outcome": "skipped", "started_at": now, "ended_at": now, "observed": seen})
        run.seen[record.name] = seen
        journal = journal.with_step(record)
        write_journal(world, journal)
        on_step(journal, record)
        return journal
    record = record.model_copy(
        update={"outcome": "running", "started_at": world.clock.now(), "ended_at": None, "error": ""}
    )
    journal = journal.with_step(record).model_copy(update={"status": "running"})
    write_journal(world, journal)
    on_step(journal, record)
    deadline = world.clock.monotonic() + timeouts.of(spec.name)
    last_error = ""
    while True:
        run.tick()
        try:
            step.act(run, spec, seen)
            seen = step.observe(run, spec)
            if step.satisfied(seen):
                break
        except (TransientError, CommandFailed) as error:  # a call that may pass: poll again until the deadline
            last_error = str(error)
        if world.clock.monotonic() >= deadline:
            if spec.name in timeouts.continue_after:
                seen = {**seen, "timed_out": True}
                break
            why = f"not done after {timeouts.describe(spec.name)}" + (f"; last error: {last_error}" if last_error else "")
            raise _StepFailed(record.model_copy(update={"observed": seen}), why)
        world.clock.sleep(timeouts.poll)
    record = record.model_copy(update={"outcome": "done", "ended_at": world.clock.now(), "observed": seen})
    run.seen[record.name] = seen
    journal = journal.with_step(record)
    write_journal(world, journal)
    on_step(journal, record)
    return journal


class _StepFailed(Exception):
    def __init__(self, record: StepRecord, why: str) -> None:
        super().__init__(why)
        self.record = record
        self.why = why


@dataclass
class Executor:
    """Runs the steps of one approved journal, one at a time (a Prefect task per step, or a loop).

    ``journal`` is always the latest written state. A step failure, or any Standby error, marks
    the step and the journal failed and raises a :class:`StandbyError` naming the step, the site
    and how to resume. A failed journal write propagates: the run stops at that step boundary.
    """

    world: World
    journal: Journal
    key: crypto.MasterKey | None
    timeouts: Timeouts | None = None
    """``None``: the app's configured limits (:meth:`Timeouts.for_app`)."""
    routing_hook: RoutingHook | None = None
    on_step: StepCallback = field(default=lambda j, r: None)

    def __post_init__(self) -> None:
        self.world.use_key(self.key)  # the journal and placement it writes are signed with it
        if self.journal.approval is None:
            raise PreconditionFailed(f"operation {self.journal.op_id} was never approved", hint="start it anew")
        self.app = self.world.config.app(self.journal.app)
        self.limits = self.timeouts or Timeouts.for_app(self.app)
        self.run = Run(world=self.world, app=self.app, plan=self.journal.plan, op_id=self.journal.op_id,
                       key=self.key, backup_run=self.journal.plan.backup_run, routing_hook=self.routing_hook,
                       seen={s.name: s.observed for s in self.journal.steps if s.outcome in ("done", "skipped")})  # fmt: skip

    def pending(self) -> list[str]:
        """The names of the steps not done yet, in order."""
        return [r.name for r in self.journal.steps if r.outcome not in ("done", "skipped")]

    def step(self, name: str) -> StepRecord:
        """Run step ``name`` (observe, act if needed, verify); its record once finished."""
        record = self.journal.step(name)
        if record.outcome in ("done", "skipped"):
            return record
        if self.journal.status != "running":
            self.journal = self.journal.model_copy(update={"status": "running", "error": ""})
        try:
            self.journal = _run_step(self.run, self.journal, record, self.limits, self.on_step)
        except _StepFailed as failed:
            self.journal, error = _fail(self.world, self.journal, failed.record, failed.why)
            raise error from None
        except StandbyError as failure:
            self.journal, error = _fail(self.world, self.journal, self.journal.step(name), str(failure))
            raise error from None
        return self.journal.step(name)

    def complete(self) -> Journal:
        """Release the app and mark the operation completed (every step must be done)."""
        if self.journal.status == "completed":
            return self.journal
        left = self.pending()
        if left:
            raise PreconditionFailed(f"operation {self.journal.op_id} still has steps to run: {', '.join(left)}")
        now = self.world.clock.now()
        op_id = self.journal.op_id
        update_placement(self.world, self.app, lambda p: released(p, op_id, now), required=self.journal.target)
        self.journal = _finish(self.world, self.journal, "completed")
        return self.journal


def execute(
    world: World,
    journal: Journal,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    routing_hook: RoutingHook | None = None,
    on_step: StepCallback | None = None,
) -> Journal:
    """Run every step of ``journal`` not done yet; the final journal says completed (see :class:`Executor`)."""
    if journal.status == "completed":
        return journal
    ex = Executor(world, journal, key, timeouts, routing_hook, on_step or (lambda j, r: None))
    for name in ex.pending():
        ex.step(name)
    return ex.complete()


def _fail(world: World, journal: Journal, record: StepRecord, why: str) -> tuple[Journal, StandbyError]:
    """The journal with ``record`` failed (written when the store answers), and the error to raise."""
    record = record.model_copy(update={"outcome": "failed", "ended_at": world.clock.now(), "error": why})
    journal = journal.with_step(record)
    message = f"{journal.kind} {journal.op_id} of {journal.app}: step {record.name} on {record.site} failed: {why}"
    try:
        journal = _finish(world, journal, "failed", message)
    except StandbyError as error:
        message += f" (and the journal could not be written: {error.message})"
        journal = journal.model_copy(update={"status": "failed", "error": message})
    hint = next_commands(journal.plan, journal.op_id, record.name)
    return journal, OperationFailed(message, hint=hint, context={"op_id": journal.op_id})


def resume(
    world: World,
    op_id: str,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    routing_hook: RoutingHook | None = None,
    on_step: StepCallback | None = None,
    hooks: OperationHooks | None = None,
) -> Journal:
    """Observe again, plan again, and execute what is left of operation ``op_id`` when it is still
    the plan that was approved.

    1. Read the journal (refused when the operation completed, was taken over or aborted).
    2. Observe both sites and plan again (:func:`prepare_resume`; nothing changes). Refused when
       another operation holds the app, or when a guard judged at a resume fails
       (:func:`drkit.domain.resume.resume_refusals`): nothing changed, the hint names the way back.
    3. When the remaining steps (and what they force, fence and acknowledge) differ from the
       stored ones (:func:`drkit.domain.resume.resume_changes`), ask for the approval again with
       both plans shown (``hooks.consent(plan, changed)``; no ``hooks``: refused), observe and plan
       again after it, as :func:`run_operation` does; the journal then takes the new plan, keeping
       the steps done that it does the same way.
    4. Take the hold back when it was released, and execute the steps not done.
    """
    world.use_key(key)  # the journal and the placement are checked with it
    journal = read_journal(world, op_id)
    if journal.status == "completed":
        return journal
    if journal.taken_over_by or journal.abort is not None:
        why = f"was taken over by {journal.taken_over_by}" if journal.taken_over_by else "is being or was aborted"
        raise PreconditionFailed(
            f"operation {op_id} of {journal.app} {why}: it cannot resume",
            hint=f"see: standby operation list --app {journal.app}"
            + ("" if journal.taken_over_by else f"; finish the abort: standby operation abort {op_id}"),
        )
    if journal.kind == "drill":
        raise PreconditionFailed(
            f"drill {op_id} of {journal.app} is not resumed: its cleanup finishes it",
            hint=f"run: standby drill cleanup --app {journal.app}",
        )
    if journal.approval is None or journal.status == "refused":
        why = "was refused" if journal.status == "refused" else "was never approved"
        raise PreconditionFailed(f"operation {op_id} of {journal.app} {why}: it cannot resume",
                                 hint=f"start it anew: standby {journal.kind} --app {journal.app}")  # fmt: skip
    app = world.config.app(journal.app)
    stored = journal
    journal = _replanned(world, journal, key, hooks)
    record = read_placement(world, app).record
    if record.operation not in (None, op_id):
        raise _held_by_other(app.name, record.operation, op_id)
    if record.operation is None:
        now = world.clock.now()
        update_placement(world, app, lambda p: begin(p, op_id, journal.kind, now), required=journal.target)
    if journal is not stored:  # a new plan approved: written before anything runs
        write_journal(world, journal)
    return execute(world, journal, key=key, timeouts=timeouts, routing_hook=routing_hook, on_step=on_step)


def _held_by_other(app: str, holder: str, op_id: str) -> Conflict:
    return Conflict(
        f"app {app} is held by operation {holder}; {op_id} cannot resume",
        hint=f"resume {holder} instead, or roll it back: standby operation abort {holder}",
    )


def _replanned(
    world: World, journal: Journal, key: crypto.MasterKey | None, hooks: OperationHooks | None
) -> Journal:
    """The journal to resume: as stored when the plan made again leaves what remains unchanged;
    else a new journal with the new plan, once it is approved (see :func:`resume`). Raises when
    refused. Writes nothing."""
    done = done_steps(journal)
    approved, consent = journal.plan, None
    changes: tuple[str, ...] = ()
    for _ in range(REAPPROVALS + 1):
        prepared = prepare_resume(world, journal, key=key)
        holder = prepared.placement.record.operation if prepared.placement else None
        if holder not in (None, journal.op_id):
            raise _held_by_other(journal.app, holder, journal.op_id)
        plan = prepared.plan
        refused = resume_refusals(journal, plan)
        if refused:
            raise PreconditionFailed(
                f"resume of {journal.kind} {journal.op_id} of {journal.app} refused, the world having changed: "
                + "; ".join(f"{c.name}: {c.detail}" for c in refused),
                hint=refused_hint(journal),
                context={"op_id": journal.op_id},
            )
        now_changes = resume_changes(approved, plan, done)
        if not now_changes:
            if consent is None:
                if hooks is not None:
                    left = ", ".join(r.name for r in journal.steps if r.name not in done) or "none"
                    hooks.say(f"{journal.op_id}: observed again; what is left is as approved ({left}): resuming")
                return journal
            return _rebased(world, journal, plan, consent, changes)
        if hooks is None:
            raise PreconditionFailed(
                f"resume of {journal.kind} {journal.op_id} of {journal.app} refused: the plan made again differs"
                f" from the one approved ({'; '.join(now_changes)}); nothing was changed",
                hint=f"approve the new plan: standby operation resume {journal.op_id} (without --yes); or "
                + way_back(journal),
            )
        changed = Changed(approved=approved, now=plan, changes=tuple(now_changes), done=tuple(sorted(done)),
                          resuming=journal.op_id, way_back=way_back(journal),
                          headline=f"**The world changed since {journal.op_id} was approved; the plan was made again"
                          " and must be approved again before the operation resumes.**")  # fmt: skip
        consent = hooks.consent(plan, changed)
        problems = check_approval(plan, consent[0], consent[1])
        if problems:
            raise PreconditionFailed(f"approval of the new plan of {journal.op_id} refused: " + "; ".join(problems),
                                     hint=f"nothing was changed; resume again: standby operation resume {journal.op_id}")  # fmt: skip
        if read_journal(world, journal.op_id, journal.app) != journal:  # an approval may take long
            raise PreconditionFailed(
                f"operation {journal.op_id} of {journal.app} changed while its new plan was being approved (taken"
                " over, aborted or resumed by another run); nothing was changed",
                hint=f"see: standby operation list --app {journal.app}",
            )
        approved, changes = plan, tuple(now_changes)
    raise PreconditionFailed(
        f"resume of {journal.op_id} of {journal.app}: the plan changed after each of {REAPPROVALS} approvals;"
        " nothing was changed",
        hint=f"wait until the sites settle, then: standby operation resume {journal.op_id}",
    )


def _rebased(
    world: World, journal: Journal, plan: Plan, consent: tuple[Approval, str], changes: tuple[str, ...]
) -> Journal:
    """``journal`` with the plan approved at its resume (see :func:`drkit.domain.resume.rebased_steps`);
    :func:`resume` writes it once the app is held, before anything runs."""
    approval, _ = consent
    old = {r.name: r for r in journal.steps}
    steps = tuple(old[s.name] if keep else StepRecord(name=s.name, title=s.title, site=s.site)
                  for s, keep in rebased_steps(journal, plan))  # fmt: skip
    earlier = Reapproval(at=world.clock.now(), changes=changes, plan_before=journal.plan,
                         approval_before=journal.approval)  # fmt: skip
    return journal.model_copy(update={"plan": plan, "approval": approval, "steps": steps, "error": "",
                                      "reapprovals": (*journal.reapprovals, earlier)})  # fmt: skip


def summary_lines(journal: Journal) -> list[str]:
    """A short human account of an operation."""
    out = [f"{journal.kind} {journal.op_id} of {journal.app}: {journal.source} -> {journal.target}: {journal.status}"]
    if journal.took_over:
        out.append(f"  took over {journal.took_over}")
    if journal.taken_over_by:
        out.append(f"  taken over by {journal.taken_over_by}")
    for again in journal.reapprovals:
        out.append(f"  plan made again at a resume and approved again ({'; '.join(again.changes)})")
    for s in journal.steps:
        took = "" if s.seconds is None else f" {s.seconds:.1f}s"
        out.append(f"  {s.outcome:8} {s.name:20} {s.site:8}{took}" + (f"  {s.error}" if s.error else ""))
    if journal.error:
        out.append(f"error: {journal.error}")
    if journal.abort is not None:
        out.append(f"abort (approved by {journal.abort.approval.approver}): {journal.abort.status}")
        for s in journal.abort.steps:
            out.append(f"  {s.outcome:8} {s.name:20} {s.site:8}" + (f"  {s.error}" if s.error else ""))
        if journal.abort.error:
            out.append(f"abort error: {journal.abort.error}")
    return out


# ------------------------------------------------------------------------------------------ runbook


class OperationHooks:
    """What a caller of :func:`run_operation` adds to the shared runbook.

    The defaults run each call directly and show nothing; :meth:`consent` must be given. The flows
    wrap the calls in Prefect tasks and pause for the approval form; the CLI prints and prompts.
    """

    refusal_hint = "see the plan"
    """The hint of the error raised when the plan refuses the operation."""

    take_over: str | None = None
    """The operation whose hold a failover is asked to take over (``--take-over``): every plan of the run asks it."""

    def plan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """Observe and plan (and show the plan); ``key`` is tried on the backup to restore."""
        return prepare(world, app, kind, target, key=key, take_over=self.take_over)

    def replan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """Observe and plan again after an approval (shown only when it changed: see :meth:`consent`)."""
        return prepare(world, app, kind, target, key=key, take_over=self.take_over)

    def say(self, message: str) -> None:
        """Tell the operator how the run ended when nothing was executed."""

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """The approval of ``plan`` and the app name the approver typed; raise to stop.

        ``changed`` is set when an approval was given for an earlier plan and the world moved since:
        the approver must see both plans and what differs (:class:`Changed`) before approving again.
        """
        raise NotImplementedError

    @contextmanager
    def hold(self, app: str) -> Iterator[None]:
        """Held from taking the app until the operation ends (the flows: the app's concurrency slot)."""
        yield

    def take(self, world: World, prepared: Prepared, approval: Approval, typed_app: str) -> Journal:
        """Take the app and write the journal (see :func:`approve`)."""
        return approve(world, prepared, approval, typed_app)

    def routing(self, app: str) -> RoutingHook | None:
        """The ``routing`` step's hook for the app, when its routing is a webhook."""
        return None

    def step(self, executor: Executor, name: str) -> None:
        """Run one step."""
        executor.step(name)

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        """A step started or ended (its journal is written)."""

    def progress(self, journal: Journal) -> None:
        """A step is over (or the operation failed): ``journal`` is the latest written state."""

    def ended(self, journal: Journal, error: StandbyError | None) -> None:
        """The operation completed (``error`` is ``None``) or failed with ``error``."""


@dataclass(frozen=True)
class OperationResult:
    """How :func:`run_operation` ended: nothing to do, a dry run, or the final journal."""

    status: str
    plan: Plan
    journal: Journal | None = None

    def as_dict(self) -> dict[str, Any]:
        """The flows' return value."""
        if self.journal is None:
            if self.status == "nothing-to-do":
                return {"status": self.status, "reason": self.plan.nothing_to_do}
            return {"status": self.status, "steps": [s.name for s in self.plan.steps]}
        done = self.journal
        return {"status": done.status, "op_id": done.op_id, "steps": {s.name: s.outcome for s in done.steps}}


def run_operation(
    world: World,
    request: OperationRequest,
    kind: Kind,
    target: str | None,
    hooks: OperationHooks,
    *,
    key: Callable[[], crypto.MasterKey | None],
) -> OperationResult:
    """Relocate, failover or failback, end to end: the runbook the flows and the CLI share.

    1. Load the backup key (``key``): the plan tries it on the backup it will restore.
    2. Observe both sites and plan (:meth:`OperationHooks.plan`); stop when there is nothing to
       do, raise :class:`PreconditionFailed` when the plan refuses, stop after the plan on a dry run.
    3. Ask for the typed approval (:meth:`OperationHooks.consent`), then observe and plan again: the
       approval may have come long after the plan. A plan that changed is approved again, with both
       shown; a plan now refused stops here. Only a plan approved as it stands runs.
    4. Holding the app, take it (against the ETag of the placement read for that plan) and write the
       journal, run every step, release the app. A step's failure is raised after
       :meth:`OperationHooks.ended` heard of it.
    """
    app = request.app
    master_key = key()
    world.use_key(master_key)  # it signs and checks the placement and the journal too
    prepared = hooks.plan(world, app, kind, target, master_key)
    plan = prepared.plan
    if plan.nothing_to_do:
        hooks.say(f"nothing to do: {plan.nothing_to_do}")
        return OperationResult("nothing-to-do", plan)
    if plan.refusals:
        raise PreconditionFailed(
            f"{kind} of {app} refused: " + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals),
            hint=hooks.refusal_hint,
        )
    if request.dry_run:
        hooks.say("dry run: nothing was changed")
        return OperationResult("dry-run", plan)
    approval, typed = hooks.consent(plan)
    settled = _approved_as_it_stands(world, request, kind, target, hooks, master_key, plan, (approval, typed))
    if isinstance(settled, OperationResult):
        return settled
    prepared, (approval, typed) = settled
    plan = prepared.plan
    with hooks.hold(app):
        journal = hooks.take(world, prepared, approval, typed)
        executor = Executor(world, journal, master_key, routing_hook=hooks.routing(app), on_step=hooks.on_step)
        try:
            for name in executor.pending():
                hooks.step(executor, name)
                hooks.progress(executor.journal)
            done = executor.complete()
        except StandbyError as error:
            hooks.progress(executor.journal)
            hooks.ended(executor.journal, error)
            raise
        hooks.progress(done)
        hooks.ended(done, None)
    return OperationResult(done.status, plan, done)


REAPPROVALS = 3
"""How many times a plan that keeps changing after its approval is put to the approver again."""


@dataclass(frozen=True)
class Changed:
    """An approved plan that no longer matches the world: the plan approved, the new one, what differs."""

    approved: Plan
    now: Plan
    changes: tuple[str, ...]
    done: tuple[str, ...] = ()
    """At a resume: the steps done, kept from the plan approved before."""
    resuming: str = ""
    """At a resume: the operation resumed."""
    way_back: str = ""
    """At a resume: the commands that lead out instead of approving (abort, or a failover taking over)."""
    headline: str = "**The world changed after the approval; the plan was made again and must be approved again.**"

    def markdown(self) -> str:
        """Both plans and the differences, for the approval form and the CLI."""
        lines = [self.headline, ""]
        lines += [f"- {md_inline(c)}" for c in self.changes]  # they quote what was observed
        if self.done:
            lines += ["", "Steps already done (kept, not run again): " + ", ".join(md_inline(d) for d in self.done)]
        return "\n".join([*lines, "", "## The plan now", "", plan_markdown(self.now), "## The plan approved before", "",
                          plan_markdown(self.approved)])  # fmt: skip


def _approved_as_it_stands(
    world: World,
    request: OperationRequest,
    kind: Kind,
    target: str | None,
    hooks: OperationHooks,
    key: crypto.MasterKey | None,
    approved: Plan,
    consent: tuple[Approval, str],
) -> tuple[Prepared, tuple[Approval, str]] | OperationResult:
    """Observe again after an approval; the new plan with its approval once they match (see :func:`run_operation`)."""
    for _ in range(REAPPROVALS):
        again = hooks.replan(world, request.app, kind, target, key)
        plan = again.plan
        if plan.nothing_to_do:
            hooks.say(f"nothing to do after all: {plan.nothing_to_do}")
            return OperationResult("nothing-to-do", plan)
        if plan.refusals:
            raise PreconditionFailed(
                f"{kind} of {request.app} refused after its approval, the world having changed: "
                + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals),
                hint=f"nothing was changed; {hooks.refusal_hint}",
            )
        changes = plan_changes(approved, plan)
        if not changes:
            return again, consent
        consent = hooks.consent(plan, Changed(approved=approved, now=plan, changes=tuple(changes)))
        approved = plan
    raise PreconditionFailed(
        f"{kind} of {request.app}: the plan changed after each of {REAPPROVALS} approvals; nothing was changed",
        hint="wait until the sites settle (a site coming back, mirroring recovering), then start the operation again",
    )
