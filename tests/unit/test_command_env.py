"""Commands (rbd, the librbd script) never inherit Standby's secrets from the environment."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drkit.adapters import runner as runner_mod
from drkit.adapters.objectstore import S3Credentials
from drkit.adapters.runner import LocalRunner
from drkit.config import load_config
from drkit.jobs.backup import key_from_env
from drkit.jobs.requests import KEY_ENV
from drkit.jobs.sites import rbd_for

ROOT = Path(__file__).resolve().parents[2]
PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
KEY = "q7W1m2Zk9xC4vB6nL8pR0tY3uI5oE7aS9dF1gH3jK5Q="


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    saved = set(runner_mod.SECRET_ENV)
    yield
    runner_mod.SECRET_ENV.clear()
    runner_mod.SECRET_ENV.update(saved)


def _seen(run: LocalRunner) -> dict[str, str]:
    out: dict[str, str] = json.loads(run.run(PRINT_ENV, description="print the environment").stdout)
    return out


def test_a_real_command_gets_the_environment_without_the_backup_key_s3_keys_or_aws_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = load_config(ROOT / "standby.example.yaml")
    site = cfg.sites[0]
    secrets = {
        KEY_ENV: KEY,
        "MY_OTHER_KEY": KEY,  # a --key-env name
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "AWS_SESSION_TOKEN": "aws-session-token",
        "SITE_S3_ID": "site-s3-id",
        "SITE_S3_SECRET": "site-s3-secret",
        "PREFECT_API_AUTH_STRING": "standby:prefect-api-auth",  # the Prefect API's credentials
        "PREFECT_API_KEY": "pnu_prefect-api-key",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLAIN_SETTING", "kept")
    assert key_from_env("MY_OTHER_KEY") is not None
    site = site.model_copy(
        update={
            "s3": site.s3.model_copy(
                update={"access_key_id_env": "SITE_S3_ID", "secret_access_key_env": "SITE_S3_SECRET"}
            )
        }
    )
    S3Credentials.from_location(site.s3)
    seen = _seen(LocalRunner(env={"CEPH_ARGS": "--id standby"}))
    assert not set(secrets) & set(seen)
    assert not set(secrets.values()) & set(seen.values())
    assert seen["PLAIN_SETTING"] == "kept" and seen["CEPH_ARGS"] == "--id standby" and "PATH" in seen


def test_the_site_rbd_runner_hides_the_sites_s3_variables_even_before_they_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = load_config(ROOT / "standby.example.yaml")
    site = cfg.sites[0]
    site = site.model_copy(
        update={
            "ceph": site.ceph.model_copy(update={"mode": "local", "conf": Path("/nonexistent/ceph.conf")}),
            "s3": site.s3.model_copy(
                update={"access_key_id_env": "EARLY_ID", "secret_access_key_env": "EARLY_SECRET"}
            ),
        }
    )
    monkeypatch.setenv("EARLY_ID", "early-id")
    monkeypatch.setenv("EARLY_SECRET", "early-secret")
    rbd = rbd_for(site)
    assert isinstance(rbd.runner, LocalRunner)
    seen = _seen(rbd.runner)
    assert "EARLY_ID" not in seen and "EARLY_SECRET" not in seen


def test_the_cli_key_env_name_is_hidden_as_soon_as_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from standby.cli import app

    monkeypatch.setenv("CLI_GIVEN_KEY", KEY)
    CliRunner().invoke(
        app, ["backup", "verify", "--config", "/nonexistent.yaml", "--key-env", "CLI_GIVEN_KEY", "nexus"]
    )
    assert "CLI_GIVEN_KEY" not in _seen(LocalRunner())
