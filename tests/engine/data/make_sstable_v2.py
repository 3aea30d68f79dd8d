"""Writes tests/engine/data/sstable_v2 with the base tree (SSTable format 2, main at e8a7d5d).

Run from a checkout of that tree: `PYTHONPATH=<tree> python make_sstable_v2.py <out dir>`.
Generation 1: 300 partitions, uncompressed, 512-byte blocks; generation 2: the same, lz4.
Partition i: key b"key%04d" % i, payload bytes([i % 251]) * 40 + key, token = Murmur3(key).
tests/engine/test_old_formats.py rebuilds these items and reads them back from both.
"""
import os
import shutil
import sys

from engine.sstable_writer import SSTableWriter
from engine.token import token

STATS = {"min_timestamp": 1, "max_timestamp": 2, "cell_count": 300, "tombstone_count": 0,
         "max_local_deletion_time": 2**63 - 1, "droppable_histogram": [], "created_ms": 1_700_000_000_000}


def items() -> list:
    return sorted((token(k), k, bytes([i % 251]) * 40 + k)
                  for i, k in enumerate(b"key%04d" % i for i in range(300)))


if __name__ == "__main__":
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for gen, compression in ((1, None), (2, "lz4")):
        w = SSTableWriter(out, gen, expected_partitions=300, compression=compression, block_size_bytes=512)
        for t, k, p in items():
            w.append(t, k, p)
        w.finish(dict(STATS)).close()
