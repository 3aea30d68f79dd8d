"""SyncWaiters: the writers of batch and group commit waiting for an fdatasync that covers them.

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
- Each waiter's lock is released exactly once: by `complete`/`fail` of its batch, or by a
  hand-over, which first removes it from its batch.
- On completion, if the open batch has waiters, its first waiter is handed leadership
  (released without `done`): it retries, and either leads, finds itself covered, or enlists
  again behind a sync some newcomer started. So the next sync starts without waiting for a
  writer to arrive, and without waking the whole batch.
- A failed sync fails both batches: every waiter raises the same error, none is acknowledged.
- Waiters of a completed batch read `done`/`error` without the commit log's lock: there is no
  convoy on it after an fsync, each woken writer goes straight back to its caller.
"""
from __future__ import annotations

from _thread import allocate_lock


class Batch:
    """The writers one sync acknowledges; `done` and `error` are set before any is released."""

    __slots__ = ("waiters", "done", "error")

    def __init__(self) -> None:
        self.waiters: list = []          # pre-acquired locks, one per sleeping writer
        self.done = False
        self.error: BaseException | None = None


class SyncWaiters:
    """The open and in-flight batches of one commit log (see the module docstring)."""

    def __init__(self) -> None:
        self.open = Batch()
        self.inflight: Batch | None = None
        self.inflight_target: tuple[int, int] | None = None
        self.syncs_led = 0                # completions (tests and stats)
        self.handovers = 0                # leaderships passed to a sleeping writer

    def enlist(self, pos: tuple[int, int]):
        """Sleep slot for a writer at `pos` while a sync runs: the in-flight batch if its target
        covers pos, else the open batch. Returns (batch, lock) for `wait`."""
        target = self.inflight_target
        batch = self.inflight if target is not None and pos <= target else self.open
        lk = allocate_lock()
        lk.acquire()
        batch.waiters.append(lk)
        return batch, lk

    @staticmethod
    def wait(batch: Batch, lk) -> bool:
        """Block (without the commit log's lock) until released. True: the batch is durable;
        False: this writer was handed leadership and must retry. Raises the batch's error."""
        lk.acquire()
        if batch.done:
            if batch.error is not None:
                raise batch.error
            return True
        return False

    def queued(self) -> int:
        """Writers sleeping on the open batch (what the next sync would acknowledge at least)."""
        return len(self.open.waiters)

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
        if batch is not None:
            batch.done = True
            release = batch.waiters
            batch.waiters = []
        nxt = self.open.waiters
        if nxt:
            release.append(nxt.pop(0))   # not done: it retries and leads the next sync
            self.handovers += 1
        return release

    def fail(self, error: BaseException) -> list:
        """The log stopped (a sync failed, or it closed): every waiter raises `error`."""
        release = []
        for batch in (self.inflight, self.open):
            if batch is not None:
                batch.error = error
                batch.done = True
                release += batch.waiters
                batch.waiters = []
        self.inflight, self.inflight_target = None, None
        return release


def release_all(locks: list) -> None:
    """Wake the writers `complete`/`fail` returned (each lock was acquired by its waiter)."""
    for lk in locks:
        lk.release()
