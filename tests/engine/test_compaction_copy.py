"""Compaction copy-through (engine/compaction/executor.py): a plain-form partition found in one input
is copied as it is, and the output is byte for byte what the general path (decode, purge, encode)
writes: the same Data.db, the same statistics, the same reads."""
import dataclasses
import os

import pytest

from engine.clock import ManualClock
from engine.compaction import executor
from engine.store import Store


def _build(root: str) -> Store:
    """The same history in every store: plain rows in several SSTables, overwrites across them,
    TTLs (some expired by compaction time), tombstones, nulls, column deletions (no marker), a
    collection and a clustered table; explicit timestamps and a manual clock."""
    s = Store.open(root, background=False, clock=ManualClock())
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "blob", "v": "blob", "n": "int", "tags": "set<int>"}, primary_key="k")
    s.create_table("ks", "wide", {"p": "int", "c": "int", "v": "text"}, primary_key=("p", "c"))
    ts = 1_700_000_000_000_000
    for i in range(300):
        s.insert("ks", "kv", {"k": b"k%03d" % i, "v": b"v%d" % i, "n": i}, timestamp=ts + i)
    for p in range(2, 6):
        s.insert("ks", "wide", {"p": p, "c": 0, "v": "y"}, timestamp=ts)
    s.flush()
    for i in range(0, 300, 7):   # overwritten in a second SSTable: two versions to reconcile
        s.insert("ks", "kv", {"k": b"k%03d" % i, "v": b"w%d" % i}, timestamp=ts + 1000 + i)
    for i in range(300, 320):    # short TTLs: expired (and purgeable) at compaction time
        s.insert("ks", "kv", {"k": b"k%03d" % i, "v": b"t"}, ttl=1, timestamp=ts + i)
    for i in range(320, 330):    # a null: a tombstone cell, so not the plain form
        s.insert("ks", "kv", {"k": b"k%03d" % i, "v": None, "n": 1}, timestamp=ts + i)
    for i in range(330, 340):    # a column deletion: no row marker
        s.delete("ks", "kv", {"k": b"k%03d" % i}, columns=["n"], timestamp=ts + i)
    s.insert("ks", "kv", {"k": b"set", "tags": {1, 2}}, timestamp=ts)
    s.delete("ks", "kv", {"k": b"k001"}, timestamp=ts + 5000)
    for c in range(5):
        s.insert("ks", "wide", {"p": 1, "c": c, "v": "x"}, timestamp=ts + c)
    s.flush()
    for i in range(340, 400):    # a third SSTable of plain rows only
        s.insert("ks", "kv", {"k": b"k%03d" % i, "v": b"z"}, timestamp=ts + i)
    s.flush()
    s.clock.advance(10 * 86400 + 60)   # past the TTLs and gc_grace_seconds
    return s


def _compact(s: Store, table: str, copy_through: bool) -> list:
    cfs = s.cfs[s.table("ks", table).id]
    task = cfs.plan_compaction(major=True)
    try:
        outputs = executor.execute(cfs, task, copy_through=copy_through)
    finally:
        cfs.compacting.difference_update(task.inputs)
    return outputs


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("table", ["kv", "wide"])
def test_copy_through_writes_the_general_paths_bytes(tmp_path, table):
    fast, slow = _build(str(tmp_path / "fast")), _build(str(tmp_path / "slow"))
    try:
        out_fast, out_slow = _compact(fast, table, True), _compact(slow, table, False)
        assert len(out_fast) == len(out_slow) == 1
        a, b = out_fast[0], out_slow[0]
        assert list(a.scan()) == list(b.scan())
        for path_a, path_b in zip(a.paths, b.paths):   # Statistics.db names its store's table id
            assert os.path.basename(path_a) == os.path.basename(path_b)
            if not path_a.endswith("Statistics.db"):
                assert _read(path_a) == _read(path_b), path_a
        # commit-log segment ids come from the wall clock, so the intervals differ between stores
        assert dataclasses.replace(a.stats, commit_log_intervals=()) == dataclasses.replace(b.stats, commit_log_intervals=())
        for k in [b"k000", b"k001", b"k007", b"k305", b"k325", b"k335", b"k350", b"set"]:
            assert fast.get("ks", "kv", {"k": k}) == slow.get("ks", "kv", {"k": k})
        for p in range(1, 6):
            assert fast.select("ks", "wide", {"p": p}) == slow.select("ks", "wide", {"p": p})
        assert fast.get("ks", "kv", {"k": b"k001"}) is None
        assert fast.get("ks", "kv", {"k": b"k305"}) is None
    finally:
        fast.close()
        slow.close()


def test_copy_through_takes_plain_single_version_partitions_only(tmp_path):
    """The copied partitions are exactly the single-version plain ones: a compaction of the kv
    table decodes none of them (counted through the module's reconcile) and all the others."""
    s = _build(str(tmp_path / "db"))
    decoded = []
    real = executor.merge.reconcile

    def counting(payloads):
        decoded.append(len(payloads))
        return real(payloads)

    executor.merge.reconcile = counting
    try:
        _compact(s, "kv", True)
    finally:
        executor.merge.reconcile = real
        s.close()
    # 300 + 20 + 10 + 10 + 1 + 60 partitions; k001 was deleted in the second SSTable, the 43
    # rewritten keys (k000, k007, ...) have two versions: 45 reconciled with 2, 40 single non-plain
    assert decoded.count(2) == 43 + 1
    assert len(decoded) - decoded.count(2) == 20 + 10 + 10 + 1


def test_plain_form_is_read_from_the_first_bytes():
    from engine.partition import _packb
    assert executor._plain_form(_packb([1_700_000_000_000_000, 1, b"v"]))
    assert executor._plain_form(_packb([5]))
    assert executor._plain_form(_packb([-1, 1, b"v"]))
    assert executor._plain_form(_packb([1] + [2, b"x"] * 20))             # array16 header
    assert not executor._plain_form(_packb([None, [[b"", None, None]], []]))
    assert not executor._plain_form(_packb([[1, 2], [], []]))
    assert not executor._plain_form(_packb([[b"", None, None]] * 20))      # array16, an array first
    assert not executor._plain_form(_packb([]))
    assert not executor._plain_form(b"\xc0")
