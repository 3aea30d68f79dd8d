"""Synchronization operations: what a space sends to the mirror and the mirror to the endpoint.

`timestamp_us` is the operation's write time; the mirror stamps it when the operation is logged,
so a replayed batch writes the very same cells (replays are idempotent). An UPDATE uses its
timestamp for the row deletion and timestamp + 1 for the new cells, so `OperationClock` hands out
timestamps 2 apart and never goes backwards.
"""
from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field


class OperationType(str, enum.Enum):   # on disk (mirror log): the names, never rename
    WRITE = "WRITE"
    UPDATE = "UPDATE"
    PARTIAL_UPDATE = "PARTIAL_UPDATE"
    REMOVE = "REMOVE"
    REMOVE_BY_UID = "REMOVE_BY_UID"    # rejected by the endpoint, as in the original
    CHANGE = "CHANGE"                  # rejected by the endpoint, as in the original


@dataclass
class DataSyncOperation:
    operation_type: OperationType
    document: object                    # a SpaceDocument or a registered dataclass instance
    type_descriptor: object = None      # optional: the endpoint looks the type up by name
    timestamp_us: int | None = None


@dataclass
class OperationsBatchData:
    operations: list[DataSyncOperation] = field(default_factory=list)


@dataclass
class TransactionData:
    operations: list[DataSyncOperation] = field(default_factory=list)
    transaction_id: str | None = None


class OperationClock:
    """Microsecond write timestamps, strictly increasing by at least 2 (thread-safe)."""

    def __init__(self, last_us: int = 0):
        self._last = last_us
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 2)
            return self._last

    def observe(self, ts_us: int) -> None:
        with self._lock:
            self._last = max(self._last, ts_us)
