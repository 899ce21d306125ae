"""The XML-RPC transport of the fake front-end: oned's methods, session check and reply convention.

Every ``one.*`` method takes the session ``"user:password"`` first and answers
``[True, result, 0]`` or ``[False, message, code, resp_id]`` as oned does; a wrong number or type
of parameters is an XML-RPC fault, as from oned's xmlrpc-c. Two test switches, also reachable over
XML-RPC with the site's credentials (``lab.fault``, ``lab.lock``), make a call misbehave:

* a fault per method (:data:`FAULTS`): ``broken-body`` answers a truncated XML document (pyone's
  parser rejects it), ``internal-error`` an INTERNAL error reply, ``http-500`` an HTTP 500;
* a lock on a VM, image, template or network, after which changes to it answer LOCKED.

Standard library only.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn
from typing import Any
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from lab.opennebula.oned import AUTHENTICATION, Oned, OneError

LOG = logging.getLogger("opennebula")
FAULTS = ("broken-body", "internal-error", "http-500")
BROKEN_BODY = "<VM><ID>0</ID><NAME>broken"
LOCK_KINDS = {"vm": "vms", "image": "images", "template": "templates", "vnet": "vnets"}

# name: (Oned method, parameter types after the session, how many are required)
METHODS: dict[str, tuple[str, tuple[type, ...], int]] = {
    "one.system.version": ("system_version", (), 0),
    "one.vm.info": ("vm_info", (int, bool), 1),
    "one.vmpool.infoextended": ("vmpool_infoextended", (int, int, int, int, str), 4),
    "one.vm.allocate": ("vm_allocate", (str, bool), 1),
    "one.vm.deploy": ("vm_deploy", (int, int, bool, int, str), 2),
    "one.vm.action": ("vm_action", (str, int), 2),
    "one.image.allocate": ("image_allocate", (str, int, bool), 2),
    "one.image.info": ("image_info", (int, bool), 1),
    "one.imagepool.info": ("imagepool_info", (int, int, int), 0),
    "one.image.persistent": ("image_persistent", (int, bool), 2),
    "one.image.delete": ("image_delete", (int, bool), 1),
    "one.template.info": ("template_info", (int, bool, bool), 1),
    "one.vn.info": ("vn_info", (int, bool), 1),
    "one.vnpool.info": ("vnpool_info", (int, int, int), 0),
    "one.datastore.info": ("datastore_info", (int, bool), 1),
}


class _Http500(Exception):
    """Raised by a dispatch to make the handler answer HTTP 500."""


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/RPC2", "/")

    def do_POST(self) -> None:
        server: FrontendServer = self.server  # type: ignore[assignment]
        server.http_500.active = False
        super().do_POST()

    def send_response(self, code: int, message: str | None = None) -> None:
        server: FrontendServer = self.server  # type: ignore[assignment]
        if code == 200 and getattr(server.http_500, "active", False):
            code, message = 500, "Internal Server Error"
        BaseHTTPRequestHandler.send_response(self, code, message)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.client_address[0], *args)


class FrontendServer(ThreadingMixIn, SimpleXMLRPCServer):
    """One site's front-end: an :class:`Oned` served over XML-RPC with the site's credentials."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], oned: Oned, user: str, password: str) -> None:
        super().__init__(address, requestHandler=_Handler, logRequests=False, allow_none=False)
        self.oned = oned
        self._session = f"{user}:{password}"
        self.faults: dict[str, str] = {}
        self.http_500 = threading.local()
        self.register_introspection_functions()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}/RPC2"

    def set_fault(self, method: str, fault: str | None) -> None:
        """Make ``method`` misbehave (one of :data:`FAULTS`), or behave again (None)."""
        if fault is None:
            self.faults.pop(method, None)
            return
        if fault not in FAULTS or method not in METHODS:
            raise ValueError(f"unknown fault {fault!r} or method {method!r}")
        self.faults[method] = fault

    def _authenticated(self, session: object) -> bool:
        return isinstance(session, str) and hmac.compare_digest(session.encode(), self._session.encode())

    def _dispatch(self, method: str, params: tuple[Any, ...]) -> Any:
        if method in ("lab.fault", "lab.lock"):
            return self._lab_switch(method, params)
        if method not in METHODS:
            raise Fault(-32601, f"method {method!r} is not supported by this front-end")
        name, types, required = METHODS[method]
        if not params:
            raise Fault(-501, f"{method}: the session string is missing")
        session, args = params[0], params[1:]
        if not required <= len(args) <= len(types):
            raise Fault(-501, f"{method}: expected {required} to {len(types)} parameters after the session")
        for i, (arg, kind) in enumerate(zip(args, types, strict=False)):
            if kind is int and (isinstance(arg, bool) or not isinstance(arg, int)):
                raise Fault(-501, f"{method}: parameter {i + 2} must be an int")
            if kind is bool and not isinstance(arg, bool):
                raise Fault(-501, f"{method}: parameter {i + 2} must be a boolean")
            if kind is str and not isinstance(arg, str):
                raise Fault(-501, f"{method}: parameter {i + 2} must be a string")
        if not self._authenticated(session):
            return [False, f"[{method}] User couldn't be authenticated, aborting call.", AUTHENTICATION, -1]
        fault = self.faults.get(method)
        if fault == "http-500":
            self.http_500.active = True
            return [False, "injected HTTP 500", 0x2000, -1]
        if fault == "internal-error":
            return [False, f"[{method}] Injected internal error.", 0x2000, -1]
        try:
            result = getattr(self.oned, name)(*args)
        except OneError as err:
            return [False, err.message, err.code, err.resp_id]
        if fault == "broken-body":
            return [True, BROKEN_BODY, 0]
        return [True, result, 0]

    def _lab_switch(self, method: str, params: tuple[Any, ...]) -> Any:
        if not params or not self._authenticated(params[0]):
            return [False, f"[{method}] User couldn't be authenticated, aborting call.", AUTHENTICATION, -1]
        try:
            if method == "lab.fault":
                _, target, fault = params
                self.set_fault(str(target), str(fault) or None)
            else:
                _, kind, oid, level = params
                self.oned.set_lock(LOCK_KINDS[str(kind)], int(oid), int(level))
        except OneError as err:
            return [False, err.message, err.code, err.resp_id]
        except (ValueError, KeyError) as exc:
            raise Fault(-501, f"{method}: {exc}") from None
        return [True, True, 0]


def make_server(
    oned: Oned, *, user: str, password: str, host: str = "127.0.0.1", port: int = 0
) -> FrontendServer:
    """A front-end bound to ``host:port`` (0: a free port), not yet serving."""
    return FrontendServer((host, port), oned, user, password)


def serve_in_thread(server: FrontendServer) -> Callable[[], None]:
    """Serve on a daemon thread; return the function that stops it and closes the socket."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
