"""Placement: which site is an app's primary *now*, as a record, and what the sites say of it.

The configuration names an app's *home* (``home_site``) and its other site; after a failover
the current primary is the other one. Jobs never read the roles from the configuration: they are
given the app's :class:`Placement` (read once per run by the World) and use its ``primary`` and
``secondary`` (:func:`roles` where a job may be given none: the app is then on its home). The record (:class:`Placement`) lives in the object store
(``<prefix>/placement/<app>.json``) and is only changed by compare-and-swap; its ``epoch`` grows by
one with every write. While an operation runs, the record names it, which is also the app's lock.

:func:`disagreements` compares the record with an observation of both sites (:class:`AppView`) and
returns readable reasons; an empty list means record and reality agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import Field

from drkit.domain.errors import Conflict
from drkit.domain.model_base import Model
from drkit.domain.models import ProtectedApp

Role = Literal["primary", "secondary", "absent", "unknown"]
"""An image's role on one site: ``unknown`` when the site could not be asked."""


class Placement(Model):
    """The record of where an app runs now."""

    app: str = Field(..., description="the protected app")
    primary: str = Field(..., description="site whose images are primary and which runs the app")
    secondary: str = Field(..., description="site holding the mirrored copy")
    epoch: int = Field(0, ge=0, description="grows by one with every write; 0: never written (config's home)")
    operation: str | None = Field(None, description="id of the operation in progress, which holds the app")
    operation_kind: str | None = Field(None, description="kind of that operation (relocate, failover...)")
    updated_at: datetime | None = Field(None, description="when the record was last written")

    def held_by(self, op_id: str) -> bool:
        """Whether operation ``op_id`` holds the app."""
        return self.operation == op_id


def home_placement(app: ProtectedApp) -> Placement:
    """The placement before any record exists: the app on its home site."""
    return Placement(app=app.name, primary=app.home_site, secondary=app.secondary_site)


def roles(app: ProtectedApp, placements: Mapping[str, Placement] | None) -> tuple[str, str]:
    """The app's current ``(primary, secondary)``: its record in ``placements``, else its home."""
    record = (placements or {}).get(app.name) or home_placement(app)
    return record.primary, record.secondary


def begin(
    current: Placement, op_id: str, kind: str, now: datetime, *, take_over: str | None = None
) -> Placement:
    """The record taking the app for ``op_id``; :class:`Conflict` when another operation holds it
    (unless it is ``take_over``, the failed operation whose hold ``op_id`` takes over)."""
    if current.operation and current.operation not in (op_id, take_over):
        raise Conflict(
            f"app {current.app} is held by {current.operation_kind or 'an'} operation {current.operation};"
            f" {kind} {op_id} refused",
            hint=f"wait for it, or resume it: standby operation resume {current.operation}, or roll it back:"
            f" standby operation abort {current.operation} (see: standby operation list --app {current.app})",
            context={"app": current.app, "operation": current.operation},
        )
    return current.model_copy(
        update={"operation": op_id, "operation_kind": kind, "epoch": current.epoch + 1, "updated_at": now}
    )


def moved(current: Placement, primary: str, now: datetime) -> Placement:
    """The record with ``primary`` as the app's primary (the operation still holds it)."""
    if primary == current.primary:
        return current
    return current.model_copy(
        update={
            "primary": primary,
            "secondary": current.primary,
            "epoch": current.epoch + 1,
            "updated_at": now,
        }
    )


def released(current: Placement, op_id: str, now: datetime) -> Placement:
    """The record with ``op_id``'s hold released (unchanged when it does not hold the app)."""
    if current.operation != op_id:
        return current
    return current.model_copy(
        update={"operation": None, "operation_kind": None, "epoch": current.epoch + 1, "updated_at": now}
    )


class SiteView(Model):
    """What one site said about an app's images, at one moment."""

    site: str = Field(..., description="site name")
    reachable: bool = Field(..., description="whether the site answered")
    error: str = Field("", description="why it could not be asked, when unreachable")
    roles: dict[str, Role] = Field(default_factory=dict, description="image name -> role on this site")
    states: dict[str, str] = Field(
        default_factory=dict, description="image name -> rbd mirror state, e.g. up+replaying"
    )
    descriptions: dict[str, str] = Field(default_factory=dict, description="image name -> status description")


class AppView(Model):
    """What both sites said about an app: the input of plans and of the placement check."""

    app: str = Field(..., description="the protected app")
    images: tuple[str, ...] = Field(..., description="the app's images")
    sites: dict[str, SiteView] = Field(..., description="site name -> its view")
    lag_seconds: float | None = Field(None, description="measured lag of the secondary; None when unknown")
    observed_at: datetime = Field(..., description="when the observation was made")

    def primaries(self) -> list[str]:
        """Sites on which every image of the app is primary."""
        return [
            name
            for name, view in self.sites.items()
            if view.reachable and all(view.roles.get(i) == "primary" for i in self.images)
        ]

    def split_brain(self) -> list[str]:
        """Images primary on more than one site, as readable lines."""
        out = []
        for image in self.images:
            where = [n for n, v in self.sites.items() if v.reachable and v.roles.get(image) == "primary"]
            if len(where) > 1:
                out.append(f"{image} is primary on {' and '.join(where)}")
            errors = [n for n, v in self.sites.items() if "split-brain" in v.descriptions.get(image, "")]
            if errors:
                out.append(f"{image} reports split-brain on {', '.join(errors)}")
        return out

    def unreachable(self) -> list[str]:
        """Names of the sites that did not answer."""
        return [n for n, v in self.sites.items() if not v.reachable]


def disagreements(record: Placement, view: AppView) -> list[str]:
    """Why the record and what the sites say disagree; empty when they agree.

    An unreachable site is not a disagreement (it says nothing). An image that is primary on
    the record's secondary, or not primary on the record's primary, is.
    """
    out = []
    for image in view.images:
        primary_view = view.sites.get(record.primary)
        if primary_view is not None and primary_view.reachable:
            role = primary_view.roles.get(image, "absent")
            if role != "primary":
                out.append(f"record says {record.primary} is primary, but {image} is {role} there")
        secondary_view = view.sites.get(record.secondary)
        if secondary_view is not None and secondary_view.reachable:
            role = secondary_view.roles.get(image, "absent")
            if role == "primary":
                out.append(f"record says {record.secondary} is secondary, but {image} is primary there")
    return out
