"""`make up`: serve every deployment of ``deployments/prefect.yaml`` from one process.

``prefect.yaml`` is the one definition of Standby's deployments: the worker route (``prefect deploy
--all``) and this module both read it, so they cannot drift apart. This module reads each entry's
name, entrypoint, description, tags, parameters, schedules (cron with timezone, or interval) and
concurrency limit, refuses a key it does not know, and serves exactly those; ``work_pool`` only
matters to the worker route. With ``$STANDBY_CONFIG`` set, its path is passed as the ``config``
parameter of every deployment that has one (``make up`` points it at the lab's file).

``serve`` needs no work pool or worker. On SIGTERM the deployments stay active
(``pause_on_shutdown=False``), so the UI keeps its schedules. Before serving, the
``standby-rpo-breach`` automation is (re)created (see :func:`install_breach_automation`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml
from prefect import serve
from prefect.automations import Automation
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow

from flows.automations import ensure_drill_automations, ensure_rpo_breach_automation

PREFECT_YAML = Path(__file__).resolve().with_name("prefect.yaml")
"""The one definition of Standby's deployments."""

SERVED_KEYS = frozenset(
    {"name", "entrypoint", "description", "tags", "parameters", "schedules", "concurrency_limit"}
)
"""The keys of a ``prefect.yaml`` deployment that ``serve`` applies."""
WORKER_KEYS = frozenset({"work_pool"})
"""The keys that only the worker route (``prefect deploy``) applies."""


def declared(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployments of ``path`` as plain mappings (YAML anchors and merge keys resolved).

    Raises ``ValueError`` naming the deployment and the key when an entry has a key neither route
    understands here, or lacks a name, entrypoint, description or tags.
    """
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items: list[dict[str, Any]] = list(doc.get("deployments") or [])
    for item in items:
        name = item.get("name", "(no name)")
        unknown = set(item) - SERVED_KEYS - WORKER_KEYS
        if unknown:
            raise ValueError(
                f"{path}: deployment {name}: unknown key(s) {sorted(unknown)}; serve.py would ignore them"
            )
        missing = [k for k in ("name", "entrypoint", "description", "tags") if not item.get(k)]
        if missing:
            raise ValueError(f"{path}: deployment {name}: missing {', '.join(missing)}")
    return items


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """The flow named by an entrypoint ``path/to/file.py:attribute`` (relative to the repository root)."""
    path, _, attr = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    found = getattr(module, attr, None)
    if not isinstance(found, Flow):
        raise ValueError(f"entrypoint {entrypoint}: {attr} is not a Prefect flow in {path}")
    return found


def schedule(spec: dict[str, Any]) -> CronSchedule | IntervalSchedule:
    """A ``prefect.yaml`` schedule: ``{cron, timezone}`` or ``{interval}`` (seconds)."""
    if "cron" in spec:
        return CronSchedule(cron=spec["cron"], timezone=spec.get("timezone", "UTC"))
    if "interval" in spec:
        return IntervalSchedule(interval=spec["interval"])
    raise ValueError(f"schedule {spec}: expected cron (with timezone) or interval")


def deployments(path: Path = PREFECT_YAML, config: str | None = None) -> list[RunnerDeployment]:
    """Every deployment of ``path``, ready to serve; ``config`` (default ``$STANDBY_CONFIG``) replaces
    the ``config`` parameter where a deployment has one."""
    config = config or os.environ.get("STANDBY_CONFIG") or None
    made: list[RunnerDeployment] = []
    for item in declared(path):
        parameters = dict(item.get("parameters") or {})
        if config and "config" in parameters:
            parameters["config"] = config
        made.append(
            load_flow(item["entrypoint"]).to_deployment(  # type: ignore[arg-type]  # sync: no coroutine
                name=item["name"],
                description=item["description"],
                tags=list(item["tags"]),
                parameters=parameters,
                schedules=[schedule(s) for s in item.get("schedules") or []],
                concurrency_limit=item.get("concurrency_limit"),
            )
        )
    return made


def table_rows(items: list[dict[str, Any]]) -> list[str]:
    """The README's deployment table rows (markdown), one per declared deployment."""
    rows = []
    for item in items:
        flow = load_flow(item["entrypoint"]).name
        when = "; ".join(
            f"cron `{s['cron']}` ({s.get('timezone', 'UTC')})" if "cron" in s else f"every {s['interval']} s"
            for s in item.get("schedules") or []
        )
        rows.append(
            f"| `{flow}/{item['name']}` | {when or 'on demand'} | {', '.join(item['tags'])}"
            f" | {item.get('concurrency_limit') or '-'} | {item['description']} |"
        )
    return rows


def install_breach_automation(notice: RunnerDeployment) -> Automation:
    """(Re)create the ``standby-rpo-breach`` automation.

    It notifies through the Prefect notification block named by ``$STANDBY_NOTIFICATION_BLOCK``
    (e.g. ``slack-webhook/dr-oncall``); without one it runs ``notice`` (the ``rpo-breach-notice``
    deployment, registered here first because the automation needs its id), which writes one
    WARNING line per breach.
    """
    block = os.environ.get("STANDBY_NOTIFICATION_BLOCK") or None
    if block is None:
        notice.apply()
    return ensure_rpo_breach_automation(
        notification_block=block, notice_deployment=None if block else f"rpo-breach-notice/{notice.name}"
    )


def main() -> None:
    """Register the deployments, install the RPO breach automation, and serve the runs here."""
    items = deployments()
    automation = install_breach_automation(next(d for d in items if d.name == "log"))
    print(f"automation {automation.name}: {type(automation.actions[0]).__name__}", flush=True)
    for made in ensure_drill_automations(os.environ.get("STANDBY_NOTIFICATION_BLOCK") or None):
        print(f"automation {made.name}: {type(made.actions[0]).__name__}", flush=True)
    serve(*items, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
