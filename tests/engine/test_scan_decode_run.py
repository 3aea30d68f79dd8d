"""data_block.decode_scan_run: several blocks decoded as one run are exactly the concatenation of
their decode_scan's (keys with and without a shared prefix, format-2 blocks, empty keys, a token
tie across two blocks), and a bad block in a run is reported as decode_scan reports it, with
that block's offset; SSTableReader.scan_blocks streams the same rows in runs of many blocks."""
import random

import msgpack
import numpy
import pytest

from engine import data_block
from engine.data_block import TOKEN_BIAS, BlockBuilder, decode_scan, decode_scan_run
from engine.errors import CorruptionError
from engine.store import Store
from engine.token import token


def _raw(keys, tok=token) -> bytes:
    b = BlockBuilder()
    for k in keys:
        b.add(tok(k) + TOKEN_BIAS, k, b"p" + k)
    return b.take()


def _blocks(rnd, n_blocks: int) -> list[bytes]:
    """Consecutive blocks of keys in token order: some share a prefix, some not, one format 2."""
    pool = sorted({b"user%06d" % rnd.randrange(10**6) for _ in range(40 * n_blocks)}
                  | {bytes([rnd.randrange(256)]) * rnd.randrange(1, 4) for _ in range(n_blocks)}, key=token)
    out, i = [], 0
    while i < len(pool) and len(out) < n_blocks:
        n = rnd.randrange(1, 40)
        out.append(_raw(pool[i:i + n]))
        i += n
    if len(out) > 2:  # a format-2 block: tokens stored (one synthetic token), same keys order
        keys = msgpack.unpackb(out[1])
        keys = [keys[0] + s for s in keys[1]]
        fake = {k: token(k) for k in keys}
        fake[keys[-1]] += 1
        out[1] = _raw(keys, fake.__getitem__)
        assert len(msgpack.unpackb(out[1])) == 5
    return out


def _per_block(raws, offsets):
    toks, keys, payloads = [], [], []
    for raw, off in zip(raws, offsets):
        t, k, p = decode_scan(raw, 0, len(raw), "Data.db", off)
        toks += t
        keys += k
        payloads += p
    return toks, keys, payloads


@pytest.mark.parametrize("seed", range(8))
def test_a_run_is_the_concatenation_of_its_blocks(seed):
    rnd = random.Random(seed)
    raws = _blocks(rnd, 12)
    if seed % 2:  # an empty key, which only a block without a key prefix can hold, ahead of
        head = _raw([b""] + [k for k in [b"a", b"b"]])  # the blocks that sort after it
        last = decode_scan(head, 0, len(head), "Data.db", 0)[0][-1]
        raws = [head] + [r for r in raws if decode_scan(r, 0, len(r), "Data.db", 0)[0][0] > last]
    offsets = [1000 * i for i in range(len(raws))]
    i = 0
    while i < len(raws):
        n = rnd.randrange(1, 6)
        run = [(raw, 0, len(raw), off) for raw, off in zip(raws[i:i + n], offsets[i:i + n])]
        got = decode_scan_run(run, "Data.db")
        assert tuple(map(list, got)) == _per_block(raws[i:i + n], offsets[i:i + n])
        toks = decode_scan_run(run, "Data.db", arrays=True)[0]  # the same tokens as an int64 array
        assert toks.dtype == numpy.int64 and toks.tolist() == got[0]
        i += n


def test_a_token_tie_across_two_blocks_takes_the_block_by_block_path(monkeypatch):
    real = data_block._cmurmur3
    if real is None:
        pytest.skip("no C murmur3: every run takes the block by block path")
    a, b = [b"k%03d" % i for i in range(10)], [b"m%03d" % i for i in range(10)]
    raws = [_raw(a, lambda k: 5 * a.index(k)), _raw(b, lambda k: 45 + 5 * b.index(k))]  # b[0] ties a[-1]
    monkeypatch.setattr(data_block, "_cmurmur3", lambda k: 5 * a.index(k) if k in a else 45 + 5 * b.index(k))
    monkeypatch.setattr(data_block, "_token", data_block._cmurmur3)
    monkeypatch.setattr(data_block, "_digest", lambda k: data_block._cmurmur3(k).to_bytes(8, "little", signed=True) * 2)
    run = [(raw, 0, len(raw), off) for raw, off in zip(raws, (0, 4096))]
    toks, keys, payloads = decode_scan_run(run, "Data.db")
    assert keys == a + b and toks[9] == toks[10] == 45 and payloads == [b"p" + k for k in a + b]


@pytest.mark.parametrize("bad", ["payload", "suffix", "unprefixed", "order"])
def test_a_bad_block_in_a_run_is_reported_at_its_offset(bad):
    keys = sorted((b"user%04d" % i for i in range(90)), key=token)
    raws = [_raw(keys[i:i + 30]) for i in range(0, 90, 30)]
    prefix, suffixes, payloads = msgpack.unpackb(raws[1])
    if bad == "payload":
        payloads[3] = "text"
    elif bad == "suffix":
        suffixes[3] = 7
    elif bad == "unprefixed":  # no key prefix: the run's own bin check of the keys decides
        prefix, suffixes = b"", [prefix + k for k in suffixes]
        suffixes[3] = suffixes[3].decode()
    else:
        suffixes[3], suffixes[4] = suffixes[4], suffixes[3]
        payloads[3], payloads[4] = payloads[4], payloads[3]
    raws[1] = msgpack.packb([prefix, suffixes, payloads], use_bin_type=True)
    run = [(raw, 0, len(raw), off) for raw, off in zip(raws, (100, 5000, 9000))]
    with pytest.raises(CorruptionError) as err:
        decode_scan_run(run, "Data.db")
    assert err.value.offset == 5000


def test_an_sstable_streams_its_rows_in_runs_of_many_blocks(tmp_path):
    s = Store.open(str(tmp_path / "s"), background=False)
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
        for i in range(3000):
            s.insert("ks", "t", {"k": b"key%05d" % i, "v": b"v" * 100})
        s.flush()
        (sst,) = s.cfs[s.table("ks", "t").id].sstables
        runs = list(sst.scan_blocks())
        assert [k for r in runs for k in r[1]] == sorted((b"key%05d" % i for i in range(3000)), key=lambda k: (token(k), k))
        blocks = len(sst._bounds) - 1
        assert blocks > 40 and len(runs) < blocks / 4  # runs of 1, 2, 4, 8, 16, 16... blocks
    finally:
        s.close()


def test_an_empty_key_takes_the_partitioners_token_in_a_run():
    """token(b"") is the reserved minimum, not the raw Murmur3 of no bytes (which a run would
    otherwise take, in order, for a block whose other keys hash above it)."""
    raw_empty = data_block._cmurmur3(b"") if data_block._cmurmur3 is not None else 0
    keys = [b""] + sorted((k for k in (b"k%03d" % i for i in range(200)) if token(k) > raw_empty), key=token)[:20]
    raws = [_raw(keys[:8]), _raw(keys[8:])]
    run = [(raw, 0, len(raw), off) for raw, off in zip(raws, (0, 4096))]
    toks, got, _ = decode_scan_run(run, "Data.db")
    assert got == keys and toks == [token(k) for k in keys] and toks[0] != raw_empty


def test_a_range_scan_decodes_no_block_past_its_end(tmp_path):
    """A run of blocks stops at the block that holds the range's end: a scan of (start, end] in
    blocks 3-4 neither decodes block 5 nor fails on its corruption (it did: the run [4, 5])."""
    s = Store.open(str(tmp_path / "s"), background=False)
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "int", "v": "text"}, primary_key="k")
        for k in range(20000):
            s.insert("ks", "t", {"k": k, "v": "x" * 40})
        s.flush()
        r = s.cfs[s.table("ks", "t").id].sstables[0]
        blocks = list(r._blocks(0))  # (offset, sort keys, tokens, keys, payloads)
        start, end = blocks[3][2][0] - 1, blocks[4][2][5]
        want = [t for b in blocks for t in b[2] if start < t <= end]
        with open(r.data_path, "r+b") as f:
            f.seek(blocks[5][0] + 20)
            byte = f.read(1)
            f.seek(blocks[5][0] + 20)
            f.write(bytes([byte[0] ^ 0xFF]))
        assert len(s.scan("ks", "t", start, end, page_size=1000).rows) == len(want)
        with pytest.raises(CorruptionError) as e:
            s.scan("ks", "t", start, blocks[5][2][0], page_size=1000)
        assert e.value.offset == blocks[5][0]
    finally:
        s.close()


def test_two_good_blocks_out_of_order_are_corruption_at_the_later_block():
    keys = sorted([b"user%03d" % i for i in range(20)], key=token)
    first, second = _raw(keys[10:]), _raw(keys[:10])  # the second block sorts entirely before the first
    with pytest.raises(CorruptionError) as e:
        decode_scan_run([(first, 0, len(first), 0), (second, 0, len(second), 4096)], "Data.db")
    assert e.value.offset == 4096 and "previous block" in str(e.value)
    # in order, the same two blocks are one run of 20 increasing tokens
    t, k, _ = decode_scan_run([(second, 0, len(second), 0), (first, 0, len(first), 4096)], "Data.db")
    assert k == keys and all(map(lambda a, b: a < b, t, t[1:]))


@pytest.mark.parametrize("ascii_only", [True, False])
def test_increasing_tokens_are_cassandras_tokens(ascii_only):
    """The digest path (ASCII keys) and the driver's path give Cassandra's tokens; keys with a
    byte >= 0x80 in the tail (where the two hashes differ) never take the digest."""
    rnd = random.Random(7)
    top = 128 if ascii_only else 256
    keys = sorted({bytes(rnd.randrange(top) for _ in range(rnd.randrange(1, 40))) for _ in range(300)}, key=token)
    if not ascii_only:
        assert not b"".join(keys).isascii()
    toks = data_block.increasing_tokens(keys, True)
    assert toks == [token(k) for k in keys]
    assert data_block.increasing_tokens(keys[::-1], True) is None  # decreasing
    assert data_block.increasing_tokens(keys[:5] + keys[4:], True) is None  # a tie
    assert data_block.increasing_tokens([b""] + keys, True) is None  # an empty key
