"""Scans in runs (engine/block_merge.py, engine/plain_rows.py, scan_cursor.scan_page): the merge of
block streams yields what merge.group yields row by row, whatever the runs' sizes and the hint;
a run of plain payloads gives the dicts simple_row gives, and declines anything else; a store
scanned over several SSTables and memtables, in pages of any size, answers what point reads
answer (shadowing, tombstones, TTL, versions in several sources, token order, paging)."""
import random

import msgpack
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import block_merge
from engine import mutation as mut
from engine.block_merge import lower, merge_blocks, upper
from engine.merge import group
from engine.plain_rows import plain_rows
from engine.results import column_converters, simple_row
from engine.store import Store
from engine.token import token

# a source: {(token, key): payload}; tokens drawn from a small range so that ties (distinct
# keys sharing a token) and keys held by several sources both happen
entry = st.tuples(st.integers(-3, 3), st.binary(min_size=1, max_size=2))
source = st.dictionaries(entry, st.binary(max_size=2), max_size=12)


def _runs(rows: list, cuts: list[int], multi_every: int):
    """rows as a block stream, cut at `cuts`; some payloads as lists of versions."""
    out, i = [], 0
    for size in cuts + [len(rows)]:
        piece = rows[i:i + max(1, size)]
        i += len(piece)
        if not piece:
            break
        payloads = [[p, p + b"'"] if multi_every and n % multi_every == 0 else p for n, (_, _, p) in enumerate(piece)]
        out.append(([t for t, _, _ in piece], [k for _, k, _ in piece], payloads,
                    any(type(p) is list for p in payloads)))
    return out


def _flat(runs) -> list:
    out = []
    for toks, keys, payloads, multi in runs:
        assert multi or all(type(p) is bytes for p in payloads)  # False: every payload is bytes
        for t, k, p in zip(toks, keys, payloads):
            out.append((t, k, sorted(p) if type(p) is list else [p]))
    return out


@settings(max_examples=300)
@given(st.lists(source, min_size=1, max_size=4), st.lists(st.integers(1, 5), max_size=8),
       st.integers(0, 3), st.integers(0, 40))
def test_merged_runs_are_the_row_by_row_merge(sources, cuts, multi_every, want):
    rows = [sorted((t, k, p) for (t, k), p in s.items()) for s in sources]
    streams = [_runs(r, cuts, multi_every) for r in rows]
    expected = [(t, k, sorted(v for p in ps for v in p)) for t, k, ps in
                group([((t, k, p) for t, k, p in _flat(s)) for s in streams])]
    got = _flat(merge_blocks([iter(s) for s in streams], want))
    assert got == expected
    assert [(t, k) for t, k, _ in got] == sorted({(t, k) for t, k, _ in got})  # strictly increasing


@settings(max_examples=300)
@given(st.lists(source, min_size=1, max_size=4), st.lists(st.integers(1, 5), max_size=8),
       st.integers(0, 3), st.integers(0, 40), st.lists(st.booleans(), min_size=4, max_size=4))
def test_sources_with_numpy_tokens_merge_the_same_into_lists(sources, cuts, multi_every, want, arrays):
    """A source's runs may hold their tokens as int64 arrays (SSTable runs with arrays=True):
    the merge is the same, and every run it yields holds a list of ints."""
    rows = [sorted((t, k, p) for (t, k), p in s.items()) for s in sources]
    streams = [_runs(r, cuts, multi_every) for r in rows]
    expected = _flat(merge_blocks([iter(s) for s in streams], want))
    streams = [[(numpy.array(r[0], numpy.int64), *r[1:]) for r in s] if a else s for s, a in zip(streams, arrays)]
    runs = list(merge_blocks([iter(s) for s in streams], want))
    assert all(type(r[0]) is list and all(type(t) is int for t in r[0]) for r in runs)
    assert _flat(runs) == expected


@given(st.lists(entry, max_size=20, unique=True), entry)
def test_lower_and_upper_are_the_tuple_bisections(entries, bound):
    entries.sort()
    toks, keys = [t for t, _ in entries], [k for _, k in entries]
    assert lower(toks, keys, *bound) == sum(1 for e in entries if e < bound)
    assert upper(toks, keys, *bound) == sum(1 for e in entries if e <= bound)


def _table(tmp_path, columns):
    s = Store.open(str(tmp_path), background=False)
    s.create_keyspace("ks")
    s.create_table("ks", "t", columns, primary_key="k")
    return s, s.table("ks", "t")


def test_a_run_of_plain_payloads_gives_simple_rows_dicts_and_declines_the_rest(tmp_path):
    s, t = _table(tmp_path, {"k": "blob", "v": "blob", "n": "int"})
    try:
        conv = column_converters(t)
        keys = [b"a", b"b", b"c"]
        ids = {c.name: i for i, c in t.by_id.items()}
        one = [msgpack.packb([5, ids["v"], b"x" + k]) for k in keys]
        two = [msgpack.packb([5, ids["v"], b"x" + k, ids["n"], (7).to_bytes(4, "big")]) for k in keys]
        for payloads in (one, two):
            expected = [simple_row(p, {"k": k}, conv) for k, p in zip(keys, payloads)]
            assert plain_rows(t, conv, "k", keys, payloads) == expected
        assert plain_rows(t, conv, "k", keys, one[:2] + two[2:]) is None          # two shapes
        general = msgpack.packb([None, [[b"", None, None, [0, 5, b""], [ids["v"], 5, b"y"]]], []])
        assert plain_rows(t, conv, "k", keys, one[:2] + [general]) is None        # a general form
        assert plain_rows(t, conv, "k", keys, [general] + one[1:]) is None
        assert plain_rows(t, conv, "k", keys, one[:2] + [b"\xc1"]) is None         # not msgpack
        assert plain_rows(t, conv, "k", keys, one[:2] + [msgpack.packb([5, 99, b"z"])]) is None  # unknown id
        # one column's payloads are read as one stream: a payload that is not exactly one object
        # (trailing bytes, cut short) is declined as unpackb declines it, never read across
        assert plain_rows(t, conv, "k", keys, one[:2] + [one[2] + one[0]]) is None  # trailing object
        assert plain_rows(t, conv, "k", keys, one[:2] + [one[2] + b"\x01"]) is None  # trailing byte
        assert plain_rows(t, conv, "k", keys, one[:2] + [one[2][:-1]]) is None  # cut short
    finally:
        s.close()


def _check_scans(s, t, expected: dict):
    """Every page size: the whole ring, a range that wraps and one that does not, against the
    expected rows; and each row against a point read."""
    tok = {k: token(mut.partition_key_bytes(t, {"k": k})) for k in expected}
    ordered = [expected[k] for k in sorted(expected, key=lambda k: (tok[k], mut.partition_key_bytes(t, {"k": k})))]
    ring = sorted(tok.values())
    for page_size in (1, 7, 1000):
        assert list(s.scan_all("ks", "t", page_size=page_size)) == ordered
        for lo, hi in ((ring[len(ring) * 2 // 3], ring[len(ring) // 3]), (ring[10], ring[-10])):
            if lo >= hi:  # wraps: (lo, MAX] then [MIN, hi]
                want = [r for r in ordered if tok[r["k"]] > lo] + [r for r in ordered if tok[r["k"]] <= hi]
            else:
                want = [r for r in ordered if lo < tok[r["k"]] <= hi]
            assert list(s.scan_all("ks", "t", start_token=lo, end_token=hi, page_size=page_size)) == want
    for r in ordered:
        assert s.get("ks", "t", {"k": r["k"]}) == r


def test_scans_over_several_sstables_and_memtables_answer_what_gets_answer(tmp_path):
    rnd = random.Random(7)
    s, t = _table(tmp_path, {"k": "int", "v": "text", "n": "bigint"})
    try:
        expected = {}
        for gen in range(3):  # three SSTables with overlapping token ranges, some keys in several
            for _ in range(400):
                k = rnd.randrange(900)
                row = {"k": k, "v": f"v{k}-{gen}", "n": k * 10 + gen}
                s.insert("ks", "t", row)
                expected[k] = row
            s.flush()
        for k in rnd.sample(sorted(expected), 40):   # tombstones over older SSTables
            s.delete("ks", "t", {"k": k})
            del expected[k]
        for k in rnd.sample(sorted(expected), 40):   # expiring cells: the general path
            s.insert("ks", "t", {"k": k, "v": "ttl"}, ttl=1000)
            expected[k] = {**expected[k], "v": "ttl"}
        for k in rnd.sample(sorted(expected), 30):   # keys updated twice+ in the memtable
            for i in range(3):
                s.insert("ks", "t", {"k": k, "v": f"m{i}", "n": i})
            expected[k] = {"k": k, "v": "m2", "n": 2}
        assert len(s.cfs[t.id].sstables) == 3
        _check_scans(s, t, expected)
        s.flush()  # now four SSTables, no memtable
        _check_scans(s, t, expected)
        s.compact("ks", "t")  # one SSTable: a single source, no merge
        _check_scans(s, t, expected)
    finally:
        s.close()


def test_a_scan_with_one_source_streams_its_blocks_unmerged(tmp_path, monkeypatch):
    s, t = _table(tmp_path, {"k": "int", "v": "text"})
    try:
        for k in range(300):
            s.insert("ks", "t", {"k": k, "v": str(k)})
        s.flush()
        calls = []
        real = block_merge.merge_blocks
        monkeypatch.setattr(block_merge, "merge_blocks", lambda *a: calls.append(1) or real(*a))
        assert len(list(s.scan_all("ks", "t", page_size=100))) == 300 and not calls
        s.insert("ks", "t", {"k": 1, "v": "new"})
        rows = list(s.scan_all("ks", "t", page_size=100))
        assert len(rows) == 300 and calls and {"k": 1, "v": "new"} in rows
    finally:
        s.close()


def test_a_range_starting_at_the_top_of_the_ring_holds_no_token_whether_flushed_or_not(tmp_path):
    """(MAX_TOKEN, MAX_TOKEN] is the whole ring and (MAX_TOKEN, hi] is [MIN_TOKEN, hi]: the
    same answers from a memtable and from an SSTable (an SSTable's start bound once overflowed)."""
    from engine.token import MAX_TOKEN
    s, t = _table(tmp_path, {"k": "int", "v": "text"})
    try:
        for k in range(5):
            s.insert("ks", "t", {"k": k, "v": str(k)})
        ring = sorted(token(mut.partition_key_bytes(t, {"k": k})) for k in range(5))
        answers = []
        for flushed in (False, True):
            if flushed:
                s.flush()
            answers.append([len(list(s.scan_all("ks", "t", start_token=MAX_TOKEN, end_token=end)))
                            for end in (MAX_TOKEN, None, ring[2])])
        assert answers == [[5, 0, 3], [5, 0, 3]]
    finally:
        s.close()


def test_decode_scan_tokens_are_the_partitioners_even_for_the_reserved_minimum(monkeypatch):
    """A format-3 block's tokens are engine.token.token's: an empty key's is MIN_TOKEN, and a
    key whose Murmur3 is the reserved minimum takes MAX_TOKEN (here a stand-in hash gives the
    minimum for one key: no real 16-byte preimage is known), wherever it is in the block."""
    from engine import data_block
    from engine.data_block import TOKEN_BIAS, BlockBuilder, decode_scan
    from engine.errors import CorruptionError
    from engine.token import MAX_TOKEN, MIN_TOKEN

    def block(keys, tok):
        b = BlockBuilder()
        for k in sorted(keys, key=lambda k: (tok(k), k)):
            b.add(tok(k) + TOKEN_BIAS, k, b"p" + k)
        raw = b.take()
        return decode_scan(raw, 0, len(raw), "Data.db", 0)

    keys = [b"", b"a", b"b", b"ccc", b"dddd"]
    toks, got, payloads = block(keys, token)
    assert toks == list(map(token, got)) and toks[0] == MIN_TOKEN and sorted(got) == sorted(keys)
    assert list(payloads) == [b"p" + k for k in got]
    real, real_digest = data_block._cmurmur3, data_block._digest
    if real is None:
        return
    by_token = sorted(keys[1:], key=token)
    b = BlockBuilder()
    for k in by_token:
        b.add(token(k) + TOKEN_BIAS, k, b"p")
    raw = b.take()  # format 3 (no tokens stored), built before the stand-in hash is set
    assert len(msgpack.unpackb(raw)) == 3
    for special in (by_token[-1], by_token[0]):  # the reserved minimum last, then first, by token
        monkeypatch.setattr(data_block, "_cmurmur3", lambda k: MIN_TOKEN if k == special else real(k))
        monkeypatch.setattr(data_block, "_digest",  # the digest path (ASCII keys): h1 = the minimum
                            lambda k: MIN_TOKEN.to_bytes(8, "little", signed=True) + bytes(8) if k == special
                            else real_digest(k))
        monkeypatch.setattr(data_block, "_token", lambda k: MAX_TOKEN if k == special else token(k))
        if special == by_token[-1]:
            toks, got, _ = decode_scan(raw, 0, len(raw), "Data.db", 0)
            assert list(got) == by_token and toks == [token(k) for k in by_token[:-1]] + [MAX_TOKEN]
        else:  # its token (MAX_TOKEN) puts it last: the block, which has it first, is out of order
            with pytest.raises(CorruptionError, match="sort-key order"):
                decode_scan(raw, 0, len(raw), "Data.db", 0)
