"""``python3 -m lab.webapp_sim --port P --rbd-pool POOL --rbd-image IMG --ceph-conf CONF ...``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from lab.nexus_sim.device import EXIT_BIND, DeviceError, RbdDevice, RbdTarget
from lab.nexus_sim.volume import Record, Volume

LOG = logging.getLogger("webapp_sim")
_FILE = re.compile(r"^/files/([A-Za-z0-9._-]{1,100})$")


class Files:
    """Named files as records of the volume's log; the newest record of a name wins."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.lock = threading.Lock()
        self.where: dict[str, tuple[int, int]] = {}

    def load(self) -> int:
        """Replay the volume; return how many records it holds."""
        return self.volume.replay(self._apply).records

    def _apply(self, record: Record) -> None:
        name = record.meta.get("file")
        if isinstance(name, str):
            self.where[name] = (record.payload_offset, record.payload_length)

    def put(self, name: str, data: bytes) -> None:
        with self.lock:
            self._apply(self.volume.append({"file": name}, data))

    def get(self, name: str) -> bytes | None:
        with self.lock:
            spot = self.where.get(name)
            return None if spot is None else self.volume.read_payload(*spot)


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                return self._send(200, b"ok\n")
            match = _FILE.match(self.path)
            data = files.get(match.group(1)) if match else None
            return self._send(404, b"not found\n") if data is None else self._send(200, data)

        do_HEAD = do_GET

        def do_PUT(self) -> None:
            match = _FILE.match(self.path)
            if match is None:
                return self._send(404, b"not found\n")
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                files.put(match.group(1), data)
            except DeviceError as exc:
                return self._send(503, f"volume: {exc}\n".encode())
            return self._send(201, b"stored\n")

        def log_message(self, format: str, *args: object) -> None:
            LOG.info("%s %s", self.address_string(), format % args)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.webapp_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rbd-pool", required=True)
    parser.add_argument("--rbd-image", required=True)
    parser.add_argument("--ceph-conf", required=True)
    parser.add_argument("--ceph-cluster", default="ceph")
    parser.add_argument("--ceph-id", default="admin")
    parser.add_argument("--keyring")
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    target = RbdTarget(
        args.rbd_pool, args.rbd_image, args.ceph_conf, args.ceph_cluster, args.ceph_id, args.keyring
    )
    try:
        device = RbdDevice(target)
        note = device.check_primary()
        files = Files(Volume(device))
        files.volume.open()
        records = files.load()
    except DeviceError as exc:
        LOG.error("FATAL cannot mount volume: %s", exc)
        return exc.exit_code
    try:
        server = ThreadingHTTPServer((args.host, args.port), _handler(files))
    except OSError as exc:
        device.close()
        LOG.error("FATAL cannot listen on %s:%s: %s", args.host, args.port, exc)
        return EXIT_BIND
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.pid_file:
        with open(args.pid_file, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    LOG.info(
        "webapp-sim ready on http://%s:%s %s (%s) records=%d",
        args.host,
        args.port,
        device.description,
        note,
        records,
    )
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        device.close()
        if args.pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.pid_file)
        LOG.info("stopped (volume flushed and closed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
