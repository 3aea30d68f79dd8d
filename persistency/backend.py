"""The store boundary: the one narrow protocol between the persistency and a cluster, `Backend`.

The endpoint, the data source and the mirror reach the cluster only through these methods, so a
backend is all it takes to run the same layer on another cluster: `native_backend.DynatableClient`
(dynatable's own client) and `cql_backend.CqlBackend` (cassandra-driver: dynatable's CQL, Apache
Cassandra, ScyllaDB); `config.open_backend` chooses. Layout, the same for every backend (the Thrift column family seen from CQL, "compact
storage"): a type's table is `(<key> <id type>, column1 text, value blob, PRIMARY KEY (<key>,
column1))`, one CQL row per space column, so columns can be added by any write (dynamic
properties), a partition deletion is the original's row deletion, and reads return columns in name
order. Type metadata lives in `persistency_metadata` (read and written at QUORUM), parked
operations in `persistency_dead_letter` (docs/persistency.md#tables).

Contract: mutations carry explicit timestamps, so their order on the wire does not matter,
reconciliation by timestamp does; `apply` returns only after every mutation has an answer and
raises the first error. `scan_rows` takes an optional token range (start, end]: the rows whose
partition-key token lies in it (Murmur3, Cassandra's). A backend never creates keyspaces; `ensure_*` calls are idempotent and
safe when several endpoints race.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from engine.errors import InvalidRequest

METADATA_TABLE = "persistency_metadata"
DEAD_LETTER_TABLE = "persistency_dead_letter"
RESERVED_TABLES = (METADATA_TABLE, DEAD_LETTER_TABLE)
LEVELS = ("ONE", "TWO", "THREE", "QUORUM", "ALL", "ANY", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
METADATA_LEVEL = "QUORUM"
VALUE_INDEX = "{table}_value_idx"


class StoreUnavailable(Exception):
    """The cluster could not take the request now (a timeout, too few replicas, overload, no host,
    a lost connection). Nothing is known to be applied; the same request may succeed later."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Put:
    table: str
    key_column: str
    key: object
    column: str
    value: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class DeleteRow:
    table: str
    key_column: str
    key: object
    timestamp: int


def check_options(read_consistency: str, write_consistency: str,
                  gc_grace_seconds: int | None) -> tuple[str, str]:
    """The (read, write) levels, upper-cased; InvalidRequest for a level or gc_grace no backend takes."""
    read_consistency, write_consistency = read_consistency.upper(), write_consistency.upper()
    for what, level in (("read", read_consistency), ("write", write_consistency)):
        if level not in LEVELS:
            raise InvalidRequest(f"{what} consistency {level!r} is not one of {', '.join(LEVELS)}")
    if read_consistency == "ANY":
        raise InvalidRequest("read consistency ANY is not allowed (ANY is a write-only level); use ONE or higher")
    if gc_grace_seconds is not None and (not isinstance(gc_grace_seconds, int) or gc_grace_seconds < 0):
        raise InvalidRequest(f"gc_grace_seconds must be an integer >= 0, got {gc_grace_seconds!r}")
    return read_consistency, write_consistency


class Backend(Protocol):
    """What the persistency needs of a cluster. Keys are the stored id values; cells are
    (column name, value bytes), in column-name order."""

    keyspace: str

    # tables (idempotent)
    def ensure_table(self, name: str, key_column: str, key_type: str) -> None: ...
    def ensure_metadata_table(self) -> None: ...
    def ensure_dead_letter_table(self) -> None: ...
    def create_index(self, table: str) -> None: ...

    # type metadata (METADATA_TABLE, at METADATA_LEVEL)
    def write_metadata(self, type_name: str, data: bytes) -> None: ...
    def read_metadata(self, type_name: str) -> bytes | None: ...
    def read_all_metadata(self) -> list[tuple[str, bytes]]: ...

    # data
    def apply(self, mutations: list[Put | DeleteRow]) -> None: ...
    def read_row(self, table: str, key_column: str, key) -> list[tuple[str, bytes]]: ...
    def read_rows(self, table: str, key_column: str, keys: list) -> list[list[tuple[str, bytes]]]: ...
    def scan_rows(self, table: str, key_column: str, page_size: int,
                  token_range: tuple[int, int] | None = None) -> Iterator[tuple[object, list[tuple[str, bytes]]]]: ...
    def index_keys(self, table: str, key_column: str, column: str, value: bytes,
                   page_size: int) -> Iterator[list]: ...

    # dead letters (DEAD_LETTER_TABLE)
    def park(self, operation_id: str, type_name: str, operation_type: str, operation: bytes,
             error: str) -> None: ...
    def dead_letters(self) -> list[dict]: ...

    def close(self) -> None: ...
