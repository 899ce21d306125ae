"""How long each step of an operation may take (:class:`Timeouts`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drkit.domain.models import ProtectedApp
from drkit.domain.step_limits import STEP_LIMITS


@dataclass(frozen=True)
class Timeouts:
    """How long a step may take before it fails, in seconds, and how often it is polled.

    A real run takes the app's configured limits (:meth:`for_app`, ``limits`` in the configuration);
    the constants here are for callers that pass their own (tests pass fast ones).
    """

    default: float = 300.0
    poll: float = 1.0
    per_step: dict[str, float] = field(
        default_factory=lambda: {
            "wait-inflight-sync": 60.0,  # bounded: a failover does not wait for ever on a sync
            "promote-target": 180.0,
            "resync-old": 900.0,  # a resync is a full copy: budget it by image size
            "wait-in-sync": 900.0,
            "mirroring-healthy": 300.0,
        }
    )
    continue_after: frozenset[str] = frozenset({"wait-inflight-sync"})
    """Steps whose timeout is not a failure (the bounded wait is over, the run goes on)."""
    app: str = ""
    """The app whose configured limits these are (:meth:`for_app`), named in a timeout's message."""
    sources: dict[str, str] = field(default_factory=dict)
    """The configuration field of each step's limit (``"*"``: every other step's), for that message."""

    def of(self, step: str) -> float:
        """The timeout of ``step``."""
        return self.per_step.get(step, self.default)

    def describe(self, step: str) -> str:
        """The timeout of ``step`` for a message: ``120s``, and where it is configured when known."""
        where = self.sources.get(step) or self.sources.get("*")
        return f"{self.of(step):.0f}s" + (f" ({where} of app {self.app})" if where and self.app else "")

    @classmethod
    def for_app(cls, app: ProtectedApp, *, poll: float = 1.0) -> Timeouts:
        """The limits configured for ``app`` (its ``limits``, and ``checks.startup_timeout``)."""
        older = app.limits.startup is None and app.checks.startup_timeout is not None
        startup = "checks.startup_timeout" if older else "limits.startup"
        fields = {
            step: startup if name == "startup" else f"limits.{name}" for step, name in STEP_LIMITS.items()
        }
        return cls(
            default=app.limits.default.total_seconds(),
            poll=poll,
            per_step={step: app.step_limit(step).total_seconds() for step in STEP_LIMITS},
            app=app.name,
            sources={**fields, "*": "limits.default"},
        )
