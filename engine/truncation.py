"""TRUNCATE of one table on this node, and the record that keeps it truncated across restarts.

    truncated_at_ms = truncate(store, cfs, auto_snapshot=True)

Cassandra's ColumnFamilyStore.truncateBlocking, in our terms:
1. with `auto_snapshot` (Cassandra's default, and ours): flush the table and snapshot it under
   the tag `truncated-<ms>-<table>`, so a mistaken TRUNCATE can be undone (restoresnapshot);
2. once no flush or compaction of the table runs, under the store's write lock and the table's
   lock: note the commit-log position P, write the truncation record (table id -> P and the wall
   clock in ms, Cassandra's system.local truncated_at) to `truncated.db` (fsynced, atomic
   replace), then discard the memtable, commit an empty MANIFEST, delete the SSTable files and
   clear the row cache and the secondary indexes.

Invariants:
* a commit-log record of a truncated table at a position <= P is never replayed
  (`replay_floor`, used by engine/recovery.py), so a restart cannot resurrect truncated data;
* an SSTable whose every commit-log interval ends at or before P holds only truncated data (a
  crash between the record and the MANIFEST left it live): the next open drops it
  (`drop_truncated`);
* writes after the truncate (positions > P) are kept; a bad truncated.db refuses the open
  with CorruptionError (file and offset), never a silent resurrection;
* a hint created at or before truncated_at is dropped by the replica it reaches
  (`truncated_at_ms`, ring/replica.py answer_hint), as Cassandra's Hint.apply does.
Layout of truncated.db: docs/format.md#truncation-record.
"""
from __future__ import annotations

import os
import time
import zlib

import msgpack

from engine.encoding import U32
from engine.errors import CorruptionError, EngineError
from engine.files import write_atomically
from engine.memtable import Memtable
from engine.sstable_files import delete_sstable

FILE = "truncated.db"
MAGIC = b"DTTR"
VERSION = 1


def path_of(store_path: str) -> str:
    return os.path.join(store_path, FILE)


# -- truncated.db ------------------------------------------------------------------------------

def encode(records: dict[str, tuple]) -> bytes:
    """{table_id: ((segment_id, offset), truncated_at_ms)} -> the file's bytes."""
    body = msgpack.packb({tid: [pos[0], pos[1], at] for tid, (pos, at) in sorted(records.items())},
                         use_bin_type=True)
    head = MAGIC + bytes([VERSION]) + body
    return head + U32.pack(zlib.crc32(head))


def decode(data: bytes, path: str) -> dict[str, tuple]:
    if len(data) < 9 or data[:4] != MAGIC:
        raise CorruptionError(path, 0, "not a truncation record (bad magic)")
    if data[4] != VERSION:
        raise CorruptionError(path, 4, f"unsupported truncation record version {data[4]}, expected {VERSION}")
    if zlib.crc32(data[:-4]) != U32.unpack(data[-4:])[0]:
        raise CorruptionError(path, len(data) - 4, "truncation record crc32 mismatch")
    try:
        body = msgpack.unpackb(data[5:-4], raw=False)
        return {tid: ((int(v[0]), int(v[1])), int(v[2])) for tid, v in body.items()
                if isinstance(tid, str) and isinstance(v, list) and len(v) == 3}
    except (ValueError, TypeError, AttributeError, msgpack.exceptions.UnpackException) as e:
        raise CorruptionError(path, 5, f"truncation record body is malformed: {e}") from None


def load(store_path: str) -> dict[str, tuple]:
    """The truncation records of a data directory ({} if none was ever written)."""
    path = path_of(store_path)
    try:
        with open(path, "rb") as f:
            return decode(f.read(), path)
    except FileNotFoundError:
        return {}


def save(store_path: str, records: dict[str, tuple]) -> None:
    write_atomically(path_of(store_path), encode(records))


# -- open: what recovery must not bring back ----------------------------------------------------

def truncated_at_ms(store, table_id: str) -> int | None:
    """When the table was last truncated on this node (wall clock, ms), or None."""
    cfs = store.cfs.get(table_id)
    return cfs.truncated_at_ms if cfs is not None else None


def replay_floor(records: dict[str, tuple]) -> dict[str, tuple]:
    """{table_id: P}: replay skips a table's records at positions <= P."""
    return {tid: pos for tid, (pos, _) in records.items()}


def drop_truncated(cfs, floor: tuple) -> int:
    """At open, before replay: drop the SSTables a truncate at `floor` left live (a crash between
    the record and the MANIFEST). Returns how many."""
    dead = [s.generation for s in cfs.sstables
            if s.stats.commit_log_intervals and max(tuple(hi) for _, hi in s.stats.commit_log_intervals) <= floor]
    if dead:
        cfs.manifest.commit({}, dead)
        for s in [s for s in cfs.sstables if s.generation in dead]:
            s.close()
        cfs.sstables = [s for s in cfs.sstables if s.generation not in dead]
        for gen in dead:
            delete_sstable(cfs.directory, gen)
    return len(dead)


# -- TRUNCATE -----------------------------------------------------------------------------------

def truncate(store, cfs, auto_snapshot: bool = True) -> int:
    """Discard every row of the table on this node; returns truncated_at (wall clock, ms)."""
    store._check_open()
    table = cfs.table
    if auto_snapshot:
        store.snapshot(f"truncated-{store.clock.wall_ms()}-{table.name}", table.keyspace, table.name)
    for _ in range(600):
        store.flush(table.keyspace, table.name)  # no memtable left in `flushing`
        with store._write_lock:
            with cfs.lock:  # no compaction starts (planning takes this lock) and none is running
                if not cfs.flushing and not cfs.compacting:
                    return _discard(store, cfs)
        time.sleep(0.05)
    raise EngineError(f"truncate of {table.qualified_name}: a flush or compaction kept running for 30 s; retry")


def _discard(store, cfs) -> int:
    """Under the write lock and cfs.lock: record, then drop the memtable and the SSTables."""
    position = tuple(store.commit_log.current_position())
    at_ms = store.clock.wall_ms()
    records = {tid: r for tid, r in load(store.path).items() if tid in store.cfs}
    records[cfs.table.id] = (position, at_ms)
    save(store.path, records)                      # durable before anything is dropped
    cfs.memtable = Memtable(position)
    cfs.truncated_at_ms = at_ms
    old = [s.generation for s in cfs.sstables]
    cfs.manifest.commit({}, old)
    cfs.sstables = []  # readers stay open for reads in flight (as after a compaction)
    for gen in old:
        delete_sstable(cfs.directory, gen)
    if cfs.row_cache is not None:
        cfs.row_cache.entries.clear()
    for index in cfs.indexes.values():
        with index.lock:
            index.entries.clear()
    return at_ms
