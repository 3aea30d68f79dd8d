"""The catalog: one node's keyspaces, tables and secondary indexes, and the schema.db that keeps them.

Every table the catalog knows has exactly one ColumnFamilyStore in `cfs` (by table id), and
`keyspaces[ks].tables[name]` is the same Table object as `cfs[table.id].table`: DDL replaces both
under the write lock, so a write sees the old schema or the new one, never half of each. A table's
id and its column ids never change; a dropped table's directory is deleted.

Every DDL change is written to schema.db (one checksummed frame, atomic replace) before the call
returns; schema.db is the only place the schema lives across restarts (docs/format.md#schemadb).
DDL calls are serialized by the catalog's own lock; the write lock is taken only to swap what
writers see. Secondary indexes are derived data: an index is attached (every later write is
indexed) and then built from the existing rows, on a thread of its own when the store runs
background work (docs/secondary_indexes.md).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import threading

import msgpack

from engine.column_family import ColumnFamilyStore
from engine.compaction import picker
from engine.encoding import U16, check, frame_checksummed, unframe_checksummed
from engine.errors import AlreadyExists, InvalidRequest
from engine.files import write_atomically
from engine.manifest import sstable_directories
from engine.schema import IndexMetadata, Keyspace, Table, check_name, make_table
from engine.secondary_index import SecondaryIndex, check_indexable

SCHEMA_MAGIC = b"DTSC"
SCHEMA_VERSION = 1


def schema_path(path: str) -> str:
    return os.path.join(path, "schema.db")


def load_schema(path: str) -> dict[str, Keyspace] | None:
    """The keyspaces (with their tables) of the data directory `path`; None if it has no schema.db.
    A missing schema.db while SSTables exist, or an unreadable one, is a CorruptionError (the data
    would otherwise be ignored)."""
    file = schema_path(path)
    if not os.path.exists(file):
        tables = sstable_directories(os.path.join(path, "data"))
        check(not tables, file, 0, f"missing, but {len(tables)} table directories hold "
              f"SSTables (e.g. {tables[:1]}); restore schema.db from a backup")
        return None
    with open(file, "rb") as f:
        data = f.read()
    check(len(data) >= 6, file, len(data), f"schema file truncated ({len(data)} bytes)")
    check(data[:4] == SCHEMA_MAGIC, file, 0, "schema magic mismatch")
    (version,) = U16.unpack_from(data, 4)
    check(version == SCHEMA_VERSION, file, 4, f"schema version {version} is not supported")
    payload, end = unframe_checksummed(data, 6, file)
    check(end == len(data), file, end, "trailing bytes after the schema frame")
    body = msgpack.unpackb(payload)
    keyspaces = {}
    for ks in body["keyspaces"]:
        keyspaces[ks["name"]] = Keyspace.from_dict(ks)
    for t in body["tables"]:
        table = Table.from_dict(t)
        keyspaces[table.keyspace].tables[table.name] = table
    return keyspaces


def save_schema(path: str, keyspaces: dict[str, Keyspace]) -> None:
    body = {"keyspaces": [ks.to_dict() for ks in keyspaces.values()],
            "tables": [t.to_dict() for ks in keyspaces.values() for t in ks.tables.values()]}
    data = SCHEMA_MAGIC + U16.pack(SCHEMA_VERSION) + frame_checksummed(msgpack.packb(body, use_bin_type=True))
    write_atomically(schema_path(path), data)


class Catalog:
    """Keyspaces and tables by name, their ColumnFamilyStores by table id, and the DDL on them."""

    def __init__(self, path: str, options: dict, clock, keyspaces: dict[str, Keyspace], commit_log,
                 write_lock: threading.RLock):
        self.path = path
        self.options = options
        self.clock = clock
        self.keyspaces = keyspaces
        self.cfs: dict[str, ColumnFamilyStore] = {}   # table id -> its storage
        self.commit_log = commit_log
        self.write_lock = write_lock
        self.lock = threading.Lock()                  # serializes DDL
        self._index_builds: list[threading.Thread] = []

    # -- tables -----------------------------------------------------------------------------

    def table_dir(self, table: Table) -> str:
        return os.path.join(self.path, "data", table.keyspace, f"{table.name}-{table.id}")

    def open_table(self, table: Table, position) -> None:
        """Open the table's storage; commit-log records at or before `position` are not its own."""
        cfs = ColumnFamilyStore(table, self.table_dir(table), self.options, self.clock, position)
        for meta in table.indexes:  # the write hook is attached before replay; built after it
            cfs.indexes[meta.name] = SecondaryIndex(table, meta)
        self.cfs[table.id] = cfs

    def close_tables(self) -> None:
        for cfs in self.cfs.values():
            cfs.close()

    def keyspace(self, name: str) -> Keyspace:
        ks = self.keyspaces.get(name)
        if ks is None:
            raise InvalidRequest(f"keyspace '{name}' does not exist; create it with create_keyspace")
        return ks

    def table(self, keyspace: str, name: str) -> Table:
        table = self.keyspace(keyspace).tables.get(name)
        if table is None:
            raise InvalidRequest(f"table '{keyspace}.{name}' does not exist; create it with create_table")
        return table

    def create_keyspace(self, name: str, replication: dict | None, if_not_exists: bool) -> Keyspace:
        check_name("keyspace", name)
        with self.lock:
            if name in self.keyspaces:
                if if_not_exists:
                    return self.keyspaces[name]
                raise AlreadyExists(name)
            ks = Keyspace(name, dict(replication or {"class": "SimpleStrategy", "replication_factor": 1}), {})
            self.keyspaces[name] = ks
            save_schema(self.path, self.keyspaces)
            return ks

    def create_table(self, keyspace: str, name: str, columns: dict, primary_key, clustering_order,
                     options: dict | None, if_not_exists: bool, table_id: str | None) -> Table:
        ks = self.keyspace(keyspace)
        with self.lock:
            if name in ks.tables:
                if if_not_exists:
                    return ks.tables[name]
                raise AlreadyExists(keyspace, name)
            table = make_table(keyspace, name, columns, primary_key, clustering_order, options, table_id)
            self._register_table(ks, table)
            return table

    def add_table(self, table: Table) -> Table:
        ks = self.keyspace(table.keyspace)
        with self.lock:
            if table.name in ks.tables:
                raise InvalidRequest(f"table {table.qualified_name} already exists")
            self._register_table(ks, table)
        return table

    def _register_table(self, ks: Keyspace, table: Table) -> None:
        if table.option("compaction"):
            picker.validate_options(table.option("compaction"))
        with self.write_lock:
            self.open_table(table, self.commit_log.current_position())
            ks.tables[table.name] = table
        save_schema(self.path, self.keyspaces)
        cfs = self.cfs[table.id]
        for index in cfs.indexes.values():  # a table learned from a peer may come with indexes
            self.build_index(cfs, index)

    def drop_table(self, keyspace: str, name: str) -> None:
        table = self.table(keyspace, name)
        with self.lock, self.write_lock:
            del self.keyspaces[keyspace].tables[name]
            cfs = self.cfs.pop(table.id)
            for index in cfs.indexes.values():
                index.cancelled = True
            save_schema(self.path, self.keyspaces)
            cfs.close()
            shutil.rmtree(cfs.directory, ignore_errors=True)

    def drop_keyspace(self, name: str) -> None:
        ks = self.keyspace(name)
        for table in list(ks.tables):
            self.drop_table(name, table)
        with self.lock:
            del self.keyspaces[name]
            save_schema(self.path, self.keyspaces)
        shutil.rmtree(os.path.join(self.path, "data", name), ignore_errors=True)

    # -- ALTER (engine/schema_change.py decides; here the new definition is swapped in) --------

    def alter_table(self, keyspace: str, name: str, change) -> Table:
        """Replace table `name` by `change(table)` (a Table with the same id); returns the new one.
        Writers see the old definition or the new one, never half of each."""
        with self.lock:
            old = self.table(keyspace, name)
            new = change(old)
            if new is old:
                return old
            assert new.id == old.id and new.keyspace == keyspace, (old, new)
            if new.option("compaction"):
                picker.validate_options(new.option("compaction"))
            with self.write_lock:
                tables = self.keyspaces[keyspace].tables
                del tables[name]
                tables[new.name] = new
                self.cfs[new.id].table = new
            save_schema(self.path, self.keyspaces)
            return new

    def alter_keyspace(self, name: str, change) -> Keyspace:
        """Replace keyspace `name` by `change(keyspace)` (same tables); returns the new one."""
        with self.lock:
            old = self.keyspace(name)
            new = change(old)
            if new is old:
                return old
            assert new.name == name and new.tables is old.tables
            self.keyspaces[name] = new
            save_schema(self.path, self.keyspaces)
            return new

    # -- secondary indexes (engine/secondary_index.py, docs/secondary_indexes.md) ------------

    def create_index(self, keyspace: str, table: str, column: str, name: str | None,
                     if_not_exists: bool) -> IndexMetadata | None:
        t = self.table(keyspace, table)
        name = f"{table}_{column}_idx" if name is None else name
        check_name("index", name)
        check_indexable(t, column)
        with self.lock:
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
        cfs = self.cfs.get(table_id)
        if cfs is None or cfs.table.index(meta.name) is not None:
            return
        with self.lock:
            self._attach_index(cfs.table, meta)

    def _attach_index(self, t: Table, meta: IndexMetadata) -> IndexMetadata:
        new = dataclasses.replace(t, indexes=t.indexes + (meta,))
        index = SecondaryIndex(new, meta)
        cfs = self.cfs[t.id]
        with self.write_lock:  # from here every write is indexed; the build covers what came before
            self.keyspaces[t.keyspace].tables[t.name] = new
            cfs.table = new
            cfs.indexes[meta.name] = index
        save_schema(self.path, self.keyspaces)
        self.build_index(cfs, index)
        return meta

    def drop_index(self, keyspace: str, name: str, if_exists: bool) -> bool:
        with self.lock:
            t = self.index_owner(keyspace, name)
            if t is None:
                if if_exists:
                    return False
                raise InvalidRequest(f"index {keyspace}.{name} does not exist")
            new = dataclasses.replace(t, indexes=tuple(i for i in t.indexes if i.name != name))
            cfs = self.cfs[t.id]
            with self.write_lock:
                self.keyspaces[keyspace].tables[t.name] = new
                cfs.table = new
                cfs.indexes.pop(name).cancelled = True
            save_schema(self.path, self.keyspaces)
            return True

    def index_owner(self, keyspace: str, name: str) -> Table | None:
        return next((t for t in self.keyspace(keyspace).tables.values() if t.index(name) is not None), None)

    def build_index(self, cfs: ColumnFamilyStore, index: SecondaryIndex) -> None:
        """Build `index` from the table's rows: now, or on a thread when background work is on."""
        if not self.options["background"]:
            index.build(cfs)
            return
        thread = threading.Thread(target=index.build, args=(cfs,), daemon=True,
                                  name=f"dynatable-index-build-{index.name}")
        self._index_builds = [t for t in self._index_builds if t.is_alive()] + [thread]
        thread.start()

    def build_all_indexes(self) -> None:
        for cfs in list(self.cfs.values()):
            for index in cfs.indexes.values():
                self.build_index(cfs, index)

    def stop_index_builds(self) -> None:
        for cfs in self.cfs.values():
            for index in cfs.indexes.values():
                index.cancelled = True
        for thread in self._index_builds:
            thread.join()
        self._index_builds = []

    def check_invariants(self) -> None:
        tables = {t.id: t for ks in self.keyspaces.values() for t in ks.tables.values()}
        assert tables.keys() == self.cfs.keys(), "the schema and the open tables differ"
        for table_id, cfs in self.cfs.items():
            assert cfs.table is tables[table_id], f"{cfs.table.qualified_name}: two versions of its schema"
            cfs.check_invariants()
