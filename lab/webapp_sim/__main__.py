"""``python3 -m lab.webapp_sim --port P --rbd-pool POOL --rbd-image IMG --ceph-conf CONF ...``."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.nexus_sim.device import EXIT_BIND, DeviceError, RbdDevice
from lab.nexus_sim.volume import Record, Remount, Volume
from lab.simserve import add_rbd_arguments, rbd_target, serve_until_stopped

LOG = logging.getLogger("webapp_sim")
_FILE = re.compile(r"^/files/([A-Za-z0-9._-]{1,100})$")


class Files:
    """Named files as records of the volume's log; the newest record of a name wins.

    The volume is remounted once per request when the cluster fenced its connection
    (:class:`lab.nexus_sim.volume.Remount`); the files are then replayed from the new mount.
    """

    def __init__(self, volume: Volume, reopen: Callable[[], Volume] | None = None) -> None:
        self.lock = threading.Lock()
        self.where: dict[str, tuple[int, int]] = {}
        self.mounted = Remount(volume, reopen, self._replay)

    @property
    def volume(self) -> Volume:
        return self.mounted.volume

    def load(self) -> int:
        """Replay the volume; return how many records it holds."""
        return self._replay(self.volume)

    def _replay(self, volume: Volume) -> int:
        self.where.clear()
        return volume.replay(self._apply).records

    def _apply(self, record: Record) -> None:
        name = record.meta.get("file")
        if isinstance(name, str):
            self.where[name] = (record.payload_offset, record.payload_length)

    def put(self, name: str, data: bytes) -> None:
        with self.lock:
            self._apply(self.mounted.run(lambda volume: volume.append({"file": name}, data)))

    def get(self, name: str) -> bytes | None:
        def read(volume: Volume) -> bytes | None:
            spot = self.where.get(name)
            return None if spot is None else volume.read_payload(*spot)

        with self.lock:
            return self.mounted.run(read)


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
    parser.add_argument("--rbd-image", required=True)
    add_rbd_arguments(parser, required=True)
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    target = rbd_target(args)

    def mount() -> Volume:
        device = RbdDevice(target)
        try:
            device.check_primary()
            volume = Volume(device)
            volume.open()
        except DeviceError:
            device.close()
            raise
        return volume

    try:
        volume = mount()
        files = Files(volume, reopen=mount)
        records = files.load()
    except DeviceError as exc:
        LOG.error("FATAL cannot mount volume: %s", exc)
        return exc.exit_code
    try:
        server = ThreadingHTTPServer((args.host, args.port), _handler(files))
    except OSError as exc:
        volume.device.close()
        LOG.error("FATAL cannot listen on %s:%s: %s", args.host, args.port, exc)
        return EXIT_BIND

    def ready() -> None:
        LOG.info(
            "webapp-sim ready on http://%s:%s %s as client %s records=%d",
            *(args.host, args.port, volume.device.description, volume.device.client_address, records),
        )

    return serve_until_stopped(
        server,
        log=LOG,
        pid_file=args.pid_file,
        ready=ready,
        close=lambda: files.volume.device.close(),
        stopped="stopped (volume flushed and closed)",
    )


if __name__ == "__main__":
    sys.exit(main())
