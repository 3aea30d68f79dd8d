"""The embedded store: one node's keyspaces and tables behind one facade.

    with Store.open("/tmp/data") as store:
        store.create_keyspace("ks")
        store.create_table("ks", "users", {"id": "int", "name": "text"}, primary_key="id")
        ts = store.insert("ks", "users", {"id": 1, "name": "ada"})
        store.get("ks", "users", {"id": 1})     # {'id': 1, 'name': 'ada'}

Write path (Cassandra's Keyspace.applyInternal): validate -> commit-log append -> memtable put
-> acknowledge (after fsync in batch/group mode). A mutation is atomic within its partition: it is
one commit-log record and one memtable update. Open = load schema, open SSTables from each
table's manifest, replay the commit log past what the SSTables cover, flush, drop old segments.
Layout of the data directory: docs/format.md#data-directory.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading

import msgpack

from engine import mutation as mut
from engine import restriction as rs
from engine.clock import SystemClock
from engine.column_family import ColumnFamilyStore
from engine.commit_log import CommitLog
from engine.encoding import U16, check, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError, InvalidRequest, StoreClosedError
from engine.files import write_atomically
from engine.manifest import sstable_directories
from engine.partition import decode_partition, encode_partition, live_row
from engine.schema import IndexMetadata, Keyspace, Table, check_name, make_table
from engine.secondary_index import SecondaryIndex, check_indexable, decode_paging_state
from engine.token import MAX_TOKEN, MIN_TOKEN, token as token_of

log = logging.getLogger("dynatable.engine")
_packb = msgpack.Packer(use_bin_type=True).pack  # == msgpack.packb(obj, use_bin_type=True), no Packer per call

IGNORE_REPLAY_ERRORS_ENV = "DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS"  # Cassandra's -D property
SCHEMA_MAGIC = b"DTSC"
SCHEMA_VERSION = 1

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
    "row_cache_size": 0,                       # partitions per table; 0 = off
    "tombstone_warn_threshold": 1000,
    "tombstone_failure_threshold": 100_000,
    "concurrent_compactors": 2,
    "background": True,                        # background flush and compaction threads
    "clock": None,
    "canary_gc_grace_seconds": None,           # test-only mutant: purge tombstones this early
}


class Store:
    def __init__(self, path: str, options: dict):
        self.path = os.path.abspath(path)
        self.options = options
        self.clock = options["clock"] or SystemClock()
        self.keyspaces: dict[str, Keyspace] = {}
        self.cfs: dict[str, ColumnFamilyStore] = {}          # table id -> store
        self._write_lock = threading.RLock()
        self._schema_lock = threading.Lock()
        self._last_ts = 0
        self._closed = False
        self._flush_queue: list = []
        self._work = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._index_builds: list[threading.Thread] = []
        self._stopping = False
        self.errors: list[BaseException] = []

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, **options) -> "Store":
        unknown = set(options) - set(DEFAULT_OPTIONS)
        if unknown:
            raise InvalidRequest(f"unknown store options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
        opts = {**DEFAULT_OPTIONS, **options}
        if opts["commitlog_sync"] not in ("periodic", "batch", "group"):
            raise InvalidRequest(f"commitlog_sync must be periodic, batch or group, not {opts['commitlog_sync']!r}")
        store = cls(path, opts)
        store._open()
        return store

    def _open(self) -> None:
        """Recovery: schema, tables (manifests), commit-log replay. Any CorruptionError here
        refuses the open (docs/operations.md) and leaves every file as it was."""
        os.makedirs(os.path.join(self.path, "data"), exist_ok=True)
        schema_found = self._load_schema()
        self.commit_log = CommitLog(
            os.path.join(self.path, "commitlog"), sync=self.options["commitlog_sync"],
            sync_period_ms=self.options["commitlog_sync_period_ms"],
            group_window_ms=self.options["commitlog_sync_group_window_ms"],
            segment_size_bytes=self.options["commitlog_segment_size_bytes"],
            ignore_replay_errors=_ignore_replay_errors(self.options))
        try:
            for ks in self.keyspaces.values():
                for table in ks.tables.values():
                    self._open_table(table, (0, 0))
            replayed, orphans = self._replay()
            if orphans and not schema_found:
                raise CorruptionError(self._schema_path(), 0, f"missing, but the commit log holds "
                                      f"{orphans} mutations; restore schema.db from a backup")
        except BaseException:
            self.commit_log.close()
            for cfs in self.cfs.values():
                cfs.close()
            raise
        if replayed:
            log.info("replayed %d mutations from the commit log", replayed)
        self.replayed = replayed
        self.flush()
        for cfs in list(self.cfs.values()):  # secondary indexes are derived: rebuilt from the table
            for index in cfs.indexes.values():
                self._build_index(cfs, index)
        if self.options["background"]:
            self._start_threads()

    def _replay(self) -> tuple[int, int]:
        """(mutations applied, mutations of unknown tables)."""
        persisted = {tid: cfs.persisted_intervals() for tid, cfs in self.cfs.items()}
        count = orphans = 0
        for position, record in self.commit_log.replay():
            for table_id, key, payload in msgpack.unpackb(record):
                cfs = self.cfs.get(table_id)
                if cfs is None:
                    orphans += 1
                    continue  # the table was dropped
                if any(tuple(lo) < position <= tuple(hi) for lo, hi in persisted[table_id]):
                    continue
                cfs.apply(token_of(key), key, payload, decode_partition(payload), position)
                count += 1
        return count, orphans

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._stop_threads()
        self._stop_index_builds()
        self.flush()
        self.commit_log.close()
        for cfs in self.cfs.values():
            cfs.close()
        self._closed = True

    def crash(self, lose_unsynced: bool = False) -> None:
        """Fault injection for tests and the simulator: stop as a killed process would.

        Nothing is flushed; the commit log's user-space buffer is dropped, and with
        lose_unsynced=True so is everything not yet fsynced (a machine crash).
        """
        self._stop_threads()
        self._stop_index_builds()
        self.commit_log.crash(lose_unsynced=lose_unsynced)
        for cfs in self.cfs.values():
            cfs.close()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store at {self.path} is closed; open it again")

    # -- schema -----------------------------------------------------------------------------

    def _schema_path(self) -> str:
        return os.path.join(self.path, "schema.db")

    def _load_schema(self) -> bool:
        """Load schema.db; False if there is none. A missing schema.db while SSTables exist, or
        an unreadable one, is a CorruptionError (the data would otherwise be ignored)."""
        path = self._schema_path()
        if not os.path.exists(path):
            tables = sstable_directories(os.path.join(self.path, "data"))
            check(not tables, path, 0, f"missing, but {len(tables)} table directories hold "
                  f"SSTables (e.g. {tables[:1]}); restore schema.db from a backup")
            return False
        with open(path, "rb") as f:
            data = f.read()
        check(len(data) >= 6, path, len(data), f"schema file truncated ({len(data)} bytes)")
        check(data[:4] == SCHEMA_MAGIC, path, 0, "schema magic mismatch")
        (version,) = U16.unpack_from(data, 4)
        check(version == SCHEMA_VERSION, path, 4, f"schema version {version} is not supported")
        payload, end = unframe_checksummed(data, 6, path)
        check(end == len(data), path, end, "trailing bytes after the schema frame")
        body = msgpack.unpackb(payload)
        for ks in body["keyspaces"]:
            self.keyspaces[ks["name"]] = Keyspace(ks["name"], ks["replication"], {})
        for t in body["tables"]:
            table = Table.from_dict(t)
            self.keyspaces[table.keyspace].tables[table.name] = table
        return True

    def _save_schema(self) -> None:
        body = {"keyspaces": [ks.to_dict() for ks in self.keyspaces.values()],
                "tables": [t.to_dict() for ks in self.keyspaces.values() for t in ks.tables.values()]}
        data = SCHEMA_MAGIC + U16.pack(SCHEMA_VERSION) + frame_checksummed(msgpack.packb(body, use_bin_type=True))
        write_atomically(self._schema_path(), data)

    def _table_dir(self, table: Table) -> str:
        return os.path.join(self.path, "data", table.keyspace, f"{table.name}-{table.id}")

    def _open_table(self, table: Table, position) -> None:
        cfs = ColumnFamilyStore(table, self._table_dir(table), self.options, self.clock, position)
        for meta in table.indexes:  # the write hook is attached before replay; built after it
            cfs.indexes[meta.name] = SecondaryIndex(table, meta)
        self.cfs[table.id] = cfs

    def create_keyspace(self, name: str, replication: dict | None = None, if_not_exists: bool = True) -> Keyspace:
        self._check_open()
        check_name("keyspace", name)
        with self._schema_lock:
            if name in self.keyspaces:
                if if_not_exists:
                    return self.keyspaces[name]
                raise InvalidRequest(f"keyspace {name} already exists")
            ks = Keyspace(name, dict(replication or {"class": "SimpleStrategy", "replication_factor": 1}), {})
            self.keyspaces[name] = ks
            self._save_schema()
            return ks

    def create_table(self, keyspace: str, name: str, columns: dict, primary_key, clustering_order=None,
                     options: dict | None = None, if_not_exists: bool = True, table_id: str | None = None) -> Table:
        self._check_open()
        ks = self._keyspace(keyspace)
        with self._schema_lock:
            if name in ks.tables:
                if if_not_exists:
                    return ks.tables[name]
                raise InvalidRequest(f"table {keyspace}.{name} already exists")
            table = make_table(keyspace, name, columns, primary_key, clustering_order, options, table_id)
            self._register_table(ks, table)
            return table

    def add_table(self, table: Table) -> Table:
        """Register an already built Table (same id and column ids), e.g. one learned from a peer."""
        self._check_open()
        ks = self._keyspace(table.keyspace)
        with self._schema_lock:
            if table.name in ks.tables:
                raise InvalidRequest(f"table {table.qualified_name} already exists")
            self._register_table(ks, table)
        return table

    def _register_table(self, ks: Keyspace, table: Table) -> None:
        if table.option("compaction"):
            from engine.compaction import picker
            picker.validate_options(table.option("compaction"))
        with self._write_lock:
            self._open_table(table, self.commit_log.current_position())
            ks.tables[table.name] = table
        self._save_schema()
        cfs = self.cfs[table.id]
        for index in cfs.indexes.values():  # a table learned from a peer may come with indexes
            self._build_index(cfs, index)

    def drop_table(self, keyspace: str, name: str) -> None:
        table = self.table(keyspace, name)
        with self._schema_lock, self._write_lock:
            del self.keyspaces[keyspace].tables[name]
            cfs = self.cfs.pop(table.id)
            for index in cfs.indexes.values():
                index.cancelled = True
            self._save_schema()
            cfs.close()
            shutil.rmtree(cfs.directory, ignore_errors=True)

    def drop_keyspace(self, name: str) -> None:
        ks = self._keyspace(name)
        for table in list(ks.tables):
            self.drop_table(name, table)
        with self._schema_lock:
            del self.keyspaces[name]
            self._save_schema()
        shutil.rmtree(os.path.join(self.path, "data", name), ignore_errors=True)

    def _keyspace(self, name: str) -> Keyspace:
        ks = self.keyspaces.get(name)
        if ks is None:
            raise InvalidRequest(f"keyspace '{name}' does not exist; create it with create_keyspace")
        return ks

    def table(self, keyspace: str, name: str) -> Table:
        table = self._keyspace(keyspace).tables.get(name)
        if table is None:
            raise InvalidRequest(f"table '{keyspace}.{name}' does not exist; create it with create_table")
        return table

    # -- secondary indexes (engine/secondary_index.py, docs/secondary_indexes.md) ------------

    def create_index(self, keyspace: str, table: str, column: str, name: str | None = None,
                     if_not_exists: bool = True) -> IndexMetadata | None:
        """CREATE INDEX [name] ON keyspace.table (column): built from the existing rows in the
        background (queries fail with IndexNotReady until it is READY). Returns the new index's
        metadata, or None if it already existed and if_not_exists."""
        self._check_open()
        t = self.table(keyspace, table)
        name = f"{table}_{column}_idx" if name is None else name
        check_name("index", name)
        check_indexable(t, column)
        with self._schema_lock:
            t = self.table(keyspace, table)
            owner = self.index_owner(keyspace, name)
            same = next((i for i in t.indexes if i.column == column), None)
            if owner is not None or same is not None:
                if if_not_exists and (owner is None or (owner.id == t.id and owner.index(name).column == column)):
                    return None
                what = f"index {name} already exists on {owner.qualified_name}" if owner is not None \
                    else f"column '{column}' of {t.qualified_name} is already indexed by {same.name}"
                raise InvalidRequest(f"{what}; drop it first or pass if_not_exists=True")
            return self._attach_index(t, IndexMetadata(name, column))

    def add_index(self, table_id: str, meta: IndexMetadata) -> None:
        """Attach an index learned from a peer (schema sync): no duplicate-column check."""
        self._check_open()
        cfs = self.cfs.get(table_id)
        if cfs is None or cfs.table.index(meta.name) is not None:
            return
        with self._schema_lock:
            self._attach_index(cfs.table, meta)

    def _attach_index(self, t: Table, meta: IndexMetadata) -> IndexMetadata:
        new = dataclasses.replace(t, indexes=t.indexes + (meta,))
        index = SecondaryIndex(new, meta)
        cfs = self.cfs[t.id]
        with self._write_lock:  # from here every write is indexed; the build covers what came before
            self.keyspaces[t.keyspace].tables[t.name] = new
            cfs.table = new
            cfs.indexes[meta.name] = index
        self._save_schema()
        self._build_index(cfs, index)
        return meta

    def drop_index(self, keyspace: str, name: str, if_exists: bool = True) -> bool:
        """DROP INDEX keyspace.name. Returns whether an index was dropped."""
        self._check_open()
        with self._schema_lock:
            t = self.index_owner(keyspace, name)
            if t is None:
                if if_exists:
                    return False
                raise InvalidRequest(f"index {keyspace}.{name} does not exist")
            new = dataclasses.replace(t, indexes=tuple(i for i in t.indexes if i.name != name))
            cfs = self.cfs[t.id]
            with self._write_lock:
                self.keyspaces[keyspace].tables[t.name] = new
                cfs.table = new
                cfs.indexes.pop(name).cancelled = True
            self._save_schema()
            return True

    def index_owner(self, keyspace: str, name: str) -> Table | None:
        """The table of `keyspace` holding index `name` (index names are unique per keyspace)."""
        return next((t for t in self._keyspace(keyspace).tables.values() if t.index(name) is not None), None)

    def _build_index(self, cfs: ColumnFamilyStore, index: SecondaryIndex) -> None:
        if not self.options["background"]:
            index.build(cfs)
            return
        thread = threading.Thread(target=index.build, args=(cfs,), daemon=True,
                                  name=f"dynatable-index-build-{index.name}")
        self._index_builds = [t for t in self._index_builds if t.is_alive()] + [thread]
        thread.start()

    def _stop_index_builds(self) -> None:
        for cfs in self.cfs.values():
            for index in cfs.indexes.values():
                index.cancelled = True
        for thread in self._index_builds:
            thread.join()
        self._index_builds = []

    def index_query(self, keyspace: str, table: str, where, columns=None, page_size: int = 1000,
                    paging_state: bytes | None = None) -> ScanPage:
        """Rows matching every restriction of `where` = [(column, op, value), ...], answered from
        the index of one restricted column, in token order, one page at a time."""
        self._check_open()
        t = self.table(keyspace, table)
        if not isinstance(page_size, int) or page_size < 1:
            raise InvalidRequest(f"page_size must be a positive integer, got {page_size!r}")
        restrictions = rs.parse(t, where)
        cfs = self.cfs[t.id]
        index = cfs.indexes[rs.choose_index(t, restrictions).name]
        index.check_ready(t)
        after = decode_paging_state(paging_state)
        rows: list[dict] = []
        for token, key, ck, _, row in index.search(cfs, t, restrictions, after=after):
            rows.append(project(t, row, columns))
            if len(rows) >= page_size:
                return ScanPage(rows, msgpack.packb([token, key, ck], use_bin_type=True))
        return ScanPage(rows, None)

    def index_query_all(self, keyspace: str, table: str, where, page_size: int = 1000, **kwargs):
        """Iterate over every row an index query matches, page by page."""
        state = None
        while True:
            page = self.index_query(keyspace, table, where, page_size=page_size, paging_state=state, **kwargs)
            yield from page.rows
            if (state := page.paging_state) is None:
                return

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

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None,
               timestamp: int | None = None) -> int:
        """Upsert one row (INSERT: writes the row marker). Returns the write timestamp (µs)."""
        if self._closed:
            self._check_open()
        ks = self.keyspaces.get(keyspace)
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            t = self.table(keyspace, table)  # raises the usual InvalidRequest
        clock = self.clock
        if timestamp is None:  # new_timestamp(None), inlined: this is the write hot path
            ts = wall = clock.wall_us()
            if ts <= self._last_ts:
                ts = self._last_ts + 1
            self._last_ts = ts
            # SystemClock.now_s() is wall_us() // 1e6: one clock reading serves both
            now_s = wall // 1_000_000 if type(clock).now_s is SystemClock.now_s else clock.now_s()
        else:
            ts = self.new_timestamp(timestamp)
            now_s = clock.now_s()
        key, update, payload = mut.build_insert_encoded(t, row, ts, now_s, ttl, self.options["max_value_bytes"])
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

    def batch(self) -> "Batch":
        return Batch(self)

    def apply(self, updates: list) -> None:
        """Apply [(table, key, Partition)] as one commit-log record (atomic per partition)."""
        self._apply_encoded([(t, key, encode_partition(update), update) for t, key, update in updates])

    def _apply_encoded(self, encoded: list) -> None:
        """apply() for [(table, key, payload, Partition)] whose payloads are already encoded."""
        position = self._append(encoded)
        self.commit_log.await_durable(position)

    def _append(self, encoded: list):
        """Append [(table, key, payload, Partition)] as one commit-log record and put it in the
        memtables; returns the record's position (not yet durable in batch and group modes)."""
        options = self.options
        if len(encoded) == 1:
            t, key, payload, update = encoded[0]
            record = _packb([(t.id, key, payload)])
            tokens = None
        else:
            record = _packb([(t.id, key, payload) for t, key, payload, _ in encoded])
            tokens = [token_of(key) for _, key, _, _ in encoded]
        if len(record) > options["max_batch_bytes"]:
            raise InvalidRequest(f"mutation batch of {len(record)} bytes exceeds max_batch_bytes="
                                 f"{options['max_batch_bytes']}; split it into smaller batches")
        if tokens is None:
            tok = token_of(key)
        with self._write_lock:
            if self._closed:
                self._check_open()
            position = self.commit_log.append(record)
            cfs_map = self.cfs
            if tokens is None:  # one partition: the common case, without the loop
                cfs = cfs_map.get(t.id)
                if cfs is None:
                    raise InvalidRequest(f"table {t.qualified_name} was dropped")
                cfs.apply(tok, key, payload, update, position)
            else:
                for (t, key, payload, update), tok in zip(encoded, tokens):
                    cfs = cfs_map.get(t.id)
                    if cfs is None:
                        raise InvalidRequest(f"table {t.qualified_name} was dropped")
                    cfs.apply(tok, key, payload, update, position)
            need_flush = self._memtable_bytes() > options["memtable_flush_threshold_bytes"]
        if need_flush:
            self._on_memtable_full()
        return position

    # -- the replica API: what ring/ uses instead of the column families ---------------------
    # A mutation arrives encoded (docs/format.md#partition-payload); it is decoded once, to check
    # it and for the memtable, and the same bytes go into the commit log. Durability is split
    # from the write so a driver can wait for it off its event loop (docs/architecture.md).

    def table_by_id(self, table_id: str) -> Table | None:
        """The local schema's table with this id, or None (not created, or not yet learned)."""
        cfs = self.cfs.get(table_id)
        return None if cfs is None else cfs.table

    def apply_mutation(self, table: Table, key: bytes, payload: bytes):
        """Apply one encoded partition update; see apply_mutations."""
        return self.apply_mutations([(table, key, payload)])

    def apply_mutations(self, mutations: list):
        """Apply [(table, key, payload)] as one commit-log record, each payload decoded once
        (mutation.decode_update: InvalidRequest naming the problem, nothing applied).

        Returns the commit-log position the caller must pass to await_durable before it
        acknowledges (batch and group modes), or None when the write may be acknowledged at
        once (periodic mode, which only waits here if the periodic sync lags).
        """
        encoded = []
        for table, key, payload in mutations:
            if type(key) is not bytes or not 0 < len(key) <= mut.MAX_KEY_BYTES:
                raise InvalidRequest(f"partition key must be 1..{mut.MAX_KEY_BYTES} bytes")
            encoded.append((table, key, payload, mut.decode_update(payload)))
        position = self._append(encoded)
        if self.commit_log.sync_mode == "periodic":
            self.commit_log.await_durable(position)
            return None
        return position

    def await_durable(self, position) -> None:
        """Block until the record at `position` is durable (thread-safe: drivers call it from a
        worker thread). Raises EngineError if the commit log failed or closed first."""
        self.commit_log.await_durable(position)

    def read_partition(self, table: Table, key: bytes):
        """The reconciled Partition of `key` from every local source, or None."""
        return self._cfs_of(table).read_partition(token_of(key), key)

    def scan_partitions(self, table: Table, start: tuple | None, end: tuple | None):
        """(token, key, Partition) over [start, end) of (token, key), in that order."""
        return self._cfs_of(table).scan_partitions(start, end)

    def local_index(self, table: Table, restrictions: list):
        """The ready secondary index an index query with these restrictions reads
        (InvalidRequest if none fits, IndexNotReady while it builds)."""
        cfs = self._cfs_of(table)
        index = cfs.indexes[rs.choose_index(cfs.table, restrictions).name]
        index.check_ready(cfs.table)
        return index

    def search_index(self, table: Table, index, restrictions: list, start=None, end=None, after=None):
        """(token, key, ck, Partition, row) of each live row `index` finds matching `restrictions`."""
        cfs = self._cfs_of(table)
        return index.search(cfs, cfs.table, restrictions, start, end, after)

    def partition_estimate(self, table: Table) -> int:
        """Partitions in the table's SSTables and memtable (duplicates counted)."""
        cfs = self._cfs_of(table)
        return sum(s.stats.partition_count for s in cfs.sstables) + len(cfs.memtable)

    def load_bytes(self) -> int:
        """Bytes on disk of every table (gossip's LOAD)."""
        return sum(c.disk_bytes() for c in list(self.cfs.values()))

    def tables(self) -> list[Table]:
        """Every table of every keyspace."""
        return [c.table for c in list(self.cfs.values())]

    def _cfs_of(self, table: Table) -> ColumnFamilyStore:
        cfs = self.cfs.get(table.id)
        if cfs is None:
            raise InvalidRequest(f"table {table.qualified_name} does not exist here (dropped, or not yet learned)")
        return cfs

    def _memtable_bytes(self) -> int:
        total = 0
        for c in self.cfs.values():
            total += c.memtable.size_bytes
        return total

    # -- flush and compaction ---------------------------------------------------------------

    def _on_memtable_full(self) -> None:
        with self._write_lock:
            if self._memtable_bytes() <= self.options["memtable_flush_threshold_bytes"]:
                return
            largest = max(self.cfs.values(), key=lambda c: c.memtable.size_bytes)
            mt = largest.switch_memtable(self.commit_log.current_position())
        if mt is None:
            return
        if not self.options["background"]:
            self._flush_one(largest, mt)
            return
        with self._work:
            self._flush_queue.append((largest, mt))
            self._work.notify_all()
            # backpressure: writers wait while too many memtables are waiting to be flushed
            while len(self._flush_queue) > 2 and not self._stopping:
                self._work.wait(0.1)

    def _flush_one(self, cfs: ColumnFamilyStore, mt) -> None:
        cfs.flush_memtable(mt)
        self._discard_segments()

    def _discard_segments(self) -> None:
        with self._write_lock:
            low = self.commit_log.current_position()
            for cfs in self.cfs.values():
                for mt in (cfs.memtable, *cfs.flushing):
                    if mt.min_position is not None and mt.min_position < low:
                        low = mt.min_position
            self.commit_log.discard_before(low)

    def flush(self, keyspace: str | None = None, table: str | None = None) -> int:
        """Flush memtables to SSTables now (all tables, a keyspace's, or one). Returns how many."""
        targets = [c for c in list(self.cfs.values())
                   if (keyspace is None or c.table.keyspace == keyspace) and (table is None or c.table.name == table)]
        switched = []
        with self._write_lock:
            for cfs in targets:
                mt = cfs.switch_memtable(self.commit_log.current_position())
                if mt is not None:
                    switched.append((cfs, mt))
        for cfs, mt in switched:
            cfs.flush_memtable(mt)
        self._wait_flush_queue(targets)
        self._discard_segments()
        return len(switched)

    def _wait_flush_queue(self, targets) -> None:
        with self._work:
            while any(c in targets for c, _ in self._flush_queue) and self._threads:
                self._work.wait(0.05)

    def compact(self, keyspace: str, table: str, major: bool = True) -> int:
        """Run compactions now: a major one (everything into one), or the strategy's until done."""
        cfs = self.cfs[self.table(keyspace, table).id]
        done = 0
        while True:
            task = cfs.plan_compaction(major=major and done == 0)
            if task is None:
                return done
            cfs.run_compaction(task)
            done += 1
            if major:
                return done

    def cleanup(self, keyspace: str, table: str, keep) -> int:
        """nodetool cleanup for one table: flush, then rewrite every SSTable without the partitions
        whose token `keep(token)` rejects. Returns how many partitions were dropped."""
        cfs = self.cfs[self.table(keyspace, table).id]
        self.flush(keyspace, table)
        before = cfs.stats.get("partitions_cleaned", 0)
        tasks = cfs.plan_cleanup()
        try:
            for task in tasks:
                cfs.run_compaction(task, keep=keep)
        finally:
            with cfs.lock:
                for task in tasks:
                    cfs.compacting.difference_update(task.inputs)
        return cfs.stats.get("partitions_cleaned", 0) - before

    def _start_threads(self) -> None:
        self._threads = [threading.Thread(target=self._flusher, name="dynatable-flush", daemon=True)]
        for i in range(self.options["concurrent_compactors"]):
            self._threads.append(threading.Thread(target=self._compactor, name=f"dynatable-compact-{i}", daemon=True))
        for t in self._threads:
            t.start()

    def _stop_threads(self) -> None:
        with self._work:
            self._stopping = True
            self._work.notify_all()
        for t in self._threads:
            t.join()
        self._threads = []
        self._stopping = False

    def _flusher(self) -> None:
        while True:
            with self._work:
                while not self._flush_queue and not self._stopping:
                    self._work.wait()
                if not self._flush_queue:
                    return
                cfs, mt = self._flush_queue[0]
            try:
                self._flush_one(cfs, mt)
            except BaseException as e:  # surfaced via self.errors and the log; the memtable stays readable
                log.exception("flush of %s failed", cfs.table.qualified_name)
                self.errors.append(e)
            with self._work:
                self._flush_queue.pop(0)
                self._work.notify_all()

    def _compactor(self) -> None:
        while True:
            with self._work:
                if self._stopping:
                    return
            task = cfs = None
            for candidate in list(self.cfs.values()):
                try:
                    task = candidate.plan_compaction()
                except Exception as e:
                    log.exception("compaction planning failed for %s", candidate.table.qualified_name)
                    self.errors.append(e)
                    task = None
                if task is not None:
                    cfs = candidate
                    break
            if task is None:
                with self._work:
                    if not self._stopping:
                        self._work.wait(1.0)
                continue
            try:
                cfs.run_compaction(task)
            except BaseException as e:
                log.exception("compaction of %s failed", cfs.table.qualified_name)
                self.errors.append(e)

    # -- reads ------------------------------------------------------------------------------

    def get(self, keyspace: str, table: str, key: dict, columns=None, writetime: bool = False) -> dict | None:
        """One row by its full primary key (or the first live row of a partition without clustering)."""
        self._check_open()
        t = self.table(keyspace, table)
        if t.clustering:
            missing = [c.name for c in t.clustering if c.name not in key]
            if missing:
                raise InvalidRequest(f"get needs the full primary key; missing {missing}. Use select for slices")
        if columns is not None:
            for c in columns:
                t.column(c)
        pk = mut.partition_key_bytes(t, key)
        ck = mut.clustering_prefix(t, key) if t.clustering else b""
        cfs = self.cfs[t.id]
        p = cfs.read_partition(token_of(pk), pk)
        if p is None:
            return None
        counter = [0]
        cells = live_row(p, ck, self.clock.now_s(), counter)
        cfs.guard(counter, f"{t.qualified_name} partition {pk.hex()[:32]}")
        if cells is None:
            return None
        key_values = {c.name: key[c.name] for c in t.partition_key}
        return mut.row_dict(t, key_values, ck, cells, columns, writetime)

    def select(self, keyspace: str, table: str, key: dict, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, limit: int | None = None, columns=None, writetime: bool = False,
               reverse: bool = False) -> list[dict]:
        """Rows of one partition, optionally within a clustering slice, in clustering order."""
        self._check_open()
        t = self.table(keyspace, table)
        if columns is not None:
            for c in columns:
                t.column(c)
        pk = mut.partition_key_bytes(t, key)
        lo, hi = mut.slice_bounds(t, start, end, start_inclusive, end_inclusive)
        cfs = self.cfs[t.id]
        p = cfs.read_partition(token_of(pk), pk)
        if p is None:
            return []
        counter = [0]
        key_values = {c.name: key[c.name] for c in t.partition_key}
        out = []
        for ck, cells in cfs.live_rows(p, lo, hi, reverse, counter):
            out.append(mut.row_dict(t, key_values, ck, cells, columns, writetime))
            if limit is not None and len(out) >= limit:
                break
        cfs.guard(counter, f"{t.qualified_name} partition {pk.hex()[:32]}")
        return out

    def scan(self, keyspace: str, table: str, start_token: int | None = None, end_token: int | None = None,
             page_size: int = 1000, paging_state: bytes | None = None, columns=None,
             writetime: bool = False) -> "ScanPage":
        """Rows whose token is in (start_token, end_token], in token order, one page at a time.

        A wrapping range (start >= end) covers (start, MAX] and [MIN, end]. Pass the returned
        page's `paging_state` to get the next page; it is None on the last page.
        """
        self._check_open()
        t = self.table(keyspace, table)
        if not isinstance(page_size, int) or page_size < 1:
            raise InvalidRequest(f"page_size must be a positive integer, got {page_size!r}")
        cfs = self.cfs[t.id]
        ranges = _token_ranges(start_token, end_token)
        resume = msgpack.unpackb(paging_state) if paging_state else None
        rows: list[dict] = []
        counter = [0]
        for lo_tok, hi_tok in ranges:
            start = (lo_tok + 1, b"") if lo_tok is not None else None
            end = (hi_tok + 1, b"") if hi_tok is not None else None
            if resume is not None:
                rt, rk, rck = resume
                if end is not None and (rt, rk) >= end:
                    continue
                if start is None or (rt, rk) > start:
                    start = (rt, rk)
            for tok, key, p in cfs.scan_partitions(start, end):
                key_values = mut.decode_key(t, key)
                lo = b""
                if resume is not None and (tok, key) == (resume[0], resume[1]):
                    lo = resume[2] + b"\x00"  # the smallest clustering key after the last one returned
                for ck, cells in cfs.live_rows(p, lo, None, False, counter):
                    rows.append(mut.row_dict(t, key_values, ck, cells, columns, writetime))
                    if len(rows) >= page_size:
                        state = msgpack.packb([tok, key, ck], use_bin_type=True)
                        cfs.guard(counter, f"{t.qualified_name} scan")
                        return ScanPage(rows, state)
                if counter[0] > cfs.options["tombstone_failure_threshold"]:
                    cfs.guard(counter, f"{t.qualified_name} scan")
        cfs.guard(counter, f"{t.qualified_name} scan")
        return ScanPage(rows, None)

    def scan_all(self, keyspace: str, table: str, start_token=None, end_token=None, page_size: int = 1000,
                 **kwargs):
        """Iterate over every row of a token range, page by page."""
        state = None
        while True:
            page = self.scan(keyspace, table, start_token, end_token, page_size, state, **kwargs)
            yield from page.rows
            state = page.paging_state
            if state is None:
                return

    # -- introspection ----------------------------------------------------------------------

    def tablestats(self) -> list[dict]:
        out = []
        for cfs in self.cfs.values():
            kc_req = sum(s.key_cache_requests for s in cfs.sstables)
            kc_hit = sum(s.key_cache_hits for s in cfs.sstables)
            rc = cfs.row_cache
            out.append({
                "table": cfs.table.qualified_name, "sstable_count": len(cfs.sstables),
                "space_used_bytes": cfs.disk_bytes(), "memtable_bytes": cfs.memtable.size_bytes,
                "memtable_partitions": len(cfs.memtable), "pending_flushes": len(cfs.flushing),
                "compacting": len(cfs.compacting),
                "key_cache_hit_rate": (kc_hit / kc_req) if kc_req else None,
                "row_cache_hit_rate": (rc.hits / rc.requests) if rc and rc.requests else None,
                **cfs.stats,
                **{f"index {name}": index.stats() for name, index in cfs.indexes.items()},
            })
        return out

    def check_invariants(self) -> None:
        for cfs in self.cfs.values():
            cfs.check_invariants()


def _ignore_replay_errors(options: dict) -> bool:
    """The store option, else the environment (as Cassandra's ignorereplayerrors property)."""
    if options["commitlog_ignore_replay_errors"] is not None:
        return bool(options["commitlog_ignore_replay_errors"])
    return os.environ.get(IGNORE_REPLAY_ERRORS_ENV, "").strip().lower() in ("1", "true", "yes")


def project(table: Table, row: dict, columns) -> dict:
    """The row restricted to `columns` plus the primary key (all columns when None)."""
    if columns is None:
        return row
    for c in columns:
        table.column(c)
    keep = set(columns) | {c.name for c in table.partition_key} | {c.name for c in table.clustering}
    return {k: v for k, v in row.items() if k in keep}


class ScanPage:
    __slots__ = ("rows", "paging_state")

    def __init__(self, rows: list[dict], paging_state: bytes | None):
        self.rows = rows
        self.paging_state = paging_state

    def __repr__(self):
        return f"ScanPage({len(self.rows)} rows, more={self.paging_state is not None})"


def _token_ranges(start: int | None, end: int | None) -> list[tuple]:
    if start is not None and end is not None and start >= end:
        return [(start, None), (None, end)]  # wrapping range
    for bound in (start, end):
        if bound is not None and not MIN_TOKEN <= bound <= MAX_TOKEN:
            raise InvalidRequest(f"token {bound} is outside [{MIN_TOKEN}, {MAX_TOKEN}]")
    return [(start, end)]


class Batch:
    """Collects inserts and deletes and applies them as one commit-log record."""

    def __init__(self, store: Store):
        self.store = store
        self.updates: list = []
        self._payloads: list = []   # encoded updates[i], or None: encoded at apply time

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None):
        t = self.store.table(keyspace, table)
        ts = self.store.new_timestamp(timestamp)
        key, update, payload = mut.build_insert_encoded(t, row, ts, self.store.clock.now_s(), ttl,
                                                        self.store.options["max_value_bytes"])
        self.updates.append((t, key, update))
        self._payloads.append(payload)
        return ts

    def delete(self, keyspace: str, table: str, key: dict, columns=None, timestamp: int | None = None, **bounds):
        t = self.store.table(keyspace, table)
        ts = self.store.new_timestamp(timestamp)
        pk, update = mut.build_delete(t, key, ts, self.store.clock.now_s(), columns, **bounds)
        self.updates.append((t, pk, update))
        self._payloads.append(None)
        return ts

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None and self.updates:
            if len(self._payloads) != len(self.updates):  # updates was changed from outside
                self.store.apply(self.updates)
                return
            self.store._apply_encoded([(t, key, encode_partition(update) if payload is None else payload, update)
                                       for (t, key, update), payload in zip(self.updates, self._payloads)])
