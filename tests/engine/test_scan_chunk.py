"""data_block.decode_scan_chunk (SSTableReader._scan_runs: one read a run): the rows are the
block-by-block path's, with compressed and raw blocks mixed in one run, and a bad block is
reported exactly as the block-by-block path (sstable_reader._frames + decode_scan) reports it:
the same message at the same block offset, for a flipped byte, a wrong stored length, a wrong
compression byte and a Data.db cut short."""
import os
import random

import pytest

from engine.data_block import decode_scan
from engine.errors import CorruptionError
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.token import token
from tests.engine.test_sstable import DATA_STATS


def _items(n: int) -> list:
    """Rows in token order whose values compress in bands of 100 rows (zeros) and do not in
    the others (random bytes): lz4 blocks and raw blocks (lz4 did not help) alternate."""
    rnd = random.Random(3)
    keys = sorted((b"key%05d" % i for i in range(n)), key=token)
    return [(token(k), k, bytes(120) if (i // 100) % 2 else rnd.randbytes(120)) for i, k in enumerate(keys)]


def _write(tmp_path, items) -> SSTableReader:
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=len(items), compression="lz4", block_size_bytes=512)
    for t, k, v in items:
        w.append(t, k, v)
    return w.finish(DATA_STATS)


def _error(fn) -> tuple:
    with pytest.raises(CorruptionError) as e:
        fn()
    return str(e.value)


def test_mixed_runs_are_the_block_by_block_rows(tmp_path):
    items = _items(1500)
    r = _write(tmp_path, items)
    ctypes = {s == 0 for _raw, s, _e, _off in r._frames(0)}  # start 0: an lz4 block's own bytes
    assert ctypes == {True, False}  # both kinds of block
    assert list(r.scan()) == items
    per_block = [row for _off, *rows in r._blocks(0, decode_scan) for row in zip(*rows)]
    assert per_block == items
    a, b = items[300], items[1100]
    assert list(r.scan((a[0], a[1]), (b[0], b[1]))) == items[300:1100]
    r.close()


@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("damage", ["byte", "length", "compression", "cut"])
def test_a_bad_block_is_reported_as_block_by_block(tmp_path, damage, raw):
    items = _items(1500)
    r = _write(tmp_path, items)
    bounds = r._bounds
    kinds = [s != 0 for _raw, s, _e, _off in r._frames(0)]  # True: a raw block (False: lz4)
    k = kinds.index(raw, len(kinds) // 2)
    path = r.data_path
    r.close()
    off = bounds[k]
    with open(path, "r+b") as f:
        if damage == "byte":
            f.seek(off + 40)
            b = f.read(1)
            f.seek(off + 40)
            f.write(bytes([b[0] ^ 0x10]))
        elif damage == "length":
            f.seek(off)
            f.write((bounds[k + 1] - off - 9 + 1).to_bytes(4, "big"))
        elif damage == "compression":
            f.seek(off + 4)
            f.write(b"\x07")
    with SSTableReader.open(str(tmp_path), 1) as again:
        if damage == "cut":  # after the open (which checks the file's size): a file cut short under a reader
            os.truncate(path, (off + bounds[k + 1]) // 2)
        fast = _error(lambda: list(again.scan()))
        slow = _error(lambda: list(again._blocks(0, decode_scan)))
    assert fast == slow and str(off) in fast, (fast, slow)
