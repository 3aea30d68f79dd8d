"""The commit log: an append-only, checksummed record of opaque payloads (Cassandra's CommitLog).

Invariants:
- Segments are files `CommitLog-1-<segment_id>.log`; ids strictly increase; only the newest
  (the *active*) segment is written; a Position `(segment_id, offset)` names the byte after a
  record, so positions compare as plain tuples in log order.
- A segment is a header then whole records; a buffer holds only whole records and is written to
  the OS whole, so every length this module writes, syncs or truncates to is a record boundary.
- `_synced` is a position such that every record at or before it has been fdatasync'ed; batch and
  group writers return only once `_synced` covers their record.
- Only the tail of the log can be torn: on open, a trailing segment shorter than a header (or all
  zeros) is deleted and the last segment is truncated at its first bad record; a bad record
  anywhere else is a CorruptionError at replay.

Format: docs/format.md (commit log) (kept in step by tests/engine/test_commit_log.py).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Iterator

from engine.encoding import U16, U32, U32_U32, U64, check, crc32
from engine.errors import CorruptionError, EngineError, InvalidRequest

Position = tuple[int, int]

log = logging.getLogger(__name__)

MAGIC = b"DTCL"
VERSION = 1
HEADER_SIZE = 4 + 2 + 8 + 4          # magic, version, segment_id, header CRC
ENTRY_OVERHEAD = 12                  # size, size CRC, tail CRC (Cassandra's ENTRY_OVERHEAD_SIZE)
WRITE_BUFFER_BYTES = 64 * 1024       # batch/group: appends reach the OS when the buffer exceeds this
SYNC_MODES = ("periodic", "batch", "group")
_NAME = re.compile(r"^CommitLog-(\d+)-(\d+)\.log$")


def segment_name(segment_id: int) -> str:
    return f"CommitLog-{VERSION}-{segment_id}.log"


def encode_header(segment_id: int) -> bytes:
    head = MAGIC + U16.pack(VERSION) + U64.pack(segment_id)
    return head + U32.pack(crc32(head))


def encode_record(payload: bytes) -> bytes:
    """`u32 size | u32 CRC32(size) | payload | u32 CRC32(size ‖ payload)`."""
    head = U32.pack(len(payload))
    c = crc32(head)
    return head + U32.pack(c) + payload + U32.pack(crc32(payload, c))


def decode_header(buf: bytes | memoryview, path: str) -> int:
    """Check a segment header; returns its segment_id. Raises CorruptionError at offset 0."""
    check(len(buf) >= HEADER_SIZE, path, 0, f"header truncated ({len(buf)} of {HEADER_SIZE} bytes)")
    check(bytes(buf[0:4]) == MAGIC, path, 0, f"bad magic {bytes(buf[0:4])!r}, expected {MAGIC!r}")
    (stored,) = U32.unpack_from(buf, 14)
    check(stored == crc32(buf[0:14]), path, 14, "header CRC mismatch")
    (version,) = U16.unpack_from(buf, 4)
    check(version == VERSION, path, 4, f"unsupported version {version}, expected {VERSION}")
    (segment_id,) = U64.unpack_from(buf, 6)
    return segment_id


def scan_records(buf: bytes | memoryview, path: str, max_record_bytes: int | None = None,
                 start: int = HEADER_SIZE) -> Iterator[tuple[int, int]]:
    """Yield (offset, size) of each good record from `start` to the end of segment data.

    The data ends at the end of the buffer or at a size of 0. The first bad record raises
    CorruptionError(path, offset of that record, what); callers decide whether it is a torn tail.
    """
    mv = memoryview(buf)
    end = len(mv)
    limit = end if max_record_bytes is None else max_record_bytes
    pos = start
    while pos < end:
        if end - pos < 8:
            if end - pos >= 4 and U32.unpack_from(mv, pos)[0] == 0:
                return
            raise CorruptionError(path, pos, f"record header truncated ({end - pos} bytes left)")
        size, size_crc = U32_U32.unpack_from(mv, pos)
        if size == 0:
            return
        if size_crc != crc32(mv[pos:pos + 4]):
            raise CorruptionError(path, pos, "record size CRC mismatch")
        if size > limit:
            raise CorruptionError(path, pos, f"record size {size} exceeds max_record_bytes={limit}")
        data_end = pos + 8 + size
        if data_end + 4 > end:
            raise CorruptionError(path, pos, f"record of {size} bytes truncated")
        (tail_crc,) = U32.unpack_from(mv, data_end)
        if tail_crc != crc32(mv[pos + 8:data_end], size_crc):
            raise CorruptionError(path, pos, "record payload CRC mismatch")
        yield pos, size
        pos = data_end + 4


def _now_ms() -> int:
    """Wall-clock milliseconds: the lower bound of a new segment_id (tests pin it)."""
    return time.time_ns() // 1_000_000


def _check_header(data: bytes, path: str, segment_id: int) -> None:
    check(decode_header(data, path) == segment_id, path, 6, "segment_id differs from file name")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CommitLog:
    """A directory of segments; `add` appends, a sync policy decides when appends are durable."""

    def __init__(self, directory: str, *, sync: str = "periodic", sync_period_ms: int = 10_000,
                 group_window_ms: float = 1.0, segment_size_bytes: int = 32 * 1024 * 1024,
                 max_record_bytes: int | None = None, clock=time.monotonic):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        if max_record_bytes is None:
            max_record_bytes = segment_size_bytes // 2
        if not 0 < max_record_bytes <= segment_size_bytes - HEADER_SIZE - ENTRY_OVERHEAD:
            raise ValueError(f"max_record_bytes={max_record_bytes} must be > 0 and fit a segment "
                             f"of segment_size_bytes={segment_size_bytes} with header and framing")
        self.directory = str(directory)
        self.sync_mode = sync
        self._max_record = max_record_bytes
        self._segment_size = segment_size_bytes
        self._clock = clock
        self._period_s = sync_period_ms / 1000.0
        self._block_s = 1.5 * self._period_s
        self._window_s = group_window_ms / 1000.0 if sync == "group" else 0.0
        self._ack_after_sync = sync != "periodic"
        # periodic: every append reaches the OS at once, so a process crash (kill -9) loses nothing
        # acknowledged; only a machine crash can lose the last unsynced period, as in Cassandra
        self._buffer_limit = 0 if sync == "periodic" else WRITE_BUFFER_BYTES
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # counters (see the `stats` property)
        self._records = self._bytes = self._syncs = 0
        self._segments_created = self._segments_deleted = 0
        self._blocked_s = 0.0
        self._torn_bytes = 0
        os.makedirs(self.directory, exist_ok=True)
        self._segments: dict[int, str] = self._list_segments()   # id -> path, ascending
        self._repair_tail()
        self._replay_ids = list(self._segments)
        self._replay_state = "pending"                           # pending | running | done
        self._synced_len = {i: os.path.getsize(p) for i, p in self._segments.items()}
        # the active segment and the write path
        self._buf = bytearray()
        self._closing: list[tuple[int, int, int]] = []          # (id, fd, length): rolled, unsynced
        self._seg_id = -1
        self._fd = -1
        self._offset = 0
        self._dir_dirty = False
        self._create_segment_locked()
        self._synced: Position = (self._seg_id, 0)
        self._syncing = False
        self._leader_waiting = False
        self._sync_requested = False
        self._failure: BaseException | None = None
        self._open = True
        self._ready = True                                       # open, not failed, not replaying
        self._last_sync_start = clock()
        self._thread = None
        if sync == "periodic":
            name = f"commitlog-sync-{os.path.basename(self.directory)}"
            self._thread = threading.Thread(target=self._run_periodic, daemon=True, name=name)
            self._thread.start()

    # ---- opening and replay -------------------------------------------------------------------

    def _list_segments(self) -> dict[int, str]:
        found = {}
        for name in os.listdir(self.directory):
            m = _NAME.match(name)
            if not m:
                continue
            path = os.path.join(self.directory, name)
            if int(m.group(1)) != VERSION:
                raise CorruptionError(path, 0, f"unsupported commit log version {m.group(1)}")
            found[int(m.group(2))] = path
        return dict(sorted(found.items()))

    def _repair_tail(self) -> None:
        """Drop the torn tail: trailing segments with no header, then the last segment's bad record.

        Runs at open so that a later segment is never created after a torn one.
        """
        changed = False
        while self._segments:
            seg_id, path = next(reversed(self._segments.items()))
            data = _read(path)
            if len(data) >= HEADER_SIZE and data.count(0) != len(data):
                break
            log.warning("commit log: deleting torn segment %s (%d bytes, no header)",
                        path, len(data))
            os.unlink(path)
            del self._segments[seg_id]
            self._torn_bytes += len(data)
            changed = True
        if self._segments:
            seg_id, path = next(reversed(self._segments.items()))
            try:
                _check_header(data, path, seg_id)
            except CorruptionError:
                return                                   # a bad full header: replay raises
            good = HEADER_SIZE
            try:
                for offset, size in scan_records(data, path, self._max_record):
                    good = offset + ENTRY_OVERHEAD + size
            except CorruptionError as e:
                log.warning("commit log: torn tail in %s at offset %d (%s); truncating, dropping "
                            "%d bytes", path, e.offset, e.what, len(data) - good)
                self._torn_bytes += len(data) - good
                with open(path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        if changed:
            _fsync_path(self.directory, directory=True)

    def replay(self) -> Iterator[tuple[Position, bytes]]:
        """Yield ((segment_id, end offset), payload) for every record that existed at open."""
        if self._replay_state != "pending" or self._records:
            raise EngineError("replay() runs once, before the first add()")
        self._replay_state = "running"
        self._ready = False
        try:
            for seg_id in self._replay_ids:
                path = self._segments.get(seg_id)
                if path is None:
                    continue
                data = _read(path)
                _check_header(data, path, seg_id)
                for offset, size in scan_records(data, path, self._max_record):
                    end = offset + ENTRY_OVERHEAD + size
                    yield (seg_id, end), data[offset + 8:end - 4]
        finally:
            self._replay_state = "done"
            with self._lock:
                self._ready = self._open and self._failure is None

    # ---- the write path -----------------------------------------------------------------------

    def add(self, payload: bytes) -> Position:
        """Append one record; returns the position after it. Durable on return in batch/group."""
        pos = self.append(payload)
        self.await_durable(pos)
        return pos

    def await_durable(self, pos: Position) -> None:
        """Block as the sync mode demands for a record at `pos`: until it is fsynced (batch,
        group), or while the periodic sync lags more than 1.5 periods (periodic)."""
        with self._lock:
            if self._ack_after_sync:
                self._await_synced_locked(pos, self._window_s)
            elif self._clock() - self._last_sync_start > self._block_s:
                self._block_for_sync_locked()

    def append(self, payload: bytes) -> Position:
        """Append one record without waiting for durability (callers then await_durable).

        Lets a caller append under its own lock and wait outside it, so writers share fsyncs.
        """
        n = len(payload)
        if n > self._max_record or n == 0:
            self._reject(n)
        c = crc32(U32.pack(n))
        tail = U32.pack(crc32(payload, c))
        with self._lock:
            if not self._ready:
                self._raise_not_ready()
            end = self._offset + n + ENTRY_OVERHEAD
            if end > self._segment_size:
                self._roll_locked()
                end = self._offset + n + ENTRY_OVERHEAD
            buf = self._buf
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
        seg_id = max(_now_ms(), max(self._segments, default=0) + 1, self._seg_id + 1)
        path = os.path.join(self.directory, segment_name(seg_id))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, encode_header(seg_id))
        except BaseException:
            os.close(fd)
            raise
        self._segments[seg_id] = path
        self._synced_len[seg_id] = 0
        self._seg_id, self._fd, self._offset = seg_id, fd, HEADER_SIZE
        self._dir_dirty = True
        self._segments_created += 1

    def _roll_locked(self) -> None:
        self._write_buffer_locked()
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
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            self._fail_locked(e)
            raise EngineError(f"commit log write failed: {e!r}") from e

    def _fail_locked(self, exc: BaseException) -> None:
        log.error("commit log failed: %r; it accepts no more writes", exc)
        self._failure = exc
        self._ready = False
        self._cond.notify_all()

    # ---- syncing ------------------------------------------------------------------------------

    def _await_synced_locked(self, pos: Position, window_s: float) -> None:
        """Return once `pos` is durable, leading a sync when none runs (natural batching).

        With window_s > 0 (group), a sync starts at most once per window: one writer waits out
        the rest of the window as the next leader while the others sleep on the condition.
        """
        while self._synced < pos:
            if self._failure is not None or not self._open:
                self._raise_not_ready()
            if self._syncing or self._leader_waiting:
                self._cond.wait()
                continue
            if window_s:
                wait_s = self._last_sync_start + window_s - self._clock()
                if wait_s > 0:
                    self._leader_waiting = True
                    try:
                        self._cond.wait(wait_s)
                    finally:
                        self._leader_waiting = False
                    continue
            self._sync_locked()

    def _sync_locked(self) -> None:
        """Write the buffer, then fdatasync outside the lock. Only one sync runs at a time."""
        assert not self._syncing
        start = self._clock()
        self._write_buffer_locked()
        target = (self._seg_id, self._offset)
        if target == self._synced and not self._closing and not self._dir_dirty:
            self._last_sync_start = start                        # nothing new: a free sync
            self._cond.notify_all()
            return
        rolled, self._closing = self._closing, []
        jobs = rolled + [(self._seg_id, self._fd, self._offset)]
        dir_dirty, self._dir_dirty = self._dir_dirty, False
        self._syncing = True
        self._lock.release()
        try:
            for _, fd, _ in jobs:
                os.fdatasync(fd)
            if dir_dirty:
                _fsync_path(self.directory, directory=True)
        except OSError as e:
            self._lock.acquire()
            self._syncing = False
            self._fail_locked(e)
            raise EngineError(f"commit log sync failed: {e!r}") from e
        self._lock.acquire()
        self._syncing = False
        for seg_id, _, length in jobs:
            if seg_id in self._synced_len:
                self._synced_len[seg_id] = length
        for _, fd, _ in rolled:     # an fd rolled during this fsync is closed by the next sync
            os.close(fd)
        if target > self._synced:
            self._synced = target
        self._last_sync_start = start
        self._syncs += 1
        self._cond.notify_all()

    def _block_for_sync_locked(self) -> None:
        """Periodic mode: the last sync lags more than 1.5 periods; wait for the next one."""
        t0 = time.perf_counter()
        seen = self._syncs
        lag_start = self._last_sync_start
        self._sync_requested = True
        self._cond.notify_all()
        while self._syncs == seen and self._last_sync_start == lag_start:
            if self._failure is not None or not self._open:
                self._raise_not_ready()
            self._cond.wait()
        self._blocked_s += time.perf_counter() - t0

    def _run_periodic(self) -> None:
        with self._lock:
            while self._open and self._failure is None:
                due = self._last_sync_start + self._period_s - self._clock()
                if due > 0 and not self._sync_requested:
                    self._cond.wait(min(due, self._period_s))
                    continue
                if self._syncing:
                    self._cond.wait()
                    continue
                self._sync_requested = False
                try:
                    self._sync_locked()
                except EngineError:
                    return

    def sync(self) -> None:
        """Write everything buffered and fdatasync it now (any mode)."""
        with self._lock:
            if not self._open or self._failure is not None:
                self._raise_not_ready()
            self._sync_all_locked()

    def _sync_all_locked(self) -> None:
        while self._syncing:
            self._cond.wait()
        self._sync_locked()

    # ---- positions, segments, shutdown --------------------------------------------------------

    def current_position(self) -> Position:
        with self._lock:
            return (self._seg_id, self._offset)

    def segment_paths(self) -> list[str]:
        with self._lock:
            return list(self._segments.values())

    def discard_before(self, position: Position) -> int:
        """Delete each segment with id < position[0], never the active one; returns the count."""
        with self._lock:
            doomed = [i for i in self._segments if i < position[0] and i != self._seg_id]
            assert self._replay_state != "running", "discard_before() during replay()"
            for seg_id in doomed:
                os.unlink(self._segments.pop(seg_id))
                self._synced_len.pop(seg_id, None)
            self._segments_deleted += len(doomed)
            return len(doomed)

    def close(self) -> None:
        """Sync, stop the sync thread, close files. An active segment with no record is deleted."""
        with self._lock:
            if not self._open:
                return
            if self._failure is None:
                self._sync_all_locked()
            self._shutdown_locked()
            if self._offset == HEADER_SIZE and self._failure is None:
                os.unlink(self._segments.pop(self._seg_id))
                self._synced_len.pop(self._seg_id, None)
                self._segments_deleted += 1
        self._join()

    def crash(self, lose_unsynced: bool = False) -> None:
        """Fault injection: drop the buffer unwritten, stop, close; maybe lose unsynced bytes."""
        with self._lock:
            if not self._open:
                return
            self._buf = bytearray()
            self._shutdown_locked()
        self._join()
        if lose_unsynced:
            for seg_id, path in self._segments.items():
                length = self._synced_len.get(seg_id)
                if length is not None and os.path.exists(path) and os.path.getsize(path) > length:
                    os.truncate(path, length)

    def _shutdown_locked(self) -> None:
        self._open = False
        self._ready = False
        self._cond.notify_all()
        while self._syncing:                 # an fsync in flight still uses the fds
            self._cond.wait()
        for _, fd, _ in self._closing:
            os.close(fd)
        self._closing = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _join(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def stats(self) -> dict:
        return {
            "records": self._records,
            "bytes": self._bytes,
            "syncs": self._syncs,
            "segments_created": self._segments_created,
            "segments_deleted": self._segments_deleted,
            "writer_blocked_ms": self._blocked_s * 1000.0,
            "torn_bytes_dropped": self._torn_bytes,
        }

    def __enter__(self) -> "CommitLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
