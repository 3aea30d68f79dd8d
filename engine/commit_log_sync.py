"""Syncing the commit log: SyncWaiters (the writers of batch and group commit waiting for an
fdatasync that covers them) and CommitLogSync (the sync half of CommitLog).

Group commit (Cassandra's commitlog_sync batch/group) as a leader/follower protocol. Writers
append under the commit log's lock and get a position; then a writer whose position is not yet
synced either *leads* (no sync in flight: it takes everything appended so far, writes and
fdatasyncs it outside the lock, publishes the new synced position) or *enlists* on the batch
that will cover it and sleeps on a lock of its own.

Two batches exist at most: the *in-flight* batch (taken by the running sync: its waiters' records
lie at or before the in-flight target) and the *open* batch (records appended after the take;
the next sync covers them). All methods but `wait` are called with the commit log's lock held.

Invariants:
- A waiter enlists only while a sync is in flight (or a leader is waiting out its group window),
  so a `complete` or `fail` always follows and releases it: no lost wake-ups.
- Each waiter's lock is released exactly once: by a hand-over (which moves the batch's `first`
  past it) or by the *relay* of its done batch: `complete`/`fail` release the waiter at `first`,
  and each writer the relay woke releases its successor. So at most one or two woken writers
  compete for the GIL at a time instead of the whole batch at once (measured: 5-6 context
  switches per write with a wake-all, ~1.5 with the relay; bench/README.md).
- On completion, if the open batch has waiters, its first waiter is handed leadership
  (released, not in the relay): it retries, and either leads, finds itself covered, or enlists
  again behind a sync some newcomer started. So the next sync starts without waiting for a
  writer to arrive, and without waking the whole batch.
- group mode: a leader sleeping out its window on `window_gate` is woken by the enlist that
  brings the open batch to `expected` sleepers (as many as the last sync acknowledged), so a
  window never delays a batch that is already as large as the last one.
- A failed sync fails both batches: every waiter raises the same error, none is acknowledged.
- Waiters of a completed batch read `done`/`error` without the commit log's lock: there is no
  convoy on it after an fsync, each woken writer goes straight back to its caller.
"""
from __future__ import annotations

import os
import time
from _thread import allocate_lock

from engine.commit_log_replay import fsync_path
from engine.errors import EngineError

Position = tuple[int, int]


class Batch:
    """The writers one sync acknowledges; `done` and `error` are set before any is released."""

    __slots__ = ("waiters", "first", "done", "error")

    def __init__(self) -> None:
        self.waiters: list = []          # pre-acquired locks, one per sleeping writer
        self.first = 0                   # waiters before it were handed leadership, not in the relay
        self.done = False
        self.error: BaseException | None = None


class SyncWaiters:
    """The open and in-flight batches of one commit log (see the module docstring)."""

    def __init__(self) -> None:
        self.open = Batch()
        self.inflight: Batch | None = None
        self.inflight_target: tuple[int, int] | None = None
        self.window_gate = None           # lock a leader sleeps on during its group window
        self.expected = 0                 # writers the last sync acknowledged (its batch size)
        self.syncs_led = 0                # completions (tests and stats)
        self.handovers = 0                # leaderships passed to a sleeping writer

    def enlist(self, pos: tuple[int, int]):
        """Sleep slot for a writer at `pos` while a sync runs: the in-flight batch if its target
        covers pos, else the open batch. Returns (batch, lock) for `wait`."""
        target = self.inflight_target
        batch = self.inflight if target is not None and pos <= target else self.open
        lk = allocate_lock()
        lk.acquire()
        waiters = batch.waiters
        waiters.append(lk)
        gate = self.window_gate
        if gate is not None and batch is self.open and len(waiters) - batch.first >= self.expected:
            self.window_gate = None       # as many as last time are here: end the window now
            gate.release()
        return batch, lk, len(waiters)

    @staticmethod
    def wait(batch: Batch, lk, after: int) -> bool:
        """Block (without the commit log's lock) until released. True: the batch is durable;
        False: this writer was handed leadership and must retry. Raises the batch's error.

        A done batch wakes its writers as a relay: each woken writer wakes the next one
        (`after` is its successor's index), so no more than two wait for the GIL at a time."""
        lk.acquire()
        if after <= batch.first:         # handed leadership (its batch may be done since)
            if batch.done and batch.error is None:
                return True
            return False                 # retry under the log's lock: lead, or raise
        waiters = batch.waiters          # released by the relay: the batch is done
        if after < len(waiters):
            waiters[after].release()
        if batch.error is not None:
            raise batch.error
        return True

    def queued(self) -> int:
        """Writers sleeping on the open batch (what the next sync would acknowledge at least)."""
        return len(self.open.waiters) - self.open.first

    def take(self, target: tuple[int, int]) -> None:
        """A leader takes everything appended so far, up to `target`: the open batch flies."""
        assert self.inflight is None, "one sync at a time"
        self.inflight, self.open = self.open, Batch()
        self.inflight_target = target

    def complete(self) -> list:
        """The in-flight sync succeeded: returns the locks to release (after dropping the
        commit log's lock), the open batch's first waiter last, handed leadership."""
        batch, self.inflight, self.inflight_target = self.inflight, None, None
        self.syncs_led += 1
        release = []
        nxt = self.open
        if len(nxt.waiters) > nxt.first:  # not done: it retries and leads the next sync
            release.append(nxt.waiters[nxt.first])
            nxt.first += 1
            self.handovers += 1
        if batch is not None:
            batch.done = True
            self.expected = len(batch.waiters) - batch.first
            if len(batch.waiters) > batch.first:
                release.append(batch.waiters[batch.first])   # starts the relay
        return release

    def fail(self, error: BaseException) -> list:
        """The log stopped (a sync failed, or it closed): every waiter raises `error`."""
        release = []
        for batch in (self.inflight, self.open):
            if batch is not None and not batch.done:
                batch.error = error
                batch.done = True
                if len(batch.waiters) > batch.first:
                    release.append(batch.waiters[batch.first])   # starts the relay
        self.inflight, self.inflight_target = None, None
        return release


def release_all(locks: list) -> None:
    """Wake the writers `complete`/`fail` returned (each lock was acquired by its waiter)."""
    for lk in locks:
        lk.release()


class CommitLogSync:
    """The syncing half of engine/commit_log.py's CommitLog (its lock, buffer and segments):
    batch/group writers lead a sync or sleep in SyncWaiters; periodic mode's sync thread and
    the writers it blocks when it lags; an explicit sync(). Every `_locked` method runs with
    the log's lock held and returns with it held."""

    def _await_synced(self, pos: Position) -> None:
        """Return once `pos` is durable: lead a sync when none runs, else sleep on the batch
        that covers pos (engine/commit_log_sync.py). Raises EngineError if the log fails or
        closes first; then the record was not acknowledged."""
        self._refuse_held()
        waiters = self._waiters
        while True:
            with self._lock:
                if self._synced >= pos:
                    return
                if self._failure is not None or not self._open:
                    self._raise_not_ready()
                if not self._syncing:
                    release = self._lead_locked()
                else:
                    batch, lk, after = waiters.enlist(pos)
                    release = None
            if release is None:
                if waiters.wait(batch, lk, after):
                    return
            else:
                release_all(release)

    def _refuse_held(self) -> None:
        """A waiter must not hold the lock it was given (a Store's write lock, an RLock): an
        enlisted writer would keep the lock the sync's leader needs to wake it (batch, group:
        both wait forever), and a wait on the log's condition releases it, letting others into
        the caller's critical section (periodic). So it raises RuntimeError instead."""
        if self._held is not None and self._held():
            raise RuntimeError("waiting for the commit log while holding the store's write lock")

    def _lead_locked(self) -> list:
        """Take the sync role; in group mode first wait out the rest of the group window while
        others enlist on the open batch, or until as many sleep there as the last sync
        acknowledged (SyncWaiters.enlist opens the gate). Returns the waiters to release."""
        self._syncing = True
        if self._window_s:
            wait_s = self._last_sync_start + self._window_s - self._clock()
            if wait_s > 0:
                gate = allocate_lock()
                gate.acquire()
                self._waiters.window_gate = gate
                self._lock.release()
                try:
                    gate.acquire(timeout=wait_s)
                except BaseException:            # e.g. KeyboardInterrupt: give the role up
                    self._lock.acquire()
                    self._waiters.window_gate = None
                    self._syncing = False
                    self._cond.notify_all()
                    release_all(self._waiters.complete())
                    raise
                self._lock.acquire()
                self._waiters.window_gate = None
        return self._sync_locked(leading=True)

    def _sync_locked(self, leading: bool = False) -> list:
        """Write the buffer, then fdatasync outside the lock. Only one sync runs at a time.

        Returns the sleeping writers this sync acknowledged (and the next leader, handed the
        role), for the caller to release once it drops the lock."""
        if not leading:
            assert not self._syncing
            self._syncing = True
        try:
            if self._failure is not None or not self._open:
                self._raise_not_ready()
            start = self._clock()
            self._mark_locked()
            self._write_buffer_locked()
        except BaseException:
            self._syncing = False
            self._cond.notify_all()
            raise
        target = (self._seg_id, self._offset)
        self._waiters.take(target)
        if target == self._synced and not self._closing and not self._dir_dirty:
            self._last_sync_start = start                        # nothing new: a free sync
            self._syncing = False
            self._cond.notify_all()
            return self._waiters.complete()
        rolled, self._closing = self._closing, []
        jobs = rolled + [(self._seg_id, self._fd, self._offset)]
        dir_dirty, self._dir_dirty = self._dir_dirty, False
        self._lock.release()
        try:
            for _, fd, _ in jobs:
                os.fdatasync(fd)
            if dir_dirty:
                fsync_path(self.directory, directory=True)
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
        return self._waiters.complete()

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
                    release_all(self._sync_locked())
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
        release_all(self._sync_locked())
