"""The plain-insert fast path (plain_insert.encode_plain_insert, Store.insert -> _append_plain ->
ColumnFamilyStore.apply_plain -> Memtable.put_plain) writes byte for byte what the general path
(build_insert_encoded with an explicit ttl=0, Store.apply) writes: the same commit-log segment
bytes, the same SSTable files after flush, the same memtable statistics and the same reads; and
it declines every insert it does not cover (clustering, static and collection columns, TTLs)."""
import dataclasses
import glob
import os

import pytest

from engine import mutation as mut
from engine.clock import ManualClock
from engine.commit_log_segment import HEADER_SIZE
from engine.errors import InvalidRequest
from engine.plain_insert import encode_plain_insert
from engine.partition import decode_partition
from engine.schema_change import with_options
from engine.sstable_stats import read_statistics_file
from engine.store import Store

PLAIN = {"k": "int", "a": "text", "b": "blob", "c": "bigint", "d": "double", "l": "list<int>"}
ROWS = [
    {"k": 1, "a": "x", "b": b"\x00\x01", "c": 5, "d": 1.5},
    {"k": 2, "a": None, "c": -7},                       # a null: a tombstone at now_s
    {"c": 3, "k": 3, "b": b"", "a": "z"},               # columns out of id order
    {"k": 4},                                           # the marker alone
    {"k": 1, "d": None, "b": None},                     # an update of a partition held already
    {"k": 5, "a": "y", "l": [1, 2]},                    # a collection: the general path
]
CLUSTERED = [{"p": "a", "ck": 1, "v": 1}, {"p": "a", "ck": 2, "v": None}, {"p": "b", "ck": 1}]
STATIC = [{"p": "a", "ck": 1, "s": 9, "v": 1}, {"p": "a", "s": 10}]


def _store(path: str, **options) -> Store:
    store = Store.open(path, clock=ManualClock(), background=False, commitlog_sync_period_ms=3_600_000, **options)
    store.create_keyspace("ks")
    store.create_table("ks", "plain", PLAIN, primary_key="k", table_id="00000000-0000-0000-0000-000000000001")
    store.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k",
                       table_id="00000000-0000-0000-0000-000000000002")
    store.create_table("ks", "clustered", {"p": "text", "ck": "int", "v": "int"}, primary_key=("p", "ck"),
                       table_id="00000000-0000-0000-0000-000000000003")
    store.create_table("ks", "static", {"p": "text", "ck": "int", "s": "int static", "v": "int"},
                       primary_key=("p", "ck"), table_id="00000000-0000-0000-0000-000000000004")
    return store


def _write(store: Store, ttl, batched: bool) -> None:
    if batched:  # the same rows through Batch.insert: one commit-log record per group
        with store.batch() as batch:
            _write_rows(store, batch.insert, ttl)
        with store.batch() as batch:
            batch.insert("ks", "kv", {"k": b"lone", "v": b"1"}, ttl=ttl)  # a batch of one
    else:
        _write_rows(store, store.insert, ttl)


def _write_rows(store: Store, insert, ttl) -> None:
    for i, row in enumerate(ROWS):
        store.clock.advance(61 * i)  # tombstones in different histogram buckets
        insert("ks", "plain", row, ttl=ttl)
    for i in range(50):
        insert("ks", "kv", {"k": b"user%012d" % i, "v": bytes([i]) * 100}, ttl=ttl)
    insert("ks", "kv", {"k": b"big", "v": b"b" * 300}, ttl=ttl)     # a payload over 255 bytes
    insert("ks", "kv", {"k": b"K" * 300, "v": b"v"}, ttl=ttl)       # a key over 255 bytes
    insert("ks", "kv", {"k": b"empty", "v": b""}, ttl=ttl)          # an empty value
    insert("ks", "kv", {"v": b"first", "k": b"order"}, ttl=ttl)     # the value before the key
    insert("ks", "kv", {"k": b"ba", "v": bytearray(b"ba")}, ttl=ttl)  # bytes-like, not bytes
    for _ in range(9):  # 9 updates of one partition: the memtable merges a run of 8
        insert("ks", "kv", {"k": b"hot", "v": None}, ttl=ttl)
        insert("ks", "kv", {"k": b"hot", "v": b"h"}, ttl=ttl)
    for row in CLUSTERED:
        insert("ks", "clustered", row, ttl=ttl)
    for row in STATIC:
        insert("ks", "static", row, ttl=ttl)


def _segment_bytes(path: str) -> bytes:
    return b"".join(open(f, "rb").read()[HEADER_SIZE:] for f in sorted(glob.glob(os.path.join(path, "commitlog", "*"))))


def _sstable_files(path: str) -> dict:
    """Every SSTable component's bytes, but Statistics decoded without its commit-log intervals
    (positions in segments whose ids come from the wall clock, so they differ between stores)."""
    out = {}
    for f in sorted(glob.glob(os.path.join(path, "data", "**", "*-*.db"), recursive=True)):
        if f.endswith("-Statistics.db"):
            stats = dataclasses.asdict(read_statistics_file(f))
            stats.pop("commit_log_intervals")
            out[os.path.relpath(f, path)] = stats
        else:
            out[os.path.relpath(f, path)] = open(f, "rb").read()
    return out


@pytest.mark.parametrize("batched", [False, True])
def test_fast_path_writes_the_general_paths_bytes(tmp_path, batched):
    fast, general = _store(str(tmp_path / "fast")), _store(str(tmp_path / "general"))
    _write(fast, None, batched)   # ttl None: the fast path where it applies
    _write(general, 0, batched)   # ttl 0: always the general path, the same payload
    assert _segment_bytes(fast.path) == _segment_bytes(general.path)
    for t in ("plain", "kv", "clustered", "static"):
        a = fast.cfs[fast.table("ks", t).id].memtable
        b = general.cfs[general.table("ks", t).id].memtable
        assert a.partitions == b.partitions and a.size_bytes == b.size_bytes and a.updates == b.updates
        assert a.stats.__class__.__slots__ and all(
            getattr(a.stats, s) == getattr(b.stats, s) for s in a.stats.__slots__), t
    for row in ROWS:
        assert fast.get("ks", "plain", {"k": row["k"]}) == general.get("ks", "plain", {"k": row["k"]})
    fast.flush()
    general.flush()
    files = _sstable_files(fast.path)
    assert files and files == _sstable_files(general.path)
    fast.close()
    general.close()


def test_fast_path_covers_plain_rows_and_declines_the_rest(tmp_path):
    store = _store(str(tmp_path / "s"))
    plain = store.table("ks", "plain")
    for row in ROWS[:5]:
        key, payload, encoded, tombstones = encode_plain_insert(plain, row, 7, 100, 1 << 20)
        key2, _, payload2 = mut.build_insert_encoded(plain, row, 7, 100, 0, 1 << 20)
        assert (key, payload) == (key2, payload2)
        assert tombstones == sum(v is None for v in row.values())
    assert encode_plain_insert(plain, ROWS[5], 7, 100, 1 << 20) is None           # a collection
    assert encode_plain_insert(plain, {"k": 1, "zz": 1}, 7, 100, 1 << 20) is None  # unknown column
    for t, row in (("clustered", CLUSTERED[0]), ("static", STATIC[0])):
        assert encode_plain_insert(store.table("ks", t), row, 7, 100, 1 << 20) is None
    # ALTER makes a new Table: its plan and its default TTL are seen; a default TTL declines
    store.catalog.alter_table("ks", "plain", lambda t: with_options(t, {"default_time_to_live": 60}, 1))
    assert encode_plain_insert(store.table("ks", "plain"), ROWS[0], 7, 100, 1 << 20) is None
    store.insert("ks", "plain", {"k": 9, "a": "t"})
    assert store.get("ks", "plain", {"k": 9}, writetime=True) is not None
    ttl_cells = [c for c in decode_partition(store.cfs[plain.id].memtable.get((9).to_bytes(4, "big", signed=True))[0])
                 .rows[b""].cells.values()]
    assert ttl_cells and all(c[2] == 60 for c in ttl_cells)
    store.close()


def test_fast_path_raises_what_the_general_path_raises(tmp_path):
    store = _store(str(tmp_path / "s"), max_value_bytes=1000)
    cases = [("plain", {"a": "no key"}), ("plain", {"k": 1, "zz": 1}), ("plain", {"k": "not an int"}),
             ("plain", {"k": 1, "c": "not a bigint"}), ("plain", {"k": 1, "b": b"x" * 1001}),
             ("plain", {"c": "not a bigint"}), ("kv", {"k": b"k", "v": b"x" * 1001}), ("kv", {"k": b"", "v": b"x"}),
             ("kv", {"k": b"x" * 65536}), ("kv", {"k": "not bytes"}), ("kv", {"k": b"k", "v": "not bytes"}),
             ("kv", {"k": b"k", "zz": b"1"}), ("kv", {"k": b"k", "v": b"ok", "zz": 1})]
    for table, row in cases:
        with pytest.raises(InvalidRequest) as fast:
            store.insert("ks", table, row)
        with pytest.raises(InvalidRequest) as general:
            store.insert("ks", table, row, ttl=0)
        assert str(fast.value) == str(general.value), row
    assert store.cfs[store.table("ks", "kv").id].memtable.updates == 0
    store.insert("ks", "kv", {"k": b"k", "v": b"x" * 1000})   # exactly max_value_bytes: taken
    assert store.get("ks", "kv", {"k": b"k"})["v"] == b"x" * 1000
    store.close()


def test_fast_path_keeps_the_row_cache_and_indexes_current(tmp_path):
    store = _store(str(tmp_path / "s"), row_cache_size=100)
    store.insert("ks", "plain", {"k": 1, "a": "old"})
    store.flush()
    assert store.get("ks", "plain", {"k": 1})["a"] == "old"   # now in the row cache
    store.insert("ks", "plain", {"k": 1, "a": "new"})
    assert store.get("ks", "plain", {"k": 1})["a"] == "new"
    store.create_index("ks", "plain", "a")  # built at once: the store has no background threads
    assert [r["k"] for r in store.index_query_all("ks", "plain", [("a", "=", "new")])] == [1]
    store.insert("ks", "plain", {"k": 2, "a": "new"})
    store.insert("ks", "plain", {"k": 1, "a": "newer"})
    assert sorted(r["k"] for r in store.index_query_all("ks", "plain", [("a", "=", "new")])) == [2]
    assert [r["k"] for r in store.index_query_all("ks", "plain", [("a", "=", "newer")])] == [1]
    store.close()


def test_batch_applies_updates_added_from_outside(tmp_path):
    store = _store(str(tmp_path / "s"))
    t = store.table("ks", "kv")
    with store.batch() as batch:
        batch.insert("ks", "kv", {"k": b"a", "v": b"1"})
        key, update = mut.build_insert(t, {"k": b"b", "v": b"2"}, 5, 100, None, 1 << 20)
        batch.updates.append((t, key, update))
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"1" and store.get("ks", "kv", {"k": b"b"})["v"] == b"2"
    store.close()


@pytest.mark.parametrize("case", ["new", "tombstones", "repeated_in_batch", "held_already", "empty"])
def test_put_plain_many_leaves_what_put_plain_leaves(case):
    """Memtable.put_plain_many (a one-table batch of plain inserts) ends with the entries, sizes,
    counts, position and statistics that put_plain of each row leaves: in bulk when every key is
    new, one by one when a key repeats in the batch or is held already."""
    from engine.memtable import Memtable
    keys = [b"k%d" % i for i in range(40)]
    if case == "repeated_in_batch":
        keys[30] = keys[3]
    if case == "empty":
        keys = []
    payloads = [b"p%d" % i for i in range(len(keys))]
    infos = [(1000 + (i * 7) % 13, 1 + i % 3, 0, 5000) for i in range(len(keys))]
    if case == "tombstones":
        infos = [(ts, c, i % 2, 5000 + 61 * i) for i, (ts, c, _, _) in enumerate(infos)]
    one, many = Memtable((0, 0)), Memtable((0, 0))
    for mt in (one, many):
        if case == "held_already":
            mt.put_plain(keys[7], b"old", 1, 2, 0, 5, (1, 1))
    for key, payload, info in zip(keys, payloads, infos):
        one.put_plain(key, payload, *info, (1, 2))
    many.put_plain_many(keys, payloads, infos, (1, 2))
    assert many.partitions == one.partitions and many.weights == one.weights
    assert (many.size_bytes, many.updates, many.min_position) == (one.size_bytes, one.updates, one.min_position)
    assert all(getattr(many.stats, s) == getattr(one.stats, s) for s in one.stats.__slots__)
    many.check_invariants()


@pytest.mark.parametrize("rows", ["two_tables", "with_ttl", "with_delete"])
def test_one_table_batches_go_in_bulk_and_the_rest_one_by_one(tmp_path, rows):
    """A batch of plain inserts into one table takes put_plain_many; one that spans two tables,
    holds a TTL insert or a delete takes the one-by-one puts: either way the memtables end as
    the same writes made one call each leave them."""
    writes = [("kv", {"k": b"a%d" % i, "v": b"x"}, None) for i in range(20)]
    if rows == "two_tables":
        writes += [("plain", {"k": i, "a": "y"}, None) for i in range(5)]
    elif rows == "with_ttl":
        writes.append(("kv", {"k": b"ttl", "v": b"t"}, 60))
    batched, single = _store(str(tmp_path / "b")), _store(str(tmp_path / "s"))
    with batched.batch() as batch:
        for table, row, ttl in writes:
            batch.insert("ks", table, row, ttl=ttl)
        if rows == "with_delete":
            batch.delete("ks", "kv", {"k": b"a3"})
    for table, row, ttl in writes:
        single.insert("ks", table, row, ttl=ttl)
    if rows == "with_delete":
        single.delete("ks", "kv", {"k": b"a3"})
    for t in ("plain", "kv"):
        a = batched.cfs[batched.table("ks", t).id].memtable
        b = single.cfs[single.table("ks", t).id].memtable
        assert a.partitions.keys() == b.partitions.keys() and a.size_bytes == b.size_bytes, t
        assert all(getattr(a.stats, s) == getattr(b.stats, s) for s in a.stats.__slots__), t
        for key in a.partitions:
            assert [decode_partition(p) for p in a.get(key)] == [decode_partition(p) for p in b.get(key)]
    batched.close()
    single.close()


def test_system_clock_timestamps_increase_when_the_clock_steps_back(tmp_path):
    """Store.insert reads a SystemClock inline (_timestamp_now's fast case): a clock stepped back
    (offset_us, the nemesis's skew) still gives strictly increasing write timestamps, and the
    cells' now_s (a null's local deletion time) is the stepped-back wall clock's second."""
    store = Store.open(str(tmp_path), background=False)
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    first = store.insert("ks", "kv", {"k": b"a", "v": b"1"})
    store.clock.offset_us = -3_600_000_000                     # one hour back
    try:
        second = store.insert("ks", "kv", {"k": b"b", "v": None})
        assert second == first + 1
        assert store.insert("ks", "kv", {"k": b"c", "v": b"3"}) == first + 2
        expected_s = store.clock.now_s()
        payload = store.cfs[store.table("ks", "kv").id].memtable.get(b"b")[0]
        tomb = decode_partition(payload).rows[b""].cells
        assert [cell[1] for cell in tomb.values() if cell[3] is None] == [expected_s]
    finally:
        store.clock.offset_us = 0
        store.close()


@pytest.mark.parametrize("tables", [1, 2])
def test_plain_inserts_flush_a_full_memtable(tmp_path, tables):
    """_append_plain sums the memtables it checks against memtable_flush_threshold_bytes (one
    table: its own memtable's size, read directly): plain single puts over the threshold flush."""
    store = Store.open(str(tmp_path), clock=ManualClock(), background=False,
                       memtable_flush_threshold_bytes=8192)
    store.create_keyspace("ks")
    for i in range(tables):
        store.create_table("ks", f"kv{i}", {"k": "blob", "v": "blob"}, primary_key="k")
    cfs = store.cfs[store.table("ks", "kv0").id]
    try:
        for i in range(200):
            store.insert("ks", "kv0", {"k": b"key%04d" % i, "v": bytes(100)})
        assert cfs.sstables, "no flush at 200 puts of ~180 bytes over an 8 KiB threshold"
        assert cfs.memtable.size_bytes <= 8192
        assert store.get("ks", "kv0", {"k": b"key0000"}) is not None
    finally:
        store.close()
