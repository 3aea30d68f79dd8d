"""The embedded store: one node's keyspaces and tables behind one facade.

    with Store.open("/tmp/data") as store:
        store.create_keyspace("ks")
        store.create_table("ks", "users", {"id": "int", "name": "text"}, primary_key="id")
        ts = store.insert("ks", "users", {"id": 1, "name": "ada"})
        store.get("ks", "users", {"id": 1})     # {'id': 1, 'name': 'ada'}

Write path (Cassandra's Keyspace.applyInternal): validate -> commit-log append -> memtable put
-> acknowledge (after fsync in batch/group mode). A mutation is atomic within its partition: it is
one commit-log record and one memtable update. The write path lives here; the other rooms are
  engine/recovery.py    open: schema, SSTables by manifest, replay the commit log past them, flush
  engine/catalog.py     keyspaces, tables and indexes: DDL and schema.db
  engine/background.py  the flusher and compactor threads, the flush queue, backpressure, pool stats
  engine/results.py     reads and scans shaped as rows and pages (scan pages: engine/scan_cursor.py)
  engine/snapshot.py    snapshots (hard-linked SSTables) and their checked restore
Invariants: write timestamps strictly increase per store (or are the caller's); `keyspaces` and
`cfs` are the catalog's own maps, never copies, so the write path reads them without a call;
reads, writes and DDL other than drops raise StoreClosedError once the store is closed.
Layout of the data directory: docs/format.md#data-directory.
"""
from __future__ import annotations

import os
import threading
from itertools import chain
from time import time_ns as _time_ns

from engine import mutation as mut
from engine import recovery, results, truncation
from engine import snapshot as snapshots
from engine.background import Background
from engine.batch import Batch
from engine.block_cache import BlockCache
from engine.clock import SystemClock
from engine.column_family import ColumnFamilyStore
from engine.errors import InvalidRequest, StoreClosedError
from engine.partition import encode_partition
from engine.plain_insert import encode_plain_insert
from engine.replica_api import ReplicaApi
from engine.mutation import MAX_KEY_BYTES
from engine.results import ScanPage, project, read_plan, read_row, simple_row, versions_row  # noqa: F401  (ScanPage, project: ring/ imports them from here)
from engine.scan_cursor import scan_all_pages, scan_page
from engine.schema import IndexMetadata, Keyspace, Table
from engine.write_path import WritePath


DEFAULT_OPTIONS = {
    "commitlog_sync": "periodic",              # periodic | batch | group
    "commitlog_sync_period_ms": 10_000,
    "commitlog_sync_group_window_ms": 1.0,
    "commitlog_segment_size_bytes": 32 * 1024 * 1024,
    "commitlog_ignore_replay_errors": None,    # None: env DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS
    "memtable_flush_threshold_bytes": 64 * 1024 * 1024,
    "max_value_bytes": 1024 * 1024,
    "max_batch_bytes": 16 * 1024 * 1024,
    "key_cache_size": 100_000,                 # entries per SSTable
    "chunk_cache_size_bytes": 256 * 1024 * 1024,  # verified blocks and index segments, all tables
    "block_cache": None,                       # a BlockCache to share (e.g. between stores); None: own
    "row_cache_size": 0,                       # partitions per table; 0 = off
    "tombstone_warn_threshold": 1000,
    "tombstone_failure_threshold": 100_000,
    "concurrent_compactors": 2,
    "background": True,                        # background flush and compaction threads
    "flush_worker_min_bytes": 16 * 1024 * 1024,  # background flushes this big go to a child process; None: never
    "clock": None,
    "canary_gc_grace_seconds": None,           # test-only mutant: purge tombstones this early
    "canary_skip_older_range_tombstones": False,  # test-only mutant: a point read ignores the range
                                               # tombstones of every SSTable but the newest one
}


class Store(ReplicaApi, WritePath):
    def __init__(self, path: str, options: dict):
        self.path = os.path.abspath(path)
        self.options = options
        self.clock = options["clock"] or SystemClock()
        self._write_lock = threading.RLock()
        self._last_ts = 0
        self._closed = False
        self.errors: list[BaseException] = []   # failures of background flushes and compactions
        self.keyspaces: dict[str, Keyspace] = {}             # the catalog's, from _open on
        self.cfs: dict[str, ColumnFamilyStore] = {}          # table id -> store; the catalog's

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, **options) -> "Store":
        unknown = set(options) - set(DEFAULT_OPTIONS)
        if unknown:
            raise InvalidRequest(f"unknown store options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
        opts = {**DEFAULT_OPTIONS, **options}
        if opts["commitlog_sync"] not in ("periodic", "batch", "group"):
            raise InvalidRequest(f"commitlog_sync must be periodic, batch or group, not {opts['commitlog_sync']!r}")
        if opts["block_cache"] is None:
            opts["block_cache"] = BlockCache(opts["chunk_cache_size_bytes"])
        store = cls(path, opts)
        store._open()
        return store

    def _open(self) -> None:
        """Recover (a CorruptionError refuses the open), flush the replay, rebuild indexes, start threads."""
        self.catalog, self.commit_log, self.replayed = recovery.recover(
            self.path, self.options, self.clock, self._write_lock)
        self.keyspaces = self.catalog.keyspaces
        self.cfs = self.catalog.cfs
        self.background = Background(self.cfs, self.commit_log, self._write_lock, self.options,
                                     self.errors, self._memtable_bytes)
        self.flush()
        self.catalog.build_all_indexes()  # secondary indexes are derived: rebuilt from the table
        if self.options["background"]:
            self.background.start()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self.background.stop()
        self.catalog.stop_index_builds()
        self.flush()
        # every memtable flushed: no record of the commit log is needed any more
        flushed = all(not c.memtable.partitions and not c.flushing for c in self.cfs.values())
        self.commit_log.close(flushed=flushed)
        self.catalog.close_tables()
        self._closed = True

    def crash(self, lose_unsynced: bool = False) -> None:
        """Fault injection (tests, the simulator): stop as a killed process would. Nothing is
        flushed; the commit log's user-space buffer is dropped, and with lose_unsynced=True so is
        everything not yet fsynced (a machine crash)."""
        self.background.stop()
        self.catalog.stop_index_builds()
        self.commit_log.crash(lose_unsynced=lose_unsynced)
        self.catalog.close_tables()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store at {self.path} is closed; open it again")

    # -- schema (engine/catalog.py) ----------------------------------------------------------

    def create_keyspace(self, name: str, replication: dict | None = None, if_not_exists: bool = False) -> Keyspace:
        self._check_open()
        return self.catalog.create_keyspace(name, replication, if_not_exists)

    def create_table(self, keyspace: str, name: str, columns: dict, primary_key, clustering_order=None,
                     options: dict | None = None, if_not_exists: bool = False, table_id: str | None = None) -> Table:
        self._check_open()
        return self.catalog.create_table(keyspace, name, columns, primary_key, clustering_order, options,
                                         if_not_exists, table_id)

    def add_table(self, table: Table) -> Table:
        """Register an already built Table (same id and column ids), e.g. one learned from a peer."""
        self._check_open()
        return self.catalog.add_table(table)

    def drop_table(self, keyspace: str, name: str) -> None:
        self.catalog.drop_table(keyspace, name)

    def drop_keyspace(self, name: str) -> None:
        self.catalog.drop_keyspace(name)

    def table(self, keyspace: str, name: str) -> Table:
        return self.catalog.table(keyspace, name)

    def _resolve(self, keyspace: str, table: str) -> Table:
        """table() for the hot paths (insert, get, Batch.insert): two dict lookups, and the
        catalog's InvalidRequest only when the keyspace or table does not exist."""
        ks = self.keyspaces.get(keyspace)
        t = ks.tables.get(table) if ks is not None else None
        return t if t is not None else self.catalog.table(keyspace, table)

    def create_index(self, keyspace: str, table: str, column: str, name: str | None = None,
                     if_not_exists: bool = True) -> IndexMetadata | None:
        """CREATE INDEX [name] ON keyspace.table (column): built from the existing rows in the
        background (queries fail with IndexNotReady until it is READY). Returns the new index's
        metadata, or None if it already existed and if_not_exists."""
        self._check_open()
        return self.catalog.create_index(keyspace, table, column, name, if_not_exists)

    def add_index(self, table_id: str, meta: IndexMetadata) -> None:
        """Attach an index learned from a peer (schema sync): no duplicate-column check."""
        self._check_open()
        self.catalog.add_index(table_id, meta)

    def drop_index(self, keyspace: str, name: str, if_exists: bool = True) -> bool:
        """DROP INDEX keyspace.name. Returns whether an index was dropped."""
        self._check_open()
        return self.catalog.drop_index(keyspace, name, if_exists)

    def index_owner(self, keyspace: str, name: str) -> Table | None:
        """The table of `keyspace` holding index `name` (index names are unique per keyspace)."""
        return self.catalog.index_owner(keyspace, name)

    # -- writes -----------------------------------------------------------------------------

    def new_timestamp(self, given: int | None = None) -> int:
        if given is not None:
            if not isinstance(given, int) or isinstance(given, bool) or given < 0:
                raise InvalidRequest(f"timestamp must be a non-negative integer of microseconds, got {given!r}")
            return given
        ts = self.clock.wall_us()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def _timestamp_now(self, timestamp: int | None) -> tuple[int, int]:
        """(write timestamp, now in seconds) from one clock reading: the write hot path."""
        clock = self.clock
        if timestamp is None:  # new_timestamp(None), inlined
            if clock.__class__ is SystemClock:  # SystemClock.wall_us(), inlined; now_s() is wall_us() // 1e6
                ts = wall = _time_ns() // 1000 + clock.offset_us
                now_s = wall // 1_000_000
            else:  # one clock reading serves both where now_s is SystemClock's
                ts = wall = clock.wall_us()
                now_s = wall // 1_000_000 if type(clock).now_s is SystemClock.now_s else clock.now_s()
            if ts <= self._last_ts:
                ts = self._last_ts + 1
            self._last_ts = ts
            return ts, now_s
        return self.new_timestamp(timestamp), clock.now_s()

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None,
               timestamp: int | None = None) -> int:
        """Upsert one row (INSERT: writes the row marker). Returns the write timestamp (µs)."""
        if self._closed:
            self._check_open()
        ks = self.keyspaces.get(keyspace)  # _resolve(), inlined
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            t = self.catalog.table(keyspace, table)
        ts, now_s = self._timestamp_now(timestamp)
        options = self.options
        if ttl is None:  # the plain-insert fast path: same bytes, no Partition object
            plain = encode_plain_insert(t, row, ts, now_s, options["max_value_bytes"])
            if plain is not None:
                self.commit_log.await_durable(self._append_plain(t, plain, ts, now_s))
                return ts
        key, update, payload = mut.build_insert_encoded(t, row, ts, now_s, ttl, options["max_value_bytes"])
        self._apply_encoded([(t, key, payload, update)])
        return ts

    def delete(self, keyspace: str, table: str, key: dict, columns=None, start=None, end=None,
               start_inclusive: bool = True, end_inclusive: bool = True, timestamp: int | None = None) -> int:
        """Delete cells (`columns`), a row (full key), a clustering range (prefix or start/end) or a partition."""
        self._check_open()
        t = self.table(keyspace, table)
        ts = self.new_timestamp(timestamp)
        pk, update = mut.build_delete(t, key, ts, self.clock.now_s(), columns, start, end,
                                      start_inclusive, end_inclusive)
        self.apply([(t, pk, update)])
        return ts

    def batch(self) -> Batch:
        return Batch(self)

    def apply(self, updates: list) -> None:
        """Apply [(table, key, Partition)] as one commit-log record (atomic per partition)."""
        self._apply_encoded([(t, key, encode_partition(update), update) for t, key, update in updates])

    def tables(self) -> list[Table]:  # every table of every keyspace
        return [c.table for c in list(self.cfs.values())]

    def pool_stats(self) -> dict:  # nodetool tpstats and compactionstats: engine/background.py
        return self.background.stats()

    # -- flush and compaction (engine/background.py) -----------------------------------------

    def _on_memtable_full(self) -> None:
        self.background.memtable_full()

    def flush(self, keyspace: str | None = None, table: str | None = None) -> int:
        """Flush memtables to SSTables now (all tables, a keyspace's, or one). Returns how many."""
        targets = [c for c in list(self.cfs.values())
                   if (keyspace is None or c.table.keyspace == keyspace) and (table is None or c.table.name == table)]
        return self.background.flush(targets)

    def compact(self, keyspace: str, table: str, major: bool = True) -> int:
        """Run compactions now: a major one (everything into one), or the strategy's until done."""
        return self.background.compact(self.cfs[self.table(keyspace, table).id], major)

    def cleanup(self, keyspace: str, table: str, keep) -> int:
        """nodetool cleanup for one table: flush, then rewrite every SSTable without the partitions
        whose token `keep(token)` rejects. Returns how many partitions were dropped."""
        return self.background.cleanup(self.cfs[self.table(keyspace, table).id], keep)

    # -- snapshots (engine/snapshot.py: hard links under each table's snapshots/<tag>/) --------

    def snapshot(self, tag: str | None = None, keyspace: str | None = None, table: str | None = None) -> list:
        self._check_open()
        return snapshots.take_all(self, tag, keyspace, table)

    def list_snapshots(self) -> list:
        return snapshots.list_all(self)

    def clear_snapshot(self, tag: str | None = None, keyspace: str | None = None) -> list:
        return snapshots.clear_all(self, tag, keyspace)

    def restore_snapshot(self, keyspace: str, table: str, tag: str) -> int:
        return snapshots.restore(self, self.cfs[self.table(keyspace, table).id], tag)

    def truncate(self, keyspace: str, table: str, auto_snapshot: bool = True) -> int:  # engine/truncation.py
        return truncation.truncate(self, self.cfs[self.table(keyspace, table).id], auto_snapshot)

    # -- reads (engine/results.py) -----------------------------------------------------------

    def get(self, keyspace: str, table: str, key: dict, columns=None, writetime: bool = False) -> dict | None:
        """One row by its full primary key (or the first live row of a partition without clustering)."""
        if self._closed:
            self._check_open()
        ks = self.keyspaces.get(keyspace)  # _resolve(), inlined: the hot path
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            t = self.catalog.table(keyspace, table)
        cfs = self.cfs[t.id]
        plan = t.__dict__.get("_read_plan") or read_plan(t)
        blob_key = plan[3]
        if blob_key is not None and columns is None and not writetime and cfs.row_cache is None:
            pk = key.get(blob_key)  # results.read_row's whole-row fast path, inlined: one frame less
            if pk.__class__ is bytes and 0 < len(pk) <= MAX_KEY_BYTES:
                payloads = cfs.read_payloads(None, pk)
                if not payloads:
                    return None
                row = simple_row(payloads[0], {blob_key: pk}, plan[2]) if len(payloads) == 1 else None
                return row if row is not None else versions_row(t, cfs, key, pk, payloads, plan, None, False,
                                                                 self.clock)
        return read_row(t, cfs, key, columns, writetime, self.clock)

    def select(self, keyspace: str, table: str, key: dict, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, limit: int | None = None, columns=None, writetime: bool = False,
               reverse: bool = False) -> list[dict]:
        """Rows of one partition, optionally within a clustering slice, in clustering order."""
        self._check_open()
        t = self.table(keyspace, table)
        return results.read_rows(t, self.cfs[t.id], key, start, end, start_inclusive, end_inclusive, limit,
                                 columns, writetime, reverse)

    def scan(self, keyspace: str, table: str, start_token: int | None = None, end_token: int | None = None,
             page_size: int = 1000, paging_state: bytes | None = None, columns=None,
             writetime: bool = False) -> ScanPage:
        """Rows whose token is in (start_token, end_token], in token order, one page at a time.

        A wrapping range (start >= end) covers (start, MAX] and [MIN, end]. Pass the returned
        page's `paging_state` to get the next page; it is None on the last page.
        """
        self._check_open()
        t = self.table(keyspace, table)
        return scan_page(t, self.cfs[t.id], start_token, end_token, page_size, paging_state, columns, writetime)

    def scan_all(self, keyspace: str, table: str, start_token=None, end_token=None, page_size: int = 1000,
                 **kwargs):
        """Iterate over every row of a token range, page by page (lazily: a page is read when
        the rows before it are used up): engine/scan_cursor.py's `scan_all_pages`, one
        C-level chain over the pages' row lists."""
        return chain.from_iterable(scan_all_pages(self, keyspace, table, start_token, end_token, page_size, kwargs))

    def index_query(self, keyspace: str, table: str, where, columns=None, page_size: int = 1000,
                    paging_state: bytes | None = None) -> ScanPage:
        """Rows matching every restriction of `where` = [(column, op, value), ...], answered from
        the index of one restricted column, in token order, one page at a time."""
        self._check_open()
        t = self.table(keyspace, table)
        return results.index_page(t, self.cfs[t.id], where, columns, page_size, paging_state)

    def index_query_all(self, keyspace: str, table: str, where, page_size: int = 1000, **kwargs):
        """Iterate over every row an index query matches, page by page."""
        state = None
        while True:
            page = self.index_query(keyspace, table, where, page_size=page_size, paging_state=state, **kwargs)
            yield from page.rows
            if (state := page.paging_state) is None:
                return

    # -- introspection ----------------------------------------------------------------------

    def tablestats(self) -> list[dict]:
        return [results.table_stats(cfs) for cfs in self.cfs.values()]

    def check_invariants(self) -> None:
        self.catalog.check_invariants()
