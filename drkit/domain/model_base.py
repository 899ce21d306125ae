"""The base of every domain model (:class:`Model`: frozen pydantic, strict about unknown keys), the
``Duration`` type configuration files write as ``"5m"``, and the name pattern of sites, apps and
Kubernetes objects.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from drkit.domain.durations import parse_duration

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A duration written as ``"5m"``, ``"300s"``, ``"1h"`` or a number of seconds."""


class Model(BaseModel):
    """Base of every domain model: frozen, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
