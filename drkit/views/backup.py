"""What a backup run shows: its summary as Markdown (the ``backup-<app>-<site>`` artifact).

The view reads a run's summary through :class:`Summary`, the fields it shows of
:class:`drkit.jobs.backup.BackupSummary` (views sit below the jobs and never import them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from drkit.views.markdown import md_inline


class StoreResult(Protocol):
    """One store's outcome of a run (:class:`drkit.jobs.backup.StoreOutcome`)."""

    @property
    def store(self) -> str: ...
    @property
    def complete(self) -> bool: ...
    @property
    def latest(self) -> bool: ...
    @property
    def reason(self) -> str: ...


class Summary(Protocol):
    """What one backup run did (:class:`drkit.jobs.backup.BackupSummary`)."""

    @property
    def app(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def objects(self) -> int: ...
    @property
    def objects_new(self) -> int: ...
    @property
    def objects_reused(self) -> int: ...
    @property
    def bytes_uploaded(self) -> int: ...
    @property
    def duration(self) -> timedelta: ...
    @property
    def list_calls(self) -> int: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def previous_run(self) -> str | None: ...
    @property
    def index_key(self) -> str: ...
    @property
    def warnings(self) -> Sequence[str]: ...
    @property
    def stores(self) -> Sequence[StoreResult]: ...
    def store_lines(self) -> list[str]: ...


def summary_markdown(summary: Summary) -> str:
    """The markdown summary of a run (counts and names only, never object contents)."""
    rows = [
        ("status", summary.status),
        ("run id", summary.run_id),
        ("objects", str(summary.objects)),
        ("new", str(summary.objects_new)),
        ("reused", str(summary.objects_reused)),
        ("bytes uploaded", str(summary.bytes_uploaded)),
        ("duration", f"{summary.duration.total_seconds():.2f} s"),
        ("LIST calls", str(summary.list_calls)),
        ("key id", summary.key_id or "(no key: no Secrets)"),
        ("previous run", summary.previous_run or "(none)"),
        ("index", f"`{summary.index_key}`"),
    ]
    text = f"# Backup of {summary.app} on {summary.site}\n\n| field | value |\n|---|---|\n"
    text += "".join(f"| {k} | {v} |\n" for k, v in rows)
    if summary.warnings:
        text += "\n## Warnings (partially failed)\n\n" + "".join(f"- {w}\n" for w in summary.warnings)
    if summary.stores:
        text += "\n## Stores\n\n| store | complete | why not |\n|---|---|---|\n"
        text += "".join(
            f"| {o.store} | {'yes' if o.complete else '**no**'}{'' if o.latest or not o.complete else ' (latest not updated)'}"
            f" | {o.reason} |\n"
            for o in summary.stores
        )
        text += "".join(
            f"\n**{line}**\n" for line in summary.store_lines() if line.startswith(("WARNING", "catch up"))
        )
    return text


def report_lines_markdown(title: str, lines: Sequence[str]) -> str:
    """A verify or restore report as Markdown (the ``verify-backup-…`` and ``restore-…`` artifacts):
    a title, then one bullet per line of the report. Every line is quoted inert: object names and
    errors come from the bucket and the cluster, and must not add a link, an image or HTML."""
    bullets = "\n".join(f"- {md_inline(line)}" for line in lines)
    return f"# {md_inline(title)}\n\n{bullets}\n"
