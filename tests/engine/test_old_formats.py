"""Files written by an older release still open and read the same.

tests/engine/vectors/store_v1 is a data directory written by main at 7eb76d3 (SSTable format 1,
commit log version 2): two tables (one lz4-compressed, with clustering), two flushed generations,
tombstones, a TTL, and unflushed writes left in the commit log by a crash. expected_v1.json is
what that code read back from it. Each test opens a copy (opening replays and flushes).
"""
import json
import shutil
from pathlib import Path

import pytest

from engine.store import Store

VECTORS = Path(__file__).resolve().parent / "vectors"


def contents(store: Store) -> dict:
    kv = sorted((r["k"].hex(), None if r.get("v") is None else r["v"].hex())
                for r in store.scan_all("ks", "kv"))
    wide = sorted((r["p"], r["c"], r["v"], r["n"]) for r in store.scan_all("ks", "wide"))
    point = [store.get("ks", "kv", {"k": b"key%04d" % i}) for i in (0, 7, 11, 14, 299)]
    point = [None if r is None else {k: v.hex() if isinstance(v, bytes) else v for k, v in r.items()}
             for r in point]
    part = store.select("ks", "wide", {"p": 3})
    return {"kv": [list(x) for x in kv], "wide": [list(x) for x in wide], "point": point,
            "p3": [[r["c"], r["v"]] for r in part]}


@pytest.fixture
def store_v1(tmp_path):
    shutil.copytree(VECTORS / "store_v1", tmp_path / "store")
    with Store.open(str(tmp_path / "store"), background=False) as store:
        yield store


def test_store_written_by_format_1_reads_the_same(store_v1):
    expected = json.loads((VECTORS / "expected_v1.json").read_text())
    assert contents(store_v1) == expected
    store_v1.check_invariants()


def test_format_1_sstables_compact_into_the_current_format(store_v1):
    before = contents(store_v1)
    for keyspace, table in (("ks", "kv"), ("ks", "wide")):
        store_v1.compact(keyspace, table)
    assert contents(store_v1) == before
    store_v1.check_invariants()


# -- format-1 SSTables opened directly (engine/sstable_v1.py) ------------------------------------

KV_DIR = next((VECTORS / "store_v1" / "data" / "ks").glob("kv-*"))


@pytest.fixture
def kv_v1(tmp_path):
    d = tmp_path / "kv"
    shutil.copytree(KV_DIR, d)
    return str(d)


def test_toc_with_index_db_opens_the_format_1_reader(kv_v1):
    from engine.sstable_reader import SSTableReader
    from engine.sstable_v1 import SSTableReaderV1
    with SSTableReader.open(kv_v1, 1) as r:
        assert type(r) is SSTableReaderV1
        rows = list(r.scan())
        assert len(rows) == r.stats.partition_count > 100
        assert all(r.get(t, k) == p for t, k, p in rows)
        t, k, _ = rows[0]
        assert r.get(t, k + b"\x00") is None
        assert list(r.scan(rows[10][:2], rows[20][:2])) == rows[10:20]
        r.check_invariants()


def test_format_1_key_cache_is_bounded_and_counted(kv_v1):
    from engine.sstable_reader import SSTableReader
    r = SSTableReader.open(kv_v1, 1, key_cache_size=10)
    items = list(r.scan())
    for t, k, v in items[:20] + items[15:20]:
        assert r.get(t, k) == v
    assert (r.key_cache_requests, r.key_cache_hits) == (25, 5)
    assert len(r._key_cache) == 10
    r.key_cache_size = 4  # settable after open (the store does this after flush)
    assert len(r._key_cache) == 4 and r.get(*items[19][:2]) == items[19][2]
    r.close()


@pytest.mark.parametrize("component", ["Data.db", "Index.db", "Summary.db"])
def test_a_flipped_byte_in_a_format_1_file_is_reported_with_its_path(kv_v1, component):
    import os

    from engine.errors import CorruptionError
    from engine.sstable_reader import SSTableReader
    path = os.path.join(kv_v1, f"dt-1-{component}")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(path, "wb").write(bytes(data))
    with pytest.raises(CorruptionError) as e:
        with SSTableReader.open(kv_v1, 1) as r:
            r.check_invariants()
    assert e.value.path == path


# -- format-2 SSTables (tokens stored in Data.db), written by main at e8a7d5d -------------------

SSTABLE_V2 = Path(__file__).resolve().parent / "data" / "sstable_v2"


def _v2_items() -> list:
    """What tests/engine/data/make_sstable_v2.py wrote into both generations."""
    from engine.token import token
    return sorted((token(k), k, bytes([i % 251]) * 40 + k)
                  for i, k in enumerate(b"key%04d" % i for i in range(300)))


@pytest.fixture
def sstable_v2(tmp_path):
    d = tmp_path / "v2"
    shutil.copytree(SSTABLE_V2, d)
    return str(d)


@pytest.mark.parametrize("generation", [1, 2])
def test_format_2_sstables_read_the_same(sstable_v2, generation):
    from engine.sstable_reader import SSTableReader
    items = _v2_items()
    with SSTableReader.open(sstable_v2, generation) as r:
        assert r.format_version == 2 and len(r.index.offsets) > 10
        assert list(r.scan()) == items
        assert all(r.get(t, k) == p for t, k, p in items)
        assert r.get(items[5][0], items[5][1] + b"\x00") is None
        assert list(r.scan(items[10][:2], items[200][:2])) == items[10:200]
        assert [(t, k) for _o, _j, t, k, _p in r.iter_positions()] == [(t, k) for t, k, _ in items]
        r.check_invariants()


def test_format_2_sstables_rewrite_as_format_3(sstable_v2):
    from engine.sstable_reader import SSTableReader
    from engine.sstable_writer import SSTableWriter
    with SSTableReader.open(sstable_v2, 2) as old:
        w = SSTableWriter(sstable_v2, 3, expected_partitions=300, block_size_bytes=512)
        w.append_all(old.scan())
        new = w.finish({"min_timestamp": 1, "max_timestamp": 2, "cell_count": 300, "tombstone_count": 0,
                        "max_local_deletion_time": 2**63 - 1, "droppable_histogram": []})
        assert new.format_version == 3 and list(new.scan()) == list(old.scan()) == _v2_items()
        assert new.size_bytes < SSTableReader.open(sstable_v2, 1).size_bytes  # same rows, no tokens
        new.check_invariants()
        new.close()


def test_a_flipped_byte_in_a_format_2_data_block_is_reported_with_its_offset(sstable_v2):
    import os

    from engine.errors import CorruptionError
    from engine.sstable_reader import SSTableReader
    path = os.path.join(sstable_v2, "dt-1-Data.db")
    with SSTableReader.open(sstable_v2, 1) as r:
        offsets = r.index.offsets
    data = bytearray(open(path, "rb").read())
    data[offsets[3] + 20] ^= 0x04
    open(path, "wb").write(bytes(data))
    with SSTableReader.open(sstable_v2, 1) as r:
        with pytest.raises(CorruptionError) as e:
            list(r.scan())
        assert (e.value.path, e.value.offset) == (path, offsets[3])
