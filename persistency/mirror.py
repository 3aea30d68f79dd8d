"""The mirror: write-behind from the space to the synchronization endpoint through a durable log.

`enqueue` logs an operation (durably, see mirror_log.py) and returns; one delivery thread sends
batches in log order, so per-key order holds. A batch goes out when `batch_size` operations are
pending or the oldest has waited `interval_ms` (GigaSpaces' defaults: 100 operations, 2000 ms),
and on `flush`/`close`. Delivery is at-least-once: the log is acknowledged only after the
endpoint succeeded, and replays are harmless (operations carry their timestamps).

Failures are classified (`classify`): "transient" errors of the cluster's state (timeouts,
unavailable replicas, overload, lost connections) are retried with exponential backoff, forever:
nothing is parked because the cluster is down. "poison" errors a retry cannot fix (InvalidRequest,
a SerializationError, a TypeError or ValueError from a user serializer, ...) split the batch at
once: each operation is sent alone, and one that still fails is parked in the dead-letter table
(`persistency_dead_letter`) with its error and counted, never dropped silently; the rest flow.
Any other error is retried `max_attempts` times, then handled as poison.
A full log applies `on_capacity_exceeded`: "block" (the writer waits; `blocked` counts) or
"drop-oldest" (the oldest pending operations are settled undelivered; `dropped` counts only those
not already in the batch being sent, which are still delivered).
"""
from __future__ import annotations

import logging
import threading
import time

from engine.errors import EngineError, InvalidRequest
from persistency.backend import StoreUnavailable
from persistency.dynamic_serializer import DEFAULT_DYNAMIC
from persistency.mapping import type_name_of
from persistency.mirror_log import LogEntry, MirrorLog
from persistency.operation import (
    DataSyncOperation,
    OperationClock,
    OperationsBatchData,
    OperationType,
)
from ring.errors import ConfigurationError, RequestError

log = logging.getLogger("dynatable.persistency")
POLICIES = ("block", "drop-oldest")


class _Stopping(Exception):
    """The mirror closed while a batch was being retried; the batch stays in the log."""


class MirrorClosed(InvalidRequest):
    """The mirror was closed; create a new one over the same log directory to resume."""


TRANSIENT = (RequestError, StoreUnavailable, OSError, TimeoutError)
DETERMINISTIC = (TypeError, ValueError, AttributeError, LookupError, ArithmeticError, RecursionError,
                 NotImplementedError, ConfigurationError)


def classify(error: BaseException) -> str:
    """"transient" (retry until it works), "poison" (a retry cannot fix it) or "unknown" (retry a
    bounded number of times). Pure; see the module docstring."""
    if isinstance(error, EngineError):
        return "transient" if error.retryable else "poison"
    if isinstance(error, TRANSIENT):
        return "transient"
    if isinstance(error, DETERMINISTIC):
        return "poison"
    return "unknown"


class Mirror:
    def __init__(self, endpoint, log_directory: str, *, batch_size: int = 100, interval_ms: int = 2000,
                 capacity: int = 100_000, on_capacity_exceeded: str = "block", sync: str = "periodic",
                 sync_period_ms: int = 100, retry_initial_ms: int = 100, retry_max_ms: int = 5000,
                 max_attempts: int = 5, serializer=DEFAULT_DYNAMIC, start: bool = True):
        for name, value in (("batch_size", batch_size), ("interval_ms", interval_ms), ("capacity", capacity),
                            ("max_attempts", max_attempts)):
            if not isinstance(value, int) or value < 1:
                raise InvalidRequest(f"mirror {name} must be a positive integer, got {value!r}")
        if on_capacity_exceeded not in POLICIES:
            raise InvalidRequest(f"on_capacity_exceeded must be one of {POLICIES}, got {on_capacity_exceeded!r}")
        self.endpoint = endpoint
        self.batch_size, self.interval_s, self.capacity = batch_size, interval_ms / 1000, capacity
        self.policy = on_capacity_exceeded
        self.sync_period_s = sync_period_ms / 1000
        self.retry_initial_s, self.retry_max_s = retry_initial_ms / 1000, retry_max_ms / 1000
        self.max_attempts = max_attempts
        self._in_flight: set[int] = set()    # seqs of the batch being sent
        self.serializer = serializer
        self.log = MirrorLog(log_directory, sync=sync)
        self.clock = OperationClock(max((e.timestamp_us for e in self.log.pending), default=0))
        self.metrics = {"enqueued": 0, "delivered": 0, "batches": 0, "retries": 0, "parked": 0, "dropped": 0,
                        "blocked": 0, "resumed": len(self.log.pending)}
        self._cond = threading.Condition()
        self._oldest_at = time.monotonic() if self.log.pending else None
        self._flush_requested = False
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="persistency-mirror", daemon=True)
        if start:
            self._thread.start()

    # -- the space side --------------------------------------------------------------------------

    def enqueue(self, operation_type: OperationType, entry) -> int:
        """Log one operation; returns its sequence number. Raises MirrorClosed after close()."""
        data = self.serializer.to_bytes(entry)   # fails here, in the writer, for an unregistered class
        kind = OperationType(operation_type).value
        with self._cond:
            while True:
                if self._closing:
                    raise MirrorClosed("the mirror is closed; operations are no longer accepted")
                if len(self.log.pending) < self.capacity:
                    break
                if self.policy == "drop-oldest":
                    oldest = self.log.pending[0].seq
                    self.log.settle(oldest, dropped=True)
                    if oldest not in self._in_flight:   # one being sent is still delivered
                        self.metrics["dropped"] += 1
                        log.warning("mirror log full (%d operations): dropped the oldest", self.capacity)
                    break
                self.metrics["blocked"] += 1
                self._cond.wait(0.5)
            e = self.log.append(kind, data, self.clock.next())
            self.metrics["enqueued"] += 1
            if self._oldest_at is None:
                self._oldest_at = time.monotonic()
            if len(self.log.pending) >= self.batch_size:
                self._cond.notify_all()
            return e.seq

    def pending(self) -> int:
        with self._cond:
            return len(self.log.pending)

    def flush(self, timeout_s: float = 300.0) -> bool:
        """Deliver everything logged so far; True if done within the timeout."""
        with self._cond:
            target = self.log.next_seq - 1
            self._flush_requested = True
            self._cond.notify_all()
            deadline = time.monotonic() + timeout_s
            while self.log.settled < target and self.log.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def close(self, timeout_s: float = 300.0) -> bool:
        """Stop accepting operations, deliver what is pending within the timeout (GigaSpaces'
        async-channel-shutdown-timeout, 300 s), stop. What is left stays in the log for the next start."""
        if self._closed:
            return True
        done = self.flush(timeout_s) if self._thread.is_alive() else not self.log.pending
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)   # a thread stuck in the endpoint settles nothing after this
        with self._cond:
            self.log.close()
            self._closed = True
        return done

    # -- the delivery thread ---------------------------------------------------------------------

    def _next_batch(self) -> list[LogEntry] | None:
        with self._cond:
            last_sync = time.monotonic()
            while True:
                if self._closing:
                    return None
                n = len(self.log.pending)
                now = time.monotonic()
                if now - last_sync >= self.sync_period_s:
                    self.log.sync()
                    last_sync = now
                due = self._oldest_at is not None and now - self._oldest_at >= self.interval_s
                if n and (n >= self.batch_size or due or self._flush_requested):
                    self.log.sync()
                    batch = [self.log.pending[i] for i in range(min(n, self.batch_size))]
                    self._in_flight = {e.seq for e in batch}
                    return batch
                if not n:
                    self._flush_requested = False
                self._cond.wait(self.sync_period_s)

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._deliver_and_settle(batch)
        except _Stopping:
            pass
        except Exception:   # a dead-letter table that refuses writes: stop, keep everything logged
            log.exception("mirror: delivery stopped; pending operations stay in the log")

    def _deliver_and_settle(self, batch: list[LogEntry]) -> None:
        self._deliver(batch)
        with self._cond:
            if self._closed:
                raise _Stopping   # closed while the endpoint was busy: the log stays as it is
            self.log.settle(batch[-1].seq)       # a no-op for operations drop-oldest settled meanwhile
            self._in_flight = set()
            self.metrics["delivered"] += len(batch)
            self.metrics["batches"] += 1
            self._oldest_at = time.monotonic() if self.log.pending else None
            self._cond.notify_all()

    def _operation(self, e: LogEntry) -> DataSyncOperation:
        return DataSyncOperation(OperationType(e.operation_type), self.serializer.from_bytes(e.entry),
                                 timestamp_us=e.timestamp_us)

    def _deliver(self, batch: list[LogEntry]) -> None:
        """Returns once the batch is applied, parked where poison, or the mirror is closing."""
        try:
            ops = [self._operation(e) for e in batch]
        except Exception as e:  # noqa: BLE001 - an entry that no longer decodes: isolate it below
            ops, error = None, e
        if ops is not None:
            error = self._attempt(lambda: self._send(ops))
            if error is None:
                return
        if len(batch) > 1 or ops is None:
            for e in batch:
                self._deliver_one(e)
        else:
            self._park(batch[0], error)

    def _deliver_one(self, e: LogEntry) -> None:
        try:
            op = self._operation(e)
        except Exception as error:  # noqa: BLE001 - undecodable: poison by definition
            self._park(e, error)
            return
        error = self._attempt(lambda: self._send([op]))
        if error is not None:
            self._park(e, error)

    def _send(self, ops: list[DataSyncOperation]) -> None:
        batch = OperationsBatchData(ops)
        self.endpoint.on_operations_batch_synchronization(batch)
        self.endpoint.after_operations_batch_synchronization(batch)

    def _attempt(self, send) -> BaseException | None:
        """Send, retrying with backoff until success (None), a poison error or `max_attempts` of
        unknown ones (the last error returned). Transient errors are retried forever."""
        delay = self.retry_initial_s
        unknown = 0
        while True:
            try:
                send()
                return None
            except Exception as e:  # noqa: BLE001 - the endpoint's errors are classified, never lost
                kind = classify(e)
                unknown += kind == "unknown"
                if kind == "poison" or unknown >= self.max_attempts:
                    return e
                self.metrics["retries"] += 1
                log.warning("mirror: batch failed (%s: %s); retrying in %.1f s", type(e).__name__, e, delay)
            with self._cond:
                if self._closing:
                    raise _Stopping   # leave it in the log for the next start
                self._cond.wait(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _park(self, e: LogEntry, error: BaseException) -> None:
        try:
            type_name = type_name_of(self.serializer.from_bytes(e.entry))
        except Exception:  # noqa: BLE001 - the entry itself is what is broken
            type_name = "?"
        message = f"{type(error).__name__}: {error}"

        def park():
            self.endpoint.client.ensure_dead_letter_table()
            self.endpoint.client.park(f"{e.seq}@{e.timestamp_us}", type_name, e.operation_type, e.entry, message)
        failure = self._attempt(park)
        if failure is not None:
            raise failure   # the dead-letter table itself refuses: stop rather than lose the operation
        self.metrics["parked"] += 1
        log.error("mirror: parked operation %d (%s %s) in the dead-letter table: %s", e.seq, e.operation_type,
                  type_name, message)
