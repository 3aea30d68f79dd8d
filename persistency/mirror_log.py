"""The mirror's durable operations log: append-only segments of checksummed records.

Layout (docs/format.md#mirror-operations-log): each segment `mirror-<NNNNNNNN>.log` starts with a
20-byte header (magic "DTML", version, the sequence number its first operation gets, CRC32 of the
header); then records `length u32 | crc32 u32 | msgpack payload`, the CRC covering the length and
the payload. Payloads: OP [1, seq, timestamp_us, operation type, entry bytes] (the entry in the
dynamic serializer's encoding), ACK [2, seq] (every operation up to seq was delivered) and DROP
[3, seq] (every operation up to seq was dropped by the drop-oldest policy).

Invariants: sequence numbers only grow, also across restarts and segments; an operation is
pending iff its seq is above the highest ACK/DROP seq; a segment is deleted only when it is not
the current one and all its operations are settled. Appends go straight to the OS (a killed
process loses nothing); fsync follows `sync`: "batch" before append returns, "periodic" when the
mirror calls `sync()`. On open, a torn record at the very end of the last segment is cut off;
any other bad record is a CorruptionError naming the file and offset.
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from collections import deque
from dataclasses import dataclass

import msgpack

from engine.errors import CorruptionError, InvalidRequest
from engine.files import fsync_directory

MAGIC = b"DTML"
VERSION = 1
HEADER = struct.Struct(">4sHHQ")          # magic, version, reserved (0), first seq
HEADER_SIZE = HEADER.size + 4             # + crc32 of the header
RECORD = struct.Struct(">II")             # payload length, crc32(length bytes + payload)
OP, ACK, DROP = 1, 2, 3                   # on disk: never renumber
RECORD_BYTES_MAX = 16 * 1024 * 1024
SEGMENT_NAME = re.compile(r"^mirror-(\d{8})\.log$")


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    timestamp_us: int
    operation_type: str
    entry: bytes


def encode_record(payload: list) -> bytes:
    body = msgpack.packb(payload, use_bin_type=True)
    length = struct.pack(">I", len(body))
    return RECORD.pack(len(body), zlib.crc32(body, zlib.crc32(length))) + body


def encode_header(first_seq: int) -> bytes:
    head = HEADER.pack(MAGIC, VERSION, 0, first_seq)
    return head + struct.pack(">I", zlib.crc32(head))


def read_segment(path: str, last: bool) -> tuple[int, list, int]:
    """(first seq, decoded payloads, length of the valid prefix). Only the last segment may end
    in a torn record; anything else that fails a check raises CorruptionError."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER_SIZE:
        if last:
            return -1, [], 0
        raise CorruptionError(path, 0, f"segment header is {len(data)} bytes, expected {HEADER_SIZE}")
    magic, version, _, first_seq = HEADER.unpack_from(data)
    (crc,) = struct.unpack_from(">I", data, HEADER.size)
    if magic != MAGIC or zlib.crc32(data[:HEADER.size]) != crc:
        raise CorruptionError(path, 0, "bad segment header (magic or checksum)")
    if version != VERSION:
        raise CorruptionError(path, 4, f"segment version {version} is not supported (this build reads {VERSION})")
    records, pos = [], HEADER_SIZE
    while pos < len(data):
        problem = None
        if pos + RECORD.size > len(data):
            problem, end = "truncated record header", len(data)
        else:
            length, crc = RECORD.unpack_from(data, pos)
            end = pos + RECORD.size + length
            if length > RECORD_BYTES_MAX:
                problem = f"record length {length} exceeds {RECORD_BYTES_MAX}"
            elif end > len(data):
                problem = "truncated record"
            elif zlib.crc32(data[pos + RECORD.size:end], zlib.crc32(data[pos:pos + 4])) != crc:
                problem = "record checksum mismatch"
        if problem is not None:
            if last and end >= len(data):
                return first_seq, records, pos   # a torn tail: the write in progress when the process died
            raise CorruptionError(path, pos, problem)
        try:
            records.append(msgpack.unpackb(data[pos + RECORD.size:end], raw=False))
        except Exception as e:  # noqa: BLE001 - a checksummed record that does not decode is corruption
            raise CorruptionError(path, pos, f"record does not decode: {e}") from None
        pos = end
    return first_seq, records, pos


class MirrorLog:
    """Not thread-safe: the mirror serializes every call."""

    def __init__(self, directory: str, sync: str = "periodic", segment_size_bytes: int = 8 * 1024 * 1024):
        if sync not in ("periodic", "batch"):
            raise InvalidRequest(f"mirror log sync must be 'periodic' or 'batch', got {sync!r}")
        self.directory = directory
        self.sync_each = sync == "batch"
        self.segment_size_bytes = segment_size_bytes
        os.makedirs(directory, exist_ok=True)
        self.pending: deque[LogEntry] = deque()
        self.settled = 0                          # highest ACK/DROP seq
        self.next_seq = 1
        self.segments: list[tuple[int, str, int]] = []   # (number, path, highest op seq in it)
        self._open()

    def _open(self) -> None:
        numbers = sorted(int(m.group(1)) for name in os.listdir(self.directory)
                         if (m := SEGMENT_NAME.match(name)))
        ops: dict[int, LogEntry] = {}
        for i, number in enumerate(numbers):
            path = self._path(number)
            last = i == len(numbers) - 1
            first_seq, records, valid = read_segment(path, last)
            if last and valid < os.path.getsize(path):
                with open(path, "r+b") as f:
                    f.truncate(valid)
                    os.fsync(f.fileno())
            high = 0
            self.next_seq = max(self.next_seq, first_seq)
            for rec in records:
                kind, seq = rec[0], rec[1]
                if kind == OP:
                    ops[seq] = LogEntry(seq, rec[2], rec[3], rec[4])
                    high = max(high, seq)
                    self.next_seq = max(self.next_seq, seq + 1)
                elif kind in (ACK, DROP):
                    self.settled = max(self.settled, seq)
                else:
                    raise CorruptionError(path, 0, f"unknown record kind {kind}")
            self.segments.append((number, path, high))
        self.next_seq = max(self.next_seq, self.settled + 1)
        self.pending.extend(e for seq, e in sorted(ops.items()) if seq > self.settled)
        self._roll((numbers[-1] + 1) if numbers else 1)
        self._delete_settled()

    def _path(self, number: int) -> str:
        return os.path.join(self.directory, f"mirror-{number:08d}.log")

    def _roll(self, number: int) -> None:
        path = self._path(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        os.write(fd, encode_header(self.next_seq))
        os.fsync(fd)
        fsync_directory(self.directory)
        if getattr(self, "_fd", None) is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        self._fd, self._size = fd, HEADER_SIZE
        self.segments.append((number, path, 0))

    def _write(self, payload: list) -> None:
        record = encode_record(payload)
        if len(record) > RECORD_BYTES_MAX:
            raise InvalidRequest(f"operation of {len(record)} bytes exceeds the mirror log's record limit "
                                 f"({RECORD_BYTES_MAX} bytes); store large values elsewhere")
        os.write(self._fd, record)
        self._size += len(record)
        if self.sync_each:
            os.fdatasync(self._fd)

    def append(self, operation_type: str, entry: bytes, timestamp_us: int) -> LogEntry:
        if self._size >= self.segment_size_bytes:
            self._roll(self.segments[-1][0] + 1)
        e = LogEntry(self.next_seq, timestamp_us, operation_type, entry)
        self._write([OP, e.seq, timestamp_us, operation_type, entry])
        self.next_seq += 1
        number, path, _ = self.segments[-1]
        self.segments[-1] = (number, path, e.seq)
        self.pending.append(e)
        return e

    def settle(self, seq: int, dropped: bool = False) -> int:
        """Mark every operation up to `seq` delivered (or dropped). Returns how many left `pending`."""
        if seq <= self.settled:
            return 0
        self._write([DROP if dropped else ACK, seq])
        self.settled = seq
        n = 0
        while self.pending and self.pending[0].seq <= seq:
            self.pending.popleft()
            n += 1
        self._delete_settled()
        return n

    def _delete_settled(self) -> None:
        keep = []
        for number, path, high in self.segments[:-1]:
            if high <= self.settled:
                os.unlink(path)
            else:
                keep.append((number, path, high))
        if len(keep) != len(self.segments) - 1:
            fsync_directory(self.directory)
        self.segments = keep + self.segments[-1:]

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
