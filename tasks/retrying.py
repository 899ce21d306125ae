"""Retry policy shared by every Standby task."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from drkit.domain.errors import is_retryable


def retry_transient(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry only when the task failed with a retryable (transient) error."""
    try:
        state.result()
    except Exception as exc:  # the failure the state carries
        return is_retryable(exc)
    return False
