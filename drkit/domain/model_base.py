"""The base of every domain model (:class:`Model`: frozen pydantic, strict about unknown keys), the
``Duration`` type configuration files write as ``"5m"``, and the name pattern of sites, apps and
Kubernetes objects.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from drkit.domain.durations import parse_duration

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A duration written as ``"5m"``, ``"300s"``, ``"1h"`` or a number of seconds."""


class Model(BaseModel):
    """Base of every domain model: frozen, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DeprecatedField(FutureWarning):
    """A configuration field read under an older name (shown to users: a ``FutureWarning``)."""


def home_site_alias(data: Any) -> Any:
    """An app's raw fields with ``primary_site``, the older name of ``home_site``, read as it (with a warning)."""
    if isinstance(data, dict) and "primary_site" in data:
        data = dict(data)
        older = data.pop("primary_site")
        if "home_site" in data and data["home_site"] != older:
            raise ValueError(
                "primary_site (the older name of home_site) and home_site differ; keep home_site"
            )
        data["home_site"] = older
        warnings.warn(
            f"app {data.get('name', '?')}: primary_site is the older name of home_site; rename it"
            " (it is read as home_site)",
            DeprecatedField,
            stacklevel=3,
        )
    return data
