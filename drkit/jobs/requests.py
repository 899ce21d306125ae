"""One request model per use case: what a caller asks for, with every default stated once.

The flows (Prefect run forms), the ``standby`` CLI and the tasks all take their defaults and their
parameter descriptions from these models, and hand a validated request to the engine. A flow keeps
flat, typed parameters (the UI builds its form from them), takes each default with :func:`default`
and its descriptions with :func:`documented`; the CLI uses :func:`default` and :func:`describe`.

Where the configuration comes from (a file, or a Prefect block) is not part of a request: the flow or
command resolves it first, then asks the engine to do the request against it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drkit.config import format_validation_error
from drkit.domain.drill import Mode
from drkit.domain.errors import ConfigError
from drkit.domain.retention import RetentionPolicy
from drkit.domain.rpo_reading import ExactMode as ExactMode  # re-exported for the flows

KEY_ENV = "STANDBY_BACKUP_KEY"
"""Environment variable holding the backup master key (base64 of 32 bytes)."""
KEY_SOURCE = f"env:{KEY_ENV}"
"""Default backup master key source: the environment variable ``STANDBY_BACKUP_KEY``."""

Minutes = Annotated[float, Field(gt=0, le=24 * 60)]
"""How long a watcher run lasts, in minutes (a day at most)."""
PollSeconds = Annotated[float, Field(ge=0.2, le=60)]
"""Seconds between two listings of an image."""
BusyPollSeconds = Annotated[float, Field(ge=0.1, le=60)]
"""Seconds between two listings while a sync is in progress."""
Seconds = Annotated[float, Field(gt=0)]
"""A positive number of seconds."""


class Request(BaseModel):
    """Base of the request models: frozen, unknown fields refused, bad values a one-line ConfigError."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            words = re.findall(r"[A-Z][a-z]*", type(self).__name__.removesuffix("Request"))
            label = " ".join(w.lower() for w in words)
            raise ConfigError(
                format_validation_error(Path(f"{label} request".strip()), error),
                hint="fix the parameter named (see its description in the run form or --help)",
            ) from None


class AppRequest(Request):
    """A request about one protected app."""

    app: str = Field(..., min_length=1, description="name of the protected app, as in the configuration")


KeySource = Annotated[
    str,
    Field(description="backup master key: env:VARIABLE, secret:PREFECT_SECRET_BLOCK, or none (no Secrets)"),
]
"""Where the backup master key comes from (the key itself never passes through a request)."""


class KeyedRequest(AppRequest):
    """A request that reads or writes encrypted Secrets, so needs the backup master key."""

    key_source: KeySource = KEY_SOURCE


class EveryAppRequest(Request):
    """A scheduled job's request: one app, or every app of the configuration (one run per app).

    The deployments leave ``app`` empty, so an app added to the configuration is protected by the
    next run without a new deployment. An empty string is read as empty (a blank form field).
    """

    app: str | None = Field(
        None,
        description="name of the protected app, as in the configuration; when empty, every configured app,"
        " one run per app (an app's failure fails the whole run but not the other apps' runs)",
    )
    key_source: KeySource = KEY_SOURCE

    @field_validator("app", mode="before")
    @classmethod
    def _blank_is_every_app(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class BackupOptions(Request):
    """What a backup run takes besides the app: the site and the retention policy."""

    site: str | None = Field(None, description="site to back up from; the app's current primary when empty")
    retention: RetentionPolicy = Field(
        default_factory=RetentionPolicy,
        description="GFS retention: how many daily, weekly and monthly runs to keep",
    )


class BackupRequest(BackupOptions, KeyedRequest):
    """Back up an app's manifests, then apply retention."""


class BackupAppsRequest(BackupOptions, EveryAppRequest):
    """Back up one app's manifests, or every configured app's (one run each), then apply retention."""

    def one(self, app: str) -> BackupRequest:
        """The request of ``app``'s own run: this one's site, key source and retention."""
        return BackupRequest(app=app, site=self.site, key_source=self.key_source, retention=self.retention)


class VerifyRequest(KeyedRequest):
    """Prove that a stored backup run is whole and restorable."""

    site: str | None = Field(None, description="site whose backups to verify; the app's primary when empty")
    run_id: str | None = Field(None, description="backup run to verify; the newest complete run when empty")
    dry_run_site: str | None = Field(
        None, description="also create every object with dryRun=All on this site (e.g. the secondary)"
    )


class RestoreRequest(KeyedRequest):
    """Put an app's manifests back from a backup run into a site."""

    target_site: str = Field(..., min_length=1, description="site to restore into")
    source_site: str | None = Field(
        None, description="site whose backups to restore from; the app's primary when empty"
    )
    run_id: str | None = Field(None, description="backup run to restore; the newest complete run when empty")
    namespace: str | None = Field(
        None,
        description="namespace to restore into: the app's own (when empty) or its drill namespace, NAMESPACE-drill",
    )
    policy: Literal["skip", "update"] = Field(
        "skip", description="what to do with objects that already exist: skip them or update them"
    )
    dry_run: bool = Field(False, description="send every create with dryRun=All: check, change nothing")
    exclude_kinds: tuple[str, ...] = Field(
        (), description="kinds to leave out, e.g. VolumeReplication while the source is still primary"
    )
    bound_timeout: Seconds = Field(120.0, description="seconds to wait for the restored PVCs to be Bound")


class RpoRequest(Request):
    """A request about the replication lag of every app, or of one."""

    app: str | None = Field(None, description="only this app; every protected app when empty")


class RpoSampleRequest(RpoRequest):
    """Sample both sites' mirror status once and record each app's lag."""

    exact: ExactMode = Field(
        "auto",
        description="exact mode (rbd snap ls on both sites): auto (when a breach is suspected), always or never",
    )
    compact: bool = Field(True, description="also compact yesterday's parquet parts into one file")


class RpoWatchRequest(RpoRequest):
    """Time each mirror snapshot's completion on the secondary, within one poll."""

    minutes: Minutes = Field(10.0, description="how long this run watches, in minutes")
    every_seconds: PollSeconds = Field(
        1.0, description="seconds between two listings of an image on its secondary"
    )
    busy_every_seconds: BusyPollSeconds = Field(
        0.25, description="seconds between two listings while a sync is in progress (its first 30 s)"
    )


class RpoReportRequest(RpoRequest):
    """Report the lag achieved over a window ending now."""

    since: str = Field("24h", min_length=2, description="window to report, ending now: e.g. 90m, 24h, 7d")


class OperationRequest(KeyedRequest):
    """A DR operation (relocate, failover, failback): plan, typed approval, then the steps."""

    dry_run: bool = Field(False, description="publish the plan and stop; change nothing")
    approval_timeout: int = Field(
        3600,
        gt=0,
        description="seconds to wait for the typed approval; the run then fails with nothing changed",
    )


class RelocateRequest(OperationRequest):
    """Planned move of an app to its other site, with no data loss."""

    to: str = Field(..., min_length=1, description="site to move the app to")


class FailoverRequest(OperationRequest):
    """Disaster move of an app to its other site; writes since the last complete snapshot are lost."""

    to: str = Field(..., min_length=1, description="site to recover the app on")
    take_over: str | None = Field(
        None,
        description="id of a failed, stale or abandoned operation holding the app, whose hold this failover takes"
        " over (the approval must acknowledge it; a live operation is never taken over)",
    )


class FailbackRequest(OperationRequest):
    """Bring an app home after a failover, once its home site is back."""


class AbortRequest(KeyedRequest):
    """Roll an operation back to its source, before its point of no return (the target's promote)."""

    op_id: str = Field(
        ..., min_length=1, description="id of the operation to abort (standby operation list --app APP)"
    )
    approval_timeout: int = Field(
        3600,
        gt=0,
        description="seconds to wait for the typed approval; the run then fails with nothing changed",
    )


class DrillOptions(Request):
    """What a drill takes besides the app: its mode, and how long a promote-mode drill waits for its approval."""

    mode: Mode = Field(
        "isolated",
        description="isolated: a scratch copy of the secondary's latest snapshot in the namespace NAMESPACE-drill, mirroring"
        " never stops; promote: force-promote the secondary's images, then demote and resync (asks for the typed"
        " approval a failover asks for)",
    )
    approval_timeout: int = Field(
        3600,
        gt=0,
        description="promote mode: seconds to wait for the typed approval; the run then fails with nothing changed"
        " (an isolated drill asks for none)",
    )


class DrillRequest(DrillOptions, KeyedRequest):
    """Prove the app and its data on the secondary, then return it to a healthy replica."""


class DrillAppsRequest(DrillOptions, EveryAppRequest):
    """Drill one app, or every configured app one at a time (apps that cannot carry a canary skipped).

    The skipped apps are named with the drill gate's reason (``canary possible``), never failed.
    """

    def one(self, app: str) -> DrillRequest:
        """The request of ``app``'s own drill: this one's mode, key source and approval timeout."""
        return DrillRequest(
            app=app, mode=self.mode, key_source=self.key_source, approval_timeout=self.approval_timeout
        )


class DrillCleanupRequest(KeyedRequest):
    """Return the secondary to a healthy replica after a drill; safe to run again."""


class StatusRequest(Request):
    """Read every app's status (``standby status``) and publish it as a table."""

    app: str | None = Field(None, description="only this app; every protected app when empty")
    key_source: KeySource = KEY_SOURCE


CONFIG_DESCRIPTION = (
    "path of the Standby configuration file (YAML), or block:NAME, NAME being a Standby Configuration block;"
    " when empty, $STANDBY_CONFIG, then ./standby.yaml"
)
"""Description of the ``config`` parameter every flow has (where the configuration comes from)."""

F = TypeVar("F", bound=Callable[..., Any])


def default(model: type[BaseModel], name: str) -> Any:
    """The default of ``model``'s field ``name``, for a flow parameter or a CLI option."""
    return model.model_fields[name].get_default(call_default_factory=True)


def describe(model: type[BaseModel], name: str) -> str:
    """The description of ``model``'s field ``name``, for a CLI option's help."""
    return model.model_fields[name].description or ""


def documented(model: type[BaseModel]) -> Callable[[F], F]:
    """Give a flow function's parameters ``model``'s descriptions, and check its defaults against it.

    Prefect builds a deployment's run form from the flow's signature and takes each parameter's
    description from the docstring's Google-style ``Args:`` section (``Annotated[..., Field(...)]``
    is ignored). This decorator, placed under ``@flow``, writes that section from the model, so a
    description is written once. It raises at import when a parameter is not a field of the model
    (``config`` excepted: its default is ``None``, resolved by the flow), when a default differs
    from the model's, or when the docstring already has an ``Args:`` section.
    """

    def decorate(fn: F) -> F:
        doc = inspect.cleandoc(fn.__doc__ or "")
        if "\nArgs:" in doc:
            raise TypeError(f"{fn.__name__}: the Args section is written from {model.__name__}; remove it")
        lines = []
        for name, param in inspect.signature(fn).parameters.items():
            if name == "config":
                text = CONFIG_DESCRIPTION
                if param.default is not None:
                    raise TypeError(
                        f"{fn.__name__}: write `config: str | None = None` (empty: $STANDBY_CONFIG)"
                    )
            elif name not in model.model_fields:
                raise TypeError(f"{fn.__name__}: parameter {name!r} is not a field of {model.__name__}")
            else:
                text = describe(model, name)
                info = model.model_fields[name]
                wanted = inspect.Parameter.empty if info.is_required() else default(model, name)
                if param.default != wanted:
                    raise TypeError(
                        f"{fn.__name__}: default of {name!r} is {param.default!r}, but {model.__name__} says"
                        f" {wanted!r}; write `= default({model.__name__}, {name!r})`"
                    )
            lines.append(f"    {name}: {text}")
        fn.__doc__ = doc + "\n\nArgs:\n" + "\n".join(lines) + "\n"
        return fn

    return decorate
