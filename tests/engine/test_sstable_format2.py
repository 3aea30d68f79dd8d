"""SSTable format 2: prefix-compressed entries, the in-memory block index (shortest separators),
one verified block per point read, corruption located by file and block offset."""
from __future__ import annotations

import os
from bisect import bisect_right

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.block_cache import BlockCache
from engine.block_index import TOKEN_BIAS, BlockIndex, shortest_separator, sort_key
from engine.data_block import BlockBuilder, decode_entries, find_entry
from engine.encoding import crc32
from engine.errors import CorruptionError
from engine.sstable_files import component_path
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter

STATS = {"min_timestamp": 1, "max_timestamp": 1, "cell_count": 1, "tombstone_count": 0,
         "max_local_deletion_time": 2**63 - 1, "droppable_histogram": []}


def write(directory, items, **kw) -> SSTableReader:
    w = SSTableWriter(str(directory), 1, expected_partitions=max(1, len(items)), **kw)
    for t, k, p in items:
        w.append(t, k, p)
    return w.finish(dict(STATS))


def test_a_block_stores_the_common_token_and_key_prefixes_once():
    b = BlockBuilder()
    for i, tok in enumerate((0x1122334455667788, 0x1122334455667799, 0x11223344556677AA)):
        b.add(TOKEN_BIAS + tok, b"user00000%d" % (9 - i), b"v%d" % i)
    raw = b.take()
    tok_prefix, key_prefix, tok_blob, key_suffixes, payloads = msgpack.unpackb(raw)
    assert (tok_prefix, key_prefix, tok_blob) == ((TOKEN_BIAS + 0x1122334455667700).to_bytes(8, "big")[:7],
                                                  b"user00000", b"\x88\x99\xaa")
    assert key_suffixes == [b"9", b"8", b"7"] and payloads == [b"v0", b"v1", b"v2"]
    keys, payloads = decode_entries(raw, 0, len(raw), "x", 0)
    assert list(keys) == [sort_key(0x1122334455667788, b"user000009"), sort_key(0x1122334455667799, b"user000008"),
                    sort_key(0x11223344556677AA, b"user000007")]
    assert list(payloads) == [b"v0", b"v1", b"v2"] and b.count == 0


@pytest.mark.parametrize("last, first", [(b"\x01\x02\x03", b"\x01\x05"), (b"ab", b"abc"),
                                         (b"abc", b"abd\x00"), (b"a\xff\xff", b"b")])
def test_shortest_separator_lies_between(last, first):
    s = shortest_separator(last, first)
    assert last < s <= first and first.startswith(s)
    assert len(s) == len(os.path.commonprefix([last, first])) + 1


keys_st = st.lists(st.tuples(st.integers(-3, 3).map(lambda t: t * 2**61 + (t & 0xFF)),
                             st.binary(min_size=0, max_size=6).map(lambda b: b"k" + b)),
                   min_size=1, max_size=80, unique=True)


@settings(max_examples=60, deadline=None)
@given(keys_st, st.sampled_from([None, "lz4"]), st.integers(20, 300))
def test_round_trip_with_shared_prefixes_and_equal_tokens(tmp_path_factory, keys, compression, block):
    items = [(t, k, k * 3) for t, k in sorted(keys)]
    d = tmp_path_factory.mktemp("rt")
    r = write(d, items, compression=compression, block_size_bytes=block)
    try:
        assert list(r.scan()) == items
        assert all(r.get(t, k) == p for t, k, p in items)
        t, k, _ = items[len(items) // 2]
        assert r.get(t, k + b"\x00") is None or (t, k + b"\x00", (k + b"\x00") * 3) in items
        seps = r.index.separators
        assert len(seps) == len(r.index.offsets) >= 1
        for t, k, _ in items:  # the block the index names holds the key
            i = bisect_right(seps, sort_key(t, k)) - 1
            assert find_entry(r._unpacked(i), sort_key(t, k)) == k * 3
        r.check_invariants()
    finally:
        r.close()


def _many(n=400):
    return [(i * 2**50 - 2**62, b"key%05d" % i, b"payload-%05d" % i * 4) for i in range(n)]


def test_flipped_byte_in_one_block_fails_reads_of_that_block_only(tmp_path):
    items = _many()
    r = write(tmp_path, items, block_size_bytes=4096)  # > 5 blocks
    offsets, bounds = r.index.offsets, r.index.bounds
    r.close()
    assert len(offsets) > 5
    bad = 3
    path = component_path(str(tmp_path), 1, "Data.db")
    data = bytearray(open(path, "rb").read())
    at = data.index(b"payload-", bounds[bad]) + 3  # inside a payload: only the CRC can tell
    assert at < bounds[bad + 1]
    data[at] ^= 0x10
    open(path, "wb").write(bytes(data))
    r = SSTableReader.open(str(tmp_path), 1)
    r.block_cache = BlockCache(1 << 20)
    failed = 0
    for t, k, p in items:
        i = bisect_right(r.index.separators, sort_key(t, k)) - 1
        if i == bad:
            with pytest.raises(CorruptionError) as e:
                r.get(t, k)
            assert (e.value.path, e.value.offset) == (path, offsets[bad])
            failed += 1
        else:
            assert r.get(t, k) == p
    assert failed > 0 and r._slots[bad] is None and r.block_cache.get(r.cache_id | bad) is None
    with pytest.raises(CorruptionError) as e:
        list(r.scan())
    assert (e.value.path, e.value.offset) == (path, offsets[bad])
    r.close()


def test_flipped_byte_in_summary_separators_is_reported_with_file_and_offset(tmp_path):
    write(tmp_path, _many()).close()
    path = component_path(str(tmp_path), 1, "Summary.db")
    data = bytearray(open(path, "rb").read())
    at = data.index(b"separators") + 20
    data[at] ^= 0x01
    open(path, "wb").write(bytes(data))
    with pytest.raises(CorruptionError) as e:
        SSTableReader.open(str(tmp_path), 1)
    assert e.value.path == path and 0 < e.value.offset < len(data)
    assert "checksum" in e.value.what


def test_a_block_index_whose_blocks_overlap_is_refused():
    good = BlockIndex(2, 100, 4096, [b"\x00" * 8, b"\x01"], [6, 50], b"\x02" * 8)
    good.validate("s")
    for bad in (BlockIndex(2, 100, 4096, [b"\x01", b"\x00" * 8], [6, 50], b"\x02" * 8),
                BlockIndex(2, 100, 4096, [b"\x00" * 8, b"\x01"], [6, 10], b"\x02" * 8),
                BlockIndex(2, 100, 4096, [b"\x00" * 8, b"\x01"], [7, 50], b"\x02" * 8),
                BlockIndex(0, 100, 4096, [b"\x00" * 8], [6], b"")):
        with pytest.raises(CorruptionError):
            BlockIndex.decode(bad.encode(), "s")


@pytest.mark.parametrize("entries, what", [
    ([b"", b"", b"\x01" * 16, [b"b", b"a"], [b"1", b"2"]], "order"),
    ([b"", b"", b"\x01" * 8 + b"\x02" * 8, [b"a", b"b"], [b"1"]], "counts"),
    ([b"", b"", b"\x01" * 7, [b"a"], [b"1"]], "counts"),
    ([b"", b"", b"\x01" * 8, [b"a"], [1]], "bin"),
    ([b"", b"", b"\x01" * 8, [b"a"]], "5 items"),
])
def test_well_framed_but_inconsistent_entries_are_refused(entries, what):
    raw = msgpack.packb(entries, use_bin_type=True)
    with pytest.raises(CorruptionError) as e:
        decode_entries(raw, 0, len(raw), "Data.db", 4242)
    assert (e.value.path, e.value.offset) == ("Data.db", 4242) and what in e.value.what


def _block(toks: list[int], keys: list[bytes], payloads: list[bytes]) -> tuple:
    b = BlockBuilder()
    for t, k, p in zip(toks, keys, payloads):
        b.add(TOKEN_BIAS + t, k, p)
    raw = b.take()
    return msgpack.unpackb(raw, use_list=False)


def test_find_entry_matches_whole_token_suffixes_and_keys_only():
    # token suffixes 01 02 | 02 05 | 02 05: b"\x02\x02" occurs in the blob at an unaligned
    # offset only, and two entries share the token 0x0205
    m = _block([0x0102, 0x0205, 0x0205], [b"ka", b"kb", b"kc"], [b"1", b"2", b"3"])
    assert m[2] == b"\x01\x02\x02\x05\x02\x05"
    assert find_entry(m, sort_key(0x0202, b"ka")) is None
    assert [find_entry(m, sort_key(t, k)) for t, k in ((0x0102, b"ka"), (0x0205, b"kb"), (0x0205, b"kc"))] \
        == [b"1", b"2", b"3"]
    assert find_entry(m, sort_key(0x0205, b"ka")) is None  # right token, other key
    assert find_entry(m, sort_key(0x0102, b"kb")) is None
    assert find_entry(m, sort_key(0x0102, b"k")) is None and find_entry(m, sort_key(0x0102, b"kab")) is None
    assert find_entry(m, sort_key(0x1000102, b"ka")) is None  # token prefix differs
    one = _block([7, 7], [b"x1", b"x2"], [b"a", b"b"])  # one token for the whole block: no blob
    assert one[2] == b"" and find_entry(one, sort_key(7, b"x2")) == b"b"
    assert find_entry(one, sort_key(7, b"x3")) is None and find_entry(one, sort_key(8, b"x1")) is None


def test_a_point_read_of_a_non_bin_payload_is_corruption_at_the_block(tmp_path):
    r = write(tmp_path, [(5, b"k1", b"X"), (6, b"k2", b"Y")])
    off, end = r.index.bounds[0], r.index.bounds[1]
    r.close()
    path = component_path(str(tmp_path), 1, "Data.db")
    data = bytearray(open(path, "rb").read())
    at = data.index(b"\xc4\x01X", off)  # the payload b"X" as msgpack bin 8 ...
    data[at:at + 3] = b"\xa2XY"        # ... becomes the str "XY": same length, frame re-checksummed
    data[end - 4:end] = (crc32(bytes(data[off:end - 4]))).to_bytes(4, "big")
    open(path, "wb").write(bytes(data))
    r = SSTableReader.open(str(tmp_path), 1)
    try:
        assert r.get(6, b"k2") == b"Y"  # the other entry of the block is still readable
        with pytest.raises(CorruptionError) as e:
            r.get(5, b"k1")
        assert (e.value.path, e.value.offset) == (path, off) and "bin" in e.value.what
        with pytest.raises(CorruptionError):
            list(r.scan())
    finally:
        r.close()
