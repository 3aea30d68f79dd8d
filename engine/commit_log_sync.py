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

from _thread import allocate_lock


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
