"""engine/block_cache.py and the readers that use it: bounded, isolated per reader, never a
source of unchecked bytes."""
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.block_cache import SEGMENT_SLOT, BlockCache, new_cache_id
from engine.errors import CorruptionError
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.token import token as token_of

STATS = {"min_timestamp": 1, "max_timestamp": 1, "cell_count": 1, "tombstone_count": 0,
         "max_local_deletion_time": 2**63 - 1, "droppable_histogram": []}


@given(st.integers(0, 300), st.lists(st.tuples(st.integers(0, 20), st.integers(0, 120)), max_size=60))
def test_size_stays_within_capacity(capacity, puts):
    cache = BlockCache(capacity)
    for key, size in puts:
        cache.put(key, ("v", key), size)
        cache.check_invariants()
        if size <= capacity:
            assert cache.get(key) == ("v", key)  # the newest entry always stays
        else:
            assert cache.get(key) is None or cache._sizes[key] <= capacity


def test_ids_never_repeat_and_slots_do_not_collide():
    a, b = new_cache_id(), new_cache_id()
    assert a != b and (a | SEGMENT_SLOT | 5) != (a | 5) and (a | 7) != (b | 7)


def write(directory, gen, n, compression=None):
    w = SSTableWriter(str(directory), gen, expected_partitions=n, compression=compression)
    keys = sorted((token_of(b"k%05d" % i), b"k%05d" % i) for i in range(n))
    for tok, key in keys:
        w.append(tok, key, b"payload of " + key * 3)
    return w.finish(dict(STATS)), keys


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_cached_reads_equal_uncached_reads(tmp_path, compression):
    plain, keys = write(tmp_path, 1, 600, compression)
    cached = SSTableReader.open(str(tmp_path), 1)
    cached.block_cache = BlockCache(1 << 20)
    for _ in range(2):  # the second pass is answered from the cache
        for tok, key in keys:
            assert cached.get(tok, key) == plain.get(tok, key) == b"payload of " + key * 3
        assert cached.get(token_of(b"absent"), b"absent") is None
    assert len(cached.block_cache) > 0
    cached.block_cache.check_invariants()
    plain.close()
    cached.close()


def test_two_sstables_sharing_a_cache_never_answer_for_each_other(tmp_path):
    cache = BlockCache(1 << 20)
    (a_dir, b_dir) = (tmp_path / "a", tmp_path / "b")
    a_dir.mkdir()
    b_dir.mkdir()
    a, keys = write(a_dir, 1, 50)
    w = SSTableWriter(str(b_dir), 1, expected_partitions=50)
    for tok, key in keys:  # the same keys at the same offsets, other payloads
        w.append(tok, key, b"PAYLOAD OF " + key * 3)
    b = w.finish(dict(STATS))
    a.block_cache = b.block_cache = cache
    for tok, key in keys:
        assert a.get(tok, key) == b"payload of " + key * 3
        assert b.get(tok, key) == b"PAYLOAD OF " + key * 3
    a.close()
    b.close()


def test_a_corrupt_block_is_still_detected_when_first_read(tmp_path):
    reader, keys = write(tmp_path, 1, 400)
    reader.close()
    path = os.path.join(str(tmp_path), "dt-1-Data.db")
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 100)
        f.write(b"\xff\x00\xff")
    reader = SSTableReader.open(str(tmp_path), 1)
    reader.block_cache = BlockCache(1 << 20)
    with pytest.raises(CorruptionError) as e:
        for tok, key in keys:
            reader.get(tok, key)
    assert e.value.path == path
    assert all(block[0] is not None for block in reader.block_cache._values.values())
    reader.close()
