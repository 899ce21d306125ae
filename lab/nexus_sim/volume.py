"""The on-volume format: a superblock followed by an append-only log of records.

Layout (all integers little-endian)::

    offset 0      superblock, 4096 bytes
                    magic "NXSIMVOL" | u32 version | 16-byte format uuid | u64 device size at format
                    | u64 log start (4096) | f64 created (epoch) | u32 crc32 of the preceding fields
    offset 4096   record, record, record, ...   (contiguous, no padding)

    record      = header (80 bytes) | meta (JSON, utf-8) | payload (raw bytes)
    header      = magic "NXRC" | u32 header crc32 | 16-byte format uuid | u64 sequence
                  | u32 meta length | u64 payload length | 32-byte sha256(meta + payload) | 4 bytes zero

The header crc covers every header byte after itself.  Replay walks the log from 4096 and stops at
the first header that is all zeros (clean end), or that fails its magic, crc, uuid or sequence checks
or whose body does not match its sha256 (torn tail, as left by a crash or a crash-consistent mirror
snapshot taken mid-write).  A torn tail is logged and overwritten by the next append, which
also zeroes the header slot after itself, so stale bytes can never be mistaken for a record later.
Each append writes the body, flushes, then writes the header and flushes again, so a record is
either complete on the device or ignored on replay.

The uuid ties records to one format of the device, so stale bytes from an earlier format or from a
longer torn record can never replay; the sequence must grow by exactly one per record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from lab.nexus_sim.device import EXIT_BAD_VOLUME, BlockDevice, DeviceError, DeviceFenced

LOG = logging.getLogger("nexus_sim.volume")
T = TypeVar("T")

SUPER_MAGIC = b"NXSIMVOL"
FORMAT_VERSION = 1
SUPERBLOCK_SIZE = 4096
_SUPER = struct.Struct("<8sI16sQQd")
_SUPER_CRC = struct.Struct("<I")

RECORD_MAGIC = b"NXRC"
_HEADER = struct.Struct("<4sI16sQIQ32s4x")
HEADER_SIZE = _HEADER.size
# Bytes kept free for metadata-only records (deletes, freeze), so a full volume can still be cleaned up.
METADATA_RESERVE = 64 * 1024


class VolumeCorrupt(DeviceError):
    """The superblock is present but not ours (or damaged): refuse to touch the device."""

    exit_code = EXIT_BAD_VOLUME


class VolumeFull(Exception):
    """Appending a record would run past the end of the device."""


@dataclass(frozen=True)
class Record:
    """One committed log record as replayed or appended."""

    seq: int
    offset: int
    meta: dict[str, Any]
    payload_offset: int
    payload_length: int


@dataclass(frozen=True)
class ReplayReport:
    """What replay found: records applied and what stopped it."""

    records: int
    end_offset: int
    torn_tail: str | None


class Volume:
    """Append-only record log on a :class:`BlockDevice` (not thread-safe; callers hold a lock)."""

    def __init__(self, device: BlockDevice) -> None:
        self.device = device
        self.format_uuid = b""
        self.formatted_now = False
        self._end = SUPERBLOCK_SIZE
        self._next_seq = 1

    # ------------------------------------------------------------------ superblock
    def open(self) -> None:
        """Read the superblock, formatting an all-zero device; raise VolumeCorrupt on foreign data."""
        if self.device.size < SUPERBLOCK_SIZE + HEADER_SIZE + METADATA_RESERVE:
            raise VolumeCorrupt(f"{self.device.description} is too small ({self.device.size} bytes)")
        raw = self.device.read(0, SUPERBLOCK_SIZE)
        if raw.count(0) == len(raw):
            self._format()
            return
        magic, version, fuuid, _size, log_start, _created = _SUPER.unpack_from(raw, 0)
        (crc,) = _SUPER_CRC.unpack_from(raw, _SUPER.size)
        if magic != SUPER_MAGIC:
            raise VolumeCorrupt(
                f"{self.device.description} holds data that is not a nexus-sim volume (bad magic); "
                "refusing to format it - zero it first if it is really scratch"
            )
        if zlib.crc32(raw[: _SUPER.size]) != crc:
            raise VolumeCorrupt(f"{self.device.description}: superblock checksum mismatch")
        if version != FORMAT_VERSION or log_start != SUPERBLOCK_SIZE:
            raise VolumeCorrupt(f"{self.device.description}: unsupported volume format version {version}")
        self.format_uuid = fuuid

    def _format(self) -> None:
        self.format_uuid = uuid.uuid4().bytes
        head = _SUPER.pack(
            SUPER_MAGIC, FORMAT_VERSION, self.format_uuid, self.device.size, SUPERBLOCK_SIZE, time.time()
        )
        block = head + _SUPER_CRC.pack(zlib.crc32(head))
        self.device.write(0, block.ljust(SUPERBLOCK_SIZE, b"\0"))
        # Zero the first record header so replay sees a clean end even on a non-zeroed device.
        self.device.write(SUPERBLOCK_SIZE, b"\0" * HEADER_SIZE)
        self.device.flush()
        self.formatted_now = True
        LOG.info(
            "formatted %s as a new nexus-sim volume (uuid %s)",
            self.device.description,
            uuid.UUID(bytes=self.format_uuid),
        )

    @property
    def uuid(self) -> str:
        """Format uuid as text."""
        return str(uuid.UUID(bytes=self.format_uuid))

    @property
    def used(self) -> int:
        """Bytes used including the superblock."""
        return self._end

    # ------------------------------------------------------------------ replay
    def replay(self, apply: Callable[[Record], None]) -> ReplayReport:
        """Apply every complete record in order; stop at the clean end or a torn tail."""
        count = 0
        torn: str | None = None
        for item in self._scan():
            if isinstance(item, str):
                torn = item
                break
            apply(item)
            count += 1
            self._next_seq = item.seq + 1
            self._end = item.payload_offset + item.payload_length
        if torn is not None:
            LOG.warning(
                "replay: ignoring torn/partial tail at offset %d after %d records: %s", self._end, count, torn
            )
        return ReplayReport(records=count, end_offset=self._end, torn_tail=torn)

    def _scan(self) -> Iterator[Record | str]:
        offset = SUPERBLOCK_SIZE
        seq = 1
        size = self.device.size
        while offset + HEADER_SIZE <= size:
            raw = self.device.read(offset, HEADER_SIZE)
            if raw.count(0) == len(raw):
                return
            magic, crc, fuuid, rseq, meta_len, payload_len, digest = _HEADER.unpack(raw)
            if magic != RECORD_MAGIC or zlib.crc32(raw[8:]) != crc:
                yield "record header damaged (bad magic or crc)"
                return
            if fuuid != self.format_uuid or rseq != seq:
                yield f"stale record (uuid/sequence {rseq} does not follow {seq - 1})"
                return
            body_at = offset + HEADER_SIZE
            if body_at + meta_len + payload_len > size:
                yield "record runs past the end of the device"
                return
            meta_raw = self.device.read(body_at, meta_len)
            hasher = hashlib.sha256(meta_raw)
            pos, remaining = body_at + meta_len, payload_len
            while remaining:
                chunk = self.device.read(pos, min(remaining, 4 << 20))
                if not chunk:
                    break
                hasher.update(chunk)
                pos += len(chunk)
                remaining -= len(chunk)
            if remaining or hasher.digest() != digest:
                yield f"record {rseq} body incomplete (sha256 mismatch)"
                return
            try:
                meta = json.loads(meta_raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                yield f"record {rseq} metadata is not JSON"
                return
            yield Record(rseq, offset, meta, body_at + meta_len, payload_len)
            offset = body_at + meta_len + payload_len
            seq += 1

    # ------------------------------------------------------------------ append
    def append(self, meta: dict[str, Any], payload: bytes = b"") -> Record:
        """Write one record and flush; raise VolumeFull (device untouched) when it does not fit."""
        meta_raw = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode("utf-8")
        total = HEADER_SIZE + len(meta_raw) + len(payload)
        limit = self.device.size - (METADATA_RESERVE if payload else 0)
        if self._end + total > limit:
            raise VolumeFull(
                f"volume {self.device.description} is full: record needs {total} bytes, "
                f"{max(0, limit - self._end)} free of {self.device.size}"
            )
        seq = self._next_seq
        digest = hashlib.sha256(meta_raw + payload).digest()
        tail = _HEADER.pack(RECORD_MAGIC, 0, self.format_uuid, seq, len(meta_raw), len(payload), digest)
        header = tail[:4] + struct.pack("<I", zlib.crc32(tail[8:])) + tail[8:]
        offset = self._end
        # Body first, header last: a crash between the two leaves no header at all.
        self.device.write(offset + HEADER_SIZE, meta_raw + payload)
        self.device.flush()
        self.device.write(offset, header)
        next_at = offset + total
        if next_at + HEADER_SIZE <= self.device.size:
            # Keep the byte range after the log end looking like a clean end (clears torn/stale bytes).
            self.device.write(next_at, b"\0" * HEADER_SIZE)
        self.device.flush()
        self._end = next_at
        self._next_seq = seq + 1
        return Record(seq, offset, meta, offset + HEADER_SIZE + len(meta_raw), len(payload))

    def read_payload(self, record_offset: int, length: int) -> bytes:
        """Read ``length`` payload bytes at an absolute device offset."""
        return self.device.read(record_offset, length)


class Remount:
    """The mounted :class:`Volume` of a simulator, replaced once per call when the cluster fenced it.

    A connection the cluster shut out (:class:`DeviceFenced`, after a stall long enough for another
    client to break the image's lock) is replaced by ``mount()``, as a kernel RBD mount does with
    ``recover_session=clean``: the image must still be primary, and ``rebuild(volume)`` replays the
    new mount (returning how many records it holds), so nothing the stale connection believed is
    kept. Without ``mount`` (a file volume, which nothing fences) the error is raised as it is.
    """

    def __init__(
        self, volume: Volume, mount: Callable[[], Volume] | None, rebuild: Callable[[Volume], int]
    ) -> None:
        self.volume = volume
        self.mount = mount
        self.rebuild = rebuild

    def run(self, act: Callable[[Volume], T]) -> T:
        """``act(volume)``; once fenced, ``act`` again on a new mount after it was replayed."""
        try:
            return act(self.volume)
        except DeviceFenced as exc:
            if self.mount is None:
                raise
            LOG.warning("volume connection fenced (%s); reconnecting", exc)
            with contextlib.suppress(DeviceError):
                self.volume.device.close()
            self.volume = self.mount()
            records = self.rebuild(self.volume)
            LOG.warning(
                "reconnected as client %s: %d records replayed", self.volume.device.client_address, records
            )
            return act(self.volume)
