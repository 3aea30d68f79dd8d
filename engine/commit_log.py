"""The commit log: an append-only, checksummed record of opaque payloads (Cassandra's CommitLog).

Invariants:
- Segments are files `CommitLog-<version>-<segment_id>.log`; ids strictly increase and each
  header names the previous segment's id; only the newest (the *active*) segment is written; a
  Position `(segment_id, offset)` names the byte after a record, so positions compare as tuples.
- A buffer holds only whole records and is written to the OS whole. Every sync first closes the
  section written since the last sync with a sync marker (engine/commit_log_segment.py), so the
  bytes a completed sync covered always lie before a valid marker.
- `_synced` is a position such that every record at or before it has been fdatasync'ed; batch and
  group writers return only once `_synced` covers their record.
- Only what no sync covered can be torn: on open, a trailing segment shorter than a header (or
  all zeros) is deleted and the last segment is truncated at its first bad record *after its
  last valid sync marker*. Any other bad byte is a CorruptionError at replay (or, with
  ignore_replay_errors, an ERROR and a skipped section); a segment that held one is moved to
  `corrupt/`, never deleted.

Format: docs/format.md (commit log) (kept in step by tests/engine/test_commit_log.py).
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
import struct
import threading
import time
from typing import Iterator

from engine.commit_log_replay import fsync_path, list_segments, repair_tail, replay_segments
from engine.commit_log_sync import CommitLogSync, SyncWaiters, release_all
from engine.commit_log_segment import (ENTRY_OVERHEAD, HEADER_SIZE, MARKER_SIZE, MAX_SEGMENT_BYTES,
                                       VERSION, encode_header, encode_marker, segment_name)
from engine.encoding import U32, U32_U32, crc32
from engine.errors import CorruptionError, EngineError, InvalidRequest

Position = tuple[int, int]

log = logging.getLogger(__name__)

WRITE_BUFFER_BYTES = 64 * 1024       # batch/group: appends reach the OS when the buffer exceeds this
SYNC_MODES = ("periodic", "batch", "group")
QUARANTINE_DIR = "corrupt"           # damaged segments are moved here, never deleted


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


class CommitLog(CommitLogSync):
    """A directory of segments; `add` appends, a sync policy decides when appends are durable."""

    def __init__(self, directory: str, *, sync: str = "periodic", sync_period_ms: int = 10_000,
                 group_window_ms: float = 1.0, segment_size_bytes: int = 32 * 1024 * 1024,
                 max_record_bytes: int | None = None, ignore_replay_errors: bool = False,
                 clock=time.monotonic):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        if not 0 < segment_size_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_size_bytes must be in 1..{MAX_SEGMENT_BYTES}")
        if max_record_bytes is None:
            max_record_bytes = segment_size_bytes // 2
        if not 0 < max_record_bytes <= segment_size_bytes - HEADER_SIZE - ENTRY_OVERHEAD - MARKER_SIZE:
            raise ValueError(f"max_record_bytes={max_record_bytes} must be > 0 and fit a segment "
                             f"of segment_size_bytes={segment_size_bytes} with header, framing "
                             f"and a sync marker")
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
        # acknowledged; only a machine crash can lose the last unsynced period, as in Cassandra.
        # It is copied into a shared mapping of the segment (Cassandra's MemoryMappedSegment): the
        # page cache holds it at once, without a write() per record. Batch and group modes write
        # their buffer at each sync (an fdatasync follows at once: a mapping saves nothing there).
        self._buffer_limit = 0 if sync == "periodic" else WRITE_BUFFER_BYTES
        self._mapped = sync == "periodic"
        self._map: mmap.mmap | None = None
        self._woff = 0                                           # bytes handed to the OS
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # counters (see the `stats` property)
        self._records = self._bytes = self._syncs = 0
        self._segments_created = self._segments_deleted = 0
        self._blocked_s = 0.0
        self._ignore_replay_errors = ignore_replay_errors
        self._damaged: set[int] = set()                          # segments that held corruption
        self._replay_errors: list[CorruptionError] = []
        os.makedirs(self.directory, exist_ok=True)
        self._segments, self._versions = list_segments(self.directory)   # id -> path, ascending
        self._torn_bytes, self._last_end = repair_tail(self.directory, self._segments,
                                                       self._versions, self._max_record)
        self._replay_ids = list(self._segments)
        self._replay_state = "pending"                           # pending | running | done
        self._synced_len = {i: os.path.getsize(p) for i, p in self._segments.items()}
        # the active segment and the write path
        self._buf = bytearray()
        self._closing: list[tuple[int, int, int]] = []          # (id, fd, length): rolled, unsynced
        self._seg_id = -1
        self._fd = -1
        self._offset = 0
        self._section_start = 0                                  # where the unmarked section starts
        self._dir_dirty = False
        self._create_segment_locked()
        self._synced: Position = (self._seg_id, 0)
        self._syncing = False                                   # a leader holds the sync role
        self._waiters = SyncWaiters()                           # batch/group writers asleep
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

    def _replay_error(self, seg_id: int, e: CorruptionError) -> None:
        """Cassandra's handleReplayError: stop, unless told to ignore replay errors."""
        if not self._ignore_replay_errors:
            raise CorruptionError(e.path, e.offset, e.what + "; the commit log holds synced "
                                  "data here. Move the segment aside only if you accept losing "
                                  "it, or replay the rest with commitlog_ignore_replay_errors")
        log.error("commit log: %s; ignored (ignore replay errors): replay goes on past it, "
                  "the segment will be kept in %s/", e, QUARANTINE_DIR)
        self._damaged.add(seg_id)
        self._replay_errors.append(e)

    def replay(self) -> Iterator[tuple[Position, bytes]]:
        """Yield ((segment_id, end offset), payload) for every record that existed at open."""
        if self._replay_state != "pending" or self._records:
            raise EngineError("replay() runs once, before the first add()")
        self._replay_state = "running"
        self._ready = False
        try:
            yield from replay_segments(self._segments, self._versions, self._replay_ids,
                                       self._max_record, self._replay_error)
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
        if self._ack_after_sync:
            self._await_synced(pos)
            return
        if self._clock() - self._last_sync_start <= self._block_s:
            return                       # the common case, read without the lock (a float, set whole)
        with self._lock:
            if self._clock() - self._last_sync_start > self._block_s:
                self._block_for_sync_locked()

    def append(self, payload: bytes) -> Position:
        """Append one record without waiting for durability (callers then await_durable).

        Lets a caller append under its own lock and wait outside it, so writers share fsyncs.
        """
        n = len(payload)
        if n > self._max_record or n == 0:
            self._reject(n)
        framing = _FRAMING.get(n)                              # (pack_into of the record, size CRC)
        if framing is None:
            framing = _framing(n)
        pack_record, c = framing
        crc = crc32(payload, c)        # outside the lock: not held while a writer checksums
        with self._lock:
            if not self._ready:
                self._raise_not_ready()
            end = self._offset + n + ENTRY_OVERHEAD
            if end + MARKER_SIZE > self._segment_size:         # room for the closing marker
                self._roll_locked()
                end = self._offset + n + ENTRY_OVERHEAD
            buf = self._buf
            mm = self._map
            if mm is not None and not buf:                     # periodic: straight into the mapping
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

    def _fail_locked(self, exc: BaseException) -> None:
        log.error("commit log failed: %r; it accepts no more writes", exc)
        self._failure = exc
        self._ready = False
        release_all(self._waiters.fail(EngineError(f"commit log failed and stopped: {exc!r}")))
        self._cond.notify_all()

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
                path = self._segments.pop(seg_id)
                self._synced_len.pop(seg_id, None)
                if seg_id in self._damaged:              # evidence: moved aside, never deleted
                    self._quarantine(path)
                else:
                    os.unlink(path)
            self._segments_deleted += len(doomed)
            return len(doomed)

    def _quarantine(self, path: str) -> None:
        target_dir = os.path.join(self.directory, QUARANTINE_DIR)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, os.path.basename(path))
        os.replace(path, target)
        fsync_path(self.directory, directory=True)
        log.error("commit log: moved damaged segment %s to %s (replayed with errors skipped)",
                  path, target)

    def close(self, flushed: bool = False) -> None:
        """Sync, stop the sync thread, close files. An active segment with no record is deleted.

        flushed=True (a clean shutdown: the caller has every record in SSTables): every segment
        but the active one is deleted and the active one is truncated to its header, so no
        record stays on disk while the next open still continues the segment ids from it."""
        with self._lock:
            if not self._open:
                return
            if self._failure is None:
                self._sync_all_locked()
            self._shutdown_locked()
            if self._failure is None and flushed and not self._damaged:
                for seg_id in [i for i in self._segments if i != self._seg_id]:
                    os.unlink(self._segments.pop(seg_id))
                    self._synced_len.pop(seg_id, None)
                    self._segments_deleted += 1
                if self._offset > HEADER_SIZE:
                    path = self._segments[self._seg_id]
                    os.truncate(path, HEADER_SIZE)
                    fsync_path(path)
                    self._synced_len[self._seg_id] = HEADER_SIZE
                fsync_path(self.directory, directory=True)
            elif self._offset == HEADER_SIZE and self._failure is None:
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
            self._unmap_locked(trim=False)                       # as a kill -9 leaves it
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
        release_all(self._waiters.fail(EngineError("commit log is closed")))
        self._unmap_locked(trim=True)
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
            "replay_errors_ignored": len(self._replay_errors),
        }

    def __enter__(self) -> "CommitLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
