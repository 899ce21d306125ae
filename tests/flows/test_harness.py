"""The harness itself: a flow runs, and its artifact can be read back."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import Artifact, create_markdown_artifact


@flow
def _hello(name: str) -> str:
    create_markdown_artifact(markdown=f"# hello {name}", key="standby-harness-check")
    return f"hello {name}"


def test_a_flow_runs_under_the_harness() -> None:
    assert _hello("lab") == "hello lab"
    artifact = Artifact.get("standby-harness-check")
    assert artifact is not None
    assert artifact.data == "# hello lab"
