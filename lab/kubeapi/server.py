"""``KubeApiServer``: the HTTP server, the store, the controllers and the knobs, wired together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.kubeapi import crds, persistence
from lab.kubeapi.auth import AUDIT_FILE, AuditLog, Tokens
from lab.kubeapi.binding import VolumeBinder
from lab.kubeapi.controllers import ControllerFn, ControllerManager
from lab.kubeapi.exec import ExecHandler, refuse_all
from lab.kubeapi.faults import Fault, Faults, Stats
from lab.kubeapi.handler import Handler
from lab.kubeapi.rbac import RBAC_GROUP, bootstrap_objects
from lab.kubeapi.resources import Registry
from lab.kubeapi.store import Store
from lab.kubeapi.workloads import PodCanStart, Workloads

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], api: KubeApiServer) -> None:
        self.api = api
        super().__init__(addr, Handler)


class StoreRbac:
    """The store's RBAC objects, for :func:`lab.kubeapi.rbac.authorize`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def rbac_objects(self, kind: str) -> list[dict[str, Any]]:
        """Every Role, ClusterRole, RoleBinding or ClusterRoleBinding."""
        return self.store.list(f"{RBAC_GROUP}/v1/{kind}")


class KubeApiServer:
    """A fake kube-apiserver on ``http://host:port`` (port 0 picks a free port; see :meth:`start`).

    With ``admin_token`` set, requests are authenticated (bearer tokens) and authorized by RBAC, and each
    is written to the audit log (``audit_log``, by default ``<state_dir>/audit.jsonl``); see
    :mod:`lab.kubeapi.auth`. Without it every request is the superuser and nothing is audited.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
        *,
        exec_handler: ExecHandler | None = None,
        pod_can_start: PodCanStart | None = None,
        tick_interval: float = 1.0,
        pvc_bind_delay: float = 0.0,
        pod_start_delay: float = 0.0,
        workload_delay: float = 0.0,
        builtin_controllers: bool = True,
        verbose: bool = False,
        admin_token: str | None = None,
        audit_log: str | Path | None = None,
        tls: bool = False,
        tls_dir: str | Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.verbose = verbose
        self.registry = Registry()
        self.store = Store(self.registry)
        self.faults = Faults()
        self.stats = Stats()
        self.stopping = threading.Event()
        self.state_dir = Path(state_dir) if state_dir else None
        self.exec_handler: ExecHandler = refuse_all
        self.set_exec_handler(exec_handler or refuse_all)
        loaded = persistence.load(self.store, self.state_dir) if self.state_dir else False
        if not loaded:
            self._bootstrap()
        self.tokens = Tokens(admin_token, self.state_dir)
        if audit_log is None and admin_token is not None and self.state_dir is not None:
            audit_log = self.state_dir / AUDIT_FILE
        self.audit = AuditLog(Path(audit_log) if audit_log else None)
        self.rbac = StoreRbac(self.store)
        self.tls = tls or tls_dir is not None
        self.tls_dir = Path(tls_dir) if tls_dir else None
        self.ca_file: Path | None = None
        if self.tokens.enabled:
            for obj in bootstrap_objects():
                ref = f"{RBAC_GROUP}/v1/{obj['kind']}"
                if self.store.try_get(ref, None, obj["metadata"]["name"]) is None:
                    self.store.create(ref, obj)
        self.persister = persistence.Persister(self.store, self.state_dir) if self.state_dir else None
        self.controllers = ControllerManager(self.store, tick_interval)
        self.binder = VolumeBinder(pvc_bind_delay)
        self.workloads = Workloads(workload_delay, pod_start_delay, pod_can_start)
        if builtin_controllers:
            self.controllers.add(self.binder)
            self.controllers.add(self.workloads)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _bootstrap(self) -> None:
        for ns in DEFAULT_NAMESPACES:
            self.store.create("namespaces", {"metadata": {"name": ns}})
        for crd in crds.PREINSTALLED:
            self.store.create("customresourcedefinitions", crd)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> int:
        """Bind, serve in background threads, start controllers; returns the bound port."""
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        if self.tls:
            import ssl
            import tempfile

            from lab.kubeapi.tls import ensure_certificate

            folder = self.tls_dir or self.state_dir or Path(tempfile.mkdtemp(prefix="kubeapi-tls-"))
            cert, key = ensure_certificate(folder, self.host)
            self.ca_file = cert
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            # the handshake happens in the connection's own thread, never in the accepting one
            self._httpd.socket = ctx.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kubeapi-http", daemon=True
        )
        self._thread.start()
        self.controllers.start()
        if self.persister:
            self.persister.start()
        return self.port

    def stop(self) -> None:
        """Stop serving (open watches end within a second), stop controllers, write the state."""
        self.stopping.set()
        with self.store.changed:
            self.store.changed.notify_all()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.controllers.stop()
        if self.persister:
            self.persister.stop()

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121`` (``https`` with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # -- extension API --------------------------------------------------------------------------------
    def add_controller(self, fn: ControllerFn) -> None:
        """Register ``fn(store, event_type, obj)``; called from the controller thread for every change
        (``ADDED``/``MODIFIED``/``DELETED``) and every tick (``TICK``, ``obj=None``)."""
        self.controllers.add(fn)

    def set_exec_handler(self, handler: ExecHandler) -> None:
        """Install the exec handler; handlers with a ``bind(store)`` method get the store."""
        bind: Callable[[Store], None] | None = getattr(handler, "bind", None)
        if bind is not None:
            bind(self.store)
        self.exec_handler = handler

    def set_pod_can_start(self, hook: PodCanStart) -> None:
        """Replace the ``pod_can_start(store, pod) -> (bool, reason)`` hook."""
        self.workloads.pod_can_start = hook

    def add_fault(self, fault: Fault | dict[str, Any]) -> Fault:
        """Add a fault rule (see :class:`lab.kubeapi.faults.Fault`)."""
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults.clear()
