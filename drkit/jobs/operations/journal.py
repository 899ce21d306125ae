"""The journal of an operation in the object stores: written after every step to the target's store
and every other that answers, signed with the world's key; read back from any copy whose MAC passes.
"""

from __future__ import annotations

import json

from drkit.domain.abort import judge_hold, progress
from drkit.domain.errors import (
    IntegrityError,
    NotFound,
    StandbyError,
)
from drkit.domain.operations import (
    HoldState,
    Journal,
    parse_op_id,
)
from drkit.domain.placement import Placement
from drkit.domain.signed_state import journal_context, seal, unseal
from drkit.jobs.operations.timeouts import Timeouts
from drkit.jobs.world import (
    World,
)


def write_journal(world: World, journal: Journal, *, required: str | None = "") -> None:
    """Write the journal to the store of ``required`` (the target's by default; None: none is) and
    every other store that answers; signed with the world's key (see :func:`read_journal`)."""
    must = journal.target if required == "" else required
    sealed = seal(
        journal.model_dump(mode="json"),
        world.state_key(),
        what="journal",
        context=journal_context(journal.app, journal.op_id),
    )
    body = json.dumps(sealed, indent=1).encode()
    for ref in world.stores(first=must):
        spare = must is None or must not in ref.sites
        try:
            store = world.spare(ref).store if spare else ref.store
            store.put(
                ref.layout.journal_key(journal.app, journal.op_id), body, content_type="application/json"
            )
        except StandbyError:
            if not spare:
                raise


def _open_journal(world: World, data: bytes, app: str, op_id: str, store: str) -> Journal:
    """A stored journal once its MAC is checked against where it was found (app, operation id);
    :class:`IntegrityError` naming it and ``store`` when it fails (warned about once)."""
    name = f"journal of operation {op_id} of app {app} in the store of {store}"
    try:
        body = unseal(
            json.loads(data), world.key, what="journal", context=journal_context(app, op_id), name=name
        )
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
            hint=f'nothing was changed; {refused[0].hint} (see "integrity check failed" in the operator\'s guide)',
            context={"op_id": op_id},
        )
    if not found:
        raise NotFound(
            f"no journal of operation {op_id} in any reachable store"
            + (f" ({'; '.join(errors)})" if errors else ""),
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
    return judge_hold(
        record.operation,
        record.operation_kind or "",
        journal,
        world.clock.now(),
        lambda step: limits.of(step) if step else limits.default,
    )


def mark_taken_over(world: World, old_id: str, app: str, new_id: str) -> str:
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
        write_journal(
            world,
            old.model_copy(update={"taken_over_by": new_id, "status": status, "error": why}),
            required=None,
        )
    except StandbyError as failure:
        return f"the journal of {old_id} could not be written: {failure.message}"
    return ""


def summary_lines(journal: Journal) -> list[str]:
    """A short human account of an operation."""
    out = [
        f"{journal.kind} {journal.op_id} of {journal.app}: {journal.source} -> {journal.target}: {journal.status}"
    ]
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
