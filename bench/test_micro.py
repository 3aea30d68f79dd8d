"""Micro benchmarks of the engine's hot primitives (pytest-benchmark).

Not part of the test suite (pyproject's testpaths is tests/). Run:

    python -m pytest bench/test_micro.py                       # all, with pytest-benchmark's table
    python -m pytest bench/test_micro.py -k sstable --benchmark-columns=min,median,ops

Each benchmark's `ops` column is calls per second; where one call does many operations the
test name says how many (e.g. `_x1000`), and `extra_info["per_op_ops"]` gives the per-item rate.
Data: the standard workload's shape (16 B keys b'user%012d', 100 B random values), one
{"k": blob, "v": blob} table, so the figures compare with the floors in specs/performance.md.
"""
from __future__ import annotations

import os
import random
import shutil

import pytest

from engine import mutation as mut
from engine.clock import SystemClock
from engine.commit_log import CommitLog
from engine.memtable import Memtable
from engine.merge import merge_partitions
from engine.partition import encode_partition
from engine.partition_stats import PartitionStats
from engine.schema import make_table
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.store import Store
from engine.token import token as token_of

N_SSTABLE = 20_000       # partitions in the point-read SSTable
N_MERGE = 10_000         # partitions per SSTable in the merge scan (3 SSTables)
N_COMPACT = 20_000       # rows in the compaction store (4 SSTables)
BATCH = 1000             # items per call where a call does many

TABLE = make_table("bench", "kv", {"k": "blob", "v": "blob"}, "k", None, None, None)
CLOCK = SystemClock()


def key(i: int) -> bytes:
    return b"user%012d" % i


def update(i: int, value: bytes | None = None, ts: int | None = None):
    """(token, key, payload, Partition) for row i, as Store.insert would build it."""
    k, p = mut.build_insert(TABLE, {"k": key(i), "v": value or os.urandom(100)},
                            ts or CLOCK.wall_us(), CLOCK.now_s(), None, 1 << 20)
    return token_of(k), k, encode_partition(p), p


def write_sstable(directory: str, generation: int, items) -> SSTableReader:
    items = sorted(items)
    stats = PartitionStats()
    w = SSTableWriter(directory, generation, expected_partitions=len(items))
    for tok, k, payload, p in items:
        w.append(tok, k, payload)
        stats.add(p)
    reader = w.finish(stats.to_dict())
    reader.key_cache_size = 0  # measure the index path, not the key cache
    return reader


# -- commit log ----------------------------------------------------------------------------------

def test_commit_log_add_periodic_x1000(benchmark, tmp_path):
    log = CommitLog(str(tmp_path / "cl"), sync="periodic")
    payloads = [update(i)[2] for i in range(BATCH)]
    add = log.add

    def run():
        for p in payloads:
            add(p)
    benchmark(run)
    benchmark.extra_info["per_op_ops"] = BATCH / benchmark.stats.stats.median
    log.close()


# -- memtable ------------------------------------------------------------------------------------

def test_memtable_put_x1000(benchmark):
    items = [update(i) for i in range(BATCH)]
    state = {}

    def setup():
        state["mt"] = Memtable((0, 0))
        return (), {}

    def run():
        put = state["mt"].put
        pos = (1, 100)
        for _tok, k, payload, p in items:
            put(k, payload, p, pos)
    benchmark.pedantic(run, setup=setup, rounds=200, iterations=1)
    benchmark.extra_info["per_op_ops"] = BATCH / benchmark.stats.stats.median


# -- SSTable point reads -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def point_sstable(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sst-point"))
    reader = write_sstable(d, 1, [update(i) for i in range(N_SSTABLE)])
    yield reader
    reader.close()


def test_sstable_get_hit_x1000(benchmark, point_sstable):
    rng = random.Random(1)
    probes = [(token_of(k), k) for k in (key(rng.randrange(N_SSTABLE)) for _ in range(BATCH))]
    get = point_sstable.get

    def run():
        for tok, k in probes:
            assert get(tok, k) is not None
    benchmark(run)
    benchmark.extra_info["per_op_ops"] = BATCH / benchmark.stats.stats.median


def test_sstable_get_miss_x1000(benchmark, point_sstable):
    rng = random.Random(2)
    probes = [(token_of(k), k) for k in (b"user%011da" % rng.randrange(N_SSTABLE // 10) for _ in range(BATCH))]
    get = point_sstable.get

    def run():
        for tok, k in probes:
            get(tok, k)
    benchmark(run)
    benchmark.extra_info["per_op_ops"] = BATCH / benchmark.stats.stats.median


# -- merge scan ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_sstables(tmp_path_factory):
    """3 SSTables of N_MERGE partitions each; half of each one's keys overlap the next one's."""
    d = str(tmp_path_factory.mktemp("sst-merge"))
    readers = []
    for g in range(3):
        lo = g * N_MERGE // 2
        readers.append(write_sstable(d, g + 1, [update(i) for i in range(lo, lo + N_MERGE)]))
    yield readers
    for r in readers:
        r.close()


def test_merge_scan_3_sstables(benchmark, three_sstables):
    def run():
        n = 0
        for _ in merge_partitions([r.scan() for r in three_sstables]):
            n += 1
        return n
    n = benchmark(run)
    assert n == 2 * N_MERGE
    benchmark.extra_info["partitions"] = n
    benchmark.extra_info["per_op_ops"] = n / benchmark.stats.stats.median


# -- compaction ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compaction_template(tmp_path_factory):
    """A closed store whose table has 4 SSTables of N_COMPACT / 4 rows (a quarter overwritten)."""
    d = str(tmp_path_factory.mktemp("compact") / "store")
    store = Store.open(d, background=False)
    store.create_keyspace("bench")
    store.create_table("bench", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    per = N_COMPACT // 4
    for s in range(4):
        start = s * per - (per // 4 if s else 0)
        for i in range(start, start + per):
            store.insert("bench", "kv", {"k": key(i), "v": os.urandom(100)})
        store.flush()
    store.close()
    return d


def test_compaction_major_4_sstables(benchmark, compaction_template, tmp_path):
    state = {"n": 0}

    def setup():
        state["n"] += 1
        d = str(tmp_path / f"run{state['n']}")
        shutil.copytree(compaction_template, d)
        state["store"] = Store.open(d, background=False)
        return (), {}

    def run():
        assert state["store"].compact("bench", "kv") == 1

    def teardown():
        state["store"].close()

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    teardown()
    stats = next(t for t in state["store"].tablestats() if t["table"] == "bench.kv")
    benchmark.extra_info["bytes_compacted"] = stats["bytes_compacted"]
    benchmark.extra_info["input_rows_per_s"] = N_COMPACT / benchmark.stats.stats.median


# -- the whole write path ------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    s = Store.open(str(tmp_path / "store"), commitlog_sync="periodic", background=True)
    s.create_keyspace("bench")
    s.create_table("bench", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    yield s
    s.close()


def test_store_insert_x1000(benchmark, store):
    values = [os.urandom(100) for _ in range(BATCH)]
    counter = [0]
    insert = store.insert

    def run():
        base = counter[0]
        counter[0] += BATCH
        for j, v in enumerate(values):
            insert("bench", "kv", {"k": key(base + j), "v": v})
    benchmark(run)
    benchmark.extra_info["per_op_ops"] = BATCH / benchmark.stats.stats.median
