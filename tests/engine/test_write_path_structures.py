"""The write path's cheap structures stay correct: SSTableWriter.append_all writes byte for byte
what append() writes; the memtable orders equal tokens by key; its single-update entries are
the payload bytes (no token, nothing the garbage collector tracks), readable (also while
flushing) like the list entries; a Batch holds no per-write container that stays tracked (engine/batch.py, engine/memtable.py)."""
import gc
import glob
import os
import random

import pytest

from engine.memtable import Memtable
from engine.sstable_writer import SSTableWriter
from engine.store import Store
from engine.token import token as token_of

STATS = {"min_timestamp": 1, "max_timestamp": 2, "cell_count": 3, "tombstone_count": 0,
         "max_local_deletion_time": 2**31 - 1, "droppable_histogram": (), "created_ms": 7}


def _items(n: int, seed: int = 1):
    rnd = random.Random(seed)
    rows = {(rnd.randrange(-2**63, 2**63), b"k%d" % i): rnd.randbytes(rnd.randrange(1, 300)) for i in range(n)}
    rows[(5, b"a")] = b"x"   # an equal token, ordered by key
    rows[(5, b"b")] = b"y"
    return [(tok, key, rows[(tok, key)]) for tok, key in sorted(rows)]


def _files(directory: str, gen: int) -> dict:
    return {os.path.basename(f).split(f"{gen}-", 1)[1]: open(f, "rb").read()
            for f in glob.glob(os.path.join(directory, f"*{gen}-*"))}


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_append_all_writes_what_append_writes(tmp_path, compression):
    items = _items(3000)
    one = SSTableWriter(str(tmp_path), 1, expected_partitions=len(items), compression=compression)
    for tok, key, payload in items:
        one.append(tok, key, payload)
    one.finish(dict(STATS))
    two = SSTableWriter(str(tmp_path), 2, expected_partitions=len(items), compression=compression)
    two.append(*items[0])                   # the state carries over between the two ways
    two.append_all(items[1:1700])
    two.append_all(iter(items[1700:]))
    reader = two.finish(dict(STATS))
    a, b = _files(str(tmp_path), 1), _files(str(tmp_path), 2)
    assert len(a) >= 5 and a == b
    assert reader.get(items[123][0], items[123][1]) == items[123][2]


def _murmur_items(n: int, seed: int = 2):
    rnd = random.Random(seed)
    keys = {b"user%d" % rnd.randrange(10**9) for _ in range(n)}
    return sorted((token_of(k), k, rnd.randbytes(rnd.randrange(1, 300))) for k in keys)


def _binary_items(n: int, seed: int = 3):
    """Murmur3 rows of random binary keys: tail bytes >= 0x80, whose token is not the bloom
    hash's h1 (engine/token.py), so a flush hashes them twice (sstable_writer._tokens_and_digests)."""
    rnd = random.Random(seed)
    keys = {rnd.randbytes(rnd.randrange(1, 40)) for _ in range(n)}
    return sorted((token_of(k), k, rnd.randbytes(rnd.randrange(1, 300))) for k in keys)


def _fixed_width_items(n: int, width: int, binary: bool = False, seed: int = 4):
    """Murmur3 rows of keys of one width (sstable_writer._fixed_width_suffixes): ASCII keys of
    which most share a long prefix, so blocks differ in their common prefix (0 where a block
    holds a key of the other kind), or random binary ones."""
    rnd = random.Random(seed)
    if binary:
        keys = {rnd.randbytes(width) for _ in range(n)}
    else:
        keys = {(b"a" * (width - 4) + b"%04d" % rnd.randrange(10**4)) if rnd.random() < 0.95
                else b"b" + b"%0*d" % (width - 1, rnd.randrange(10 ** (width - 1))) for _ in range(n)}
    return sorted((token_of(k), k, rnd.randbytes(rnd.randrange(1, 300))) for k in keys)


FIXED_KINDS = ("fixed", "fixed_binary", "fixed_big", "fixed_255", "fixed_256", "fixed_1")


@pytest.mark.parametrize("kind", ["murmur3", "binary", "big", "synthetic", "tied", "small", "exact", *FIXED_KINDS])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_append_unsorted_writes_what_append_all_writes(tmp_path, compression, kind):
    """Rows in any order, sorted by the writer: the same five files, byte for byte, as append_all
    of the sorted rows: Murmur3 tokens (format-3 blocks), synthetic ones (format 2), tokens
    that tie (the fallback), fewer rows than one block, rows of 32 bytes that fill a block to
    exactly its 4096 bytes; append_all goes on from there. Murmur3 rows also without their
    tokens (None: the writer computes them, as for a memtable flush), of ASCII keys (tokens
    and bloom digests from one hash), of binary ones (high tail bytes: hashed twice) and of
    rows over a block each (one-row blocks)."""
    items = {"murmur3": _murmur_items(3000), "binary": _binary_items(3000),
             "big": [(t, k, p * 40) for t, k, p in _murmur_items(60)], "tied": _items(3000), "small": _murmur_items(7),
             "synthetic": [row for row in _items(3000) if row[0] != 5],
             "exact": sorted((token_of(b"k%09d" % i), b"k%09d" % i, b"%010d" % i) for i in range(3000)),
             "fixed": _fixed_width_items(3000, 12), "fixed_binary": _fixed_width_items(3000, 8, binary=True),
             "fixed_big": [(t, k, p * 40) for t, k, p in _fixed_width_items(60, 12)],
             "fixed_255": _fixed_width_items(300, 255), "fixed_256": _fixed_width_items(300, 256),
             "fixed_1": _fixed_width_items(200, 1, binary=True)}[kind]
    one = SSTableWriter(str(tmp_path), 1, expected_partitions=len(items), compression=compression)
    one.append_all(items)
    one.finish(dict(STATS))
    shuffled = items[:]
    random.Random(5).shuffle(shuffled)
    two = SSTableWriter(str(tmp_path), 2, expected_partitions=len(items), compression=compression)
    cut = len(items) * 2 // 3
    head = [row for row in shuffled if row < items[cut]]
    toks, keys, payloads = map(list, zip(*head))
    two.append_unsorted(None if kind in ("murmur3", "binary", "big", "small", "exact", *FIXED_KINDS) else toks,
                        keys, payloads)
    two.append_all(items[cut:])                  # the rows left in the builder carry over
    reader = two.finish(dict(STATS))
    a, b = _files(str(tmp_path), 1), _files(str(tmp_path), 2)
    assert len(a) >= 5 and a == b
    assert reader.get(items[5][0], items[5][1]) == items[5][2]


def test_append_unsorted_rejects_what_append_rejects(tmp_path):
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=4)
    for bad in [([1, 1], [b"a", b"a"], [b"p", b"q"]),                 # the same (token, key) twice
                ([1, 2], [b"a", b"x" * 65536], [b"p", b"q"])]:          # a key over 64 KiB
        with pytest.raises(AssertionError):
            w.append_unsorted(*bad)
    w.abort()
    w = SSTableWriter(str(tmp_path), 2, expected_partitions=4)
    w.append_unsorted([5, 3], [b"b", b"a"], [b"p", b"q"])
    with pytest.raises(AssertionError):
        w.append_unsorted([4, 6], [b"c", b"d"], [b"p", b"q"])      # before a row already written
    w.abort()


def test_flush_writes_what_append_all_of_flush_items_writes(tmp_path):
    """A memtable flush (flush_columns, append_unsorted) writes the files append_all writes
    from flush_items, with updated keys reconciled."""
    from engine.partition import encode_partition
    from engine.mutation import build_insert
    from engine.schema import make_table
    t = make_table("ks", "t", {"k": "blob", "v": "int"}, "k")
    mt = Memtable((0, 0))
    for n in range(4000):
        key = b"k%d" % (n % 3000)
        mt.put(key, encode_partition(build_insert(t, {"k": key, "v": n}, 10 + n, 0, None, 1 << 20)[1]),
               None, None)
    one = SSTableWriter(str(tmp_path), 1, expected_partitions=len(mt))
    one.append_all(mt.flush_items())
    one.finish(dict(STATS))
    two = SSTableWriter(str(tmp_path), 2, expected_partitions=len(mt))
    two.append_unsorted(None, *mt.flush_columns())
    two.finish(dict(STATS))
    a, b = _files(str(tmp_path), 1), _files(str(tmp_path), 2)
    assert len(a) >= 5 and a == b


def test_append_all_rejects_what_append_rejects(tmp_path):
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=4)
    w.append_all([(1, b"b", b"p")])
    for bad in [(1, b"b", b"p"), (1, b"a", b"p"), (0, b"z", b"p"), (2, b"x" * 65536, b"p")]:
        with pytest.raises(AssertionError):
            w.append_all([bad])
    w.append_all([(1, b"c", b"p")])
    w.abort()


def _synthetic(tokens: dict) -> Memtable:
    """A memtable whose keys have the given tokens (ties and edge values Murmur3 would not give)."""
    class Synthetic(Memtable):
        __slots__ = ()

        @staticmethod
        def tokens(keys):
            return [tokens[k] for k in keys]
    return Synthetic((0, 0))


def test_memtable_orders_equal_tokens_by_key():
    pairs = [(5, b"b"), (9, b"q"), (5, b"a"), (-3, b"z"), (5, b"c")]
    mt = _synthetic({key: tok for tok, key in pairs})
    for tok, key in pairs:
        mt.put(key, b"p" + key, None, None)
    assert mt.sorted_keys() == [(-3, b"z"), (5, b"a"), (5, b"b"), (5, b"c"), (9, b"q")]
    assert [k for _, k, _ in mt.flush_items()] == [b"z", b"a", b"b", b"c", b"q"]


def test_flush_items_orders_unique_tokens_and_reconciles_updated_keys():
    from engine.memtable import _reconciled
    from engine.partition import encode_partition
    from engine.mutation import build_insert
    from engine.schema import make_table
    t = make_table("ks", "t", {"k": "blob", "v": "int"}, "k")
    mt = Memtable((0, 0))
    rnd = random.Random(7)
    keys = [b"k%d" % i for i in range(500)]
    rnd.shuffle(keys)
    for n, key in enumerate(keys):
        for ts in range(1 + n % 3):              # a third single updates, the rest lists
            mt.put(key, encode_partition(build_insert(t, {"k": key, "v": ts}, 10 + ts, 0, None, 1 << 20)[1]),
                   None, None)
    got = list(mt.flush_items())
    order = sorted((token_of(k), k) for k in keys)
    assert [(tok, k) for tok, k, _ in got] == order
    parts = mt.partitions
    assert [p for _, _, p in got] == [e if isinstance(e, bytes) else _reconciled(e) for e in
                                      (parts[k] for _, k in order)]
    assert sum(isinstance(parts[k], list) for k in keys) == 333
    assert list(Memtable((0, 0)).flush_items()) == []
    one = Memtable((0, 0))
    one.put(b"a", b"p", None, None)
    assert list(one.flush_items()) == [(token_of(b"a"), b"a", b"p")]


def test_flush_items_orders_tokens_that_round_to_the_same_float():
    big = 2**62
    assert float(big + 1) == float(big) and float(-big - 1) == float(-big)
    pairs = [(big + 1, b"a"), (-big, b"c"), (big, b"b"), (-big - 1, b"d"), (0, b"e")]
    mt = _synthetic({key: tok for tok, key in pairs})
    for tok, key in pairs:
        mt.put(key, b"p" + key, None, None)
    assert [(tok, k) for tok, k, _ in mt.flush_items()] == [(-big - 1, b"d"), (-big, b"c"), (0, b"e"),
                                                           (big, b"b"), (big + 1, b"a")]


def test_single_update_entries_are_untracked_and_read_like_lists():
    mt = Memtable((0, 0))
    mt.put(b"k", b"p1", None, None)
    assert not gc.is_tracked(mt.partitions[b"k"])   # the payload itself: bytes are never tracked
    assert mt.get(b"k") == [b"p1"]
    mt.put(b"k", b"p2", None, None)
    assert mt.get(b"k") == [b"p1", b"p2"]
    assert mt.sorted_keys() == [(token_of(b"k"), b"k")]
    mt.check_invariants()



def test_a_batch_entered_again_applies_only_its_later_writes(tmp_path):
    """A Batch is emptied as it is applied: entered again, it applies only what was added since
    (put_plain takes a payload object it already holds for a key as a new key's)."""
    store = _kv_store(str(tmp_path / "s"))
    mt = next(iter(store.cfs.values())).memtable
    b = store.batch()
    with b:
        b.insert("ks", "kv", {"k": b"a", "v": b"1"}, timestamp=1)
    once = (mt.size_bytes, mt.updates, dict(mt.partitions))
    with b:
        b.insert("ks", "kv", {"k": b"b", "v": b"2"}, timestamp=2)
    assert mt.updates == once[1] + 1 and mt.partitions[b"a"] == once[2][b"a"]
    with b:
        pass
    assert mt.updates == once[1] + 1 and set(mt.partitions) == {b"a", b"b"}
    mt.check_invariants()
    store.close()


def test_sorted_keys_stored_late_by_a_scan_are_not_used():
    """A scan sorts without the write lock: its list, made before a put of a new key and stored
    after the put cleared the cache, must not hide that key from the next scan."""
    mt = Memtable((0, 0))
    mt.put(b"a", b"pa", None, None)
    stale = mt.sorted_keys()
    mt.put_plain(b"b", b"pb", 1, 2, 0, 0, None)     # the writer clears the cache...
    mt._sorted = stale                               # ...then the racing scan stores its list
    assert mt.sorted_keys() == sorted([(token_of(b"a"), b"a"), (token_of(b"b"), b"b")])

def _kv_store(path: str) -> Store:
    store = Store.open(path, background=False)
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def test_reads_merge_single_and_list_entries_of_current_and_flushing_memtables(tmp_path):
    store = _kv_store(str(tmp_path / "s"))
    cfs = next(iter(store.cfs.values()))
    store.insert("ks", "kv", {"k": b"a", "v": b"old"}, timestamp=1)
    store.insert("ks", "kv", {"k": b"b", "v": b"kept"}, timestamp=1)
    store.insert("ks", "kv", {"k": b"c", "v": b"c1"}, timestamp=1)
    store.insert("ks", "kv", {"k": b"c", "v": b"c2"}, timestamp=2)   # a list entry
    old = cfs.switch_memtable(store.commit_log.current_position())   # now in `flushing`
    store.insert("ks", "kv", {"k": b"a", "v": b"new"}, timestamp=2)
    store.insert("ks", "kv", {"k": b"c", "v": b"c3"}, timestamp=3)
    store.insert("ks", "kv", {"k": b"d", "v": b"d1"}, timestamp=3)
    store.insert("ks", "kv", {"k": b"d", "v": b"d2"}, timestamp=4)   # a list entry, current memtable
    assert len(cfs.read_payloads(token_of(b"a"), b"a")) == 2
    assert len(cfs.read_payloads(token_of(b"c"), b"c")) == 3
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"new"
    assert store.get("ks", "kv", {"k": b"b"})["v"] == b"kept"
    assert sorted(r["v"] for r in store.scan_all("ks", "kv")) == [b"c3", b"d2", b"kept", b"new"]
    cfs.flush_memtable(old)
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"new"
    assert store.get("ks", "kv", {"k": b"c"})["v"] == b"c3"
    store.close()


def test_a_batch_holds_no_tracked_container_per_write(tmp_path):
    store = _kv_store(str(tmp_path / "s"))
    with store.batch() as batch:
        for i in range(100):
            batch.insert("ks", "kv", {"k": b"k%d" % i, "v": b"v"})
        gc.collect()
        assert not any(gc.is_tracked(info) for info in batch._infos)
        assert len(gc.get_referrers(store.table("ks", "kv"))) < 20   # not one per write
    assert store.get("ks", "kv", {"k": b"k99"})["v"] == b"v"
    cfs = next(iter(store.cfs.values()))
    gc.collect()
    assert not any(gc.is_tracked(e) for e in cfs.memtable.partitions.values())
    store.close()
