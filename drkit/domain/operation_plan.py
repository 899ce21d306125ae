"""How an operation's plan is made, pure: the guards (lag, mirroring, key, hold, backup, placement)
with readable reasons, the steps of a relocate, failover and failback, :func:`make_plan` from the
app, the observed :class:`~drkit.domain.operations.Facts`, the kind and the target, and
:func:`plan_changes` between an approved plan and a new one. The plan, its steps and the journal
are in :mod:`drkit.domain.operations`.
"""

from __future__ import annotations

from typing import Any

from drkit.domain.errors import PreconditionFailed
from drkit.domain.models import ProtectedApp
from drkit.domain.operations import Check, Facts, KeyTrial, Kind, Plan, StepSpec, backup_age
from drkit.domain.placement import AppView, disagreements

LAG_INTERVALS = 3
"""A planned move needs the secondary within this many snapshot intervals of the primary."""


def _check(name: str, ok: bool, detail: str) -> Check:
    return Check(name=name, ok=ok, detail=detail)


def _lag_check(app: ProtectedApp, view: AppView) -> Check:
    limit = LAG_INTERVALS * app.snapshot_interval.total_seconds()
    lag = view.lag_seconds
    if lag is None:
        return _check("lag", False, f"the secondary's lag is unknown (limit {limit:.0f}s)")
    return _check(
        "lag", lag <= limit, f"{lag:.0f}s (limit {limit:.0f}s = {LAG_INTERVALS} x snapshot interval)"
    )


def _replaying(view: AppView, site: str) -> Check:
    sv = view.sites[site]
    bad = [
        f"{i}: {sv.states.get(i, 'no status')}"
        for i in view.images
        if not sv.states.get(i, "").startswith("up+replaying")
    ]
    return _check(
        "mirroring healthy",
        sv.reachable and not bad,
        f"{site} replaying every image" if not bad else f"{site}: " + ", ".join(bad),
    )


def key_check(trial: KeyTrial | None) -> Check:
    """The guard "backup key opens the backup": refused when the operation would fail at its restore."""
    name = "backup key opens the backup"
    if trial is None:
        return _check(name, False, "not tried (no backup could be read)")
    what = f"run {trial.run}" if trial.run else "the backup this operation takes"
    if not trial.sealed:
        return _check(name, True, f"nothing in {what} is sealed: no key needed")
    if trial.given_key_id is None:
        needed = f" with key id {trial.needed_key_id}" if trial.needed_key_id else ""
        return _check(
            name,
            False,
            f"{what} holds sealed objects{needed} but no backup key was given: load the key"
            f"{' whose id is ' + trial.needed_key_id if trial.needed_key_id else ''} ($STANDBY_BACKUP_KEY for the CLI,"
            " the flow's key block for a deployment)",
        )
    if trial.needed_key_id is not None and trial.given_key_id != trial.needed_key_id:
        return _check(
            name,
            False,
            f"{what} is sealed with key id {trial.needed_key_id}; the key given has id"
            f" {trial.given_key_id}: load the key whose id is {trial.needed_key_id}",
        )
    if trial.opened is False:
        return _check(
            name,
            False,
            f"key id {trial.given_key_id} matches, but {trial.path} of {what} did not decrypt: {trial.error}",
        )
    if trial.opened:
        return _check(name, True, f"key {trial.given_key_id} decrypted {trial.path} of {what}")
    return _check(name, True, f"key {trial.given_key_id} will seal {what}")


def _hold_check(facts: Facts, op_kind: str, target: str) -> Check:
    """No other operation holds the app; a failover may take over the hold of a failed, stale or
    abandoned one when the operator names it (``--take-over``); a live one is always refused."""
    held, app = facts.placement.operation, facts.placement.app
    if not held:
        return _check("no other operation", True, "none running")
    if held == facts.resuming:
        return _check("no other operation", True, f"held by {held} itself, which is resumed")
    if facts.holder is None:  # not judged (the planner did not read the holder's journal): refuse
        return _check(
            "no other operation",
            False,
            f"{facts.placement.operation_kind} {held} holds the app; see: standby operation list --app {app}",
        )
    holder = facts.holder
    what = f"{holder.kind or facts.placement.operation_kind} {held}"
    seen = f" ({holder.detail})" if holder.detail else ""
    if holder.state == "live":
        return _check(
            "no other operation", False, f"{what} holds the app and is live{seen}: wait for it to end"
        )
    if facts.take_over == held and op_kind == "failover":
        return _check(
            "no other operation", True, f"taking over the hold of {holder.state} {what}{seen} (acknowledged)"
        )
    way = (
        f"take it over: standby failover --app {app} --to {target} --take-over {held}"
        if op_kind == "failover"
        else f"standby operation resume {held}, or standby operation abort {held}"
    )
    wrong = f"; --take-over names {facts.take_over}, not it" if facts.take_over else ""
    return _check("no other operation", False, f"{holder.state} {what} holds the app{seen}{wrong}; {way}")


def _common_checks(facts: Facts, op_kind: str, target: str) -> list[Check]:
    checks = [
        _hold_check(facts, op_kind, target),
    ]
    if op_kind == "failover":
        checks.append(
            _check(
                "backup readable from the target",
                facts.backup_run is not None,
                f"newest complete backup in {target}'s store: {facts.backup_run} ({backup_age(facts.backup_age_seconds)})"
                if facts.backup_run
                else facts.backup_error,
            )
        )
    else:  # a planned move backs up the running source itself, into the target's store
        checks.append(
            _check(
                "target's store answers",
                facts.store_reachable,
                f"{target}'s store answered; a final backup of the source is taken before the app stops"
                if facts.store_reachable
                else facts.backup_error,
            )
        )
    checks.append(key_check(facts.key))
    if facts.app_refusals is not None:
        checks.append(
            _check(
                "the app's saved definition fits the target",
                not facts.app_refusals,
                "; ".join(facts.app_refusals)
                or "everything the backup holds can be created there (a re-run reuses what stands)",
            )
        )
    split = facts.view.split_brain()
    if split and op_kind != "failback":
        checks.append(
            _check(
                "no split-brain",
                False,
                "; ".join(split)
                + f". Resolve it: standby failback --app {facts.placement.app}, which demotes and resyncs"
                " the out-of-date side (rbd mirror image demote, then rbd mirror image resync there)",
            )
        )
    return checks


def _start_steps(app: ProtectedApp, target: str, force: bool) -> list[StepSpec]:
    workload = app.workload
    what = f"{workload.kind.kind} {workload.name}" if workload is not None else app.name
    return [
        StepSpec(
            name="restore-volumes",
            title="restore the Secret, PV (imageName kept) and PVC from the backup",
            site=target,
        ),
        StepSpec(
            name="promote-target",
            title="promote the images" + (" **(forced)**" if force else " (not forced)"),
            site=target,
            force=force,
        ),
        StepSpec(
            name="start-target",
            title=f"restore and start {what}, wait until writable",
            site=target,
        ),
        StepSpec(
            name="smoke-target", title="smoke test: status, writable, login, upload and download", site=target
        ),
        StepSpec(name="routing", title="switch routing to the target", site=target),
    ]


def _relocate_steps(app: ProtectedApp, source: str, target: str) -> list[StepSpec]:
    return [
        StepSpec(
            name="final-backup",
            title=f"back up the app's manifests on {source} into {target}'s store (restored below)",
            site=source,
        ),
        StepSpec(
            name="stop-source",
            title="freeze and stop the app, wait until its volumes are released",
            site=source,
        ),
        StepSpec(
            name="final-snapshot",
            title="take a final mirror snapshot and wait until the target has it",
            site=source,
        ),
        StepSpec(name="demote-source", title="demote the images", site=source),
        StepSpec(
            name="wait-demotion", title="wait until the target holds the demotion snapshot", site=target
        ),
        *_start_steps(app, target, force=False),
        StepSpec(
            name="tidy-source",
            title="remove what the app leaves on the source (its PVC/PV with Retain, or its VM copies; the images are kept)",
            site=source,
        ),
        StepSpec(name="placement", title=f"record {target} as the primary", site=target),
        StepSpec(name="mirroring-healthy", title=f"wait until {source} replays from {target}", site=source),
    ]


def _relocate(app: ProtectedApp, facts: Facts, target: str, kind: Kind) -> Plan:
    view, record = facts.view, facts.placement
    source = record.primary
    checks = _common_checks(facts, kind, target)
    for name in (source, target):
        sv = view.sites[name]
        checks.append(_check(f"{name} reachable", sv.reachable, sv.error or "answered"))
    if all(view.sites[n].reachable for n in (source, target)):
        primaries = view.primaries()
        checks.append(
            _check(
                "exactly one primary", primaries == [source], f"primary on: {', '.join(primaries) or 'none'}"
            )
        )
        checks.append(_replaying(view, target))
        checks.append(_lag_check(app, view))
        wrong = disagreements(record, view)
        checks.append(_check("record agrees with the sites", not wrong, "; ".join(wrong) or "yes"))
    else:
        down = ", ".join(view.unreachable())
        checks.append(
            _check(
                "planned move possible",
                False,
                f"{down} unreachable: a relocate needs both sites;"
                f" use: standby failover --app {app.name} --to {target}",
            )
        )
    return Plan(
        kind=kind,
        app=app.name,
        source=source,
        target=target,
        checks=tuple(checks),
        steps=tuple(_relocate_steps(app, source, target)),
        lag_seconds=view.lag_seconds,
        final_backup=True,
    )


def _failover(app: ProtectedApp, facts: Facts, target: str) -> Plan:
    view, record = facts.view, facts.placement
    source = record.primary
    checks = _common_checks(facts, "failover", target)
    tv = view.sites[target]
    checks.append(_check(f"{target} reachable", tv.reachable, tv.error or "answered"))
    source_up = view.sites[source].reachable
    why = f"unreachable: {view.sites[source].error};" if view.sites[source].error else "unreachable:"
    unfenced = () if source_up else (f"{source} ({why} its app and images cannot be stopped or demoted)",)
    forced = () if source_up else tuple(f"promote of {i} on {target}" for i in view.images)
    steps = [
        StepSpec(
            name="fence-source", title="stop the app and demote the images where reachable", site=source
        ),
        StepSpec(name="wait-inflight-sync", title="let a sync in flight finish (bounded wait)", site=target),
        *_start_steps(app, target, force=not source_up),
        StepSpec(name="placement", title=f"record {target} as the primary", site=target),
    ]
    return Plan(
        kind="failover",
        app=app.name,
        source=source,
        target=target,
        checks=tuple(checks),
        steps=tuple(steps),
        lag_seconds=view.lag_seconds,
        forced=forced,
        unfenced=unfenced,
        needs_data_loss_ack=not source_up,
        needs_unfenced_ack=not source_up,
    )


def _failback(app: ProtectedApp, facts: Facts) -> Plan:
    view, record = facts.view, facts.placement
    home, current = app.home_site, record.primary
    relocate = _relocate(app, facts, home, "failback")
    kept = ("no other operation", "target's store answers", "backup key opens the backup")
    checks = [c for c in relocate.checks if c.name in kept]
    for name in (home, current):
        sv = view.sites[name]
        checks.append(_check(f"{name} reachable", sv.reachable, sv.error or "answered"))
    if view.sites[current].reachable:
        roles = view.sites[current].roles
        ok = all(roles.get(i) == "primary" for i in view.images)
        checks.append(
            _check(f"{current} is primary", ok, ", ".join(f"{i}: {roles.get(i)}" for i in view.images))
        )
    steps = [
        StepSpec(name="stop-old", title="stop the app on the old primary", site=home),
        StepSpec(
            name="demote-old",
            title="demote the old primary's images (it loses what the survivor lacks)",
            site=home,
        ),
        StepSpec(name="resync-old", title="resync the old primary from the survivor", site=home),
        StepSpec(
            name="wait-in-sync",
            title="wait until replaying, a fresh snapshot complete, lag under target",
            site=home,
        ),
        *relocate.steps,
    ]
    return Plan(
        kind="failback",
        app=app.name,
        source=current,
        target=home,
        checks=tuple(checks),
        steps=tuple(steps),
        lag_seconds=view.lag_seconds,
        final_backup=True,
    )


def make_plan(app: ProtectedApp, facts: Facts, kind: Kind, target: str | None) -> Plan:
    """See :func:`_make_plan`; a failover carries the backup run it will restore and its age (a planned
    move restores the final backup it takes itself), and the hold it takes over, when its guard allowed it."""
    held = facts.placement.operation
    takes = held if held and facts.take_over == held and kind == "failover" else None
    backup_site = None
    if takes and target == facts.placement.primary:
        # a failover back: the operation taken over was moving the app away from the target (the
        # record still names the target, the images may be primary on the other site), so the
        # other site is the one to fence; the backup restored is the target's own
        record = facts.placement
        swapped = record.model_copy(update={"primary": record.secondary, "secondary": record.primary})
        facts, backup_site = facts.model_copy(update={"placement": swapped}), record.primary
    plan = _make_plan(app, facts, kind, target)
    update: dict[str, Any] = {"takes_over": takes, "backup_site": backup_site}
    if not plan.final_backup:
        update |= {"backup_run": facts.backup_run, "backup_age_seconds": facts.backup_age_seconds}
    return plan.model_copy(update=update)


def plan_changes(approved: Plan, now: Plan) -> list[str]:
    """What differs between the plan that was approved and the plan made again after approval.

    Empty when ``now`` can run under the approval given: same kind, sites, steps (and what each forces),
    acknowledgements, backup and guard outcomes. The lag itself may move; a lag guard that flips may not.
    """
    out: list[str] = []
    for label, attr in (("source", "source"), ("target", "target"), ("backup to restore", "backup_run")):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(f"{label}: {getattr(approved, attr)} -> {getattr(now, attr)}")

    def steps(plan: Plan) -> list[tuple[str, str, bool]]:
        return [(s.name, s.site, s.force) for s in plan.steps]

    if steps(approved) != steps(now):
        forced = {s.name for s in now.steps if s.force} - {s.name for s in approved.steps if s.force}
        unforced = {s.name for s in approved.steps if s.force} - {s.name for s in now.steps if s.force}
        detail = [f"{n} is now forced" for n in sorted(forced)] + [
            f"{n} is no longer forced" for n in sorted(unforced)
        ]
        out.append("steps changed" + (f" ({'; '.join(detail)})" if detail else ""))
    for label, attr in (("forced", "forced"), ("cannot be fenced", "unfenced")):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(
                f"{label}: {'; '.join(getattr(approved, attr)) or 'nothing'} -> {'; '.join(getattr(now, attr)) or 'nothing'}"
            )
    for label, attr in (
        ("data-loss acknowledgement", "needs_data_loss_ack"),
        ("unfenced acknowledgement", "needs_unfenced_ack"),
    ):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(f"{label}: {'needed' if getattr(now, attr) else 'no longer needed'}")
    before = {c.name: c.ok for c in approved.checks}
    for check in now.checks:
        if before.get(check.name) != check.ok:
            out.append(f"guard {check.name}: {'passes' if check.ok else 'fails'} now ({check.detail})")
    return out


def _make_plan(app: ProtectedApp, facts: Facts, kind: Kind, target: str | None) -> Plan:
    """The plan of ``kind`` for ``app`` from ``facts``; guards that fail are in ``plan.refusals``.

    ``target`` is required for relocate and failover, and is the app's home for a failback.
    Raises :class:`PreconditionFailed` only for a request that names no valid target.
    """
    record = facts.placement
    sites = (app.home_site, app.secondary_site)
    if kind == "failback":
        if record.primary == app.home_site and not record.operation:
            plan = _relocate(app, facts, app.home_site, "failback")
            return plan.model_copy(
                update={"nothing_to_do": f"{app.name} already runs on its home site {app.home_site}"}
            )
        return _failback(app, facts)
    if target not in sites:
        raise PreconditionFailed(
            f"{kind} of app {app.name}: target {target!r} is not one of its sites ({', '.join(sites)})",
            hint=f"pass --to {record.secondary}",
        )
    plan = _failover(app, facts, target) if kind == "failover" else _relocate(app, facts, target, kind)
    if target == record.primary and not record.operation:
        return plan.model_copy(
            update={"nothing_to_do": f"{app.name} already runs on {target} (placement epoch {record.epoch})"}
        )
    return plan
