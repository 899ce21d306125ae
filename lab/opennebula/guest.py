"""A lab VM: a process that opens its disks as qemu would, writes and reads them, and answers HTTP.

``python -m lab.opennebula.guest --port N (--disk POOL/IMAGE ... --ceph-conf C --ceph-cluster S
--keyring K | --disk-file PATH ...)``, run under Debian's ``/usr/bin/python3`` (``python3-rbd``)
by :class:`lab.opennebula.runtime.ProcessRuntime` when the front-end deploys a VM. Each disk is
opened read-write through the lab's block-device code (:mod:`lab.nexus_sim.device`); every
:data:`BEAT` seconds a heartbeat block is written at the start of each disk, flushed and read back.

Like qemu on a disk that is not primary, the VM boots and then fails its I/O: the first write that
fails (a non-primary or demoted image is read-only, a fenced client is shut out) puts the VM in
``io-error`` for good (qemu pauses the guest on a write error); the front-end's monitor sees it
on the health endpoint and moves the VM out of ``RUNNING``.

HTTP (stdlib, ``127.0.0.1``):

* ``GET /health``: 200 ``{"status": "running", ...}``, or 503 ``{"status": "io-error", "error": ...}``;
* ``PUT /canary/NAME`` (a body of at most :data:`CANARY_MAX` bytes) stores a named blob in the
  canary area of the first disk (at :data:`CANARY_OFFSET`), flushed before the 204;
* ``GET /canary/NAME`` reads it back from the disk (never from memory), 404 when absent: a canary
  written through a VM on A is read through a VM on B after a failover.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import re
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lab.nexus_sim.device import (
    EXIT_BIND,
    EXIT_USAGE,
    BlockDevice,
    DeviceError,
    FileDevice,
    RbdDevice,
    RbdTarget,
)
from lab.simserve import serve_until_stopped

LOG = logging.getLogger("opennebula.guest")
BEAT = 5.0
"""Seconds between heartbeats: a VM started on a disk that is not primary fails at its first one, at
start; a disk demoted under a running VM is seen within this. Every lab runs two VMs, each beat
writes and reads every disk (and journal mode replays each write on the peer), so a 1 s beat was
constant load for nothing the tests need."""
HEARTBEAT_MAGIC = b"LABVMHB1"
CANARY_OFFSET = 1 << 20
CANARY_AREA = 64 * 1024
CANARY_MAX = 1024
_CANARY_HEAD = struct.Struct("<8sI32s")
CANARY_MAGIC = b"LABVMCN1"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Guest:
    """The disks of one VM, their heartbeat and its canary area; thread-safe."""

    def __init__(self, name: str, disks: list[BlockDevice]) -> None:
        self.name = name
        self.disks = disks
        self.error: str | None = None
        self.beats = 0
        self.booted = time.time()
        self._lock = threading.Lock()

    def beat(self) -> None:
        """Write, flush and read back a heartbeat block on each disk; the first failure is kept."""
        with self._lock:
            if self.error is not None:
                return
            self.beats += 1
            block = (
                HEARTBEAT_MAGIC
                + json.dumps({"vm": self.name, "beat": self.beats, "at": time.time()}).encode()
            )
            block = block.ljust(512, b"\0")
            for disk in self.disks:
                try:
                    disk.write(0, block)
                    disk.flush()
                    if disk.read(0, len(block)) != block:
                        raise DeviceError(f"read back of {disk.description} differs from what was written")
                except DeviceError as exc:
                    self.error = f"I/O error on {disk.description}: {exc}"
                    LOG.error("%s", self.error)
                    return

    def health(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            body = {
                "vm": self.name,
                "disks": [d.description for d in self.disks],
                "beats": self.beats,
                "uptime": round(time.time() - self.booted, 1),
            }
            if self.error is not None:
                return 503, {**body, "status": "io-error", "error": self.error}
            return 200, {**body, "status": "running"}

    def _read_canaries(self, disk: BlockDevice) -> dict[str, str]:
        raw = disk.read(CANARY_OFFSET, CANARY_AREA)
        magic, length, digest = _CANARY_HEAD.unpack_from(raw, 0)
        if magic != CANARY_MAGIC:
            return {}
        doc = raw[_CANARY_HEAD.size : _CANARY_HEAD.size + length]
        if len(doc) != length or hashlib.sha256(doc).digest() != digest:
            return {}
        found = json.loads(doc)
        return found if isinstance(found, dict) else {}

    def canary_get(self, name: str) -> bytes | None:
        with self._lock:
            self._check()
            value = self._read_canaries(self.disks[0]).get(name)
            return None if value is None else base64.b64decode(value)

    def canary_put(self, name: str, data: bytes) -> None:
        with self._lock:
            self._check()
            disk = self.disks[0]
            try:
                canaries = self._read_canaries(disk)
                canaries[name] = base64.b64encode(data).decode()
                doc = json.dumps(canaries, sort_keys=True).encode()
                if _CANARY_HEAD.size + len(doc) > CANARY_AREA:
                    raise ValueError("the canary area is full")
                disk.write(
                    CANARY_OFFSET,
                    _CANARY_HEAD.pack(CANARY_MAGIC, len(doc), hashlib.sha256(doc).digest()) + doc,
                )
                disk.flush()
            except DeviceError as exc:
                self.error = f"I/O error on {disk.description}: {exc}"
                LOG.error("%s", self.error)
                raise

    def _check(self) -> None:
        if self.error is not None:
            raise DeviceError(self.error)

    def close(self) -> None:
        for disk in self.disks:
            with contextlib.suppress(DeviceError):
                disk.close()


class _ReadOnlyRbd:
    """An RBD image opened read-only (a secondary's copy, read without touching its lock)."""

    def __init__(self, target: RbdTarget) -> None:
        import rados
        import rbd

        conf = {"keyring": target.keyring} if target.keyring else {}
        self._cluster = rados.Rados(
            conffile=target.conf, clustername=target.cluster, rados_id=target.client_id, conf=conf
        )
        self._cluster.connect(timeout=target.connect_timeout)
        self._ioctx = self._cluster.open_ioctx(target.pool)
        self._image = rbd.Image(self._ioctx, target.image, read_only=True)
        self.description = f"rbd:{target.cluster}/{target.pool}/{target.image} (read-only)"

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._image.read(offset, length))

    def close(self) -> None:
        self._image.close()
        self._ioctx.close()
        self._cluster.shutdown()


def read_canary(target: RbdTarget, name: str) -> bytes | None:
    """The canary ``name`` as the image ``target`` holds it now (None when absent), read-only: what a
    VM booted from that image would read, without booting one."""
    disk = _ReadOnlyRbd(target)
    try:
        return Guest("reader", [disk]).canary_get(name)  # type: ignore[list-item]
    finally:
        disk.close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "lab-vm/1"

    @property
    def guest(self) -> Guest:
        return self.server.guest  # type: ignore[attr-defined, no-any-return]

    def _send(self, code: int, body: bytes = b"", kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, code: int, doc: dict[str, Any]) -> None:
        self._send(code, json.dumps(doc).encode())

    def _canary_name(self) -> str | None:
        name = self.path.removeprefix("/canary/")
        if not self.path.startswith("/canary/") or not _NAME.match(name):
            self._json(404, {"error": "not found: use /health or /canary/NAME"})
            return None
        return name

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(*self.guest.health())
            return
        name = self._canary_name()
        if name is None:
            return
        try:
            data = self.guest.canary_get(name)
        except DeviceError as exc:
            self._json(503, {"status": "io-error", "error": str(exc)})
            return
        if data is None:
            self._json(404, {"error": f"no canary {name}"})
        else:
            self._send(200, data, "application/octet-stream")

    def do_PUT(self) -> None:
        name = self._canary_name()
        if name is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > CANARY_MAX:
            self._json(413, {"error": f"a canary holds at most {CANARY_MAX} bytes"})
            return
        data = self.rfile.read(length)
        try:
            self.guest.canary_put(name, data)
        except DeviceError as exc:
            self._json(503, {"status": "io-error", "error": str(exc)})
            return
        except ValueError as exc:
            self._json(507, {"error": str(exc)})
            return
        self._send(204)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.client_address[0], *args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.opennebula.guest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--name", default="vm", help="the VM's name (logs, health)")
    parser.add_argument("--port", type=int, required=True, help="HTTP port of /health and /canary")
    parser.add_argument("--disk", action="append", default=[], help="an RBD disk POOL/IMAGE (repeatable)")
    parser.add_argument("--disk-file", action="append", default=[], help="a file disk (repeatable)")
    parser.add_argument("--ceph-conf", help="ceph.conf of the site's cluster (RBD disks)")
    parser.add_argument("--ceph-cluster", default="ceph")
    parser.add_argument("--ceph-id", default="admin")
    parser.add_argument("--keyring")
    parser.add_argument("--pid-file")
    parser.add_argument("--log-file")
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: logging.Handler = (
        logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    if not args.disk and not args.disk_file:
        LOG.critical("a VM needs at least one disk (--disk POOL/IMAGE or --disk-file PATH)")
        return EXIT_USAGE
    if args.disk and not args.ceph_conf:
        LOG.critical("RBD disks need --ceph-conf")
        return EXIT_USAGE
    disks: list[BlockDevice] = []
    try:
        for spec in args.disk:
            pool, _, image = spec.partition("/")
            target = RbdTarget(pool, image, args.ceph_conf, args.ceph_cluster, args.ceph_id, args.keyring)
            disks.append(RbdDevice(target))
        disks.extend(FileDevice(path) for path in args.disk_file)
    except DeviceError as exc:
        LOG.critical("cannot open the disks of %s: %s", args.name, exc)
        for disk in disks:
            with contextlib.suppress(DeviceError):
                disk.close()
        return exc.exit_code
    guest = Guest(args.name, disks)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    except OSError as exc:
        LOG.critical("cannot listen on 127.0.0.1:%s: %s", args.port, exc.strerror)
        guest.close()
        return EXIT_BIND
    server.daemon_threads = True
    server.guest = guest  # type: ignore[attr-defined]
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(BEAT):
            guest.beat()

    guest.beat()
    threading.Thread(target=beat, daemon=True).start()

    def close() -> None:
        stop.set()
        guest.close()

    return serve_until_stopped(
        server,
        log=LOG,
        pid_file=args.pid_file,
        ready=lambda: LOG.info(
            "VM %s up on http://127.0.0.1:%s with %s", args.name, args.port, [d.description for d in disks]
        ),
        close=close,
        stopped=f"VM {args.name} stopped",
    )


if __name__ == "__main__":
    sys.exit(run())
