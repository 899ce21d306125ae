"""``pods/<name>/exec`` over WebSocket (``v5.channel.k8s.io`` / ``v4.channel.k8s.io``) and exec handlers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.events import Request as WsRequest

from lab.kubeapi.errors import bad_request

if TYPE_CHECKING:
    from lab.kubeapi.handler import Handler
    from lab.kubeapi.store import Store
    from lab.kubeapi.verbs import Request

#: ``(namespace, pod, container, argv, stdin) -> (exit_code, stdout, stderr)``
ExecHandler = Callable[[str, str, str, list[str], bytes | None], tuple[int, bytes, bytes]]

PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
_STDIN, _STDOUT, _STDERR, _ERROR, _CLOSE = 0, 1, 2, 3, 255
_FRAME = 32 * 1024
_STDIN_TIMEOUT = 30.0


def refuse_all(
    namespace: str, pod: str, container: str, command: list[str], stdin: bytes | None
) -> tuple[int, bytes, bytes]:
    """Default exec handler: nothing runs (exit 126)."""
    return 126, b"", f"exec is disabled in the fake apiserver: {command[:1]}\n".encode()


class AllowlistHandler:
    """Run ``argv`` as a subprocess (no shell, with a timeout) when ``argv[0]`` is allowed and the pod has
    the label ``pod_label``; otherwise exit 126 with a message on stderr. Call :meth:`bind` with the store
    (the server does it) so pod labels can be checked."""

    def __init__(
        self,
        allowed: set[str],
        env: dict[str, str],
        pod_label: tuple[str, str] | None,
        timeout: float = 120.0,
    ) -> None:
        self.allowed = set(allowed)
        self.env = dict(env)
        self.pod_label = pod_label
        self.timeout = timeout
        self._store: Store | None = None

    def bind(self, store: Store) -> None:
        """Give the handler the store used to read pod labels."""
        self._store = store

    def __call__(
        self, namespace: str, pod: str, container: str, command: list[str], stdin: bytes | None
    ) -> tuple[int, bytes, bytes]:
        """Run or refuse ``command``."""
        if self.pod_label is not None:
            obj = self._store.try_get("pods", namespace, pod) if self._store else None
            labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            key, value = self.pod_label
            if labels.get(key) != value:
                return 126, b"", f"exec refused: pod {namespace}/{pod} lacks label {key}={value}\n".encode()
        if not command or "/" in command[0] or command[0] not in self.allowed:
            return (
                126,
                b"",
                (
                    f"exec refused: {command[0] if command else '(empty)'!r} is not allowed "
                    f"(allowed: {', '.join(sorted(self.allowed))})\n"
                ).encode(),
            )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            **self.env,
        }
        try:
            proc = subprocess.run(
                command, input=stdin or b"", capture_output=True, timeout=self.timeout, env=env, check=False
            )
        except FileNotFoundError:
            return 127, b"", f'exec: "{command[0]}": executable file not found in $PATH\n'.encode()
        except subprocess.TimeoutExpired as exc:
            return 124, exc.stdout or b"", (exc.stderr or b"") + f"timed out after {self.timeout}s\n".encode()
        return proc.returncode, proc.stdout, proc.stderr


def allowlist_handler(
    allowed: set[str], env: dict[str, str], pod_label: tuple[str, str] | None, timeout: float = 120.0
) -> AllowlistHandler:
    """Factory for :class:`AllowlistHandler`."""
    return AllowlistHandler(allowed, env, pod_label, timeout)


def _status(code: int, command: list[str]) -> bytes:
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    return json.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {command}, "
            f"exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    ).encode()


CLIENT_GO_STREAM_GRACE = 0.3
"""Seconds kubectl is given to register its streams before the first frame (see :func:`serve`)."""


def serve(handler: Handler, req: Request, exec_handler: ExecHandler) -> int:
    """Validate the exec request, upgrade to WebSocket, run the command and stream its output."""
    api = handler.api
    pod = api.store.get("pods", req.namespace, req.name or "")
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = req.query.get("container") or (containers[0] if containers else "")
    if container not in containers:
        raise bad_request(f"container {container} is not valid for pod {req.name}")
    if (pod.get("status") or {}).get("phase") != "Running":
        raise bad_request(
            f"unable to upgrade connection: pod {req.name} is not running "
            f"(phase {(pod.get('status') or {}).get('phase')})"
        )
    command = req.query_lists.get("command") or []
    if not command:
        raise bad_request("you must specify at least 1 command")
    if (handler.headers.get("Upgrade") or "").lower() != "websocket":
        raise bad_request(
            "Upgrade request required: this fake apiserver only speaks WebSocket exec (SPDY is not supported)"
        )
    offered = [
        p.strip() for p in (handler.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()
    ]
    chosen = next((p for p in PROTOCOLS if p in offered), None)
    if chosen is None:
        raise bad_request(f"none of the offered subprotocols {offered} is supported: {list(PROTOCOLS)}")
    ws = WSConnection(ConnectionType.SERVER)
    headers = [(k.encode(), v.encode()) for k, v in handler.headers.items()]
    ws.initiate_upgrade_connection(headers, handler.path)
    for event in ws.events():
        if not isinstance(event, WsRequest):
            raise bad_request("invalid websocket upgrade")
    sock: socket.socket = handler.connection
    sock.sendall(ws.send(AcceptConnection(subprotocol=chosen)))
    handler.close_connection = True
    stdin = (
        _read_stdin(handler, ws, sock, chosen)
        if req.query.get("stdin", "").lower() in ("1", "true")
        else None
    )
    try:
        code, out, err = exec_handler(req.namespace or "", req.name or "", container, command, stdin)
    except Exception as exc:
        code, out, err = 126, b"", f"exec handler failed: {exc!r}\n".encode()
    if "kubectl" in (handler.headers.get("User-Agent") or ""):
        # client-go registers its streams in one goroutine while another already reads frames, and
        # drops a frame for a stream not registered yet ("Unknown stream id 3, discarding message").
        # A real exec starts a process first; this fake answers at once, so it gives kubectl that time.
        time.sleep(CLIENT_GO_STREAM_GRACE)
    try:
        for channel, data in ((_STDOUT, out), (_STDERR, err)):
            for i in range(0, len(data), _FRAME):
                sock.sendall(ws.send(BytesMessage(data=bytes([channel]) + data[i : i + _FRAME])))
        sock.sendall(ws.send(BytesMessage(data=bytes([_ERROR]) + _status(code, command))))
        sock.sendall(ws.send(CloseConnection(code=1000)))
        _drain(handler, ws, sock)
    except OSError:
        pass
    return 101


def _recv(handler: Handler, timeout: float) -> bytes:
    handler.connection.settimeout(timeout)
    try:
        return handler.rfile.read1(65536)  # type: ignore[attr-defined]
    finally:
        handler.connection.settimeout(None)


def _read_stdin(handler: Handler, ws: WSConnection, sock: socket.socket, proto: str) -> bytes:
    """Collect stdin frames until the v5 CLOSE signal for stdin, a websocket close or a quiet period."""
    buf = bytearray()
    while True:
        try:
            data = _recv(handler, _STDIN_TIMEOUT if proto.startswith("v5") else 2.0)
        except (TimeoutError, OSError):
            return bytes(buf)
        if not data:
            return bytes(buf)
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, (BytesMessage, TextMessage)):
                payload = event.data.encode() if isinstance(event.data, str) else bytes(event.data)
                if payload[:1] == bytes([_STDIN]):
                    buf += payload[1:]
                elif payload[:1] == bytes([_CLOSE]) and payload[1:2] == bytes([_STDIN]):
                    return bytes(buf)
            elif isinstance(event, Ping):
                sock.sendall(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                return bytes(buf)


def _drain(handler: Handler, ws: WSConnection, sock: socket.socket) -> None:
    """Wait briefly for the client's close frame so the connection ends cleanly."""
    for _ in range(20):
        try:
            data = _recv(handler, 2.0)
        except (TimeoutError, OSError):
            return
        if not data:
            return
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, CloseConnection):
                return
