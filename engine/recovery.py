"""Opening a data directory: schema, tables, and the commit-log replay (Cassandra's startup recovery).

    catalog, commit_log, replayed = recover(path, options, clock, write_lock)

Order: schema.db (catalog.load_schema) -> the commit log -> each table's storage from its
manifest (SSTable files the manifest does not name are leftovers of an interrupted flush or
compaction and are deleted, engine/manifest.py) -> replay of every commit-log record into the
memtables of the tables it names. The caller then flushes what was replayed, which lets the old
segments go.

Invariants:
* a record at position p is replayed into a table unless a live SSTable of that table covers p
  (its commit-log interval (lo, hi]), so nothing is lost and nothing is applied twice;
* a truncated table's records at or before its truncation position are skipped, and SSTables
  holding only truncated data are dropped (engine/truncation.py), so TRUNCATE survives a restart;
* records of tables the schema does not know (dropped tables) are skipped and counted; if
  schema.db is missing while the commit log holds such records, the open is refused;
* any CorruptionError refuses the open (docs/operations.md): what was opened is closed and nothing
  is flushed, so the commit log and the SSTables stay as they were for `sstable repair` or a
  restore. `commitlog_ignore_replay_errors` (or the DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS
  environment variable) replays past bad records instead.
Layouts: docs/format.md#data-directory.
"""
from __future__ import annotations

import logging
import os
import threading

import msgpack

from engine import truncation
from engine.catalog import Catalog, load_schema, schema_path
from engine.column_family import ColumnFamilyStore
from engine.commit_log import CommitLog
from engine.errors import CorruptionError
from engine.partition import decode_partition
from engine.token import token as token_of

log = logging.getLogger("dynatable.engine")

IGNORE_REPLAY_ERRORS_ENV = "DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS"  # Cassandra's -D property


def recover(path: str, options: dict, clock, write_lock: threading.RLock) -> tuple[Catalog, CommitLog, int]:
    """Open the data directory `path`: (its catalog with every table open, the commit log, how
    many mutations were replayed)."""
    os.makedirs(os.path.join(path, "data"), exist_ok=True)
    keyspaces = load_schema(path)
    commit_log = CommitLog(
        os.path.join(path, "commitlog"), sync=options["commitlog_sync"],
        sync_period_ms=options["commitlog_sync_period_ms"],
        group_window_ms=options["commitlog_sync_group_window_ms"],
        segment_size_bytes=options["commitlog_segment_size_bytes"],
        ignore_replay_errors=ignore_replay_errors(options),
        # periodic: the log shares the write lock, one lock a put (engine/write_path.py); batch and
        # group: its own, which its sync leaders and waiters take without queueing behind puts
        lock=write_lock if options["commitlog_sync"] == "periodic" else None)
    catalog = Catalog(path, options, clock, keyspaces or {}, commit_log, write_lock)
    try:
        records = truncation.load(path)
        floors = truncation.replay_floor(records)
        for ks in catalog.keyspaces.values():
            for table in ks.tables.values():
                catalog.open_table(table, (0, 0))
                if table.id in floors:
                    truncation.drop_truncated(catalog.cfs[table.id], floors[table.id])
                    catalog.cfs[table.id].truncated_at_ms = records[table.id][1]
        replayed, orphans = replay(commit_log, catalog.cfs, floors)
        if orphans and keyspaces is None:
            raise CorruptionError(schema_path(path), 0, f"missing, but the commit log holds "
                                  f"{orphans} mutations; restore schema.db from a backup")
    except BaseException:
        commit_log.close()
        catalog.close_tables()
        raise
    if replayed:
        log.info("replayed %d mutations from the commit log", replayed)
    return catalog, commit_log, replayed


def replay(commit_log: CommitLog, cfs_by_id: dict[str, ColumnFamilyStore],
           floors: dict[str, tuple] | None = None) -> tuple[int, int]:
    """Apply every record the tables' SSTables do not cover and no truncation (`floors`: table
    id -> position) precedes: (mutations applied, mutations of unknown tables)."""
    floors = floors or {}
    persisted = {tid: cfs.persisted_intervals() for tid, cfs in cfs_by_id.items()}
    count = orphans = 0
    for position, record in commit_log.replay():
        for table_id, key, payload in msgpack.unpackb(record):
            cfs = cfs_by_id.get(table_id)
            if cfs is None:
                orphans += 1
                continue  # the table was dropped
            if any(tuple(lo) < position <= tuple(hi) for lo, hi in persisted[table_id]):
                continue
            floor = floors.get(table_id)
            if floor is not None and position <= floor:
                continue  # truncated
            cfs.apply(token_of(key), key, payload, decode_partition(payload), position)
            count += 1
    return count, orphans


def ignore_replay_errors(options: dict) -> bool:
    """The store option, else the environment (as Cassandra's ignorereplayerrors property)."""
    if options["commitlog_ignore_replay_errors"] is not None:
        return bool(options["commitlog_ignore_replay_errors"])
    return os.environ.get(IGNORE_REPLAY_ERRORS_ENV, "").strip().lower() in ("1", "true", "yes")
