"""What the lab's simulators (:mod:`lab.nexus_sim`, :mod:`lab.webapp_sim`) share as processes.

* :func:`add_rbd_arguments` and :func:`rbd_target`: the options naming the RBD image and its cluster;
* :func:`serve_until_stopped`: serve HTTP on a thread until SIGTERM or SIGINT, with a pid file while
  running, then stop the listener and close the volume.

Standard library only: the simulators run under Debian's ``/usr/bin/python3`` (for ``python3-rbd``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from socketserver import BaseServer
from types import FrameType

from lab.nexus_sim.device import EXIT_OK, EXIT_UNEXPECTED, RbdTarget


def add_rbd_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--rbd-pool``, ``--ceph-conf`` (both ``required`` or not), ``--ceph-cluster``, ``--ceph-id``,
    ``--keyring`` and ``--connect-timeout``; the caller adds ``--rbd-image``."""
    parser.add_argument("--rbd-pool", required=required, help="RADOS pool of --rbd-image")
    parser.add_argument("--ceph-conf", required=required, help="ceph.conf of the cluster holding the image")
    parser.add_argument("--ceph-cluster", default="ceph", help="cluster name (default ceph)")
    parser.add_argument(
        "--ceph-id", default="admin", help="cephx client id without 'client.' (default admin)"
    )
    parser.add_argument("--keyring", help="keyring path (default: from ceph.conf)")
    parser.add_argument("--connect-timeout", type=int, default=15, help="seconds to reach the cluster")


def rbd_target(args: argparse.Namespace) -> RbdTarget:
    """The image the options of :func:`add_rbd_arguments` (and ``--rbd-image``) name."""
    return RbdTarget(
        pool=args.rbd_pool,
        image=args.rbd_image,
        conf=args.ceph_conf,
        cluster=args.ceph_cluster,
        client_id=args.ceph_id,
        keyring=args.keyring,
        connect_timeout=args.connect_timeout,
    )


def serve_until_stopped(
    server: BaseServer,
    *,
    log: logging.Logger,
    pid_file: str | None,
    ready: Callable[[], None],
    close: Callable[[], None],
    stopped: str,
) -> int:
    """Serve ``server`` until SIGTERM or SIGINT, then shut it down; return the exit status.

    The pid file (if any) is written before serving and removed at the end. ``ready`` is called once
    the listener runs (it says so in the log); at the end the listener is stopped, ``close`` closes
    the volume, and ``stopped`` is logged. :data:`EXIT_UNEXPECTED` if the server thread died.
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if pid_file:
        with open(pid_file, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    ready()
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                log.error("HTTP server thread died")
                return EXIT_UNEXPECTED
    finally:
        server.shutdown()
        server.server_close()
        close()
        if pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_file)
        log.info("%s", stopped)
    return EXIT_OK
