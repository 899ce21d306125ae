"""The request models: one default per parameter, shared by flows, tasks and the CLI."""

from __future__ import annotations

import inspect

import pytest

from drkit.domain.errors import ConfigError
from drkit.jobs import requests
from drkit.jobs.drill import prepare_drill
from drkit.jobs.requests import DrillRequest, RestoreRequest, RpoWatchRequest, default, documented
from drkit.jobs.restore import restore_backup


def test_a_bad_value_is_a_one_line_config_error_naming_the_parameter() -> None:
    with pytest.raises(ConfigError) as caught:
        RpoWatchRequest(minutes=5, every_seconds=0.01)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("rpo watch request: every_seconds:") and "0.2" in text
    with pytest.raises(ConfigError, match="restore request: target_site: required field is missing"):
        RestoreRequest(app="nexus")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="restore request: colour: unknown field"):
        RestoreRequest(app="nexus", target_site="site-b", colour="red")  # type: ignore[call-arg]


def test_the_engine_takes_its_defaults_from_the_models() -> None:
    assert inspect.signature(restore_backup).parameters["bound_timeout"].default == default(
        RestoreRequest, "bound_timeout"
    )
    assert inspect.signature(restore_backup).parameters["policy"].default == default(RestoreRequest, "policy")
    assert inspect.signature(prepare_drill).parameters["mode"].default == default(DrillRequest, "mode")


def test_documented_writes_the_args_section_from_the_model() -> None:
    def flow_fn(app: str, config: str | None = None, bound_timeout: float = 120.0) -> None:
        """Restore.

        1. One step.
        """

    documented(RestoreRequest)(flow_fn)
    doc = flow_fn.__doc__ or ""
    assert "1. One step." in doc
    assert "    app: name of the protected app, as in the configuration" in doc
    assert f"    config: {requests.CONFIG_DESCRIPTION}" in doc
    assert "    bound_timeout: seconds to wait for the restored PVCs to be Bound" in doc


def test_documented_refuses_a_restated_default_an_unknown_parameter_and_a_hand_written_args() -> None:
    def restated(app: str, bound_timeout: float = 60.0) -> None:
        """Doc."""

    with pytest.raises(
        TypeError, match=r"default of 'bound_timeout' is 60\.0, but RestoreRequest says 120\.0"
    ):
        documented(RestoreRequest)(restated)

    def unknown(app: str, colour: str = "red") -> None:
        """Doc."""

    with pytest.raises(TypeError, match="parameter 'colour' is not a field of RestoreRequest"):
        documented(RestoreRequest)(unknown)

    def by_hand(app: str) -> None:
        """Doc.

        Args:
            app: the app
        """

    with pytest.raises(TypeError, match="the Args section is written from RestoreRequest"):
        documented(RestoreRequest)(by_hand)

    def fixed_config(app: str, config: str = "standby.yaml") -> None:
        """Doc."""

    with pytest.raises(TypeError, match=r"write `config: str \| None = None`"):
        documented(RestoreRequest)(fixed_config)
