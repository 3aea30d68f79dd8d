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
