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

Appending and the segment files: engine/commit_log_writer.py; syncing: engine/commit_log_sync.py.
Format: docs/format.md (commit log) (kept in step by tests/engine/test_commit_log.py).
"""
from __future__ import annotations

import logging
import mmap
import os
import threading
import time
from typing import Iterator

from engine.commit_log_replay import fsync_path, list_segments, repair_tail, replay_segments
from engine.commit_log_sync import CommitLogSync, SyncWaiters, release_all
from engine.commit_log_segment import ENTRY_OVERHEAD, HEADER_SIZE, MARKER_SIZE, MAX_SEGMENT_BYTES
from engine.commit_log_writer import CommitLogWriter
from engine.errors import CorruptionError, EngineError

Position = tuple[int, int]

log = logging.getLogger(__name__)

WRITE_BUFFER_BYTES = 64 * 1024       # batch/group: appends reach the OS when the buffer exceeds this
SYNC_MODES = ("periodic", "batch", "group")
QUARANTINE_DIR = "corrupt"           # damaged segments are moved here, never deleted


class CommitLog(CommitLogWriter, CommitLogSync):
    """A directory of segments; `add` appends, a sync policy decides when appends are durable."""

    def __init__(self, directory: str, *, sync: str = "periodic", sync_period_ms: int = 10_000,
                 group_window_ms: float = 1.0, segment_size_bytes: int = 32 * 1024 * 1024,
                 max_record_bytes: int | None = None, ignore_replay_errors: bool = False,
                 clock=time.monotonic, lock=None):
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
        # `lock`: a Store's write lock (periodic mode: engine/recovery.py), so one lock orders
        # its memtable puts and its records; else the log has its own. append_held appends for
        # a caller holding `lock`: under it (append_locked), or taking the log's own (append).
        self._lock = lock if lock is not None else threading.Lock()
        self.append_held = self.append_locked if lock is not None else self.append
        self._held = getattr(lock, "_is_owned", None)            # an RLock: held by this thread?
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
        self._refuse_held()
        with self._lock:
            if self._clock() - self._last_sync_start > self._block_s:
                self._block_for_sync_locked()

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
