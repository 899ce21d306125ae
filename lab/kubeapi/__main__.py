"""CLI: ``python -m lab.kubeapi serve --port P --state-dir D [--exec-allow rbd,ceph] [--exec-env K=V]...
[--exec-pod-label app=rook-ceph-tools] [--controllers module:function]...``.

Prints ``READY <url>`` once serving, then nothing more on stdout; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from pathlib import Path

from lab.kubeapi.exec import allowlist_handler
from lab.kubeapi.server import KubeApiServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.kubeapi")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run a fake kube-apiserver")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--state-dir", default=None)
    s.add_argument("--exec-allow", default="", help="comma-separated argv[0] allowed in pods/exec")
    s.add_argument("--exec-env", action="append", default=[], metavar="K=V")
    s.add_argument("--exec-pod-label", default=None, metavar="K=V", help="only pods with this label may exec")
    s.add_argument("--exec-timeout", type=float, default=120.0)
    s.add_argument("--controllers", action="append", default=[], metavar="module:function")
    s.add_argument("--tick", type=float, default=1.0)
    s.add_argument("--pvc-bind-delay", type=float, default=0.0)
    s.add_argument("--pod-start-delay", type=float, default=0.0)
    s.add_argument("--verbose", action="store_true", help="log requests to stderr")
    s.add_argument(
        "--admin-token-file",
        default=None,
        help="file holding the admin bearer token; turns on authentication, RBAC and the audit log",
    )
    s.add_argument("--audit-log", default=None, help="audit log path (default <state-dir>/audit.jsonl)")
    s.add_argument("--tls", action="store_true", help="serve HTTPS (self-signed, <state-dir>/tls.crt)")
    s.add_argument(
        "--tls-dir", default=None, help="serve HTTPS with DIR/tls.crt and tls.key (made if absent)"
    )
    return p


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"expected K=V, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    server = KubeApiServer(
        args.host,
        args.port,
        args.state_dir,
        tick_interval=args.tick,
        pvc_bind_delay=args.pvc_bind_delay,
        pod_start_delay=args.pod_start_delay,
        verbose=args.verbose,
        admin_token=Path(args.admin_token_file).read_text().strip() if args.admin_token_file else None,
        audit_log=args.audit_log,
        tls=args.tls,
        tls_dir=args.tls_dir,
    )
    allowed = {a.strip() for a in args.exec_allow.split(",") if a.strip()}
    if allowed:
        label = _kv(args.exec_pod_label) if args.exec_pod_label else None
        server.set_exec_handler(
            allowlist_handler(allowed, dict(_kv(e) for e in args.exec_env), label, args.exec_timeout)
        )
    for spec in args.controllers:
        module, _, func = spec.partition(":")
        if not func:
            raise SystemExit(f"--controllers expects module:function, got {spec!r}")
        getattr(importlib.import_module(module), func)(server)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    sys.stdout.write(f"READY {server.url}\n")
    sys.stdout.flush()
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
