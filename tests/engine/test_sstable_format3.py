"""SSTable format 3: Data.db block entries without tokens (each computed from its key), point
reads by exact key, scans with computed tokens, every corrupted byte of a block located."""
from __future__ import annotations

import msgpack
import pytest

from engine.block_index import HEADER_SIZE, TOKEN_BIAS, sort_key
from engine.data_block import BlockBuilder, decode_block, decode_entries, find_entry, unpack_entries
from engine.errors import CorruptionError
from engine.sstable_files import component_path
from engine.sstable_reader import SSTableReader
from engine.token import token

STATS = {"min_timestamp": 1, "max_timestamp": 1, "cell_count": 1, "tombstone_count": 0,
         "max_local_deletion_time": 2**63 - 1, "droppable_histogram": []}


def write(directory, items, generation=1, **kw) -> SSTableReader:
    from engine.sstable_writer import SSTableWriter
    w = SSTableWriter(str(directory), generation, expected_partitions=max(1, len(items)), **kw)
    for t, k, p in items:
        w.append(t, k, p)
    return w.finish(dict(STATS))


def murmur_items(keys) -> list:
    return sorted((token(k), k, b"v" + k) for k in keys)


def blocks_of(r: SSTableReader) -> list[tuple]:
    """The unpacked entries of every block of r (unpack_entries; a point read may keep a
    fixed-stride view of the same bytes instead: engine/flat_block.py)."""
    out = []
    bounds = list(r.index.offsets) + [r.index.data_size]
    with open(r.data_path, "rb") as f:
        data = f.read()
    for i in range(len(r.index.offsets)):
        raw, s, e = decode_block(data[bounds[i]:bounds[i + 1]], 0, r.data_path, bounds[i])
        out.append(unpack_entries(raw, s, e, r.data_path, bounds[i], r.format_version))
    return out


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_round_trip_stores_no_tokens_and_computes_them(tmp_path, compression):
    items = murmur_items([b"user%05d" % i for i in range(600)] + [b"", b"\xff\x80", b"u"])
    r = write(tmp_path, items, compression=compression, block_size_bytes=300)
    try:
        assert r.format_version == 3
        with open(r.data_path, "rb") as f:
            assert f.read(HEADER_SIZE) == b"DTSD\x00\x03"
        blocks = blocks_of(r)
        assert len(blocks) > 20 and all(len(m) == 3 for m in blocks)  # [key_prefix, suffixes, payloads]
        assert list(r.scan()) == items
        assert all(r.get(t, k) == p for t, k, p in items)
        assert r.get(token(b"user00001x"), b"user00001x") is None
        lo, hi = items[100], items[400]
        assert list(r.scan(lo[:2], hi[:2])) == items[100:400]
        assert list(r.scan(lo[:2], hi[:2], end_inclusive=True)) == items[100:401]
        assert [(t, k) for _o, _j, t, k, _p in r.iter_positions()] == [(t, k) for t, k, _ in items]
        r.check_invariants()
    finally:
        r.close()


def test_a_block_with_a_token_that_is_not_its_keys_keeps_format_2_entries(tmp_path):
    real = murmur_items([b"a%03d" % i for i in range(200)])
    synthetic = [(2**62 + i, b"z%03d" % i, b"s") for i in range(40)]  # tokens no key hashes to
    items = sorted(real + synthetic)
    r = write(tmp_path, items, block_size_bytes=200)
    try:
        shapes = [len(m) for m in blocks_of(r)]
        assert 3 in shapes and 5 in shapes
        assert list(r.scan()) == items and all(r.get(t, k) == p for t, k, p in items)
        r.check_invariants()
    finally:
        r.close()


def test_a_block_of_one_entry(tmp_path):
    items = murmur_items([b"only"])
    r = write(tmp_path, items)
    try:
        (m,) = blocks_of(r)
        assert m == (b"only", (b"",), (b"vonly",))  # one key: all prefix, an empty suffix
        assert list(r.scan()) == items and r.get(*items[0][:2]) == b"vonly"
        assert r.get(token(b"onl"), b"onl") is None
        r.check_invariants()
    finally:
        r.close()


def test_empty_and_miscounted_blocks_are_refused():
    for entries, what in (([b"", [], []], "counts"), ([b"k", [b"a", b"b"], [b"1"]], "counts"),
                          ([b"k", [b"a"], b"1"], "types"), ([b"k", [b"a"], [1]], "bin")):
        raw = msgpack.packb(entries, use_bin_type=True)
        with pytest.raises(CorruptionError) as e:
            decode_entries(raw, 0, len(raw), "Data.db", 77)
        assert (e.value.path, e.value.offset) == ("Data.db", 77) and what in e.value.what


def test_a_version_2_file_accepts_only_format_2_entries():
    raw = msgpack.packb([b"", [b"a"], [b"1"]], use_bin_type=True)
    assert unpack_entries(raw, 0, len(raw), "Data.db", 6, 3) == (b"", (b"a",), (b"1",))
    with pytest.raises(CorruptionError) as e:
        unpack_entries(raw, 0, len(raw), "Data.db", 6, 2)
    assert "5 items" in e.value.what


def test_entries_out_of_token_order_are_refused_on_decode():
    a, b = sorted([b"k1", b"k2"], key=token)
    raw = msgpack.packb([b"k", [b[1:], a[1:]], [b"2", b"1"]], use_bin_type=True)  # swapped
    with pytest.raises(CorruptionError) as e:
        decode_entries(raw, 0, len(raw), "Data.db", 9)
    assert "order" in e.value.what
    m = unpack_entries(raw, 0, len(raw), "Data.db", 9)
    assert find_entry(m, sort_key(token(a), a)) == b"1"  # the search does not rely on the order


def _block(keys: list[bytes]) -> tuple:
    b = BlockBuilder()
    for k in sorted(keys, key=lambda k: (token(k), k)):
        b.add(TOKEN_BIAS + token(k), k, b"p" + k)
    return msgpack.unpackb(b.take(), use_list=False)


def test_find_entry_matches_exact_keys_only():
    keys = [b"user", b"user1", b"user12", b"user2"]  # prefixes of each other; b"user" has suffix b""
    m = _block(keys)
    assert m[0] == b"user" and sorted(m[1]) == [b"", b"1", b"12", b"2"]
    for k in keys:
        assert find_entry(m, sort_key(token(k), k)) == b"p" + k
    for k in (b"use", b"user3", b"user121", b"user1\x00", b"xuser1", b"USER1"):
        assert find_entry(m, sort_key(token(k), k)) is None
    m = _block([b"ab", b"abc"])  # the shared prefix is a whole key
    assert find_entry(m, sort_key(token(b"ab"), b"ab")) == b"pab"
    assert find_entry(m, sort_key(token(b"abc"), b"abc")) == b"pabc"
    assert find_entry(m, sort_key(token(b"a"), b"a")) is None


def test_every_corrupted_byte_of_a_block_is_reported_with_file_and_offset(tmp_path):
    items = murmur_items([b"ka", b"kb", b"kc"])
    r = write(tmp_path, items)
    off, end = r.index.bounds[0], r.index.bounds[1]
    path = r.data_path
    r.close()
    good = open(path, "rb").read()
    assert (off, end) == (HEADER_SIZE, len(good))
    for at in range(off, end):
        for bit in (0x01, 0x80):
            data = bytearray(good)
            data[at] ^= bit
            with open(path, "wb") as f:
                f.write(bytes(data))
            with SSTableReader.open(str(tmp_path), 1) as bad:
                for read in (lambda: bad.get(*items[1][:2]), lambda: list(bad.scan()), bad.check_invariants):
                    with pytest.raises(CorruptionError) as e:
                        read()
                    assert (e.value.path, e.value.offset) == (path, off), (at, bit, e.value)
    with open(path, "wb") as f:
        f.write(good)
    with SSTableReader.open(str(tmp_path), 1) as again:
        assert list(again.scan()) == items


def test_the_block_crc_covers_the_entries(tmp_path):
    items = murmur_items([b"k%d" % i for i in range(20)])
    r = write(tmp_path, items, compression="lz4")
    try:
        buf = open(r.data_path, "rb").read()
        raw, s, e = decode_block(buf, HEADER_SIZE, r.data_path, HEADER_SIZE)
        sks, payloads = decode_entries(raw, s, e, r.data_path, HEADER_SIZE)
        assert list(sks) == [sort_key(t, k) for t, k, _ in items]
        assert list(payloads) == [p for _t, _k, p in items]
    finally:
        r.close()


def test_compaction_input_stream_is_the_same_from_format_3(tmp_path):
    """Compaction, streaming and Merkle trees read `scan`: the (token, key, payload) stream of a
    rewritten SSTable is the stream it was written from."""
    items = murmur_items([b"p%04d" % i for i in range(500)])
    first = write(tmp_path, items, generation=1, block_size_bytes=256)
    second = write(tmp_path, list(first.scan()), generation=2, compression="lz4")
    try:
        assert list(second.scan()) == items
        assert open(component_path(str(tmp_path), 2, "Data.db"), "rb").read(6) == b"DTSD\x00\x03"
    finally:
        first.close()
        second.close()
