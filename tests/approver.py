"""Answer a flow run's approval pauses from another thread, as an operator does from the UI's form.

The flow runs in the test's thread and pauses (``pause_flow_run(wait_for_input=...)``); an
:class:`Approver` finds the paused run by name through the Prefect API, calls ``before`` (to check
that nothing changed while paused), and resumes it with the next answer, once per pause.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any


class Approver:
    """Resume the flow run named ``name`` with ``answers``, one per pause (each pause has a new key)."""

    def __init__(
        self,
        name: str,
        answers: list[dict[str, Any]],
        *,
        before: Callable[[], None] | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.name, self.answers, self.before, self.timeout = name, answers, before, timeout
        self.keys: list[str] = []
        self.error: BaseException | None = None
        context = contextvars.copy_context()  # the harness's settings (API URL) live in context variables
        self.thread = threading.Thread(target=lambda: context.run(self._run), daemon=True)

    def __enter__(self) -> Approver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(self.timeout)
        if self.error is not None and exc[0] is None:
            raise AssertionError(f"the approver failed: {self.error!r}") from self.error

    def _paused(self, client: Any) -> tuple[Any, str]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[self.name]))
            )
            for run in runs:
                state = run.state
                if state is not None and state.is_paused():
                    key = str(state.state_details.pause_key)
                    if key not in self.keys:
                        return run, key
                if state is not None and state.is_final():
                    raise AssertionError(
                        f"{self.name} ended {state.name} while an answer was left: {state.message}"
                    )
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not pause within {self.timeout:.0f}s")

    def _run(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.flow_runs import resume_flow_run

        try:
            with get_client(sync_client=True) as client:
                for answer in self.answers:
                    run, key = self._paused(client)
                    self.keys.append(key)
                    if self.before is not None:
                        self.before()
                    resume_flow_run(run.id, run_input=answer)
        except BaseException as error:  # handed to the test's thread by __exit__
            self.error = error
