"""Automations defined in code: RPO breaches and drill results become notifications.

``standby-rpo-breach`` matches every ``standby.rpo.breach`` (one per crossing) and sends a
notification block's message, or runs the ``rpo-breach-notice`` flow, or does nothing (the event
still shows in the Event Feed). ``standby-drill-failed`` and ``standby-drill-overdue`` watch the
drill events. Event names come from :mod:`tasks.events`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.automations import Automation
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.events.actions import DoNothing, RunDeployment, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from tasks.events import APP_RESOURCES, BREACH_EVENT, DRILL_FAILED_EVENT, DRILL_PASSED_EVENT

AUTOMATION_NAME = "standby-rpo-breach"
SUBJECT = "RPO breach: {{ event.resource['standby.app'] }}"
BODY = (
    "App {{ event.resource['standby.app'] }} (secondary {{ event.resource['standby.site'] }}) lags"
    "{% if event.payload.estimated %} an ESTIMATED {{ event.payload.lag_estimate_seconds }}s (journal"
    " mode){% else %} {{ event.payload.lag_seconds }}s{% endif %}"
    " against a target of {{ event.payload.target_seconds }}s"
    " (source {{ event.payload.source }}): {{ event.payload.reason }}"
)


@flow(name="rpo-breach-notice")
def rpo_breach_notice(app: str, lag_seconds: float | None = None, reason: str = "") -> str:
    """Log an RPO breach (the fallback notification when no notification block is configured).

    1. Write one WARNING line naming the app, its lag and the reason.

    Args:
        app: name of the app whose secondary lags (the event's ``standby.app``)
        lag_seconds: the measured lag in seconds; empty when it is unknown
        reason: why the sampler called it a breach (the event's ``reason``)
    """
    line = f"RPO breach on {app}: lag {lag_seconds}s; {reason}"
    get_run_logger().warning(line)
    return line


def breach_automation(
    notification_block: str | None = None, notice_deployment: str | None = None
) -> Automation:
    """The automation object (not yet created): see the module docstring for the action chosen."""
    action: Any
    if notification_block:
        block = Block.load(notification_block)
        block_id = getattr(block, "_block_document_id", None)
        action = SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)
    elif notice_deployment:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(notice_deployment)
        action = RunDeployment(
            source="selected",
            deployment_id=deployment.id,
            parameters={
                "app": "{{ event.resource['standby.app'] }}",
                "reason": "{{ event.payload.reason }}",
            },
        )
    else:
        action = DoNothing()
    return Automation(
        name=AUTOMATION_NAME,
        description="Turn standby.rpo.breach events into a notification (see flows/automations.py).",
        trigger=EventTrigger(
            match={"prefect.resource.id": APP_RESOURCES},
            expect={BREACH_EVENT},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[action],
    )


def ensure_rpo_breach_automation(
    notification_block: str | None = None, notice_deployment: str | None = None
) -> Automation:
    """Create the breach automation, replacing an existing one of the same name."""
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(existing.id)
    created = breach_automation(notification_block, notice_deployment).create()
    assert isinstance(created, Automation)  # sync context: create() is not a coroutine here
    return created


DRILL_FAILED = "standby-drill-failed"
DRILL_OVERDUE = "standby-drill-overdue"
DRILL_SUBJECT = "DR drill of {{ event.resource['standby.app'] }}: {{ event.event }}"
DRILL_BODY = (
    "Drill {{ event.payload.drill_id }} of {{ event.resource['standby.app'] }} on"
    " {{ event.resource['standby.site'] }}: {{ event.payload.reason }} (report: {{ event.payload.report }})"
)
OVERDUE_BODY = "No DR drill of a Standby app has passed in 35 days: run one (standby drill run --app APP)."


def drill_automations(notification_block: str | None = None) -> list[Automation]:
    """The drill automations (not yet created).

    * ``standby-drill-failed``: every ``standby.drill.failed`` event;
    * ``standby-drill-overdue``: proactive, fires when no ``standby.drill.passed`` event came in
      35 days (the monthly schedule missed, or every drill failed).

    Each notifies through ``notification_block`` when given; otherwise the event feed and the
    automation's own history show it (``DoNothing``).
    """
    action: Any = DoNothing()
    overdue_action: Any = DoNothing()
    if notification_block:
        block_id = getattr(Block.load(notification_block), "_block_document_id", None)
        action = SendNotification(block_document_id=block_id, subject=DRILL_SUBJECT, body=DRILL_BODY)
        overdue_action = SendNotification(
            block_document_id=block_id, subject="DR drill overdue", body=OVERDUE_BODY
        )
    return [
        Automation(
            name=DRILL_FAILED,
            description="Turn standby.drill.failed events into a notification (see flows/automations.py).",
            trigger=EventTrigger(
                match={"prefect.resource.id": APP_RESOURCES},
                expect={DRILL_FAILED_EVENT},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[action],
        ),
        Automation(
            name=DRILL_OVERDUE,
            description="No standby.drill.passed event in 35 days (see flows/automations.py).",
            trigger=EventTrigger(
                match={"prefect.resource.id": APP_RESOURCES},
                expect={DRILL_PASSED_EVENT},
                posture=Posture.Proactive,
                threshold=1,
                within=35 * 24 * 3600,
            ),
            actions=[overdue_action],
        ),
    ]


def ensure_drill_automations(notification_block: str | None = None) -> list[Automation]:
    """Create the drill automations, replacing existing ones of the same names."""
    with get_client(sync_client=True) as client:
        for name in (DRILL_FAILED, DRILL_OVERDUE):
            for existing in client.read_automations_by_name(name):
                client.delete_automation(existing.id)
    created = []
    for automation in drill_automations(notification_block):
        made = automation.create()
        assert isinstance(made, Automation)
        created.append(made)
    return created
