"""One run per configured app: the fan-out of the scheduled backup and drill, and its summary.

* Each app gets its own run of the single-app flow (a subflow run, named ``<job> of <app>``), with
  the same artifacts, events and failure hook as a run started for that app by hand.
* Each subflow is called from an ``app-run`` task, so the flow's task runner bounds how many apps
  run at once (:func:`app_runner` on the flow). The task never raises: an
  app's failure (even one before its run could start) becomes that app's ``failed`` outcome, and
  the other apps go on.
* The summary is a table artifact ``<job>-apps``: each app, passed, failed or skipped, and why;
  the run then fails, naming each failed app and its reason, when any app failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from prefect import get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.states import State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from drkit.domain.fanout import AppOutcome, failure, outcome_line, outcome_rows

RunOne = Callable[[str], "State[Any]"]
"""Starts one app's run and returns its final state (the flow called with ``return_state=True``)."""
Describe = Callable[[Any], str]
"""A completed run's result in a few words, for the summary."""

_EXCEPTION_PREFIX = "Flow run encountered an exception: "


def app_runner(at_once: int) -> TaskRunner[PrefectFuture[Any]]:
    """The task runner of a flow that fans out: threads, so that at most ``at_once`` apps run at once."""
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=at_once))


def _described(describe: Describe, state: State[Any]) -> str:
    """The completed run's result in a few words; a result of another shape is still a pass."""
    try:
        return describe(state.result())
    except Exception:
        return "completed"


@task(name="app-run", task_run_name="{job} of {app}", cache_policy=NO_CACHE)
def app_run(job: str, app: str, run: RunOne, describe: Describe) -> AppOutcome:
    """Run ``app``'s own flow run to its end and say how it ended; never raises."""
    try:
        state = run(app)
        flow_run = str(state.state_details.flow_run_id or "")
        if state.is_completed():
            return AppOutcome(
                app=app, verdict="passed", detail=_described(describe, state), flow_run=flow_run
            )
        detail = (state.message or state.name or "no message").removeprefix(_EXCEPTION_PREFIX)
    except (
        Exception
    ) as exc:  # the run could not start (e.g. a parameter refused): still only this app's failure
        detail, flow_run = f"{type(exc).__name__}: {exc}", ""
    get_run_logger().warning("%s of %s failed: %s", job, app, detail)
    return AppOutcome(app=app, verdict="failed", detail=detail[:500], flow_run=flow_run)


def every_app(
    job: str, apps: Sequence[str], run: RunOne, describe: Describe, skip: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``job`` once per app of ``apps`` (as many at once as the flow's task runner allows),
    publish the ``<job>-apps`` table, and raise naming every failed app once all have ended.

    ``skip`` maps the apps not to run to the reason; they are reported (and logged), never failed.
    """
    skip = dict(skip or {})
    todo = [a for a in apps if a not in skip]
    futures = app_run.map(job=unmapped(job), app=todo, run=unmapped(run), describe=unmapped(describe))
    ran = {o.app: o for o in (f.result() for f in futures)}
    outcomes = [ran.get(a) or AppOutcome(app=a, verdict="skipped", detail=skip[a]) for a in apps]
    line = outcome_line(job, outcomes)
    create_table_artifact(table=outcome_rows(outcomes), key=f"{job}-apps", description=line)
    logger = get_run_logger()
    logger.info("%s", line)
    for app, reason in skip.items():
        logger.warning("%s of %s skipped: %s", job, app, reason)
    error = failure(job, outcomes)
    if error is not None:
        raise error
    return {"apps": {o.app: o.model_dump(exclude={"app"}) for o in outcomes}}
