"""Command line: open the device, refuse a secondary image, replay the volume, serve until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from lab.nexus_sim.auth import AuthConfig
from lab.nexus_sim.device import (
    EXIT_BIND,
    EXIT_OK,
    EXIT_USAGE,
    BlockDevice,
    DeviceError,
    FileDevice,
    RbdDevice,
)
from lab.nexus_sim.server import NexusHTTPServer, make_server
from lab.nexus_sim.store import Store
from lab.nexus_sim.volume import Volume
from lab.simserve import add_rbd_arguments, rbd_target, serve_until_stopped

LOG = logging.getLogger("nexus_sim")
PASSWORD_ENV = "NEXUS_ADMIN_PASSWORD"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (``python3 -m lab.nexus_sim --help``)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.nexus_sim",
        description="Nexus Repository 3 REST simulator whose blob store lives on an RBD image or a file.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="plain file used as the volume (must exist with its final size)")
    src.add_argument("--rbd-image", help="RBD image holding the volume")
    add_rbd_arguments(parser, required=False)
    parser.add_argument(
        "--admin-password-file", help=f"file holding the admin password (else ${PASSWORD_ENV})"
    )
    parser.add_argument(
        "--no-anonymous",
        action="store_true",
        help="disable anonymous access (missing credentials answer 401, not 403)",
    )
    parser.add_argument("--pid-file", help="write the process id here while running")
    parser.add_argument("--log-file", help="append logs here (default stderr)")
    return parser


def _setup_logging(log_file: str | None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _fatal(message: str, code: int, log_file: str | None) -> int:
    line = f"FATAL: {message}"
    LOG.critical("%s", line)
    if log_file:
        print(line, file=sys.stderr, flush=True)
    return code


def _password(args: argparse.Namespace) -> str | None:
    if args.admin_password_file:
        with open(args.admin_password_file, encoding="utf-8") as handle:
            return handle.read().strip("\r\n")
    return os.environ.get(PASSWORD_ENV) or None


def _open_device(args: argparse.Namespace) -> tuple[BlockDevice, str]:
    if args.file:
        return FileDevice(args.file), "file volume"
    device = RbdDevice(rbd_target(args))
    try:
        note = device.check_primary()
    except DeviceError:
        device.close()
        raise
    return device, note


def _remount(args: argparse.Namespace) -> Callable[[], Volume] | None:
    """How to mount an RBD volume again once the cluster fenced the connection (none for a file)."""
    if args.file:
        return None

    def mount() -> Volume:
        device, _ = _open_device(args)
        volume = Volume(device)
        try:
            volume.open()
        except DeviceError:
            device.close()
            raise
        return volume

    return mount


def run(argv: list[str] | None = None) -> int:
    """Entry point returning the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rbd_image and not (args.rbd_pool and args.ceph_conf):
        parser.error("--rbd-image needs --rbd-pool and --ceph-conf")
    _setup_logging(args.log_file)
    try:
        password = _password(args)
    except OSError as exc:
        return _fatal(f"cannot read admin password file: {exc}", EXIT_USAGE, args.log_file)
    if not password:
        return _fatal(
            f"no admin password: pass --admin-password-file or set ${PASSWORD_ENV}", EXIT_USAGE, args.log_file
        )
    try:
        device, note = _open_device(args)
    except DeviceError as exc:
        return _fatal(f"cannot mount volume: {exc}", exc.exit_code, args.log_file)
    store = Store(Volume(device), remount=_remount(args))
    try:
        report = store.load()
        server = make_server(args.host, args.port, store, AuthConfig(password, not args.no_anonymous))
    except DeviceError as exc:
        device.close()
        return _fatal(f"cannot mount volume: {exc}", exc.exit_code, args.log_file)
    except OSError as exc:
        device.close()
        return _fatal(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_BIND, args.log_file)
    return _serve(args, store, server, note, report.records, report.torn_tail)


def _serve(
    args: argparse.Namespace, store: Store, server: NexusHTTPServer, note: str, records: int, torn: str | None
) -> int:
    """Serve until SIGTERM/SIGINT, then stop the listener, flush and close the volume."""

    def ready() -> None:
        host, port = server.server_address[:2]
        line = (
            f"nexus-sim ready on http://{host!s}:{port} device={store.volume.device.description} ({note}) "
            f"client={store.volume.device.client_address} "
            f"volume={store.volume.uuid} records={records} repositories={len(store.repos)} "
            f"components={len(store.components)} frozen={store.read_only.frozen}"
            + (f" torn-tail-ignored={torn!r}" if torn else "")
        )
        LOG.info("%s", line)
        print(line, flush=True)

    code = serve_until_stopped(
        server,
        log=LOG,
        pid_file=args.pid_file,
        ready=ready,
        close=store.close,
        stopped="stopped cleanly (volume flushed and closed)",
    )
    logging.shutdown()
    return code


def main() -> None:
    """``python3 -m lab.nexus_sim``."""
    try:
        code = run()
    except KeyboardInterrupt:
        code = EXIT_OK
    sys.exit(code)
