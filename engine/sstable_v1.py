"""Format-1 SSTables, read only: files written before format 2 (docs/format.md, SSTables).

Point reads go bloom -> Summary.db bisect -> one Index.db segment (128 entries, msgpack, CRC) ->
one Data.db block; scans read Data.db sequentially in chunks. Data.db records are
`i64 token | uvarint key_len | key | uvarint payload_len | payload` in blocks framed as in
engine/data_block.py. Nothing here writes: compaction rewrites format-1 SSTables in the current format.
Every byte read is checked; failures raise CorruptionError(path, offset, what).
SSTableReader.open (engine/sstable_reader.py) dispatches here when TOC.txt lists Index.db.
"""
from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from typing import Iterator

from engine.block_cache import SEGMENT_SLOT, BlockCache, new_cache_id
from engine.block_merge import row_blocks
from engine.bloom import BloomFilter
from engine.data_block import BLOCK_OVERHEAD, BLOCK_HEADER_SIZE, decode_block
from engine.encoding import I64, U32, U64, check, decode_uvarint
from engine.errors import CorruptionError
from engine.partition_index import (HEADER_SIZE, IN_BLOCK_BITS, IN_BLOCK_MASK, INDEX_MAGIC,
                                    TOKEN_BIAS, Summary, check_header, decode_segment, sort_key)
from engine.sstable_files import DATA_MAGIC, SCAN_CHUNK_BYTES, component_path, read_whole
from engine.sstable_stats import decode_statistics
from engine.sstable_v1_records import parse_records

COMPONENTS_V1 = ("Data.db", "Index.db", "Summary.db", "Filter.db", "Statistics.db", "TOC.txt")
TOC_TEXT_V1 = "".join(c + "\n" for c in COMPONENTS_V1)

_u32_unpack_from = U32.unpack_from
_u64_unpack_from = U64.unpack_from
_i64_unpack_from = I64.unpack_from
_u64_pack = U64.pack
_pread = os.pread


class SSTableReaderV1:
    """An open, immutable sstable. Attributes: generation, stats, paths, size_bytes, summary,
    key_cache_hits, key_cache_requests."""

    def __init__(self, directory: str, generation: int, key_cache_size: int = 0):
        self.directory = directory
        self.generation = generation
        self.paths = [component_path(directory, generation, c) for c in COMPONENTS_V1]
        self.data_path, self.index_path = self.paths[0], self.paths[1]
        self._data_fd = self._index_fd = -1
        self._key_cache: OrderedDict[bytes, int] | None = None
        self.key_cache_size = key_cache_size
        self.block_cache: BlockCache | None = None  # set by the owner (engine/block_cache.py)
        self.cache_id = new_cache_id()
        self.key_cache_hits = 0
        self.key_cache_requests = 0

    @property
    def key_cache_size(self) -> int:
        """Bound of the key cache (sort key -> record position); 0 disables it. Settable."""
        return self._key_cache_size

    @key_cache_size.setter
    def key_cache_size(self, size: int) -> None:
        assert size >= 0, size
        self._key_cache_size = size
        if size == 0:
            self._key_cache = None
        elif self._key_cache is None:
            self._key_cache = OrderedDict()  # popitem(last=False) is O(1); a dict's next(iter()) is not
        else:
            while len(self._key_cache) > size:
                self._key_cache.popitem(last=False)

    @classmethod
    def open(cls, directory: str, generation: int, *, key_cache_size: int = 0) -> "SSTableReaderV1":
        reader = cls(directory, generation, key_cache_size)
        try:
            reader._load()
        except BaseException:
            reader.close()
            raise
        return reader

    def _load(self) -> None:
        data_path, index_path, summary_path, filter_path, stats_path, toc_path = self.paths
        toc = read_whole(toc_path)  # FileNotFoundError: not a complete sstable
        for path in self.paths[:-1]:
            check(os.path.exists(path), path, 0, "component listed in TOC.txt is missing")
        check(toc == TOC_TEXT_V1.encode(), toc_path, 0, "TOC does not list exactly the components "
              + ", ".join(COMPONENTS_V1))
        self.summary = summary = Summary.decode(read_whole(summary_path), summary_path)
        self.stats = stats = decode_statistics(read_whole(stats_path), stats_path)
        self.bloom = BloomFilter.decode(read_whole(filter_path), filter_path)
        check(stats.partition_count == summary.partition_count, stats_path, 0,
              f"statistics count {stats.partition_count} partitions, summary "
              f"{summary.partition_count}")
        self._data_fd = os.open(data_path, os.O_RDONLY)
        self._index_fd = os.open(index_path, os.O_RDONLY)
        for fd, path, magic, size in ((self._data_fd, data_path, DATA_MAGIC, summary.data_size),
                                      (self._index_fd, index_path, INDEX_MAGIC,
                                       summary.index_size)):
            actual = os.fstat(fd).st_size
            check(actual == size, path, min(actual, size),
                  f"file has {actual} bytes, the summary says {size}")
            check_header(_pread(fd, HEADER_SIZE, 0), magic, path)
        self.size_bytes = sum(os.path.getsize(p) for p in self.paths)
        self._first_keys = summary.first_keys
        self._segment_bounds = summary.segment_offsets + [summary.index_size]
        self._data_size = summary.data_size
        self._read_hint = summary.block_size + BLOCK_OVERHEAD
        if summary.partition_count:
            self._min_token, self._max_token = stats.min_token, stats.max_token
        else:
            self._min_token, self._max_token = 1, 0  # admits no token
        self._might_contain = self.bloom.might_contain

    # -- point reads ---------------------------------------------------------------------------

    def may_contain(self, token: int, key: bytes) -> bool:
        """False when the token is outside [min_token, max_token] or the bloom filter says no."""
        return self._min_token <= token <= self._max_token and self._might_contain(key)

    def get(self, token: int, key: bytes, h: tuple[int, int] | None = None) -> bytes | None:
        """The payload stored for (token, key), or None; h: the key's bloom.key_hash, if known."""
        if not (self._might_contain(key) if h is None else self.bloom.might_contain_hash(h)):
            return None
        return self.get_probed(token, key)

    def get_probed(self, token: int, key: bytes) -> bytes | None:
        """get() for a key the caller has already tested against this SSTable's bloom filter."""
        if token < self._min_token or token > self._max_token:
            return None
        sk = _u64_pack(token + TOKEN_BIAS) + key
        cache = self._key_cache
        if cache is not None:
            self.key_cache_requests += 1
            position = cache.get(sk)
            if position is not None:
                self.key_cache_hits += 1
                try:
                    cache.move_to_end(sk)  # most recently used goes last
                except KeyError:  # evicted meanwhile by another thread
                    pass
                return self._payload_at(position, key)
        # Inlined _find(sk, exact=True): this is the hot path.
        i = bisect_right(self._first_keys, sk) - 1
        if i < 0:
            return None
        keys, blob = self._cached_segment(i)
        j = bisect_left(keys, sk)
        if j == len(keys) or keys[j] != sk:
            return None
        position = _u64_unpack_from(blob, j << 3)[0]
        if cache is not None:
            if len(cache) >= self._key_cache_size:
                try:  # evict the least recently used; tolerate a concurrent eviction
                    cache.popitem(last=False)
                except KeyError:
                    pass
            cache[sk] = position
        return self._payload_at(position, key)

    def _cached_segment(self, i: int) -> tuple[tuple[bytes, ...], bytes]:
        """Index segment i, decoded and checked, through the block cache when there is one."""
        bc = self.block_cache
        if bc is None:
            return self._segment(i)
        slot = self.cache_id | SEGMENT_SLOT | i
        seg = bc.get(slot)
        if seg is None:
            seg = self._segment(i)
            bc.put(slot, seg, 12 * len(seg[1]) + 200)  # ~ 96 bytes per entry, objects included
        return seg

    def _segment(self, i: int) -> tuple[tuple[bytes, ...], bytes]:
        off = self._segment_bounds[i]
        return decode_segment(_pread(self._index_fd, self._segment_bounds[i + 1] - off, off),
                              self.index_path, off)

    def _find(self, sk: bytes, exact: bool) -> int | None:
        """Position of the entry == sk (exact) or of the first entry >= sk; None if none."""
        i = bisect_right(self._first_keys, sk) - 1
        if i < 0:
            if exact or not self._first_keys:
                return None
            i = 0
        keys, blob = self._segment(i)
        j = bisect_left(keys, sk)
        if exact:
            if j == len(keys) or keys[j] != sk:
                return None
        elif j == len(keys):
            i += 1
            if i == len(self._first_keys):
                return None
            keys, blob = self._segment(i)
            j = 0
        return _u64_unpack_from(blob, j << 3)[0]

    def _payload_at(self, position: int, key: bytes) -> bytes:
        block_off = position >> IN_BLOCK_BITS
        bc = self.block_cache
        if bc is None:
            raw, start, end = self._verified_block(block_off)
        else:
            block = bc.get(self.cache_id | block_off)
            if block is None:
                block = self._verified_block(block_off)
                bc.put(self.cache_id | block_off, block, len(block[0]) + 100)
            raw, start, end = block
        return self._one_payload(raw, start + (position & IN_BLOCK_MASK), end, key, block_off)

    def _verified_block(self, block_off: int) -> tuple[bytes, int, int]:
        """(raw, start, end) of the block at block_off: read, CRC-checked, decompressed."""
        buf = _pread(self._data_fd, self._read_hint, block_off)
        if len(buf) < BLOCK_OVERHEAD:
            raise CorruptionError(self.data_path, block_off, "block header is truncated")
        end = BLOCK_HEADER_SIZE + _u32_unpack_from(buf, 0)[0]
        if end + 4 > len(buf):  # a block holding one partition larger than block_size
            if block_off + end + 4 > self._data_size:
                raise CorruptionError(self.data_path, block_off, "block runs past the end of Data.db")
            buf = _pread(self._data_fd, end + 4, block_off)
        elif end + 4 < len(buf):
            buf = buf[:end + 4]  # cache only this block's bytes
        return decode_block(buf, 0, self.data_path, block_off)

    def _one_payload(self, raw: bytes, p: int, end: int, key: bytes, block_off: int) -> bytes:
        path = self.data_path
        if p + 10 > end:
            raise CorruptionError(path, block_off, "index points past the block's records")
        n = raw[p + 8]
        p += 9
        if n >= 0x80:
            n, p = decode_uvarint(raw, p - 1, path)
        q = p + n
        if raw[p:q] != key or q >= end:
            raise CorruptionError(path, block_off, "index entry points at another partition")
        n = raw[q]
        p = q + 1
        if n >= 0x80:
            if p < end and raw[p] < 0x80:  # a two-byte length, inline
                n = (n & 0x7F) | (raw[p] << 7)
                p += 1
            else:
                n, p = decode_uvarint(raw, q, path)
        q = p + n
        if q > end:
            raise CorruptionError(path, block_off, "record payload runs past the block")
        return raw[p:q]

    # -- scans ---------------------------------------------------------------------------------

    def _blocks(self, offset: int) -> Iterator[tuple[int, bytes, int, int]]:
        """(block offset, raw, start, end) for each block from `offset` to the end of Data.db.

        Reads SCAN_CHUNK_BYTES at a time (or one whole block if larger): bounded memory."""
        fd, path, size = self._data_fd, self.data_path, self._data_size
        chunk = b""
        chunk_off = offset
        while offset < size:
            at = offset - chunk_off
            if at + BLOCK_OVERHEAD > len(chunk):
                chunk, chunk_off, at = _pread(fd, SCAN_CHUNK_BYTES, offset), offset, 0
                check(len(chunk) >= BLOCK_OVERHEAD, path, offset, "block header is truncated")
            total = BLOCK_OVERHEAD + _u32_unpack_from(chunk, at)[0]
            check(offset + total <= size, path, offset, "block runs past the end of Data.db")
            if at + total > len(chunk):
                chunk = _pread(fd, max(SCAN_CHUNK_BYTES, total), offset)
                chunk_off, at = offset, 0
            raw, start, end = decode_block(chunk, at, path, offset)
            yield offset, raw, start, end
            offset += total

    def scan_blocks(self, start: tuple[int, bytes] | None = None, end: tuple[int, bytes] | None = None,
                    *, end_inclusive: bool = False, arrays: bool = False):
        """`scan` as a block stream (engine/block_merge.py), in runs of block_merge.BLOCK_ROWS
        (tokens as lists whatever `arrays` asks: merge_blocks takes both)."""
        return row_blocks(self.scan(start, end, end_inclusive=end_inclusive))

    def scan(self, start: tuple[int, bytes] | None = None, end: tuple[int, bytes] | None = None,
             *, end_inclusive: bool = False) -> Iterator[tuple[int, bytes, bytes]]:
        """(token, key, payload) with start <= (token, key) < end (<= end if end_inclusive),
        in order. None means unbounded."""
        if not self.summary.partition_count:
            return
        if start is None:
            block_off, skip = HEADER_SIZE, 0
        else:
            position = self._find(sort_key(*start), exact=False)
            if position is None:
                return
            block_off, skip = position >> IN_BLOCK_BITS, position & IN_BLOCK_MASK
        path = self.data_path
        for off, raw, s, e in self._blocks(block_off):
            records = parse_records(raw, s + skip, e, path, off)
            skip = 0
            if end is not None:
                last = records[-1]
                if (last[0], last[1]) > end or (not end_inclusive and (last[0], last[1]) == end):
                    for rec in records:
                        if (rec[0], rec[1]) > end or (not end_inclusive and (rec[0], rec[1]) == end):
                            return
                        yield rec
                    return
            yield from records

    # -- checks ----------------------------------------------------------------------------------

    def iter_index(self) -> Iterator[tuple[int, bytes, int]]:
        """Walk Index.db from its header: (segment offset, sort key, position) per entry."""
        path = self.index_path
        for i in range(len(self._first_keys)):
            keys, blob = self._segment(i)
            off = self._segment_bounds[i]
            for j, sk in enumerate(keys):
                check(type(sk) is bytes and len(sk) >= 8, path, off, "bad sort key in segment")
                yield off, sk, _u64_unpack_from(blob, j << 3)[0]

    def iter_positions(self) -> Iterator[tuple[int, int, int, bytes, bytes]]:
        """Walk Data.db from its header: (block offset, offset in block, token, key, payload)."""
        for off, raw, s, e in self._blocks(HEADER_SIZE):
            offsets: list[int] = []
            records = parse_records(raw, s, e, self.data_path, off, offsets)
            check(bool(records), self.data_path, off, "empty block")
            for in_block, (token, key, payload) in zip(offsets, records):
                yield off, in_block, token, key, payload

    def check_invariants(self, bloom_sample: int = 1000) -> None:
        """Read every byte of Index.db and Data.db: order, index <-> data agreement, summary
        consistency, statistics; bloom has no false negatives on a sample. Raises
        CorruptionError for bad bytes, AssertionError for a broken invariant."""
        summary, stats = self.summary, self.stats
        prev = b""
        count = 0
        seg_starts = []
        data = self.iter_positions()
        sample_every = max(1, summary.partition_count // max(1, bloom_sample))
        for off, sk, position in self.iter_index():
            if count % summary.index_interval == 0:
                seg_starts.append((off, sk))
            assert sk > prev, f"index not in order at entry {count}"
            rec = next(data, None)
            assert rec is not None, f"Data.db has fewer records than the index ({count})"
            block_off, in_block, token, key, _ = rec
            assert sort_key(token, key) == sk, f"index entry {count} does not match Data.db"
            assert position == (block_off << IN_BLOCK_BITS | in_block), f"bad position {count}"
            if count % sample_every == 0:
                assert self.bloom.might_contain(key), f"bloom false negative for {key!r}"
            prev = sk
            count += 1
        assert next(data, None) is None, "Data.db has more records than the index"
        assert count == summary.partition_count == stats.partition_count
        assert seg_starts == list(zip(summary.segment_offsets, summary.first_keys))
        assert prev == summary.last_key
        if count:
            first_token = self._first_keys[0][:8]
            assert _u64_unpack_from(first_token, 0)[0] - TOKEN_BIAS == stats.min_token
            assert _u64_unpack_from(prev, 0)[0] - TOKEN_BIAS == stats.max_token
            assert self._first_keys[0][8:] == stats.first_key and prev[8:] == stats.last_key
        assert stats.min_token <= stats.max_token or not count

    def close(self) -> None:
        for name in ("_data_fd", "_index_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __del__(self) -> None:
        # A compacted-away sstable is unlinked at once but stays readable through its open fds
        # until the last read snapshot drops the reader; then its fds close here.
        try:
            self.close()
        except OSError:
            pass

    def __enter__(self) -> "SSTableReaderV1":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SSTableReaderV1({self.directory!r}, generation={self.generation})"
