"""Command line: load (or seed) one site's state and serve oned's XML-RPC API until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from lab.opennebula.oned import Oned
from lab.opennebula.runtime import CephAccess, ProcessRuntime, VmRuntime
from lab.opennebula.seeds import SEEDS, describe, seed_for
from lab.opennebula.server import make_server
from lab.simserve import serve_until_stopped

LOG = logging.getLogger("opennebula")
EXIT_USAGE, EXIT_BIND = 2, 7  # as lab.nexus_sim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.opennebula",
        description="A fake OpenNebula front-end (oned XML-RPC subset) whose state lives in a folder.",
    )
    parser.add_argument("--state", required=True, type=Path, help="folder of the state (oned.json)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--user", default="oneadmin", help="the site's user (default oneadmin)")
    parser.add_argument("--password-file", required=True, type=Path, help="file holding the user's password")
    parser.add_argument(
        "--site",
        default="",
        help=f"seed a new state as this site ({', '.join(SEEDS)}); empty: start with no objects",
    )
    parser.add_argument(
        "--ceph-conf", help="run each VM as a process on this cluster's RBD images (else VMs are records)"
    )
    parser.add_argument("--ceph-cluster", default="ceph", help="the cluster's name (default ceph)")
    parser.add_argument("--keyring", default="", help="the keyring of the VMs' Ceph user (admin)")
    parser.add_argument(
        "--vm-ports",
        default="",
        help="FIRST:COUNT, the ports of the VMs' health endpoints (with --ceph-conf)",
    )
    parser.add_argument("--monitor-interval", type=float, default=2.0, help="seconds between VM polls")
    parser.add_argument("--pid-file", help="write the process id here while running")
    parser.add_argument("--log-file", help="append logs here (default stderr)")
    return parser


def run(argv: list[str] | None = None) -> int:
    """Entry point returning the process exit status."""
    args = build_parser().parse_args(argv)
    handler: logging.Handler = (
        logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    if args.site and args.site not in SEEDS:
        LOG.critical("unknown site %r (known: %s)", args.site, ", ".join(SEEDS))
        return EXIT_USAGE
    try:
        password = args.password_file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        LOG.critical("cannot read the password file %s: %s", args.password_file, exc.strerror)
        return EXIT_USAGE
    if not password:
        LOG.critical("the password file %s is empty", args.password_file)
        return EXIT_USAGE
    runtime: VmRuntime | None = None
    if args.ceph_conf:
        first, _, count = args.vm_ports.partition(":")
        if not (first.isdigit() and count.isdigit() and int(count) > 0):
            LOG.critical("--vm-ports must be FIRST:COUNT, not %r", args.vm_ports)
            return EXIT_USAGE
        access = CephAccess(args.ceph_conf, args.ceph_cluster, args.keyring)
        runtime = ProcessRuntime(args.state, access, int(first), int(count))
    oned = Oned(args.state, site=args.site or "site", seed=seed_for(args.site), runtime=runtime)
    if runtime is not None:
        for vm_id in oned.boot_running():
            LOG.warning("VM %s could not start again: it is POWEROFF", vm_id)
        stop_monitor = threading.Event()
        threading.Thread(
            target=_monitor, args=(oned, stop_monitor, args.monitor_interval), daemon=True
        ).start()
    try:
        server = make_server(oned, user=args.user, password=password, host=args.host, port=args.port)
    except OSError as exc:
        LOG.critical("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror)
        return EXIT_BIND
    return serve_until_stopped(
        server,
        log=LOG,
        pid_file=args.pid_file,
        ready=lambda: LOG.info(
            "OpenNebula front-end for %s on %s (%s)", oned.data["site"], server.endpoint, describe(oned)
        ),
        close=lambda: None,
        stopped="OpenNebula front-end stopped",
    )


def _monitor(oned: Oned, stop: threading.Event, interval: float) -> None:
    """Poll the running VMs every ``interval`` seconds, as oned's monitoring does."""
    while not stop.wait(interval):
        try:
            for vm_id in oned.monitor():
                vm = oned.snapshot()["vms"][str(vm_id)]
                LOG.warning(
                    "VM %s (%s) left RUNNING: state %s/%s", vm_id, vm["name"], vm["state"], vm["lcm_state"]
                )
        except Exception:  # the monitor must outlive one bad round
            LOG.exception("VM monitoring round failed")
