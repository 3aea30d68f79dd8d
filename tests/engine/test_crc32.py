"""engine.encoding.crc32 is zlib's CRC-32, computed by ISA-L (isal): every checksum already on disk
(blocks, commit-log records, frames) stays valid, and nothing written now differs from before."""
import os
import random
import zlib

import pytest

from engine import encoding


def test_isal_computes_the_checksums():
    from isal import isal_zlib  # a pinned dependency: a failed install fails here, not a skip
    assert encoding.crc32 is isal_zlib.crc32


@pytest.mark.parametrize("size", [0, 1, 7, 8, 15, 16, 63, 64, 65, 150, 4095, 4096, 4105, 8192, 65537])
def test_same_values_as_zlib_for_every_length_and_start(size):
    rng = random.Random(size)
    data = os.urandom(size)
    for start in (0, 1, 0xFFFFFFFF, rng.getrandbits(32)):
        assert encoding.crc32(data, start) == zlib.crc32(data, start)
    assert encoding.crc32(data) == zlib.crc32(data)
    view = memoryview(data)[size // 3:]  # the readers pass memoryview slices of maps and buffers
    assert encoding.crc32(view) == zlib.crc32(view)


def test_a_chained_checksum_equals_the_whole_one():
    head, body = os.urandom(5), os.urandom(4096)  # data_block.encode_block: crc32(stored, crc32(head))
    assert encoding.crc32(body, encoding.crc32(head)) == zlib.crc32(head + body)
