"""Relocate, failover and failback: plan, approve, execute and resume, without Prefect.

1. :func:`prepare` reads the placement, observes both sites, finds the backup the target can read,
   tries the backup key on it (:func:`trial_key`: one sealed object decrypted) and makes the plan
   (:func:`drkit.domain.operations.make_plan`). It looks through :meth:`World.probing`: sites and
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

The package, by concern: :mod:`~drkit.jobs.operations.planning` (observe and plan),
:mod:`~drkit.jobs.operations.journal` (the journal in the stores), :mod:`~drkit.jobs.operations.execute`
(approve, execute), :mod:`~drkit.jobs.operations.resume`, :mod:`~drkit.jobs.operations.runbook` (the
shared runbook) and :mod:`~drkit.jobs.operations.timeouts`. Import from the package.
"""

from __future__ import annotations

from drkit.jobs.operations.execute import Executor, StepCallback, approve, execute
from drkit.jobs.operations.journal import hold_of, list_journals, read_journal, summary_lines, write_journal
from drkit.jobs.operations.planning import Prepared, find_backup, prepare, prepare_resume, trial_key
from drkit.jobs.operations.resume import resume
from drkit.jobs.operations.runbook import REAPPROVALS, Changed, OperationHooks, OperationResult, run_operation
from drkit.jobs.operations.timeouts import Timeouts

__all__ = [
    "REAPPROVALS",
    "Changed",
    "Executor",
    "OperationHooks",
    "OperationResult",
    "Prepared",
    "StepCallback",
    "Timeouts",
    "approve",
    "execute",
    "find_backup",
    "hold_of",
    "list_journals",
    "prepare",
    "prepare_resume",
    "read_journal",
    "resume",
    "run_operation",
    "summary_lines",
    "trial_key",
    "write_journal",
]
