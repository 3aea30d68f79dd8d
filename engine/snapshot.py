"""Snapshots: a table's SSTables hard-linked under `<table dir>/snapshots/<tag>/`, and the restore.

A snapshot (Cassandra's `nodetool snapshot`) is taken after a flush: every component of every
live SSTable is hard-linked (no data is copied; a later compaction deletes the live names, the
snapshot's names keep the bytes), and `snapshot.json` records the table definition and the
generations, so the table can be recreated and the snapshot checked. It is built in
`snapshots/.<tag>.tmp/` and renamed into place, so a snapshot directory is complete or absent.

Restore replaces the table's data on this node by the snapshot's, as Cassandra's procedure does
(truncate, copy the files back, `nodetool refresh`), in one step: each snapshot SSTable is read
whole and checked first (CorruptionError names the file and offset; nothing is restored), the
table is flushed, and under the store's write lock the snapshot's files are linked back under new
generations whose Statistics.db gains the commit-log interval ((0, 0), now], so a later commit-log
replay skips every older write of the table (the truncate), then one manifest write swaps the
live SSTables for them. Invariants: live SSTable files are never written in place (Statistics.db
is replaced by rename), so a link never sees a later change; a crash at any point leaves the old
or the new manifest, and unnamed files are leftovers the next open deletes.
Layout of snapshot.json: docs/format.md#snapshots. Operations: docs/operations.md#snapshots.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
import zlib
from dataclasses import dataclass

from engine.errors import CorruptionError, EngineError, InvalidRequest
from engine.files import fsync_directory, write_atomically
from engine.sstable_files import component_path, delete_sstable, sstable_components
from engine.sstable_reader import SSTableReader
from engine.sstable_stats import read_statistics_file, write_statistics_file

SNAPSHOTS_DIR = "snapshots"
MANIFEST = "snapshot.json"
FORMAT = 1
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
NOT_LINKED = ("Statistics.db", "TOC.txt")  # rewritten on restore; TOC.txt goes last


@dataclass(frozen=True)
class SnapshotInfo:
    tag: str
    keyspace: str
    table: str
    directory: str
    sstables: int
    size_bytes: int          # every file of the snapshot
    true_size_bytes: int     # bytes not shared with the table's live SSTables (what clearing frees)
    created_ms: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise InvalidRequest(f"snapshot tag {tag!r} must be 1-100 letters, digits, '.', '_' or '-' "
                             "and not start with '.' or '-'")
    return tag


def directory_of(cfs, tag: str) -> str:
    return os.path.join(cfs.directory, SNAPSHOTS_DIR, check_tag(tag))


# -- snapshot.json ------------------------------------------------------------------------------

def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def encode_manifest(body: dict) -> bytes:
    """snapshot.json: the body's fields plus crc32 of the body's canonical JSON."""
    return json.dumps({**body, "crc32": zlib.crc32(_canonical(body))}, sort_keys=True, indent=1).encode() + b"\n"


def decode_manifest(data: bytes, path: str) -> dict:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise CorruptionError(path, getattr(e, "pos", 0), f"snapshot manifest is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("crc32"), int):
        raise CorruptionError(path, 0, "snapshot manifest has no crc32 field")
    crc = doc.pop("crc32")
    if zlib.crc32(_canonical(doc)) != crc:
        raise CorruptionError(path, 0, f"snapshot manifest crc32 mismatch (stored {crc})")
    if doc.get("format") != FORMAT:
        raise CorruptionError(path, 0, f"unsupported snapshot format {doc.get('format')!r}, expected {FORMAT}")
    return doc


def load_manifest(directory: str) -> dict:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "rb") as f:
            return decode_manifest(f.read(), path)
    except FileNotFoundError:
        raise CorruptionError(path, 0, "snapshot has no snapshot.json; it cannot be checked or restored") from None


# -- take, list, clear --------------------------------------------------------------------------

def take(cfs, tag: str, created_ms: int) -> SnapshotInfo:
    """Hard-link the table's live SSTables (flush it first) into snapshots/<tag>/."""
    target = directory_of(cfs, tag)
    if os.path.exists(target):
        raise InvalidRequest(f"snapshot {tag} of {cfs.table.qualified_name} already exists; choose another "
                             f"tag (-t) or remove it with clearsnapshot -t {tag}")
    parent = os.path.dirname(target)
    tmp = os.path.join(parent, f".{tag}.tmp")
    for _ in range(20):  # a compaction may delete an input between the listing and the link: list again
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        with cfs.lock:
            generations = sorted(s.generation for s in cfs.sstables)
        try:
            for gen in generations:
                for component in sstable_components(cfs.directory, gen):  # either SSTable format
                    os.link(component_path(cfs.directory, gen, component), component_path(tmp, gen, component))
            break
        except FileNotFoundError:
            continue
    else:
        raise EngineError(f"snapshot {tag} of {cfs.table.qualified_name}: SSTables kept changing; retry")
    body = {"format": FORMAT, "keyspace": cfs.table.keyspace, "table": cfs.table.name, "table_id": cfs.table.id,
            "created_ms": created_ms, "sstables": generations, "schema": cfs.table.to_dict()}
    write_atomically(os.path.join(tmp, MANIFEST), encode_manifest(body))
    os.rename(tmp, target)
    fsync_directory(parent)
    return info_of(cfs, tag)


def info_of(cfs, tag: str) -> SnapshotInfo:
    directory = directory_of(cfs, tag)
    meta = load_manifest(directory)
    live = set()
    for name in os.listdir(cfs.directory):
        if name.startswith("dt-"):
            st = os.stat(os.path.join(cfs.directory, name))
            live.add((st.st_dev, st.st_ino))
    size = true_size = 0
    for name in os.listdir(directory):
        st = os.stat(os.path.join(directory, name))
        size += st.st_size
        if (st.st_dev, st.st_ino) not in live:
            true_size += st.st_size
    return SnapshotInfo(tag, cfs.table.keyspace, cfs.table.name, directory, len(meta["sstables"]), size,
                        true_size, meta["created_ms"])


def tags_of(cfs) -> list[str]:
    """The complete snapshots of a table (in-progress `.tmp` ones are not listed)."""
    parent = os.path.join(cfs.directory, SNAPSHOTS_DIR)
    try:
        return sorted(n for n in os.listdir(parent) if not n.startswith(".") and TAG_RE.match(n))
    except FileNotFoundError:
        return []


def clear(cfs, tag: str | None) -> list[str]:
    """Remove the table's snapshot `tag` (every snapshot, and leftover .tmp ones, if None); the tags removed."""
    parent = os.path.join(cfs.directory, SNAPSHOTS_DIR)
    if tag is not None:
        removed = [tag] if check_tag(tag) in tags_of(cfs) else []
        names = removed
    else:
        removed = tags_of(cfs)
        names = os.listdir(parent) if os.path.isdir(parent) else []
    for name in names:
        shutil.rmtree(os.path.join(parent, name))
    if names:
        fsync_directory(parent)
    return removed


# -- a store's tables ---------------------------------------------------------------------------

def matching(store, keyspace: str | None, table: str | None) -> list:
    """The column family stores a verb acts on: one table, a keyspace's, or every non-system one."""
    if keyspace is None:
        return [c for c in store.cfs.values() if c.table.keyspace != "system"]
    if table is not None:
        return [store.cfs[store.table(keyspace, table).id]]
    store.catalog.keyspace(keyspace)  # InvalidRequest naming it if it does not exist
    return [c for c in store.cfs.values() if c.table.keyspace == keyspace]


def take_all(store, tag: str | None, keyspace: str | None, table: str | None) -> list[SnapshotInfo]:
    """nodetool snapshot: flush the matching tables, then snapshot each under `tag` (default: now in ms)."""
    tag = check_tag(tag or str(store.clock.wall_ms()))
    targets = matching(store, keyspace, table)
    for cfs in targets:
        if os.path.exists(directory_of(cfs, tag)):
            raise InvalidRequest(f"snapshot {tag} of {cfs.table.qualified_name} already exists; choose another "
                                 f"tag (-t) or remove it with clearsnapshot -t {tag}")
    store.flush(keyspace, table)
    return [take(cfs, tag, store.clock.wall_ms()) for cfs in targets]


def list_all(store) -> list[SnapshotInfo]:
    return [info_of(cfs, tag) for cfs in list(store.cfs.values()) for tag in tags_of(cfs)]


def clear_all(store, tag: str | None, keyspace: str | None) -> list[SnapshotInfo]:
    """nodetool clearsnapshot: the snapshots removed (with their sizes as they were)."""
    out = []
    targets = list(store.cfs.values()) if keyspace is None else matching(store, keyspace, None)
    for cfs in targets:
        infos = {t: info_of(cfs, t) for t in tags_of(cfs) if tag in (None, t)}
        out += [infos[t] for t in clear(cfs, tag) if t in infos]
    return out


# -- restore ------------------------------------------------------------------------------------

def check(directory: str, generations: list[int]) -> None:
    """Read each SSTable whole (every block CRC, index <-> data, statistics), as sstable repair does."""
    for gen in generations:
        try:
            with SSTableReader.open(directory, gen) as reader:
                reader.check_invariants(bloom_sample=10**9)
        except AssertionError as e:
            raise CorruptionError(component_path(directory, gen, "Data.db"), 0, f"inconsistent SSTable: {e}") from None
        except FileNotFoundError as e:
            raise CorruptionError(e.filename or directory, 0, "snapshot file missing") from None


def restore(store, cfs, tag: str) -> int:
    """Replace the table's data on this node by snapshot `tag`'s; returns the SSTables restored."""
    store._check_open()
    directory = directory_of(cfs, tag)
    name = cfs.table.qualified_name
    if not os.path.isdir(directory):
        raise InvalidRequest(f"no snapshot {tag} of {name}; see listsnapshots")
    meta = load_manifest(directory)
    if meta["table_id"] != cfs.table.id:
        raise InvalidRequest(f"snapshot {tag} is of table id {meta['table_id']}, not {name}'s {cfs.table.id}")
    if cfs.indexes:
        raise InvalidRequest(f"{name} has secondary indexes: drop them, restore, then create them again")
    check(directory, meta["sstables"])
    for _ in range(600):
        store.flush(cfs.table.keyspace, cfs.table.name)
        with store._write_lock:
            mt = cfs.switch_memtable(store.commit_log.current_position())
            if mt is not None:
                cfs.flush_memtable(mt)
            with cfs.lock:  # no compaction starts (planning takes this lock) and none is running
                if not cfs.flushing and not cfs.compacting:
                    _swap(cfs, directory, meta["sstables"], store.commit_log.current_position())
                    return len(meta["sstables"])
        time.sleep(0.05)
    raise EngineError(f"restore of {name}: a flush or compaction kept running for 30 s; retry")


def _swap(cfs, snapshot_dir: str, generations: list[int], position: tuple) -> None:
    """Under the write lock and cfs.lock: link the snapshot back, swap the manifest, drop the old."""
    new = []
    for gen in generations:
        g = cfs.manifest.new_generation()
        for component in (c for c in sstable_components(snapshot_dir, gen) if c not in NOT_LINKED):
            os.link(component_path(snapshot_dir, gen, component), component_path(cfs.directory, g, component))
        stats = read_statistics_file(component_path(snapshot_dir, gen, "Statistics.db"))
        truncated = stats.commit_log_intervals + (((0, 0), tuple(position)),)
        write_statistics_file(component_path(cfs.directory, g, "Statistics.db"),
                              dataclasses.replace(stats, level=0, commit_log_intervals=truncated))
        os.link(component_path(snapshot_dir, gen, "TOC.txt"), component_path(cfs.directory, g, "TOC.txt"))
        new.append(g)
    fsync_directory(cfs.directory)
    old = [s.generation for s in cfs.sstables]
    cfs.manifest.commit({g: 0 for g in new}, old)
    readers = [cfs.adopt(SSTableReader.open(cfs.directory, g)) for g in new]
    cfs.sstables = sorted(readers, key=lambda s: s.generation, reverse=True)
    if cfs.row_cache is not None:
        cfs.row_cache.entries.clear()
    for g in old:
        delete_sstable(cfs.directory, g)
