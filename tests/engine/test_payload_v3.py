"""Partition payload version 3, the plain form (docs/format.md#the-plain-form-payload-version-3):
its byte-exact vector, the encoder's choice between the forms, decode of both forms to the same
partition (and the same reconcile), the replica's check of malformed plain payloads, and a data
directory written before version 3 (tests/engine/data/payload_v2) read, then compacted into it."""
from __future__ import annotations

import pathlib
import shutil

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from engine.clock import ManualClock
from engine.plain_rows import simple_row_cells
from engine.errors import InvalidRequest
from engine.merge import reconcile
from engine.update_check import decode_update, decode_update_for_apply
from engine.partition import (NO_DELETION_TIME, Partition, Row, _packb, decode_partition, encode_partition,
                              live_row, partition_struct, plain_struct)
from engine.sstable_reader import SSTableReader
from engine.store import Store
from ring.coordinator import canonical_payload
from ring.merkle import partition_hash
from tests.engine.test_format_vectors import TS, vector

N = NO_DELETION_TIME
DATA = pathlib.Path(__file__).parent / "data"


def plain(ts: int, **cols: bytes) -> Partition:
    cells = {0: (ts, N, 0, b"")}
    cells.update({int(c[1:]): (ts, N, 0, v) for c, v in cols.items()})
    return Partition(None, {b"": Row(None, cells)}, [])


def general_bytes(p: Partition) -> bytes:
    """The version 2 (general) encoding of `p`, whatever form the encoder would choose."""
    return _packb(partition_struct(p))


def test_plain_vector():
    p = plain(TS, c1=b"ada", c2=b"\x00\x00\x00\x07")
    assert encode_partition(p) == vector("plain")
    assert len(general_bytes(p)) == 55 and len(vector("plain")) == 23
    assert decode_partition(vector("plain")) == p == decode_update(vector("plain"))


def test_standard_row_is_113_bytes_against_135():
    p = plain(TS, c1=b"x" * 100)
    assert len(encode_partition(p)) == 113 and len(general_bytes(p)) == 135


@pytest.mark.parametrize("p", [
    Partition((5, 1), {b"": Row(None, {0: (TS, N, 0, b"")})}, []),                 # a partition deletion
    Partition(None, {b"": Row((5, 1), {0: (TS, N, 0, b"")})}, []),                 # a row deletion
    Partition(None, {b"": Row(None, {0: (TS, N, 0, b"")})}, [(b"a", None, 5, 1)]),  # a range tombstone
    Partition(None, {b"a": Row(None, {0: (TS, N, 0, b"")})}, []),                  # a clustering
    Partition(None, {b"": Row(None, {0: (TS, N, 0, b""), 1: (TS + 1, N, 0, b"x")})}, []),  # two timestamps
    Partition(None, {b"": Row(None, {0: (TS, N, 0, b""), 1: (TS, 9, 4, b"x")})}, []),      # a TTL
    Partition(None, {b"": Row(None, {0: (TS, 9, 4, b"")})}, []),                   # an expiring marker
    Partition(None, {b"": Row(None, {0: (TS, N, 0, b""), 1: (TS, 9, 0, None)})}, []),      # a tombstone
    Partition(None, {b"": Row(None, {1: (TS, N, 0, b"x")})}, []),                  # no marker (an UPDATE)
    Partition(None, {b"": Row(None, {0: (TS, N, 0, b""), (1, b"p"): (TS, N, 0, b"x")})}, []),  # an element
    Partition(None, {}, []),
])
def test_anything_but_a_plain_row_keeps_the_general_form(p):
    assert plain_struct(p) is None
    assert encode_partition(p) == general_bytes(p)


# Partitions near the plain form: mostly one live row at one timestamp, sometimes one thing off.
ts = st.integers(0, 3)
val = st.binary(max_size=3)
cell = st.one_of(st.builds(lambda v: (1, N, 0, v), val), st.builds(lambda v: (1, N, 0, v), val),
                 st.builds(lambda t, v: (t, N, 0, v), ts, val),
                 st.builds(lambda t, v: (t, 7, 2, v), ts, val), st.builds(lambda t: (t, 5, 0, None), ts))
marker = st.one_of(st.just((1, N, 0, b"")), st.just((1, N, 0, b"")), st.just((2, 9, 3, b"")),
                   st.just((1, 4, 0, None)))
plain_row = st.builds(lambda c: Row(None, {0: (1, N, 0, b""), **{k: (1, N, 0, v) for k, v in c.items()}}),
                      st.dictionaries(st.integers(1, 300), val, max_size=4))
any_row = st.builds(lambda m, c, d: Row(d, {0: m, **c} if m is not None else c),
                st.one_of(marker, st.none()),
                st.dictionaries(st.one_of(st.integers(1, 300), st.integers(1, 300),
                                          st.tuples(st.integers(301, 303), st.binary(max_size=1))), cell, max_size=4),
                st.one_of(st.none(), st.none(), st.none(), st.tuples(ts, ts)))
row = st.one_of(plain_row, any_row, any_row)
partitions = st.builds(Partition, st.one_of(st.none(), st.none(), st.none(), st.tuples(ts, ts)),
                       st.one_of(st.fixed_dictionaries({b"": row}), st.fixed_dictionaries({b"": row}),
                                 st.dictionaries(st.sampled_from([b"", b"a"]), row, max_size=2)),
                       st.one_of(st.just([]), st.just([]), st.lists(st.tuples(st.just(b"a"), st.none(), ts, ts),
                                                                    max_size=1)))


@settings(max_examples=300)
@given(partitions, partitions, st.integers(0, 9))
def test_both_forms_decode_and_reconcile_alike(p, other, now_s):
    new, old, second = encode_partition(p), general_bytes(p), encode_partition(other)
    assert decode_partition(new) == decode_partition(old) == p
    assert decode_update(new) == decode_update(old) == p
    assert reconcile([new, second]) == reconcile([old, second]) == reconcile([second, old])
    assert canonical_payload(decode_partition(new)) == canonical_payload(decode_partition(old))
    assert partition_hash(b"k", encode_partition(decode_partition(old))) == partition_hash(b"k", new)
    fast_new, fast_old = simple_row_cells(new), simple_row_cells(old)
    assert fast_new == fast_old
    if fast_new is not None:
        assert fast_new == live_row(p, b"", now_s)
    if plain_struct(p) is not None:
        assert new != old and fast_new is not None  # the plain form was written; the fast path takes it
        row = p.rows[b""]
        assert decode_update_for_apply(new) == (row.cells[0][0], len(row.cells), 0, 0)
    else:
        assert decode_update_for_apply(new) == p
    assert decode_update_for_apply(old) == p


@pytest.mark.parametrize("flat, what", [
    ([5, 1], "is not \\[ts, column id, value"),
    ([5, 1, b"x", 2], "is not \\[ts, column id, value"),
    ([5, 0, b"x"], "out of order or out of range"),           # the marker is implied, never written
    ([5, 2, b"x", 1, b"y"], "out of order or out of range"),
    ([5, 2, b"x", 2, b"y"], "out of order or out of range"),
    ([5, 65536, b"x"], "out of order or out of range"),
    ([5, True, b"x"], "out of order or out of range"),
    ([5, 1, "text"], "is not bin"),
    ([5, 1, None], "is not bin"),
    ([5, 1, 7], "is not bin"),
    ([-1, 1, b"x"], "timestamp -1 is not an integer"),
    ([2**63, 1, b"x"], "is not an integer in 0..2\\^63-1"),
])
def test_malformed_plain_payloads_are_refused(flat, what):
    for check in (decode_update, decode_update_for_apply):
        with pytest.raises(InvalidRequest, match=f"partition update is malformed: .*{what}"):
            check(msgpack.packb(flat, use_bin_type=True))


def test_a_replica_applies_a_plain_payload_without_a_partition(tmp_path):
    """Store.apply_mutation of a plain payload (the replica's write): the same row and the same
    memtable statistics as the general path's decode."""
    s = Store.open(str(tmp_path / "db"), background=False, clock=ManualClock())
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "kv", {"k": "blob", "v": "blob", "n": "int"}, primary_key="k")
        t = s.table("ks", "kv")
        ids = {c.name: c.id for c in t.regular}
        cells = sorted([(ids["v"], b"x"), (ids["n"], b"\x00\x00\x00\x07")])
        payload = msgpack.packb([1_700_000_000_000_005, *cells[0], *cells[1]], use_bin_type=True)
        s.apply_mutation(t, b"a", payload)
        assert s.get("ks", "kv", {"k": b"a"}, writetime=True) == {
            "k": b"a", "v": b"x", "n": 7, "writetime(v)": 1_700_000_000_000_005, "writetime(n)": 1_700_000_000_000_005}
        stats = s.cfs[t.id].memtable.stats
        assert (stats.min_timestamp, stats.max_timestamp, stats.cell_count) == (
            1_700_000_000_000_005, 1_700_000_000_000_005, 3)
        with pytest.raises(InvalidRequest, match="partition update is malformed"):
            s.apply_mutation(t, b"b", msgpack.packb([5, 1, None]))
        assert s.get("ks", "kv", {"k": b"b"}) is None
    finally:
        s.close()


def test_the_plain_marker_alone_passes_the_replica_check():
    assert decode_update(msgpack.packb([7])) == plain(7)


def _rows(s: Store) -> list:
    return sorted(s.scan("ks", "kv", page_size=1000).rows, key=lambda r: r["k"])


def _payloads(s: Store, table: str) -> list:
    cfs = s.cfs[s.table("ks", table).id]
    return [payload for sst in cfs.sstables for _, _, payload in sst.scan()]


def _fixture_payloads(path: pathlib.Path) -> list:
    """The payloads of the fixture's one kv SSTable, read before any store opens it."""
    reader = SSTableReader.open(str(next((path / "data" / "ks").glob("kv-*"))), 1)
    try:
        return [payload for _, _, payload in reader.scan()]
    finally:
        reader.close()


def test_a_data_directory_from_payload_version_2_reads_then_compacts_into_version_3(tmp_path):
    shutil.copytree(DATA / "payload_v2", tmp_path / "v2")
    stored = _fixture_payloads(tmp_path / "v2")
    assert len(stored) == 23 and all(p[0] == 0x93 for p in stored)  # only the general form on disk
    s = Store.open(str(tmp_path / "v2"), clock=ManualClock(), background=False)
    try:
        expected = [{"k": b"log", "v": b"in the commit log", "n": 7}, {"k": b"marker"}, {"k": b"null", "n": 1},
                    {"k": b"ttl", "v": b"t"}]
        expected += [{"k": b"user%04d" % i, "v": bytes([i]) * 100 if i != 3 else b"newer", "n": i}
                     for i in range(20) if i != 5]
        assert _rows(s) == expected                              # the commit log replayed, both forms merged
        assert s.get("ks", "kv", {"k": b"user0007"}) == expected[4 + 7 - 1]
        assert s.get("ks", "t", {"k": 9, "c": "z"}) == {"k": 9, "c": "z", "v": "in the commit log"}
        s.flush()
        s.compact("ks", "kv")
        rewritten = _payloads(s, "kv")
        plain_rows = [p for p in rewritten if p[0] >> 4 == 0x9 and p[1] == 0xcf]
        assert len(plain_rows) == 20 and len(rewritten) == 24   # user* but 0003 (two timestamps) and 0005, log, marker
        assert sum(map(len, rewritten)) < sum(map(len, stored))
        assert _rows(s) == expected
    finally:
        s.close()
    with Store.open(str(tmp_path / "v2"), clock=ManualClock(), background=False) as s:
        assert _rows(s) == expected
