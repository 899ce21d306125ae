"""Block devices the simulator keeps its volume on.

Two implementations share the :class:`BlockDevice` protocol:

* :class:`FileDevice` - a plain file of fixed size (unit tests, laptops without Ceph);
* :class:`RbdDevice` - an RBD image opened read-write through librbd (Debian's ``python3-rbd``).

Both raise :class:`DeviceError` subclasses carrying the process exit code the CLI should use, so
``cli.py`` can turn any start-up failure into one readable log line and a distinctive status.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from typing import Any, Protocol

# Exit codes shared with the CLI (documented in README.md of this package).
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_NOT_PRIMARY = 3
EXIT_NOT_FOUND = 4
EXIT_UNREACHABLE = 5
EXIT_BAD_VOLUME = 6
EXIT_BIND = 7
EXIT_IN_USE = 8


class DeviceError(Exception):
    """A device could not be opened or used; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_UNEXPECTED


class DeviceNotFound(DeviceError):
    """The file, pool or image does not exist."""

    exit_code = EXIT_NOT_FOUND


class DeviceUnreachable(DeviceError):
    """The Ceph cluster could not be reached (timeout, auth, bad config)."""

    exit_code = EXIT_UNREACHABLE


class NotPrimary(DeviceError):
    """The RBD image is a mirroring secondary: it cannot be mounted read-write."""

    exit_code = EXIT_NOT_PRIMARY


class DeviceInUse(DeviceError):
    """Another simulator already holds the device."""

    exit_code = EXIT_IN_USE


class DeviceIOError(DeviceError):
    """A read, write or flush failed at runtime (e.g. the image was demoted under us)."""


class DeviceReadOnly(DeviceIOError):
    """The device refused a write because it is read-only (an RBD image demoted while mounted)."""


class DeviceFenced(DeviceIOError):
    """The Ceph cluster shut this client out (blocklisted, ``ESHUTDOWN``): every further I/O on
    this connection fails. Happens when the client stalled (a frozen site) and another client broke
    its exclusive lock; only a new connection (see ``krbd``'s ``recover_session``) can go on."""


class BlockDevice(Protocol):
    """Fixed-size random-access byte device."""

    @property
    def size(self) -> int:
        """Capacity in bytes."""
        ...

    @property
    def description(self) -> str:
        """Human-readable name for logs, e.g. ``rbd:site-a/pool/img``."""
        ...

    @property
    def client_address(self) -> str:
        """The cluster's address of this connection (what ``ceph osd blocklist add`` takes), or ``-``."""
        ...

    def read(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (short only at the end of the device)."""
        ...

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``; must not grow the device."""
        ...

    def flush(self) -> None:
        """Make every completed write durable."""
        ...

    def close(self) -> None:
        """Flush and release the device."""
        ...


class FileDevice:
    """A regular file used as a block device; the file must already exist with its final size.

    An advisory ``flock`` stops two simulators from sharing one file.
    """

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise DeviceNotFound(f"volume file {path} does not exist (create it with truncate -s SIZE)")
        self._path = path
        self._fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            raise DeviceInUse(f"volume file {path} is in use by another process") from exc
        self._size = os.fstat(self._fd).st_size
        if self._size <= 0:
            os.close(self._fd)
            raise DeviceError(f"volume file {path} is empty; give it a size (truncate -s 64M {path})")

    @property
    def size(self) -> int:
        """Capacity in bytes (the file size at open time)."""
        return self._size

    @property
    def description(self) -> str:
        """``file:<path>``."""
        return f"file:{self._path}"

    @property
    def client_address(self) -> str:
        """``-``: a file has no cluster connection."""
        return "-"

    def read(self, offset: int, length: int) -> bytes:
        """Read from the file."""
        length = max(0, min(length, self._size - offset))
        return os.pread(self._fd, length, offset)

    def write(self, offset: int, data: bytes) -> None:
        """Write to the file, refusing to grow it."""
        if offset + len(data) > self._size:
            raise DeviceIOError(f"write past end of device ({offset}+{len(data)} > {self._size})")
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def flush(self) -> None:
        """``fsync`` the file."""
        os.fsync(self._fd)

    def close(self) -> None:
        """Flush, unlock and close."""
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


@dataclass(frozen=True)
class RbdTarget:
    """Where an RBD image lives and how to authenticate to its cluster."""

    pool: str
    image: str
    conf: str
    cluster: str
    client_id: str = "admin"
    keyring: str | None = None
    connect_timeout: int = 15

    def label(self) -> str:
        """``POOL/IMG on cluster C`` for messages."""
        return f"{self.pool}/{self.image} on cluster {self.cluster}"


class RbdDevice:
    """An RBD image opened read-write through librbd.

    The ``rados``/``rbd`` modules are imported lazily so that the package (and FileDevice) work on a
    Python without python3-rbd.  Timeouts are configured so a dead monitor or a full/inactive cluster
    cannot hang the process forever.
    """

    def __init__(self, target: RbdTarget) -> None:
        try:
            import rados
            import rbd
        except ImportError as exc:  # pragma: no cover - depends on the host
            raise DeviceUnreachable(
                "python3-rados/python3-rbd are not importable; run with Debian's /usr/bin/python3"
            ) from exc
        self._rbd_mod: Any = rbd
        self.target = target
        timeout = str(target.connect_timeout)
        conf = {
            "client_mount_timeout": timeout,
            "rados_mon_op_timeout": timeout,
            "rados_osd_op_timeout": timeout,
            "admin_socket": "",
            "log_to_stderr": "false",
            "err_to_stderr": "false",
        }
        if target.keyring:
            conf["keyring"] = target.keyring
        if not os.path.isfile(target.conf):
            raise DeviceUnreachable(f"ceph config {target.conf} for cluster {target.cluster} does not exist")
        self._cluster: Any = None
        self._ioctx: Any = None
        self._image: Any = None
        try:
            self._cluster = rados.Rados(
                conffile=target.conf, clustername=target.cluster, rados_id=target.client_id, conf=conf
            )
            self._cluster.connect(timeout=target.connect_timeout)
        except (rados.TimedOut, rados.InterruptedOrTimeoutError) as exc:
            self._shutdown()
            raise DeviceUnreachable(
                f"cannot reach Ceph cluster {target.cluster} ({target.conf}) within "
                f"{target.connect_timeout}s: {exc}"
            ) from exc
        except rados.Error as exc:
            self._shutdown()
            raise DeviceUnreachable(f"cannot connect to Ceph cluster {target.cluster}: {exc}") from exc
        try:
            self._ioctx = self._cluster.open_ioctx(target.pool)
        except rados.ObjectNotFound as exc:
            self._shutdown()
            raise DeviceNotFound(f"pool {target.pool} does not exist on cluster {target.cluster}") from exc
        except rados.Error as exc:
            self._shutdown()
            raise DeviceUnreachable(f"cannot open pool {target.pool} on {target.cluster}: {exc}") from exc
        try:
            self._image = rbd.Image(self._ioctx, target.image)
            self._size = int(self._image.size())
        except rbd.ImageNotFound as exc:
            self._shutdown()
            raise DeviceNotFound(f"RBD image {target.label()} does not exist") from exc
        except rbd.Error as exc:
            self._shutdown()
            raise DeviceUnreachable(f"cannot open RBD image {target.label()}: {exc}") from exc

    def check_primary(self) -> str:
        """Raise :class:`NotPrimary` unless the image may be mounted read-write; return a status note.

        An image with mirroring disabled is a plain image and counts as primary.
        """
        rbd = self._rbd_mod
        try:
            info = self._image.mirror_image_get_info()
        except rbd.Error as exc:
            raise DeviceUnreachable(f"cannot read mirroring info of {self.target.label()}: {exc}") from exc
        state = info.get("state")
        if state == rbd.RBD_MIRROR_IMAGE_DISABLED:
            return "mirroring disabled (plain image)"
        if not info.get("primary"):
            raise NotPrimary(
                f"RBD image {self.target.label()} is not primary (mirroring secondary); promote it first"
            )
        return f"mirroring primary (global_id={info.get('global_id', '?')})"

    @property
    def size(self) -> int:
        """Image size at open time."""
        return self._size

    @property
    def description(self) -> str:
        """``rbd:<cluster>/<pool>/<image>``."""
        return f"rbd:{self.target.cluster}/{self.target.pool}/{self.target.image}"

    @property
    def client_address(self) -> str:
        """This connection's client address (what ``ceph osd blocklist add`` takes)."""
        return str(self._cluster.get_addrs()) if self._cluster is not None else "-"

    def read(self, offset: int, length: int) -> bytes:
        """``image.read``."""
        length = max(0, min(length, self._size - offset))
        if length == 0:
            return b""
        try:
            return bytes(self._image.read(offset, length))
        except self._rbd_mod.ConnectionShutdown as exc:
            raise DeviceFenced(f"read of {self.description} failed: client blocklisted: {exc}") from exc
        except self._rbd_mod.Error as exc:
            raise DeviceIOError(f"read of {self.description} failed: {exc}") from exc

    def write(self, offset: int, data: bytes) -> None:
        """``image.write``; a demoted image fails with ReadOnlyImage."""
        if offset + len(data) > self._size:
            raise DeviceIOError(f"write past end of device ({offset}+{len(data)} > {self._size})")
        try:
            written = self._image.write(data, offset)
        except self._rbd_mod.ReadOnlyImage as exc:
            raise DeviceReadOnly(f"{self.description} is read-only (demoted?): {exc}") from exc
        except self._rbd_mod.ConnectionShutdown as exc:
            raise DeviceFenced(f"write to {self.description} failed: client blocklisted: {exc}") from exc
        except self._rbd_mod.Error as exc:
            raise DeviceIOError(f"write to {self.description} failed: {exc}") from exc
        if written != len(data):
            raise DeviceIOError(f"short write to {self.description}: {written} of {len(data)} bytes")

    def flush(self) -> None:
        """``image.flush``."""
        try:
            self._image.flush()
        except self._rbd_mod.ConnectionShutdown as exc:
            raise DeviceFenced(f"flush of {self.description} failed: client blocklisted: {exc}") from exc
        except self._rbd_mod.Error as exc:
            raise DeviceIOError(f"flush of {self.description} failed: {exc}") from exc

    def close(self) -> None:
        """Flush, close the image and disconnect; a failed flush raises :class:`DeviceIOError` (or
        :class:`DeviceFenced`) after the connection is closed all the same."""
        try:
            if self._image is not None:
                self.flush()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for closer in (self._image, self._ioctx):
            if closer is not None:
                with contextlib.suppress(Exception):  # best effort on teardown
                    closer.close()
        self._image = None
        self._ioctx = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):  # best effort on teardown
                self._cluster.shutdown()
            self._cluster = None
