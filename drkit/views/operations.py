"""What an operation (relocate, failover, failback, drill, abort) shows: its plan as Markdown (the
artifact, the CLI and the approval form), a plan that changed after its approval beside the one
approved, and the timeline of its journal as table rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from drkit.domain.abort import AbortPlan
from drkit.domain.operations import Journal, Plan, backup_age
from drkit.views.markdown import md_inline


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else str(timedelta(seconds=round(value)))


def plan_markdown(plan: Plan, op_id: str = "") -> str:
    """The plan as Markdown, for the artifact, the CLI and the approval form.

    Every value is quoted through :func:`~drkit.views.markdown.md_inline`: check details, errors and
    names may come from the cluster, the bucket or a placement record, and must not add a link, an
    image, HTML or a table row to the form an operator approves.
    """
    e = md_inline
    head = f"# {e(plan.kind)} of {e(plan.app)}: {e(plan.source)} → {e(plan.target)}"
    lines = [head + (f" ({e(op_id)})" if op_id else ""), ""]
    if plan.nothing_to_do:
        lines += [f"**Nothing to do:** {e(plan.nothing_to_do)}.", ""]
    lines += [f"**Data at risk** (the secondary's lag): {_seconds(plan.lag_seconds)}", ""]
    if plan.final_backup:
        lines += [
            f"**Restores from:** a final backup of {e(plan.source)} taken by this operation before the app stops",
            "",
        ]
    elif plan.backup_run:
        lines += [
            f"**Restores from:** backup {e(plan.backup_run)} ({backup_age(plan.backup_age_seconds)})",
            "",
        ]
    lines += ["| precondition | result | seen |", "|---|---|---|"]
    lines += [f"| {e(c.name)} | {'pass' if c.ok else '**FAIL**'} | {e(c.detail)} |" for c in plan.checks]
    lines += ["", "| # | step | site |", "|---|---|---|"]
    lines += [f"| {n} | {e(s.title)} | {e(s.site)} |" for n, s in enumerate(plan.steps, 1)]
    lines += ["", "**Forced:** " + ("; ".join(e(f) for f in plan.forced) or "nothing")]
    lines += ["**Cannot be fenced:** " + ("; ".join(e(u) for u in plan.unfenced) or "nothing")]
    if plan.takes_over:
        lines += [f"**Takes over the hold of:** {e(plan.takes_over)} (its journal records it)"]
    acks = [
        a
        for a, need in (
            ("data loss", plan.needs_data_loss_ack),
            ("unfenced old primary", plan.needs_unfenced_ack),
            (f"taking over {e(plan.takes_over or '')}", bool(plan.takes_over)),
        )
        if need
    ]
    if acks:
        lines += [f"**Approval must acknowledge:** {', '.join(acks)}"]
    if plan.refusals:
        lines += ["", "**Refused:** " + "; ".join(f"{e(c.name)}: {e(c.detail)}" for c in plan.refusals)]
    return "\n".join(lines) + "\n"


def changed_plan_markdown(
    headline: str, changes: Sequence[str], now: Plan, approved: Plan, done: Sequence[str] = ()
) -> str:
    """A plan made again after its approval: the headline, what differs (quoted: it names what was
    observed), the steps kept, then the plan now and the plan approved before."""
    lines = [headline, ""]
    lines += [f"- {md_inline(c)}" for c in changes]
    if done:
        lines += ["", "Steps already done (kept, not run again): " + ", ".join(md_inline(d) for d in done)]
    return "\n".join(
        [
            *lines,
            "",
            "## The plan now",
            "",
            plan_markdown(now),
            "## The plan approved before",
            "",
            plan_markdown(approved),
        ]
    )


def abort_markdown(plan: AbortPlan) -> str:
    """The abort's plan as Markdown, for the CLI and the approval form."""
    lines = [f"# abort of {plan.kind} {plan.op_id} of {plan.app}: back to {plan.source}", ""]
    if plan.nothing_to_do:
        lines += [f"**Nothing to do:** {plan.nothing_to_do}.", ""]
    if plan.refusal:
        lines += [f"**Refused:** {plan.refusal}", ""]
    if plan.steps:
        lines += ["| # | step | site |", "|---|---|---|"]
        lines += [f"| {n} | {s.title} | {s.site} |" for n, s in enumerate(plan.steps, 1)]
        lines += ["", f"Then the hold on {plan.app} is released."]
    return "\n".join(lines) + "\n"


def _clock(t: datetime) -> str:
    """``08:15:01Z``: the time of day to the second, in UTC (the day is in the operation's id)."""
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%H:%M:%S}Z"


TIMELINE_COLUMNS = ("step", "site", "outcome", "start", "duration", "started", "error")
"""The timeline's columns: ``start`` is the offset from the operation's start (its first step's
start), ``duration`` the step's, both in seconds; ``started`` is the time of day, to the second, in UTC
(as the drill report's steps; the day is in the operation's id)."""


def timeline_rows(journal: Journal) -> list[dict[str, Any]]:
    """One row per step (:data:`TIMELINE_COLUMNS`), for the timeline table artifact.

    ``start`` reads ``+12.3 s`` after the operation's start, ``duration`` ``4.1 s``; a step not
    started has neither, a running one no duration.
    """
    starts = [s.started_at for s in journal.steps if s.started_at is not None]
    t0 = min(starts) if starts else None
    rows = []
    for s in journal.steps:
        offset = "" if s.started_at is None or t0 is None else f"+{(s.started_at - t0).total_seconds():.1f} s"
        rows.append(
            {
                "step": s.name,
                "site": s.site,
                "outcome": s.outcome,
                "start": offset,
                "duration": "" if s.seconds is None else f"{s.seconds:.1f} s",
                "started": _clock(s.started_at) if s.started_at is not None else "",
                "error": s.error,
            }
        )
    return rows
