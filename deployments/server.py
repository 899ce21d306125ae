"""A local Prefect server for the demo and `make up`, run as a daemon tracked by a PID file.

``python -m deployments.server start|stop|status``. The server listens on 127.0.0.1
(``$STANDBY_PREFECT_PORT``, default 4200), keeps its database in ``$PREFECT_HOME`` (the Makefile
sets ``./.prefect``) and has analytics off. ``start`` is idempotent.
"""

from __future__ import annotations

import os
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
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "true",
           "PREFECT_UI_API_URL": api_url()}  # fmt: skip
    start_service(
        "prefect-server", argv, run_dir(), port=port(), ready=healthy, env=env, cwd=ROOT, timeout=120
    )
    return api_url()


def stop() -> bool:
    """Stop our server; False when none ran."""
    return stop_daemon(run_dir() / "prefect-server.pid", timeout=20)


def main(argv: list[str] | None = None) -> int:
    """``start``, ``stop`` or ``status``."""
    command = (argv or sys.argv[1:] or ["status"])[0]
    try:
        if command == "start":
            print(f"Prefect server: {start().removesuffix('/api')} (UI), API {api_url()}")
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
