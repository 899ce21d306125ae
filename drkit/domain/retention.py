"""Grandfather-father-son retention of backup runs, and the blobs no kept run references. Pure.

The rules (what is kept, incomplete runs, when blobs may go) are in docs/architecture.md,
"Retention".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo

from pydantic import AwareDatetime, Field

from drkit.domain.backup_index import BackupIndex
from drkit.domain.model_base import Model


class RunInfo(Model):
    """A run as listed in the object store."""

    run_id: str = Field(..., description="run id")
    started: AwareDatetime = Field(..., description="when the run started")
    complete: bool = Field(..., description="whether the run's index exists")
    same_as: str | None = Field(None, description="run whose full index holds this run's objects (pointer)")


class RetentionPolicy(Model):
    """How many daily, weekly and monthly runs to keep."""

    daily: int = Field(7, ge=0, description="number of most recent days to keep one run of")
    weekly: int = Field(4, ge=0, description="number of most recent ISO weeks to keep one run of")
    monthly: int = Field(12, ge=0, description="number of most recent months to keep one run of")


class RetentionDecision(Model):
    """Which runs to keep and which to delete, with the reasons for keeping."""

    keep: tuple[str, ...] = Field(..., description="run ids to keep, newest first")
    delete: tuple[str, ...] = Field(..., description="run ids to delete, newest first")
    reasons: dict[str, tuple[str, ...]] = Field(..., description="why each kept run is kept")


def _bucketed(
    runs: list[RunInfo], count: int, bucket: Callable[[datetime], object], label: str, tz: tzinfo
) -> dict[str, str]:
    kept: dict[str, str] = {}
    seen: set[object] = set()
    for run in runs:
        if len(seen) >= count:
            break
        slot = bucket(run.started.astimezone(tz))
        if slot not in seen:
            seen.add(slot)
            kept[run.run_id] = f"{label} {slot}"
    return kept


def plan_retention(
    runs: Iterable[RunInfo], policy: RetentionPolicy, *, tz: tzinfo = UTC
) -> RetentionDecision:
    """Decide which runs to keep (see the module docstring)."""
    ordered = sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)
    complete = [r for r in ordered if r.complete]
    reasons: dict[str, list[str]] = {}

    def add(found: dict[str, str]) -> None:
        for run_id, why in found.items():
            reasons.setdefault(run_id, []).append(why)

    add(_bucketed(complete, policy.daily, lambda t: t.date().isoformat(), "daily", tz))
    add(_bucketed(complete, policy.weekly, lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2]), "weekly", tz))
    add(_bucketed(complete, policy.monthly, lambda t: f"{t:%Y-%m}", "monthly", tz))
    if complete:
        add({complete[0].run_id: "newest complete run"})
    newest_complete = complete[0].started if complete else None
    for run in ordered:
        if not run.complete and (newest_complete is None or run.started > newest_complete):
            add({run.run_id: "incomplete, newer than the newest complete run (may be running)"})
    known = {r.run_id for r in ordered}
    for run in ordered:
        if run.run_id in reasons and run.same_as is not None and run.same_as in known:
            add({run.same_as: f"holds the objects of kept run {run.run_id} (its index points here)"})
    keep = tuple(r.run_id for r in ordered if r.run_id in reasons)
    delete = tuple(r.run_id for r in ordered if r.run_id not in reasons)
    return RetentionDecision(keep=keep, delete=delete, reasons={k: tuple(v) for k, v in reasons.items()})


def unreferenced_blobs(kept_indexes: Iterable[BackupIndex], all_blob_keys: Iterable[str]) -> list[str]:
    """Blob keys no kept index references, sorted: the only blobs retention may delete."""
    referenced: set[str] = set()
    for index in kept_indexes:
        referenced |= index.blob_keys()
    return sorted(set(all_blob_keys) - referenced)
