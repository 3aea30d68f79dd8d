"""The read fast paths (plain_rows.simple_row_cells, Store.get and scans of plain single-row
partitions) answer exactly what the general path (decode, reconcile, live_row) answers, and
decline everything else; a clean close leaves no commit-log record behind."""
import os

from hypothesis import given
from hypothesis import strategies as st

from engine.plain_rows import simple_row_cells
from engine.commit_log_segment import HEADER_SIZE
from engine.partition import NO_DELETION_TIME, Partition, Row, decode_partition, encode_partition, live_row
from engine.store import Store

ts = st.integers(0, 5)
value = st.binary(max_size=3)
cell = st.one_of(
    st.builds(lambda t, v: (t, NO_DELETION_TIME, 0, v), ts, value),            # live
    st.builds(lambda t, e, v: (t, e, 3, v), ts, st.integers(0, 9), value),      # expiring
    st.builds(lambda t, d: (t, d, 0, None), ts, st.integers(0, 9)))             # tombstone
deletion = st.one_of(st.none(), st.none(), st.tuples(ts, st.integers(0, 9)))
rows = st.dictionaries(st.sampled_from([b"", b"", b"a"]),
                       st.builds(Row, deletion, st.dictionaries(st.integers(0, 3), cell, max_size=3)),
                       max_size=2)
ranges = st.lists(st.tuples(st.just(b""), st.none(), ts, st.integers(0, 9)), max_size=1)
partitions = st.builds(Partition, deletion, rows, ranges)


@given(partitions, st.integers(0, 9))
def test_fast_path_agrees_with_the_general_path(p, now_s):
    payload = encode_partition(p)
    fast = simple_row_cells(payload)
    if fast is not None:
        assert fast == live_row(decode_partition(payload), b"", now_s)


def test_fast_path_takes_a_plain_row_and_declines_the_rest():
    plain = Partition(None, {b"": Row(None, {0: (7, NO_DELETION_TIME, 0, b""), 1: (7, NO_DELETION_TIME, 0, b"x")})}, [])
    assert simple_row_cells(encode_partition(plain)) == plain.rows[b""].cells
    expiring = Partition(None, {b"": Row(None, {1: (7, 100, 5, b"x")})}, [])
    deleted = Partition((8, 1), {b"": Row(None, {1: (7, NO_DELETION_TIME, 0, b"x")})}, [])
    assert simple_row_cells(encode_partition(expiring)) is None
    assert simple_row_cells(encode_partition(deleted)) is None
    assert simple_row_cells(b"\xc1 not msgpack") is None


def test_store_reads_through_both_paths_alike(tmp_path):
    with Store.open(str(tmp_path), background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "int", "v": "text", "n": "bigint"}, primary_key="k")
        for k in range(60):
            s.insert("ks", "t", {"k": k, "v": f"v{k}", "n": k * 10})
        s.flush()
        s.insert("ks", "t", {"k": 1, "v": "newer"})        # two versions: general path
        s.delete("ks", "t", {"k": 2})                        # a tombstone: general path
        s.insert("ks", "t", {"k": 3, "v": "ttl"}, ttl=1000)   # expiring: general path
        s.delete("ks", "t", {"k": 4}, columns=["n"])
        expected = {k: {"k": k, "v": f"v{k}", "n": k * 10} for k in range(60)}
        expected[1]["v"] = "newer"
        del expected[2]
        expected[3]["v"] = "ttl"
        del expected[4]["n"]
        for _ in range(2):
            assert {k: s.get("ks", "t", {"k": k}) for k in range(60) if k != 2} == expected
            assert s.get("ks", "t", {"k": 2}) is None
            assert {r["k"]: r for r in s.scan_all("ks", "t", page_size=7)} == expected
            assert s.get("ks", "t", {"k": 5}, columns=["v"]) == {"k": 5, "v": "v5"}
            s.flush()


def test_a_clean_close_leaves_only_an_empty_segment(tmp_path):
    path = str(tmp_path)
    s = Store.open(path, background=False)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "int", "v": "text"}, primary_key="k")
    for k in range(100):
        s.insert("ks", "t", {"k": k, "v": "x" * 100})
    before = sorted(os.listdir(os.path.join(path, "commitlog")))
    s.close()
    after = sorted(os.listdir(os.path.join(path, "commitlog")))
    assert after == before[-1:]
    assert os.path.getsize(os.path.join(path, "commitlog", after[0])) == HEADER_SIZE
    with Store.open(path, background=False) as s:
        assert s.replayed == 0
        assert s.get("ks", "t", {"k": 99}) == {"k": 99, "v": "x" * 100}
        s.insert("ks", "t", {"k": 100, "v": "y"})
        segs = sorted(os.listdir(os.path.join(path, "commitlog")))
        assert segs[-1] > after[0]                           # the segment ids go on from it
        s.crash()
    with Store.open(path, background=False) as s:           # and replay still works after it
        assert s.replayed == 1
        assert s.get("ks", "t", {"k": 100}) == {"k": 100, "v": "y"}


def test_scan_of_one_sstable_matches_point_reads(tmp_path):
    """One SSTable as the only source, then two: the scan fast path (results.simple_row) and the general
    path it falls back to for expiring, deleted and resumed rows answer what get answers."""
    with Store.open(str(tmp_path), background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "int", "v": "text", "n": "bigint", "l": "frozen<list<int>>"},
                       primary_key="k")
        s.create_table("ks", "b", {"k": "blob", "v": "blob"}, primary_key="k")
        for k in range(80):
            s.insert("ks", "t", {"k": k, "v": f"v{k}", "n": k * 10, "l": [k, 1]})
            s.insert("ks", "b", {"k": bytes([k]), "v": bytes([k, 7])})
        s.insert("ks", "t", {"k": 3, "v": "ttl"}, ttl=1000)   # expiring: general path
        s.delete("ks", "t", {"k": 2})                        # partition tombstone
        s.delete("ks", "t", {"k": 4}, columns=["n"])          # cell tombstone
        s.insert("ks", "t", {"k": 5})                         # a row with no cells
        s.flush()
        for sstables, name, keys in ((1, "t", [{"k": k} for k in range(80)]),
                                     (1, "b", [{"k": bytes([k])} for k in range(80)]),
                                     (2, "t", [{"k": k} for k in range(80)])):
            if sstables == 2:  # a second SSTable: partitions of one version take simple_row too
                s.insert("ks", "t", {"k": 7, "v": "newer"})
                s.insert("ks", "t", {"k": 90, "v": "new", "l": [1]})
                keys.append({"k": 90})
                s.flush()
            cfs = s.cfs[s.table("ks", name).id]
            assert len(cfs.sstables) == sstables and not cfs.memtable.partitions
            expected = [r for r in (s.get("ks", name, k) for k in keys) if r is not None]
            by_key = {repr(r["k"]): r for r in expected}
            for page_size in (1, 7, 1000):
                got = list(s.scan_all("ks", name, page_size=page_size))
                assert len(got) == len(expected)
                assert {repr(r["k"]): r for r in got} == by_key
                state, pages = None, []
                while True:             # every page but the last is full, and no fuller
                    page = s.scan("ks", name, page_size=page_size, paging_state=state)
                    pages.append(len(page.rows))
                    state = page.paging_state
                    if state is None:
                        break
                assert all(n == page_size for n in pages[:-1]) and pages[-1] <= page_size
                assert sum(pages) == len(expected)
            assert list(s.scan_all("ks", name, writetime=True)) == [
                {**r, **{f"writetime({c})": r2[f"writetime({c})"] for c in r if c != "k" and r[c] is not None}}
                for r, r2 in ((r, s.get("ks", name, {"k": r["k"]}, writetime=True))
                              for r in s.scan_all("ks", name))]


@given(st.dictionaries(st.integers(1, 5), st.binary(max_size=4), max_size=4), st.sets(st.integers(1, 5)))
def test_simple_row_of_a_plain_payload_takes_the_known_columns(cells, known):
    """results.simple_row on the plain form [ts, col, value, ...]: one column (its own branch) or
    several; a column id the converters do not know (dropped) is left out."""
    import msgpack
    from engine.results import simple_row
    flat = [7]
    for col in sorted(cells):
        flat += [col, cells[col]]
    converters = {c: (f"c{c}", None if c % 2 else bytes.hex) for c in known}
    expected = {"k": b"key"}
    for col, v in cells.items():
        if col in known:
            expected[f"c{col}"] = v if col % 2 else v.hex()
    assert simple_row(msgpack.packb(flat), {"k": b"key"}, converters) == expected
