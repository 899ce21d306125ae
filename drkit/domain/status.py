"""The records of ``standby status`` (pure): the newest backup seen and one app's status.

:mod:`drkit.jobs.status` reads them from a world; :mod:`drkit.views.status` renders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BackupSeen(BaseModel):
    """The newest complete backup of an app found in the world's stores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(..., description="run id")
    site: str = Field(..., description="site the backup was taken on")
    store: str = Field(..., description="store it was read from (sites sharing it joined by '/')")
    taken_at: datetime = Field(..., description="when the run started (from its run id)")


class AppStatus(BaseModel):
    """One app's status (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str = Field(..., description="the protected app")
    home: str = Field(..., description="the site the configuration names as the app's home")
    primary: str | None = Field(
        ..., description="the placement record's primary; None when no copy of it passes"
    )
    secondary: str | None = Field(..., description="the placement record's secondary")
    epoch: int | None = Field(..., description="the placement record's epoch")
    observed_primary: str | None = Field(..., description="the site(s) on which every image is primary")
    mirroring: dict[str, dict[str, str]] = Field(..., description="site -> image -> rbd mirror state")
    mirroring_health: dict[str, str] = Field(
        ..., description="site -> one line: role and state, or unreachable"
    )
    lag_seconds: float | None = Field(..., description="the secondary's measured lag; None when unknown")
    last_backup: BackupSeen | None = Field(..., description="the newest complete backup in any store")
    last_operation: str | None = Field(..., description="the newest operation's id and status")
    operation_in_progress: str | None = Field(..., description="the operation holding the placement record")
    warnings: tuple[str, ...] = Field((), description="what could not be read or disagrees")
    observed_at: datetime = Field(..., description="when the status was read")

    @property
    def backup_age_seconds(self) -> float | None:
        """Seconds between the last backup's start and the observation."""
        if self.last_backup is None:
            return None
        return (self.observed_at - self.last_backup.taken_at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The ``standby status --json`` object of this app (JSON types only)."""
        backup = self.last_backup
        return {
            "primary": self.primary,
            "secondary": self.secondary,
            "home": self.home,
            "epoch": self.epoch,
            "observed_primary": self.observed_primary,
            "mirroring": self.mirroring,
            "mirroring_health": self.mirroring_health,
            "lag_seconds": self.lag_seconds,
            "last_backup": backup.run_id if backup else None,
            "last_backup_site": backup.site if backup else None,
            "last_backup_store": backup.store if backup else None,
            "last_backup_at": backup.taken_at.isoformat() if backup else None,
            "last_backup_age_seconds": self.backup_age_seconds,
            "last_operation": self.last_operation,
            "operation_in_progress": self.operation_in_progress,
            "warnings": list(self.warnings),
        }
