"""How long each step of an operation or drill may take (``limits`` in an app's configuration):
:class:`Limits`, the step each field bounds (:data:`STEP_LIMITS`) and the start-up default.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from drkit.domain.model_base import Duration, Model

STARTUP_DEFAULT = timedelta(minutes=5)
"""Start-up limit when neither ``limits.startup`` nor ``checks.startup_timeout`` is set."""

STEP_LIMITS: dict[str, str] = {
    "start-target": "startup",
    "scratch-start": "startup",
    "smoke-target": "smoke",
    "drill-smoke": "smoke",
    "promote-target": "promote",
    "drill-promote": "promote",
    "resync-old": "resync",
    "resync-drill": "resync",
    "wait-in-sync": "in_sync",
    "drill-healthy": "in_sync",
    "wait-inflight-sync": "inflight_sync",
    "mirroring-healthy": "mirroring_healthy",
}
"""The :class:`Limits` field that bounds each operation step; every other step has ``default``."""


class Limits(Model):
    """How long each step of a relocate, failover, failback or drill may take before it fails.

    A step acts, then polls until done; past its limit it fails, naming the step, and the operation
    can be resumed. A large app or a multi-terabyte resync needs more than the defaults.
    """

    startup: Duration | None = Field(
        None,
        description="app start-up: restore the workload and wait until the app is writable (steps"
        " start-target, scratch-start); when empty, checks.startup_timeout, else 5m",
    )
    smoke: Duration = Field(
        timedelta(minutes=5), description="smoke test on the target (smoke-target, drill-smoke)"
    )
    promote: Duration = Field(
        timedelta(minutes=3), description="promote the images on the target (promote-target, drill-promote)"
    )
    resync: Duration = Field(
        timedelta(minutes=15),
        description="failback and promote-mode drill: resync the old primary's images, a full copy, so"
        " budget it by their size (resync-old, resync-drill)",
    )
    in_sync: Duration = Field(
        timedelta(minutes=15),
        description="after a resync, wait until replaying with a fresh snapshot and the lag under"
        " rpo_target (wait-in-sync, drill-healthy)",
    )
    inflight_sync: Duration = Field(
        timedelta(minutes=1),
        description="failover: let a mirror sync in flight finish (wait-inflight-sync); when it runs out"
        " the failover goes on without it, not a failure",
    )
    mirroring_healthy: Duration = Field(
        timedelta(minutes=5),
        description="relocate and failback: wait until the old primary replays from the new one"
        " (mirroring-healthy)",
    )
    default: Duration = Field(
        timedelta(minutes=5),
        description="every other step (stop, snapshot, demote, restore, routing, cleanup, ...)",
    )

    @field_validator("*")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"must be a positive duration like '5m', got {value}")
        return value
