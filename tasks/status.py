"""The ``status`` flow's tasks: read each app's status, publish the at-a-glance table."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from drkit.domain.status import AppStatus
from drkit.jobs.status import app_status
from drkit.jobs.world import World
from drkit.views.status import status_rows

STATUS_ARTIFACT = "standby-status"
"""Key of the table artifact: one row per app, the newest run's on top of the UI's artifact page."""


@task(name="read-status", cache_policy=NO_CACHE, task_run_name="status of {name}")
def read_status(world: World, name: str) -> AppStatus:
    """One app's status, observed through the bounded probes (a lost site costs seconds)."""
    return app_status(world.probing(), name)


@task(name="publish-status", cache_policy=NO_CACHE)
def publish_status(statuses: list[AppStatus]) -> str:
    """The table artifact ``standby-status``, with each app's warnings in its description."""
    warnings = [f"{st.app}: {w}" for st in statuses for w in st.warnings]
    described = "; ".join(warnings) if warnings else "no warnings"
    create_table_artifact(
        table=status_rows(statuses, unknown="—"),  # a lone "-" would show as a list bullet
        key=STATUS_ARTIFACT,
        description=f"Standby status of {len(statuses)} app(s): {described}",
    )
    return STATUS_ARTIFACT
