"""engine/flat_block.py: the fixed-stride view of a format-3 block answers exactly what the
unpacked block answers, exists only for the layout it proves, and the reader's point reads and
block cache agree with it (old files included)."""
from __future__ import annotations

import tempfile

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.block_cache import BlockCache, new_cache_id
from engine.data_block import unpack_entries
from engine.flat_block import flat_find, flat_view
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.token import token

STATS = {"min_timestamp": 1, "max_timestamp": 1, "cell_count": 1, "tombstone_count": 0,
         "max_local_deletion_time": 2**63 - 1, "droppable_histogram": []}


def entries(prefix: bytes, suffixes: list[bytes], payloads: list[bytes], pad: bytes = b"") -> bytes:
    return pad + msgpack.packb([prefix, suffixes, payloads], use_bin_type=True)


def unpacked_find(raw: bytes, s: int, key: bytes) -> bytes | None:
    kp, sfx, pl = unpack_entries(raw, s, len(raw), "p", 0, 3)
    if key[:len(kp)] != kp:
        return None
    try:
        return pl[sfx.index(key[len(kp):])]
    except ValueError:
        return None


@settings(max_examples=300)
@given(st.binary(max_size=12), st.integers(0, 20), st.integers(1, 40), st.integers(0, 260),
       st.data(), st.binary(max_size=3))
def test_view_answers_what_the_unpacked_block_answers(prefix, w, n, plen, data, pad):
    suffixes = sorted(set(data.draw(st.lists(st.binary(min_size=w, max_size=w), min_size=1, max_size=n))))
    payloads = [data.draw(st.binary(min_size=plen, max_size=plen)) for _ in suffixes]
    raw = entries(prefix, suffixes, payloads, pad)
    view = flat_view(raw, len(pad), len(raw))
    assert (view is not None) == (plen <= 255)  # bin8 payloads of one length: always a view
    if view is None:
        return
    probes = [prefix + s for s in suffixes] + [prefix + s[:-1] for s in suffixes if s]
    probes += [prefix[:-1] + s for s in suffixes] + [b"x" + prefix + s for s in suffixes[:3]]
    probes += [prefix + data.draw(st.binary(min_size=w, max_size=w)) for _ in range(5)]
    for key in probes:
        assert flat_find(view, key) == unpacked_find(raw, len(pad), key), key


@given(st.lists(st.binary(max_size=8), min_size=2, max_size=30, unique=True),
       st.lists(st.binary(max_size=30), min_size=30, max_size=30))
def test_no_view_unless_the_lengths_are_uniform(suffixes, payloads):
    payloads = payloads[:len(suffixes)]
    raw = entries(b"k", sorted(suffixes), payloads)
    uniform = len(set(map(len, suffixes))) == 1 and len(set(map(len, payloads))) == 1
    assert (flat_view(raw, 0, len(raw)) is not None) == uniform


def test_a_match_across_two_entries_is_not_an_entry():
    # entry 0's bytes c4 03 00 c4 03, then entry 1's c4 03 07 ...: the key c4 03 07 (pattern
    # c4 03 c4 03 07) first matches at offset 3, across entries 0 and 1; only entry 2 holds it
    suffixes = [b"\x00\xc4\x03", b"\x07\x08\x09", b"\xc4\x03\x07"]
    raw = entries(b"", suffixes, [b"p0", b"p1", b"p2"])
    view = flat_view(raw, 0, len(raw))
    s0, stride = view[3], view[5]
    first = raw.find(b"\xc4\x03\xc4\x03\x07", s0)
    assert (first - s0) % stride  # the straddling match comes first
    assert flat_find(view, b"\xc4\x03\x07") == b"p2"
    assert flat_find(view, b"\x03\x07\x08") is None  # only inside entries 1 and 2's bytes


def test_other_shapes_get_no_view():
    good = entries(b"p", [b"a", b"b"], [b"x", b"y"])
    assert flat_view(good, 0, len(good)) is not None
    assert flat_view(good, 0, len(good) - 1) is None  # entries must end exactly at e
    assert flat_view(good + b"\x00", 0, len(good) + 1) is None  # nothing after them
    assert flat_view(msgpack.packb([b"p", [b"a"], [b"x", b"y"]]), 0, 13) is None  # counts disagree
    bad = msgpack.packb([b"p", [b"a", "b"], [b"x", b"y"]])  # a str suffix
    assert flat_view(bad, 0, len(bad)) is None
    five = msgpack.packb([b"", b"p", b"", [b"a"], [b"x"]])  # format 2 entries
    assert flat_view(five, 0, len(five)) is None


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_reader_serves_views_and_caches_them(tmp_path, compression):
    keys = [b"user%06d" % i for i in range(3000)]
    items = sorted((token(k), k, b"value-" + k) for k in keys)
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=len(items), compression=compression)
    for t, k, p in items:
        w.append(t, k, p)
    w.finish(dict(STATS)).close()
    r = SSTableReader.open(str(tmp_path), 1)
    r.block_cache = cache = BlockCache(1 << 22)
    try:
        assert all(len(r._unpacked(i)) == 8 for i in range(len(r.index.offsets)))
        for _ in range(2):  # cold, then from the cache's slots
            assert all(r.get(t, k) == p for t, k, p in items)
            assert r.get(token(b"user00000x"), b"user00000x") is None
            assert r.get(token(b"user00001"), b"user00001") is None  # a shorter key than every entry's
            assert all(r.get_probed(token(k[:-1]), k[:-1]) is None for k in keys)  # shorter than the entries
        assert len(cache) == len(r.index.offsets) and all(s is not None for s in r._slots)
        cache.check_invariants()
        cache.clear()
        assert all(s is None for s in r._slots)
        assert all(r.get(t, k) == p for t, k, p in items)
    finally:
        r.close()


def test_reader_skips_a_match_across_two_entries(tmp_path):
    # as in the straddle test above, with 01 for 07: in token order 00c403, 010809, c40301
    keys = [b"\x00\xc4\x03", b"\x01\x08\x09", b"\xc4\x03\x01"]
    items = sorted((token(k), k, b"p" + k) for k in keys)
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=3)
    for t, k, p in items:
        w.append(t, k, p)
    r = w.finish(dict(STATS))
    try:
        view = r._unpacked(0)
        assert len(view) == 8 and (view[0].find(b"\xc4\x03\xc4\x03\x01", view[3]) - view[3]) % view[5]
        assert all(r.get(t, k) == p for t, k, p in items)
    finally:
        r.close()


def test_reader_never_answers_a_key_that_is_a_prefix_of_an_entry(tmp_path):
    keys = [b"k%02d" % i for i in range(100)]  # one block: prefix b"k", suffixes of 2 bytes
    items = sorted((token(k), k, b"p" + k) for k in keys)
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=100, block_size_bytes=1 << 16)
    for t, k, p in items:
        w.append(t, k, p)
    r = w.finish(dict(STATS))
    try:
        assert len(r.index.offsets) == 1 and len(r._unpacked(0)) == 8
        lo, hi = items[0][0], items[-1][0]
        probes = [b"k%d" % i for i in range(10) if lo <= token(b"k%d" % i) <= hi]
        # get_probed: past the bloom filter (which would refuse most of them), as a store reads
        assert probes and all(r.get_probed(token(k), k) is None for k in probes)  # each starts 10 suffixes
        others = [b"j%02d" % i for i in range(100) if lo <= token(b"j%02d" % i) <= hi]  # another prefix
        assert others and all(r.get_probed(token(k), k) is None for k in others)
        assert all(r.get(t, k) == p for t, k, p in items)
    finally:
        r.close()


def test_every_element_must_have_the_stride():
    # counts and the end agree with a stride of 3 in each case; one element is not a bin8 of 1 byte
    heads_differ = entries(b"", [b"a", "\x01y"], [b"p", b"q"])  # the str a2 01 79: length byte fits
    lengths_differ = entries(b"", [b"a", b"b\xc4", b""], [b"p", b"q", b"r"])  # c4 at every 3rd byte
    assert len(heads_differ) == len(entries(b"", [b"a", b"z"], [b"p", b"q"]))
    assert len(lengths_differ) == len(entries(b"", [b"a", b"b", b"c"], [b"p", b"q", b"r"]))
    for raw in (heads_differ, lengths_differ, entries(b"", [b"a", b"z"], [b"p", "q"])):
        assert flat_view(raw, 0, len(raw)) is None


def test_evicted_blocks_leave_their_slots():
    cache = BlockCache(100)
    a, b = new_cache_id(), new_cache_id()
    slots, other = [None] * 4, [None] * 4
    for i in range(4):
        cache.put_slot(slots, a, i, ("block", i), 40)
        cache.check_invariants()
    assert slots == [None, None, ("block", 2), ("block", 3)]
    cache.put_slot(slots, a, 2, ("again", 2), 40)  # the same block again: one entry, newest value
    assert slots[2] == ("again", 2) and len(cache) == 2 and cache.get(a | 2) == ("again", 2)
    cache.put_slot(other, b, 0, ("b", 0), 40)  # evicts a's block 3, not b's slot 3
    assert slots == [None, None, ("again", 2), None] and other == [("b", 0), None, None, None]
    cache.check_invariants()
    cache.put_slot(slots, a, 0, ("block", 0), 1000)  # larger than the cache: not held, no slot
    assert slots[0] is None
    cache.clear()
    assert slots == [None] * 4 and other == [None] * 4 and len(cache) == 0
    cache.put_slot(slots, a, 1, ("block", 1), 40)
    cache.release(a, slots)  # a closed reader: its entries age out, its list holds none of them
    assert slots == [None] * 4 and cache.get(a | 1) == ("block", 1)
    cache.put_slot(other, b, 1, ("b", 1), 80)  # evicting a's entry touches no list of a's
    assert slots == [None] * 4 and cache.get(a | 1) is None
    cache.check_invariants()


def test_a_view_of_an_lz4_block_is_charged_the_bytes_it_holds(tmp_path):
    # compressible payloads: the view keeps the decompressed entries, several times the disk bytes
    keys = [b"user%06d" % i for i in range(2000)]
    items = sorted((token(k), k, b"x" * 150) for k in keys)
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=len(items), compression="lz4")
    for t, k, p in items:
        w.append(t, k, p)
    w.finish(dict(STATS)).close()
    r = SSTableReader.open(str(tmp_path), 1)
    r.block_cache = cache = BlockCache(1 << 24)
    try:
        assert all(r.get(t, k) == p for t, k, p in items)
        views = [s for s in r._slots if s is not None and len(s) == 8]
        assert len(views) == len(r._slots)
        held = sum(len(v[0]) for v in views)
        assert held > 3 * r._bounds[-1]  # lz4 saved most of the bytes
        assert cache.size_bytes >= held
        cache.check_invariants()
    finally:
        r.close()


SYNTHETIC_TOKENS = st.sampled_from([-2**63 + 1, -2**63 + 2, -1, 0, 1, 2**56 - 2**63, 2**62, 2**63 - 2, 2**63 - 1])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=6), min_size=1, max_size=100, unique=True), st.integers(-1, 300),
       st.sampled_from([None, "lz4"]), st.sampled_from([64, 4096]), st.booleans(),
       st.sampled_from([0, 300, 1 << 20]), st.data())
def test_reader_answers_like_a_dict(keys, plen, compression, block_size, synthetic, capacity, data):
    """Views, unpacked and format-2 blocks (synthetic tokens, ties across blocks: the u64
    bisect's fallback) in one file, cold, cached and evicted, against a dict."""
    keys = sorted(set(keys) | {b"abcd", b"abce"})  # some keys of one length, some not
    pay = {k: (k * 300)[:plen] if plen >= 0 else data.draw(st.binary(max_size=40)) for k in keys}
    toks = {k: data.draw(SYNTHETIC_TOKENS) if synthetic else token(k) for k in keys}
    with tempfile.TemporaryDirectory() as d:
        w = SSTableWriter(d, 1, expected_partitions=len(keys), compression=compression, block_size_bytes=block_size)
        for k in sorted(keys, key=lambda k: (toks[k], k)):
            w.append(toks[k], k, pay[k])
        w.finish(dict(STATS)).close()
        r = SSTableReader.open(d, 1)
        r.block_cache = cache = BlockCache(capacity)
        try:
            probes = keys + [k + b"\x00" for k in keys] + [k[:-1] for k in keys] + [b"\xc4" + k for k in keys]
            for _ in range(2):
                for k in probes:
                    t = toks.get(k, token(k))
                    assert r.get_probed(t, k) == (pay[k] if toks.get(k) == t else None), k
                cache.check_invariants()
        finally:
            r.close()
