"""The engine's error tree.

Operating errors (disk, input) raise from here; programmer errors are asserts and are never
caught. Each error says whether a retry can help (`retryable`).
"""
from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    retryable: bool = False


class CorruptionError(EngineError):
    """Bytes on disk failed a check: a checksum, a magic number, a length or a version.

    Never returned as data. `path` and `offset` say where; `what` says which check failed.
    """

    def __init__(self, path: str, offset: int, what: str):
        self.path = str(path)
        self.offset = offset
        self.what = what
        super().__init__(f"corruption in {self.path} at offset {offset}: {what}")


class InvalidRequest(EngineError):
    """The request is malformed (unknown table or column, wrong type, a limit exceeded).

    Nothing was applied. Fix the request; a retry of the same request cannot help.
    """


class AlreadyExists(InvalidRequest):
    """CREATE of a keyspace or table that exists, without if_not_exists (Cassandra's
    AlreadyExistsException). `table` is "" for a keyspace. Nothing was changed; pass
    if_not_exists=True to make the create a no-op, or drop the old one first."""

    def __init__(self, keyspace: str, table: str = ""):
        self.keyspace, self.table = keyspace, table
        what = f"table {keyspace}.{table}" if table else f"keyspace {keyspace}"
        super().__init__(f"Cannot add already existing {what}; pass if_not_exists=True "
                         "(IF NOT EXISTS) to keep it, or drop it first")


class TombstoneOverwhelmingError(EngineError):
    """A read scanned more tombstones than `tombstone_failure_threshold` and was aborted."""

    def __init__(self, scanned: int, threshold: int, where: str):
        self.scanned = scanned
        self.threshold = threshold
        super().__init__(
            f"scanned over {threshold} tombstones in {where} ({scanned} seen); query aborted. "
            "Compact the table or lower gc_grace_seconds, or raise tombstone_failure_threshold."
        )


class StoreClosedError(EngineError):
    """The store was closed; open it again."""


class IndexNotReady(EngineError):
    """A secondary index is still being built (or its build failed) on a node; retry shortly."""

    retryable = True
