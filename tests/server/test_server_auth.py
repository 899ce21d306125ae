"""The lab's Prefect servers need API authentication: ``make server`` / ``make demo``
(``deployments/server.py``) and the tests' ``prefect_server``.

An unauthenticated API call is refused (401); the auth string is accepted, by plain HTTP and by a
Prefect client; the health check answers without it (the readiness probe needs no secret); the
auth string is kept in a 0600 file and is in no log and no output.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployments import server
from tests.labhelpers import api_auth, free_port, prefect_server

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]


def _status(api: str, auth: str | None) -> int:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return httpx.post(f"{api}/flows/filter", json={}, headers=headers, timeout=10).status_code


@pytest.fixture
def lab_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``python -m deployments.server start`` in a home of its own, on a free port; stopped at the end."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("STANDBY_PREFECT_PORT", str(free_port()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = subprocess.run(
        [sys.executable, "-m", "deployments.server", "start"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield tmp_path / "prefect"
        assert server.auth_string() not in started.stdout + started.stderr
        assert str(server.auth_file()) in started.stdout  # where to find it, not what it is
    finally:
        server.stop()


def test_make_servers_api_refuses_an_unauthenticated_call_and_accepts_its_auth_string(
    lab_server: Path,
) -> None:
    api, auth = server.api_url(), server.auth_string()
    assert _status(api, None) == 401
    assert _status(api, "standby:a-guess") == 401
    assert _status(api, auth) == 200
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200
    assert stat.S_IMODE(server.auth_file().stat().st_mode) == 0o600
    assert server.auth_file().parent == lab_server / "run"
    log = (lab_server / "run" / "prefect-server.log").read_text(errors="replace")
    assert auth not in log
    # a second start reuses the running server and checks it still wants the same auth string
    assert server.start() == api
    env = {**os.environ, "PYTHONPATH": str(ROOT), **server.client_env()}
    probe = (
        "from prefect import get_client\nwith get_client(sync_client=True) as c: print(len(c.read_flows()))"
    )
    allowed = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0 and allowed.stdout.strip() == "0", allowed.stderr[-2000:]
    env.pop("PREFECT_API_AUTH_STRING")
    refused = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr[-2000:]


def test_a_server_without_authentication_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server of this home started before authentication (no auth string) is refused by ``start``."""
    from lab.procs import LabError, start_service

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("STANDBY_PREFECT_PORT", str(free_port()))
    argv = [
        str(Path(sys.executable).with_name("prefect")),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port()),
    ]
    start_service(
        "prefect-server",
        argv,
        server.run_dir(),
        port=server.port(),
        ready=server.healthy,
        env={"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"},
        timeout=120,
    )
    try:
        with pytest.raises(LabError, match="answers without authentication"):
            server.start()
    finally:
        server.stop()


def test_the_tests_prefect_server_refuses_an_unauthenticated_call() -> None:
    with prefect_server() as base:
        auth = api_auth()
        assert _status(f"{base}/api", None) == 401
        assert _status(f"{base}/api", auth) == 200
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: f"{base}/api"}), get_client(sync_client=True) as client:
            assert client.read_flows() == []  # the client sends the auth string the helper set
    assert "PREFECT_API_AUTH_STRING" not in os.environ or os.environ["PREFECT_API_AUTH_STRING"] != auth
