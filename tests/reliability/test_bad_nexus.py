"""Nexus answers badly (401, 403, 500, a hang, nobody listening, garbage): one line naming the URL, the site and the next step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from drkit.adapters.nexus import HttpNexus
from drkit.domain.errors import PreconditionFailed, StandbyError, TransientError
from tests.labhelpers import free_port, nexus_simulator
from tests.reliability.helpers import assert_one_line

PASSWORD = "reliability-nexus-pw-0931"
WRONG = "wrong-password-not-this-one"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project's Nexus simulator on a plain file (the lab runs it on an RBD image)."""
    with nexus_simulator(tmp_path_factory.mktemp("nexus"), PASSWORD) as url:
        yield url


class _Answer(BaseHTTPRequestHandler):
    """Answers every request with the server's ``status`` (and ``body``), after ``delay`` seconds."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server = self.server
        time.sleep(getattr(server, "delay", 0.0))
        body: bytes = getattr(server, "body", b"")
        try:
            self.send_response(getattr(server, "status", 500))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[..., str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes = b"", delay: float = 0.0) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        server.status, server.body, server.delay = status, body, delay  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


CALLS: dict[str, Callable[[HttpNexus], object]] = {
    "upload": lambda api: api.upload("dr-smoke", "canary.bin", b"x"),
    "ensure_raw_repository": lambda api: api.ensure_raw_repository("dr-smoke"),
    "freeze": lambda api: api.freeze(),
    "search": lambda api: api.search("dr-smoke"),
}


def _check(error: StandbyError, url: str) -> str:
    line = assert_one_line(str(error), url, "site-b")
    assert PASSWORD not in line and WRONG not in line
    return line


@pytest.mark.parametrize("call", list(CALLS))
def test_401_wrong_password_is_not_retried_and_names_the_secret(simulator: str, call: str) -> None:
    with (
        HttpNexus(simulator, username="admin", password=WRONG, site="site-b") as api,
        pytest.raises(PreconditionFailed) as info,
    ):
        CALLS[call](api)
    assert "401" in _check(info.value, simulator) and "admin password" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_and_name_the_status(answering: Callable[..., str], status: int) -> None:
    url = answering(status, b"<html>\n<h1>Internal error</h1>\n</html>")
    with (
        HttpNexus(url, username="admin", password=PASSWORD, site="site-b") as api,
        pytest.raises(TransientError) as info,
    ):
        api.upload("dr-smoke", "canary.bin", b"x")
    assert str(status) in _check(info.value, url)


def test_403_is_a_precondition_naming_the_password(answering: Callable[..., str]) -> None:
    url = answering(403, b'{"message": "forbidden"}')
    with (
        HttpNexus(url, username="admin", password=PASSWORD, site="site-b") as api,
        pytest.raises(PreconditionFailed) as info,
    ):
        api.freeze()
    assert "403" in _check(info.value, url)


def test_a_hang_is_a_timeout_naming_the_call(answering: Callable[..., str]) -> None:
    url = answering(200, b"{}", delay=3.0)
    with (
        HttpNexus(url, username="admin", password=PASSWORD, site="site-b", timeout=0.5) as api,
        pytest.raises(TransientError) as info,
    ):
        api.upload("dr-smoke", "canary.bin", b"x")
    assert "did not answer" in _check(info.value, url)


def test_nobody_listening_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        HttpNexus(url, username="admin", password=PASSWORD, site="site-b", timeout=2) as api,
        pytest.raises(TransientError) as info,
    ):
        api.download("dr-smoke", "canary.bin")
    assert "unreachable" in _check(info.value, url)


def test_garbage_json_is_one_line(answering: Callable[..., str]) -> None:
    url = answering(200, b"<html>not json</html>")
    with (
        HttpNexus(url, username="admin", password=PASSWORD, site="site-b") as api,
        pytest.raises(StandbyError) as info,
    ):
        api.search("dr-smoke")
    _check(info.value, url)
