"""The Prefect events Standby emits: their names and resources, in one place.

Automations (:mod:`flows.automations`) match on these names; the engine returns plain alerts and
reports, and the tasks turn them into events here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drkit.domain.rpo_reading import RpoAlert

BREACH_EVENT = "standby.rpo.breach"
RECOVERED_EVENT = "standby.rpo.recovered"
UNHEALTHY_EVENT = "standby.mirror.unhealthy"
DRILL_PASSED_EVENT = "standby.drill.passed"
DRILL_FAILED_EVENT = "standby.drill.failed"
APP_RESOURCES = "standby.app.*"
"""What the automations match: every app resource."""

_RPO_EVENTS = {"breach": BREACH_EVENT, "recovered": RECOVERED_EVENT, "unhealthy": UNHEALTHY_EVENT}


@dataclass(frozen=True)
class Event:
    """A Prefect event to emit: name, resource labels and payload (plain JSON values)."""

    event: str
    resource: dict[str, str]
    payload: dict[str, Any]


def app_resource(app: str, site: str) -> dict[str, str]:
    """The resource of an event about ``app`` (``standby.app.<app>``) seen on ``site``."""
    return {
        "prefect.resource.id": f"standby.app.{app}",
        "prefect.resource.name": app,
        "standby.app": app,
        "standby.site": site,
    }


def rpo_event(alert: RpoAlert) -> Event:
    """The event of an RPO alert: about the app, or about the image for ``unhealthy``."""
    if alert.image is None:
        resource = app_resource(alert.app, alert.site)
    else:
        resource = {
            "prefect.resource.id": f"standby.rbd-image.{alert.pool}.{alert.image}",
            "prefect.resource.name": f"{alert.pool}/{alert.image}",
            "standby.app": alert.app,
            "standby.site": alert.site,
        }
    return Event(event=_RPO_EVENTS[alert.kind], resource=resource, payload=dict(alert.payload))
