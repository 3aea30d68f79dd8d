"""Writing the commit log's active segment: CommitLogWriter, the append half of CommitLog.

A record is `u32 n | u32 crc32(n) | payload | u32 crc` (docs/format.md, commit log), appended
whole. Periodic mode copies it straight into a shared mapping of the preallocated segment
(Cassandra's MemoryMappedSegment: the page cache holds it at once, no write() per record); batch
and group modes, and periodic mode where blocks cannot be reserved, buffer records and write()
the buffer when it exceeds its limit or a sync takes it.

Invariants:
- A segment is written only after its header; it is mapped only once posix_fallocate reserved
  all its blocks, so a full disk is an OSError at creation, never a SIGBUS on a mapped page; the
  zero fill after the data reads as "no data follows".
- The buffer holds only whole records; `_offset` is the end of everything appended (buffered or
  not), `_woff` the end of what the OS holds; a record never crosses a segment: a roll first
  closes the active segment with a sync marker and writes it out.
- A write() failure stops the log (`_fail_locked`): no later append is accepted.
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
import struct
import time

from engine.commit_log_segment import (ENTRY_OVERHEAD, HEADER_SIZE, MARKER_SIZE, VERSION,
                                       encode_header, encode_marker, segment_name)
from engine.encoding import U32, U32_U32, crc32
from engine.errors import EngineError, InvalidRequest

Position = tuple[int, int]

log = logging.getLogger(__name__)

_FRAMING: dict[int, tuple] = {}     # record size -> (pack_into of the whole record, size CRC)
_FRAMING_SIZES = 4096               # sizes kept (records of a table's common shapes repeat them)


def _framing(n: int) -> tuple:
    """One record of `n` payload bytes is `u32 n | u32 crc32(n) | payload | u32 crc`: one struct
    packs it whole into the mapping, and the size CRC is computed once per size."""
    framing = (struct.Struct(f">II{n}sI").pack_into, crc32(U32.pack(n)))
    if len(_FRAMING) < _FRAMING_SIZES:
        _FRAMING[n] = framing
    return framing


def _now_ms() -> int:
    """Wall-clock milliseconds: the lower bound of a new segment_id (tests pin it)."""
    return time.time_ns() // 1_000_000


def _preallocate(fd: int, size: int) -> bool:
    """Reserve the blocks of a whole segment (posix_fallocate). False where the file system cannot:
    a sparse file would turn a full disk into a SIGBUS on a mapped page, so the caller then
    writes records with write() instead of mapping the segment."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        return False
    return True


class CommitLogWriter:
    """The writing half of engine/commit_log.py's CommitLog (its lock, counters, segments and
    sync state): append a record, create, mark, roll, write out and unmap segments. Every
    `_locked` method runs with the log's lock held."""

    def append(self, payload: bytes) -> Position:
        """Append one record without waiting for durability (callers then await_durable).

        Lets a caller append under its own lock and wait outside it, so writers share fsyncs.
        """
        with self._lock:
            return self.append_locked(payload)

    def append_locked(self, payload: bytes) -> Position:
        """append() for a caller that holds the log's lock: a Store in periodic mode, whose
        write lock is its commit log's lock (engine/recovery.py), so one lock, not two, covers
        a write's record and its memtable put (the record's order is the memtables' order)."""
        n = len(payload)
        if n > self._max_record or n == 0:
            self._reject(n)
        if not self._ready:
            self._raise_not_ready()
        framing = _FRAMING.get(n)                              # (pack_into of the record, size CRC)
        if framing is None:
            framing = _framing(n)
        pack_record, c = framing
        crc = crc32(payload, c)
        end = self._offset + n + ENTRY_OVERHEAD
        if end + MARKER_SIZE > self._segment_size:             # room for the closing marker
            self._roll_locked()
            end = self._offset + n + ENTRY_OVERHEAD
        buf = self._buf
        mm = self._map
        if mm is not None and not buf:                         # periodic: straight into the mapping
            pack_record(mm, self._woff, n, c, payload, crc)
            self._woff = self._offset = end
            self._records += 1
            self._bytes += n
            return (self._seg_id, end)
        tail = U32.pack(crc)
        buf += U32_U32.pack(n, c)
        buf += payload
        buf += tail
        self._offset = end
        self._records += 1
        self._bytes += n
        if len(buf) > self._buffer_limit:
            self._write_buffer_locked()
        return (self._seg_id, end)

    def _reject(self, n: int) -> None:
        if n == 0:
            raise InvalidRequest("an empty payload cannot be logged (size 0 marks segment end)")
        raise InvalidRequest(f"mutation of {n} bytes exceeds max_record_bytes={self._max_record}")

    def _raise_not_ready(self) -> None:
        if self._failure is not None:
            raise EngineError(f"commit log failed and stopped: {self._failure!r}")
        if not self._open:
            raise EngineError("commit log is closed")
        raise EngineError("add() during replay(): consume the replay fully first")

    def _create_segment_locked(self) -> None:
        previous = max(self._segments, default=0)
        previous_end = self._offset if previous == self._seg_id else self._last_end
        seg_id = max(_now_ms(), previous + 1, self._seg_id + 1)
        path = os.path.join(self.directory, segment_name(seg_id))
        fd = os.open(path, (os.O_RDWR if self._mapped else os.O_WRONLY) | os.O_CREAT | os.O_EXCL, 0o644)
        mm = None
        try:
            os.write(fd, encode_header(seg_id, previous, previous_end))
            if self._mapped:
                # blocks now, so a full disk is an error here and never a SIGBUS on a mapped page;
                # the zero fill past the data reads as "no data follows" (docs/format.md)
                if _preallocate(fd, self._segment_size):
                    mm = mmap.mmap(fd, self._segment_size)
                else:
                    self._mapped = False    # no reservation: this and later segments use write()
        except BaseException:
            os.close(fd)
            raise
        self._segments[seg_id] = path
        self._versions[seg_id] = VERSION
        self._synced_len[seg_id] = 0
        self._seg_id, self._fd, self._offset = seg_id, fd, HEADER_SIZE
        self._map, self._woff = mm, HEADER_SIZE
        self._section_start = HEADER_SIZE
        self._dir_dirty = True
        self._segments_created += 1

    def _mark_locked(self) -> None:
        """Close the section written since the last marker with a sync marker (none if empty).

        Called just before the bytes are handed to the OS for the fdatasync that covers them."""
        if self._offset > self._section_start:
            self._buf += encode_marker(self._seg_id, self._offset, self._section_start)
            self._offset += MARKER_SIZE
            self._section_start = self._offset

    def _roll_locked(self) -> None:
        self._mark_locked()
        self._write_buffer_locked()
        self._unmap_locked(trim=True)
        self._closing.append((self._seg_id, self._fd, self._offset))
        self._fd = -1
        try:
            self._create_segment_locked()
        except OSError as e:
            self._fail_locked(e)
            raise EngineError(f"commit log could not create a segment: {e!r}") from e

    def _write_buffer_locked(self) -> None:
        if not self._buf:
            return
        data, self._buf = self._buf, bytearray()
        if self._map is not None:
            end = self._woff + len(data)
            self._map[self._woff:end] = data
            self._woff = end
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            self._fail_locked(e)
            raise EngineError(f"commit log write failed: {e!r}") from e

    def _unmap_locked(self, trim: bool) -> None:
        """Drop the active segment's mapping (its bytes stay in the page cache, where an
        fdatasync of the fd finds them); trim=True also cuts the file to its data (a roll, a
        clean close), trim=False leaves the zero fill a kill -9 leaves (crash())."""
        mm, self._map = self._map, None
        if mm is None:
            return
        mm.close()
        if trim:
            try:
                os.ftruncate(self._fd, self._woff)
            except OSError as e:
                log.warning("commit log: could not trim segment %d to %d bytes: %r (its zero fill "
                            "reads as the end of its data)", self._seg_id, self._woff, e)
