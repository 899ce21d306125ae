"""The drill's one runbook (plan, approval, start, run) calls its hooks in order and stops on a
refusal, on the fake two-site world, with hooks written here (what the flow and the CLI supply)."""

from __future__ import annotations

import pytest

from drkit.domain import crypto
from drkit.domain.drill import Mode
from drkit.domain.errors import PreconditionFailed
from drkit.domain.operations import Approval, Journal, Plan, StepRecord
from drkit.jobs.drill import DrillOutcome
from drkit.jobs.drill_runbook import DrillHooks, run_drill_runbook
from drkit.jobs.operations import Changed, Executor, Prepared, list_journals
from drkit.jobs.world import World, read_placement
from drkit.testing.dr import IMAGE, FakeDr
from tests.unit.test_drill import APPROVAL, FAST, KEY, _healthy_and_clean, _ready


class Recorded(DrillHooks):
    """Hooks that record each call (``consent`` answers with ``answer``, or refuses when it is None)."""

    timeouts = FAST

    def __init__(self, answer: tuple[Approval, str] | None = None) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def plan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        self.calls.append("plan")
        return super().plan(world, app, mode, key)

    def replan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        self.calls.append("replan")
        return super().replan(world, app, mode, key)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        self.calls.append("consent")
        if self.answer is None:
            raise PreconditionFailed(f"drill of {plan.app}: not approved", hint="approve it")
        return self.answer

    def take(self, world: World, prepared: Prepared, approval: Approval | None, typed_app: str) -> Journal:
        self.calls.append("take")
        return super().take(world, prepared, approval, typed_app)

    def approved(self, journal: Journal, approval: Approval) -> None:
        self.calls.append(f"approved by {approval.approver}")

    def refused(self, journal: Journal) -> None:
        self.calls.append(f"refused {journal.op_id}")

    def step(self, executor: Executor, name: str) -> object:
        self.calls.append(f"step {name}")
        return super().step(executor, name)

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        if record.outcome != "running":
            self.calls.append(f"{record.outcome} {record.name}")

    def finished(self, outcome: DrillOutcome) -> None:
        self.calls.append(f"finished {'passed' if outcome.report.passed else 'failed'}")


def _steps(hooks: Recorded) -> list[str]:
    return [c.removeprefix("step ") for c in hooks.calls if c.startswith("step ")]


def test_an_isolated_drill_plans_takes_runs_each_step_then_finishes_without_asking() -> None:
    dr = _ready()
    hooks = Recorded()
    outcome = run_drill_runbook(dr.world, "nexus", "isolated", KEY, hooks)
    assert outcome.report.passed, outcome.journal.error
    names = [s.name for s in outcome.journal.plan.steps]
    assert hooks.calls[:2] == ["plan", "take"] and "consent" not in hooks.calls
    assert _steps(hooks) == names  # every step, in the plan's order, through the hook
    for name in names:  # each step reported after it ran
        assert hooks.calls.index(f"done {name}") > hooks.calls.index(f"step {name}")
    assert hooks.calls[-1] == "finished passed"
    assert _healthy_and_clean(dr)


def test_a_promote_mode_drill_asks_then_observes_again_before_it_takes_the_app() -> None:
    dr = _ready()
    hooks = Recorded(answer=(APPROVAL, "nexus"))
    outcome = run_drill_runbook(dr.world, "nexus", "promote", KEY, hooks)
    assert outcome.report.passed, outcome.journal.error
    assert hooks.calls[:5] == ["plan", "consent", "replan", "take", "approved by tester"]
    assert hooks.calls[5] == "step canary" and hooks.calls[-1] == "finished passed"
    assert outcome.journal.approval is not None and outcome.journal.approval.approver == "tester"


def _untouched(dr: FakeDr) -> None:
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    assert dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}


def test_a_refused_plan_is_journaled_and_nothing_runs() -> None:
    dr = _ready()
    dr.clusters["site-b"].seed(
        {
            "apiVersion": "operator.alaudadevops.io/v1alpha1",
            "kind": "Nexus",
            "metadata": {"name": "nexus-ddrs", "namespace": "nexus-dr"},
            "spec": {},
        }
    )
    hooks = Recorded()
    with pytest.raises(
        PreconditionFailed, match=r"drill of nexus refused: .*nothing of the app on the secondary"
    ) as error:
        run_drill_runbook(dr.world, "nexus", "isolated", KEY, hooks)
    (journal,) = list_journals(dr.world, "nexus")
    assert journal.status == "refused"
    assert hooks.calls == ["plan", "take", f"refused {journal.op_id}"]  # no step, no report
    assert error.value.hint == DrillHooks.refusal_hint
    _untouched(dr)


def test_a_refused_approval_stops_before_the_app_is_taken() -> None:
    dr = _ready()
    hooks = Recorded(answer=None)
    with pytest.raises(PreconditionFailed, match="not approved"):
        run_drill_runbook(dr.world, "nexus", "promote", KEY, hooks)
    assert hooks.calls == ["plan", "consent"]
    assert list_journals(dr.world, "nexus") == []
    _untouched(dr)


def test_the_default_hooks_refuse_a_promote_mode_drill_they_cannot_ask_for() -> None:
    dr = _ready()
    with pytest.raises(PreconditionFailed, match="promote-mode drill of nexus: no one to ask"):
        run_drill_runbook(dr.world, "nexus", "promote", KEY, DrillHooks())
    assert list_journals(dr.world, "nexus") == []
