"""A scheduled job over every configured app: each app's outcome, and the run's verdict.

The nightly backup and the monthly drill run once per app (:mod:`flows.backup`, :mod:`flows.drill`).
Each app's run ends on its own; these pure helpers turn the outcomes into the summary table and the
one error that fails the whole run, naming every app that failed and why. An app that cannot be
done by design (a drill of an app whose checks carry no canary) is ``skipped`` with the reason: it
neither fails the run nor goes unmentioned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from drkit.domain.errors import StandbyError
from drkit.domain.model_base import Model

Verdict = Literal["passed", "failed", "skipped"]
"""How one app's run ended: completed, failed (with the reason), or not run (with the reason)."""


class AppOutcome(Model):
    """How one app's run of a scheduled job ended."""

    app: str = Field(..., description="name of the protected app")
    verdict: Verdict = Field(..., description="passed, failed or skipped")
    detail: str = Field("", description="what the run did, why it failed, or why it was skipped")
    flow_run: str = Field("", description="id of the app's own run, empty when none was started")


def outcome_rows(outcomes: Sequence[AppOutcome]) -> list[dict[str, str]]:
    """The summary table: one row per app, in the configuration's order."""
    return [
        {"app": o.app, "verdict": o.verdict, "detail": o.detail, "flow run": o.flow_run or "-"}
        for o in outcomes
    ]


def outcome_line(job: str, outcomes: Sequence[AppOutcome]) -> str:
    """One line: ``backup of 2 apps: 1 passed, 1 failed (web)``, naming the failed and skipped apps."""
    parts = []
    for verdict in ("passed", "failed", "skipped"):
        apps = [o.app for o in outcomes if o.verdict == verdict]
        if apps:
            parts.append(f"{len(apps)} {verdict}" + ("" if verdict == "passed" else f" ({', '.join(apps)})"))
    return f"{job} of {len(outcomes)} app(s): {', '.join(parts) or 'none configured'}"


def failure(job: str, outcomes: Sequence[AppOutcome]) -> StandbyError | None:
    """The error that fails the whole run when any app failed (each named with its reason), or None.

    The other apps' runs are complete and kept: the hint says to run the failed apps again alone.
    """
    failed = [o for o in outcomes if o.verdict == "failed"]
    if not failed:
        return None
    reasons = "; ".join(f"{o.app}: {o.detail}" for o in failed)
    again = ", ".join(f"app={o.app}" for o in failed)
    return StandbyError(
        f"{outcome_line(job, outcomes)}; {reasons}",
        hint=f"fix what each failed app's own run says, then run {job} again with {again};"
        " the other apps' runs are complete and kept",
        context={"failed": [o.app for o in failed]},
    )
