"""A local Prefect server for the demo and `make up`, run as a daemon tracked by a PID file.

``python -m deployments.server start|stop|status``. The server listens on 127.0.0.1
(``$STANDBY_PREFECT_PORT``, default 4200), keeps its database in ``$PREFECT_HOME`` (the Makefile
sets ``./.prefect``) and has analytics off. ``start`` is idempotent.

Its API needs authentication: whoever reaches the Prefect API can start any deployment, resume
an approval, read the Secret blocks (the backup key among them) and change the work pools. The
auth string (``PREFECT_SERVER_API_AUTH_STRING`` for the server, ``PREFECT_API_AUTH_STRING`` for
its clients, the UI's login form) is made once, at random, in ``$PREFECT_HOME/run/api-auth``
(mode 0600); it is never printed or logged, only the file's path. Only ``/api/health`` and
``/api/ready`` answer without it.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

import httpx

from lab.procs import LabError, read_pid, start_service, stop_daemon

ROOT = Path(__file__).resolve().parent.parent


def port() -> int:
    """The server's port."""
    return int(os.environ.get("STANDBY_PREFECT_PORT", "4200"))


def api_url() -> str:
    """``PREFECT_API_URL`` of the local server."""
    return f"http://127.0.0.1:{port()}/api"


def run_dir() -> Path:
    """Where the PID file and log live."""
    home = Path(os.environ.get("PREFECT_HOME") or ROOT / ".prefect")
    return home / "run"


def auth_file() -> Path:
    """The file holding the API's auth string (``user:password``, mode 0600)."""
    return run_dir() / "api-auth"


def auth_string() -> str:
    """The API's auth string: read from :func:`auth_file`, made once at random (never printed)."""
    path = auth_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"standby:{secrets.token_urlsafe(24)}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another start
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return path.read_text(encoding="utf-8").strip()


def client_env() -> dict[str, str]:
    """What a Prefect client of this server needs in its environment (the auth string included)."""
    return {"PREFECT_API_URL": api_url(), "PREFECT_API_AUTH_STRING": auth_string()}


def _answers(headers: dict[str, str]) -> int:
    """The status of an API read that needs authentication, with ``headers``."""
    return httpx.post(f"{api_url()}/flows/filter", json={}, headers=headers, timeout=10).status_code


def check_auth() -> None:
    """Raise unless the server refuses an unauthenticated call and accepts our auth string.

    A server started before its API had authentication (or with another auth string) must not be
    reused silently.
    """
    token = base64.b64encode(auth_string().encode()).decode()
    if _answers({}) != 401:
        raise LabError(
            f"the Prefect server at {api_url()} answers without authentication (it was started before the lab's"
            " server had API authentication)",
            hint="stop it (make down, or python -m deployments.server stop) and start it again (make server)",
        )
    if _answers({"Authorization": f"Basic {token}"}) != 200:
        raise LabError(
            f"the Prefect server at {api_url()} refuses the auth string in {auth_file()}",
            hint="stop it (python -m deployments.server stop) and start it again, so both use the same file",
        )


def healthy() -> bool:
    """Whether the server answers its health check."""
    try:
        return httpx.get(f"{api_url()}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start() -> str:
    """Start the server unless ours runs; return its API URL."""
    prefect = Path(sys.executable).with_name("prefect")
    argv = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port())]
    # PREFECT_UI_API_URL: without it the UI calls the API on port 4200 whatever the server's port.
    env = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": api_url(),
        "PREFECT_SERVER_API_AUTH_STRING": auth_string(),
    }
    start_service(
        "prefect-server", argv, run_dir(), port=port(), ready=healthy, env=env, cwd=ROOT, timeout=120
    )
    check_auth()
    return api_url()


def stop() -> bool:
    """Stop our server; False when none ran."""
    return stop_daemon(run_dir() / "prefect-server.pid", timeout=20)


def main(argv: list[str] | None = None) -> int:
    """``start``, ``stop`` or ``status``."""
    command = (argv or sys.argv[1:] or ["status"])[0]
    try:
        if command == "start":
            print(
                f"Prefect server: {start().removesuffix('/api')} (UI), API {api_url()}; sign in (and set"
                f" PREFECT_API_AUTH_STRING) with the auth string in {auth_file()}"
            )
        elif command == "stop":
            print("Prefect server stopped" if stop() else "no Prefect server was running")
        else:
            pid = read_pid(run_dir() / "prefect-server.pid")
            print(f"Prefect server {'up' if healthy() else 'down'} (pid {pid}) at {api_url()}")
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
