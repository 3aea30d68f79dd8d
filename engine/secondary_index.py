"""A local secondary index on one regular column of one table (Cassandra's legacy 2i, in memory).

Entries are `(value key, token, partition key, clustering) -> seq`, kept in a SortedDict, so one
value's rows come in (token, key, clustering) order (an equality reads a token range directly)
and values come in their CQL order (ranges <, <=, >, >= are an `irange`). The value key is the
order-preserving encoding of engine/cql_types.py (engine/restriction.py `comparable`).

Invariants:
* every live row whose indexed cell is live has an entry for that cell's value (writes add one
  under the store's write lock, before the write is acknowledged; `build` adds one per live row
  of the table, after the write hook is attached, so nothing written meanwhile is missed);
* an entry may be stale (the row was overwritten, deleted or expired): readers re-check every hit
  against the reconciled row (`search`), and a stale entry is removed then if no write touched it
  since the reader took its `seq` before reading the row (a later write re-adds it with a new seq);
* the index is derived data and never written to disk: `Store.open` rebuilds it from the table
  after commit-log replay, so it is exactly as durable and crash-consistent as the table.
Decision record and costs: docs/secondary_indexes.md.
"""
from __future__ import annotations

import logging
import threading
from itertools import islice

import msgpack
from sortedcontainers import SortedDict

from engine import row_decode
from engine import restriction as rs
from engine.errors import IndexNotReady, InvalidRequest
from engine.partition import Partition, live_row, live_rows
from engine.schema import IndexMetadata, Table

log = logging.getLogger("dynatable.engine")

BUILDING, READY, FAILED = "BUILDING", "READY", "FAILED"
_AFTER_ALL_TOKENS = 2**63          # greater than every token: (v, _AFTER_ALL_TOKENS) ends value v
_CHUNK = 256                       # entries copied out per lock hold


def decode_paging_state(state: bytes | None) -> tuple | None:
    """The (token, key, clustering) an index query's page ended at; InvalidRequest if malformed."""
    if not state:
        return None
    try:
        token, key, ck = msgpack.unpackb(state) if isinstance(state, bytes) else state
        if isinstance(token, int) and isinstance(key, bytes) and isinstance(ck, bytes):
            return token, key, ck
    except (ValueError, TypeError, msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException):
        pass
    raise InvalidRequest("paging_state is not one an index query returned; pass the previous page's paging_state")


def check_indexable(table: Table, column: str) -> None:
    col = table.column(column)
    if col.kind != "regular":
        raise InvalidRequest(f"column '{column}' of {table.qualified_name} is a {col.kind.replace('_', ' ')} "
                             "column; secondary indexes are on regular columns (query key columns directly)")
    if col.cql_type == "decimal":
        raise InvalidRequest(f"column '{column}' is decimal, which has no order-preserving encoding yet, so it "
                             "cannot be indexed; index a double or text copy of it")
    if "<" in col.cql_type or col.cql_type == "duration":
        raise InvalidRequest(f"column '{column}' is {col.cql_type}: indexes on collections and durations are not "
                             "supported (docs/cql.md)")


class SecondaryIndex:
    def __init__(self, table: Table, meta: IndexMetadata):
        check_indexable(table, meta.column)
        self.meta = meta
        col = table.column(meta.column)
        self.col_id = col.id
        self.cql_type = col.cql_type
        self.entries: SortedDict = SortedDict()
        self.seq = 0
        self.lock = threading.Lock()
        self.state = BUILDING
        self.rows_built = 0
        self.stale_removed = 0
        self.cancelled = False

    @property
    def name(self) -> str:
        return self.meta.name

    # -- maintenance -------------------------------------------------------------------------

    def index_update(self, token: int, key: bytes, update: Partition) -> None:
        """A write to the table (called under the store's write lock): add its indexed cells."""
        col_id = self.col_id
        for ck, row in update.rows.items():
            cell = row.cells.get(col_id)
            if cell is not None and cell[3] is not None:
                self._add((rs.comparable_bytes(self.cql_type, cell[3]), token, key, ck))

    def _add(self, entry: tuple) -> None:
        with self.lock:
            self.seq += 1
            self.entries[entry] = self.seq

    def build(self, cfs) -> None:
        """Index every live row of the table (the write hook must already be attached)."""
        col_id = self.col_id
        try:
            now_s = cfs.clock.now_s()
            for token, key, p in cfs.scan_partitions(None, None):
                if self.cancelled:
                    return
                for ck, cells in live_rows(p, now_s):
                    cell = cells.get(col_id)
                    if cell is not None:
                        self._add((rs.comparable_bytes(self.cql_type, cell[3]), token, key, ck))
                    self.rows_built += 1
        except BaseException:
            if self.cancelled:   # dropped (or the store closed) while building: files may be gone
                return
            self.state = FAILED
            log.exception("building index %s of %s failed", self.name, cfs.table.qualified_name)
            raise
        self.state = READY
        log.info("index %s of %s built: %d rows, %d entries", self.name, cfs.table.qualified_name,
                 self.rows_built, len(self.entries))

    def check_ready(self, table: Table) -> None:
        if self.state != READY:
            what = "failed to build; see the node's log, then drop and re-create it" if self.state == FAILED \
                else f"is still building ({self.rows_built} rows indexed so far); retry shortly"
            raise IndexNotReady(f"index {self.name} on {table.qualified_name}.{self.meta.column} {what}")

    def _remove_if_unchanged(self, entry: tuple, seq: int) -> None:
        with self.lock:
            if self.entries.get(entry) == seq:
                del self.entries[entry]
                self.stale_removed += 1

    # -- lookups ------------------------------------------------------------------------------

    def _irange(self, lo: tuple, hi: tuple, inclusive: tuple):
        """Yield (entry, seq) in order, copying a chunk at a time under the lock."""
        while True:
            with self.lock:
                keys = list(islice(self.entries.irange(lo, hi, inclusive), _CHUNK))
                chunk = [(k, self.entries[k]) for k in keys]
            yield from chunk
            if len(chunk) < _CHUNK:
                return
            lo, inclusive = chunk[-1][0], (False, inclusive[1])

    def candidates(self, restrictions: list, start, end, after):
        """Entries that may match, in (token, key, clustering) order, within [start, end) of
        (token, key) and after `after` (token, key, clustering) if given."""
        value = rs.equality_key(restrictions, self.meta.column)
        if value is not None:
            lo, inclusive_lo = ((value,) if start is None else (value, *start)), True
            if after is not None and (value, *after) >= lo:
                lo, inclusive_lo = (value, *after), False
            hi = (value, _AFTER_ALL_TOKENS) if end is None else (value, *end)
            yield from self._irange(lo, hi, (inclusive_lo, False))
            return
        lo_key, hi_key = rs.key_bounds(restrictions, self.meta.column)
        lo = None if lo_key is None else (lo_key,)
        hi = None if hi_key is None else (hi_key, _AFTER_ALL_TOKENS)
        hits = [(entry, seq) for entry, seq in self._irange(lo, hi, (True, True))
                if (start is None or entry[1:3] >= start) and (end is None or entry[1:3] < end)
                and (after is None or entry[1:] > after)]
        hits.sort(key=lambda hit: hit[0][1:])
        yield from hits

    def search(self, cfs, table: Table, restrictions: list, start=None, end=None, after=None):
        """Yield (token, key, ck, Partition, row dict) for each live row matching every
        restriction on this node, in (token, key, clustering) order; stale hits are dropped."""
        now_s = cfs.clock.now_s()
        last_key = p = key_values = None
        for entry, seq in self.candidates(restrictions, start, end, after):
            value, token, key, ck = entry
            if key != last_key:
                p = cfs.read_partition(token, key)
                last_key, key_values = key, row_decode.decode_key(table, key)
            cells = live_row(p, ck, now_s) if p is not None else None
            cell = cells.get(self.col_id) if cells else None
            if cell is None or rs.comparable_bytes(self.cql_type, cell[3]) != value:
                self._remove_if_unchanged(entry, seq)
                continue
            row = row_decode.row_dict(table, key_values, ck, cells)
            if rs.matches(table, restrictions, row):
                yield token, key, ck, p, row

    def stats(self) -> str:
        return f"{self.state}, {len(self.entries)} entries, {self.stale_removed} stale removed"
