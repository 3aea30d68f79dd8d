"""SSTable writer: streams partitions, already in (token, key) order, into a new generation.

Data.db gets blocks of whole records (a block is flushed before a record would push it past
block_size_bytes; a record larger than that gets a block of its own); Index.db gets one entry per
partition in checksummed segments of 128; Summary.db, Filter.db and Statistics.db are written by
finish(), each fsynced; TOC.txt is written last (via a temp file and a rename), then the
directory is fsynced. A generation without TOC.txt is incomplete and is ignored by readers.
Formats: docs/format.md (SSTables).
"""
from __future__ import annotations

import os
import time

import lz4.block

from engine.bloom import BloomFilter
from engine.encoding import I64, U32, U64, crc32, encode_uvarint
from engine.partition_index import (HEADER_SIZE, INDEX_INTERVAL, INDEX_MAGIC, IN_BLOCK_BITS,
                                    MAX_BLOCK_SIZE, TOKEN_BIAS, Summary,
                                    encode_header, encode_segment)
from engine.sstable_reader import (COMPRESSION_LZ4, COMPRESSION_NONE, DATA_MAGIC, TOC_TEXT,
                                   SSTableReader, component_path, component_paths)
from engine.sstable_stats import (NO_DELETION_TIME, SSTableStats, encode_statistics,
                                  fsync_directory)

MAX_KEY_BYTES = 65535  # Cassandra's partition key limit
MAX_PAYLOAD_BYTES = 2**31 - 1
WRITE_BUFFER_BYTES = 1 << 20
_DATA_STATS_REQUIRED = ("min_timestamp", "max_timestamp", "cell_count", "tombstone_count",
                        "max_local_deletion_time", "droppable_histogram")
_DATA_STATS_OPTIONAL = ("commit_log_intervals", "level", "created_ms")

_u64_pack = U64.pack
_i64_pack = I64.pack
_VARINT1 = [bytes((n,)) for n in range(128)]


def _uvarint(n: int) -> bytes:
    return _VARINT1[n] if n < 128 else encode_uvarint(n)


class SSTableWriter:
    def __init__(self, directory: str, generation: int, *, expected_partitions: int,
                 bloom_fp_chance: float = 0.01, compression: str | None = None,
                 block_size_bytes: int = 4096):
        assert compression in (None, "lz4"), compression
        assert 0 < block_size_bytes <= MAX_BLOCK_SIZE, block_size_bytes
        assert 0.0 < bloom_fp_chance, bloom_fp_chance
        assert not component_paths(directory, generation), f"generation {generation} exists"
        self.directory = directory
        self.generation = generation
        self.compression = compression
        self.block_size = block_size_bytes
        self._bloom = BloomFilter.create(max(1, expected_partitions), bloom_fp_chance)
        self._data_path = component_path(directory, generation, "Data.db")
        self._index_path = component_path(directory, generation, "Index.db")
        self._data = open(self._data_path, "xb", buffering=WRITE_BUFFER_BYTES)
        self._index = None
        self._finished = False
        try:
            self._index = open(self._index_path, "xb", buffering=WRITE_BUFFER_BYTES)
        except BaseException:
            self.abort()
            raise
        self._data.write(encode_header(DATA_MAGIC))
        self._index.write(encode_header(INDEX_MAGIC))
        self._data_off = HEADER_SIZE  # where the pending block will start
        self._index_off = HEADER_SIZE
        self._block: list[bytes] = []
        self._block_len = 0
        self._seg_keys: list[bytes] = []
        self._seg_positions: list[int] = []
        self._first_keys: list[bytes] = []
        self._segment_offsets: list[int] = []
        self._first_sk = b""
        self._last_sk = b""
        self._count = 0
        self._finished = False

    def append(self, token: int, key: bytes, payload: bytes) -> None:
        """Add one partition; (token, key) must be strictly greater than the previous one."""
        sk = _u64_pack(token + TOKEN_BIAS) + key
        assert sk > self._last_sk, f"append out of (token, key) order: {token} {key!r}"
        assert len(key) <= MAX_KEY_BYTES and len(payload) <= MAX_PAYLOAD_BYTES
        record = b"".join((_i64_pack(token), _uvarint(len(key)), key,
                           _uvarint(len(payload)), payload))
        if self._block_len and self._block_len + len(record) > self.block_size:
            self._flush_block()
        self._seg_keys.append(sk)
        self._seg_positions.append((self._data_off << IN_BLOCK_BITS) | self._block_len)
        self._block.append(record)
        self._block_len += len(record)
        if self._block_len >= self.block_size:
            self._flush_block()
        if len(self._seg_keys) == INDEX_INTERVAL:
            self._flush_segment()
        self._bloom.add(key)
        if not self._count:
            self._first_sk = sk
        self._last_sk = sk
        self._count += 1

    def _flush_block(self) -> None:
        raw = b"".join(self._block)
        ctype, stored = COMPRESSION_NONE, raw
        if self.compression == "lz4":
            packed = lz4.block.compress(raw, store_size=False)
            if len(packed) + 4 < len(raw):  # keep raw bytes when lz4 does not help
                ctype, stored = COMPRESSION_LZ4, U32.pack(len(raw)) + packed
        head = U32.pack(len(stored)) + bytes((ctype,))
        self._data.write(head)
        self._data.write(stored)
        self._data.write(U32.pack(crc32(stored, crc32(head))))
        self._data_off += len(head) + len(stored) + 4
        self._block = []
        self._block_len = 0

    def _flush_segment(self) -> None:
        frame = encode_segment(self._seg_keys, self._seg_positions)
        self._first_keys.append(self._seg_keys[0])
        self._segment_offsets.append(self._index_off)
        self._index.write(frame)
        self._index_off += len(frame)
        self._seg_keys = []
        self._seg_positions = []

    def finish(self, data_stats: dict) -> SSTableReader:
        """Write the remaining components, fsync each, write TOC.txt last; return a reader."""
        assert not self._finished, "finish() called twice"
        unknown = set(data_stats) - set(_DATA_STATS_REQUIRED) - set(_DATA_STATS_OPTIONAL)
        assert not unknown, f"unknown data_stats fields {sorted(unknown)}"
        stats = self._stats(data_stats)
        if self._block:
            self._flush_block()
        if self._seg_keys:
            self._flush_segment()
        for f in (self._data, self._index):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        summary = Summary(self._count, self._data_off, self._index_off, self.block_size,
                          INDEX_INTERVAL, self._first_keys, self._segment_offsets, self._last_sk)
        summary.validate(self._index_path)
        self._write_file("Filter.db", self._bloom.encode())
        self._write_file("Summary.db", summary.encode())
        self._write_file("Statistics.db", encode_statistics(stats))
        toc = component_path(self.directory, self.generation, "TOC.txt")
        self._write_file("TOC.txt.tmp", TOC_TEXT.encode())
        os.replace(toc + ".tmp", toc)
        fsync_directory(self.directory)
        self._finished = True
        return SSTableReader.open(self.directory, self.generation)

    def _stats(self, d: dict) -> SSTableStats:
        missing = [k for k in _DATA_STATS_REQUIRED if k not in d]
        assert not missing, f"data_stats lacks {missing}"
        first_token = _u64_unpack(self._first_sk) if self._count else 0
        last_token = _u64_unpack(self._last_sk) if self._count else 0
        return SSTableStats(
            min_timestamp=int(d["min_timestamp"]), max_timestamp=int(d["max_timestamp"]),
            min_token=first_token, max_token=last_token, partition_count=self._count,
            cell_count=int(d["cell_count"]), tombstone_count=int(d["tombstone_count"]),
            max_local_deletion_time=int(d.get("max_local_deletion_time", NO_DELETION_TIME)),
            droppable_histogram=tuple((int(a), int(b)) for a, b in d["droppable_histogram"]),
            commit_log_intervals=tuple(((int(a[0]), int(a[1])), (int(b[0]), int(b[1])))
                                       for a, b in d.get("commit_log_intervals", ())),
            level=int(d.get("level", 0)), compression=self.compression,
            created_ms=int(d.get("created_ms", time.time() * 1000)),
            first_key=self._first_sk[8:], last_key=self._last_sk[8:])

    def _write_file(self, component: str, content: bytes) -> None:
        with open(component_path(self.directory, self.generation, component), "xb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        """Close and remove every file of this generation written so far (no-op after finish)."""
        if self._finished:
            return
        for f in (self._data, getattr(self, "_index", None)):
            if f is not None and not f.closed:
                f.close()
        for path in component_paths(self.directory, self.generation):
            os.remove(path)
        self._finished = True


def _u64_unpack(sk: bytes) -> int:
    return U64.unpack_from(sk, 0)[0] - TOKEN_BIAS
