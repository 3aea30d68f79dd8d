"""SSTable reader (formats 2 and 3): point reads are bloom -> bisect over the in-memory block index ->
ONE slice of a read-only mmap of Data.db for one verified block (or none, when the block cache
holds it unpacked), then a search of that block that builds no sort keys; range scans
stream decoded blocks from sequential chunked reads of Data.db. Also the naming of SSTable files.

An sstable is complete when its `dt-<generation>-TOC.txt` exists; the writer writes it last.
`SSTableReader.open` reads TOC.txt and dispatches on it: a TOC listing Index.db is format 1
(engine/sstable_v1.py, read only); otherwise formats 2 and 3, which share every component and
differ only in Data.db's blocks (format 3 stores no tokens; engine/data_block.py) and the
version in its header.
Open reads TOC, Summary, Statistics and Filter whole (they stay in memory) and keeps one fd on
Data.db, read with os.pread by scans and through the map by point reads (both safe to share
between threads; SSTables are immutable and never truncated in place). Every byte read is
checked (magic, version, lengths, CRCs, entry order); failures raise
CorruptionError(path, offset, what) and no wrong bytes are ever returned or cached.
Formats: docs/format.md (SSTables).
"""
from __future__ import annotations

import mmap
import os
from array import array
from bisect import bisect_left, bisect_right
from operator import lt
from typing import Iterator

from engine.block_cache import BlockCache, new_cache_id
from engine.block_index import (HEADER_SIZE, TOKEN_BIAS, BlockIndex, header_version, separator_tokens,
                                sort_key)
from engine.bloom import BloomFilter, key_hash as _key_hash
from engine.block_merge import lower, upper
from engine.data_block import (BLOCK_OVERHEAD, decode_block, decode_rows, decode_scan_chunk, decode_scan_run, find_entry as _find_entry,
                               unpack_entries)
from engine.encoding import U32, U64, check
from engine.errors import CorruptionError
from engine.token import MAX_TOKEN
from engine.flat_block import VIEW_OVERHEAD, flat_find as _flat_find, flat_view
from engine.sstable_files import DATA_MAGIC, SCAN_CHUNK_BYTES, component_path, read_whole
from engine.sstable_stats import decode_statistics

DATA_VERSION = 3  # what the writer writes
DATA_VERSIONS = (2, 3)  # what this reader opens

COMPONENTS = ("Data.db", "Summary.db", "Filter.db", "Statistics.db", "TOC.txt")
TOC_TEXT = "".join(c + "\n" for c in COMPONENTS)

_u32_unpack_from = U32.unpack_from
_u64_unpack_from = U64.unpack_from
_u64_pack = U64.pack
_pread = os.pread
# cache charge per entry of an unpacked block, over its on-disk bytes: two bytes objects' headers
# (~33 B each) and two tuple slots (8 B each); measured 87 B at 1M keys (bench/README.md)
ENTRY_OVERHEAD = 100
FIRST_CHUNK_BYTES = 64 * 1024  # a scan's first read of Data.db (then doubling)
SCAN_RUN_BLOCKS = 16  # at most this many blocks decoded into one run of a scan (~480 rows of 135 B)


def token_buckets(separators: list[bytes]) -> tuple[int, array]:
    """(shift, bounds): the separators split by the top bits of their biased token, about one
    per bucket (tokens are uniform; at most 65,536 buckets, built in ~20 ms). bounds[b] counts
    the separators below the first sort key of bucket b (`U64(b << shift)`), bounds[-1] is them
    all; so a sort key `sk` whose biased token u has u >> shift == b has
    bisect_right(separators, sk) == bisect_right(separators, sk, bounds[b], bounds[b + 1]):
    every separator below bounds[b] is below sk, every one from bounds[b + 1] on is above it.
    Saves ~12 of ~14 comparisons of a point read's bisect, for 4 bytes a bucket."""
    bits = min(len(separators).bit_length(), 16)  # <= 256 KiB
    shift = 64 - bits
    bounds = array("I", [bisect_left(separators, _u64_pack(b << shift)) for b in range(1 << bits)])
    bounds.append(len(separators))
    return shift, bounds


class SSTableReader:
    """An open, immutable format-2 or format-3 sstable. Attributes: generation, stats, paths,
    size_bytes, index (the BlockIndex), bloom, block_cache (set by the owner), format_version."""

    format_version = DATA_VERSION  # the Data.db version, set on open

    def __init__(self, directory: str, generation: int, key_cache_size: int = 0):
        self.directory = directory
        self.generation = generation
        self.paths = [component_path(directory, generation, c) for c in COMPONENTS]
        self.data_path = self.paths[0]
        self._data_fd = -1
        self._map: mmap.mmap | None = None
        self.key_cache_size = key_cache_size  # format 1 only: the block index replaces it
        self.block_cache: BlockCache | None = None  # set by the owner (engine/block_cache.py)
        self.cache_id = new_cache_id()
        self.key_cache_hits = 0
        self.key_cache_requests = 0

    @classmethod
    def open(cls, directory: str, generation: int, *, key_cache_size: int = 0):
        """Open generation `generation` in whichever format its TOC.txt names."""
        toc = read_whole(component_path(directory, generation, "TOC.txt"))  # FileNotFoundError
        if b"Index.db\n" in toc:
            from engine.sstable_v1 import SSTableReaderV1
            return SSTableReaderV1.open(directory, generation, key_cache_size=key_cache_size)
        reader = cls(directory, generation, key_cache_size)
        try:
            reader._load(toc)
        except BaseException:
            reader.close()
            raise
        return reader

    def _load(self, toc: bytes) -> None:
        data_path, summary_path, filter_path, stats_path, toc_path = self.paths
        for path in self.paths[:-1]:
            check(os.path.exists(path), path, 0, "component listed in TOC.txt is missing")
        check(toc == TOC_TEXT.encode(), toc_path, 0, "TOC does not list exactly the components "
              + ", ".join(COMPONENTS))
        self.index = index = BlockIndex.decode(read_whole(summary_path), summary_path)
        self.stats = stats = decode_statistics(read_whole(stats_path), stats_path)
        self.bloom = BloomFilter.decode(read_whole(filter_path), filter_path)
        check(stats.partition_count == index.partition_count, stats_path, 0,
              f"statistics count {stats.partition_count} partitions, summary {index.partition_count}")
        self._data_fd = fd = os.open(data_path, os.O_RDONLY)
        actual = os.fstat(fd).st_size
        check(actual == index.data_size, data_path, min(actual, index.data_size),
              f"file has {actual} bytes, the summary says {index.data_size}")
        # point reads slice a read-only map of Data.db: no syscall, and (unlike pread) the GIL
        # stays with the reader, so a busy compaction thread cannot stall every cold get
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        version = header_version(_pread(fd, HEADER_SIZE, 0), DATA_MAGIC, data_path)
        check(version in DATA_VERSIONS, data_path, 4, f"unsupported Data.db version {version}")
        self.format_version = version
        self.size_bytes = sum(os.path.getsize(p) for p in self.paths)
        self._separators = index.separators
        self._bounds = index.bounds
        self._bucket_shift, self._buckets = token_buckets(index.separators)
        self._slots: list = [None] * len(index.separators)
        self._sep_tokens = separator_tokens(index.separators)
        if index.partition_count:
            self._min_token, self._max_token = stats.min_token, stats.max_token
        else:
            self._min_token, self._max_token = 1, 0  # admits no token
        self._might_contain = self.bloom.might_contain
        self._probe = self.bloom.might_contain_hash

    # -- point reads ---------------------------------------------------------------------------

    def may_contain(self, token: int, key: bytes) -> bool:
        """False when the token is outside [min_token, max_token] or the bloom filter says no."""
        return self._min_token <= token <= self._max_token and self._might_contain(key)

    def get(self, token: int, key: bytes, h: tuple[int, int] | None = None) -> bytes | None:
        """The payload stored for (token, key), or None; h: the key's bloom.key_hash, if known
        (a store computes it once per read and probes every SSTable's filter with it)."""
        if not self._probe(_key_hash(key) if h is None else h):
            return None
        return self.get_probed(token, key)

    def get_probed(self, token: int, key: bytes) -> bytes | None:
        """get() for a key the caller has already tested against this SSTable's bloom filter
        (ColumnFamilyStore's read view tests every filter's bits inline)."""
        if token < self._min_token or token > self._max_token:
            return None
        u = token + TOKEN_BIAS
        b = u >> self._bucket_shift  # BlockIndex.block_of, inlined and narrowed to the token's bucket
        buckets = self._buckets
        qs = self._sep_tokens
        i = bisect_right(qs, u, buckets[b], buckets[b + 1]) - 1  # exact unless qs[i] == u
        if i < 0:
            return None
        if qs[i] == u:  # block_index.separator_tokens: a separator that starts with the key's token
            i = bisect_right(self._separators, _u64_pack(u) + key) - 1
            if i < 0:
                return None
        block = self._slots[i]  # the block cache's entry for block i (block_cache.put_slot), or None
        if block is None:
            block = self._unpacked(i)
            bc = self.block_cache
            if bc is not None:
                # a view holds its block's raw bytes: decompressed for lz4, the disk bytes otherwise
                bounds = self._bounds
                bc.put_slot(self._slots, self.cache_id, i, block, len(block[0]) + VIEW_OVERHEAD if len(block) == 8
                            else bounds[i + 1] - bounds[i] + ENTRY_OVERHEAD * len(block[-1]))
        if len(block) == 8:  # a fixed-stride view (inlining flat_find measured no gain: bench/README.md)
            return _flat_find(block, key)
        if len(block) == 3:  # data_block.find_entry of a format-3 block, inlined
            key_prefix, key_suffixes, payloads = block
            kp = len(key_prefix)
            if kp and key[:kp] != key_prefix:
                return None
            try:
                found = payloads[key_suffixes.index(key[kp:])]
            except ValueError:
                return None
        else:
            found = _find_entry(block, _u64_pack(u) + key)
        if found is None or type(found) is bytes:
            return found
        raise CorruptionError(self.data_path, self._bounds[i], "block payloads must be bin")

    def _unpacked(self, i: int) -> tuple:
        """Block i as a point read searches it: one slice of the map, CRC-checked, decompressed,
        then its fixed-stride view (engine/flat_block.py: no unpacking) or, for any other layout,
        unpacked (data_block.unpack_entries)."""
        off, end = self._bounds[i], self._bounds[i + 1]
        buf = self._map[off:end]
        if len(buf) < BLOCK_OVERHEAD or _u32_unpack_from(buf, 0)[0] + BLOCK_OVERHEAD != end - off:
            raise CorruptionError(self.data_path, off, "block does not end where the summary says")
        raw, s, e = decode_block(buf, 0, self.data_path, off)
        if self.format_version >= 3:
            view = flat_view(raw, s, e)
            if view is not None:
                return view
        return unpack_entries(raw, s, e, self.data_path, off, self.format_version)

    # -- scans ---------------------------------------------------------------------------------

    def _frames(self, i: int, stop: int | None = None) -> Iterator[tuple]:
        """(raw, start, end, offset) of each block from block i to the last (or before block stop), verified
        (data_block.decode_block): its entry bytes are raw[start:end].

        Reads FIRST_CHUNK_BYTES first (a page of a scan often needs no more), then twice as
        much each time up to SCAN_CHUNK_BYTES (or one whole block if larger): bounded memory."""
        fd, path, bounds = self._data_fd, self.data_path, self._bounds
        chunk, chunk_off = b"", 0
        size = FIRST_CHUNK_BYTES
        for b in range(i, len(bounds) - 1 if stop is None else min(stop, len(bounds) - 1)):
            off, end = bounds[b], bounds[b + 1]
            if end - chunk_off > len(chunk):
                chunk, chunk_off = _pread(fd, max(size, end - off), off), off
                size = min(2 * size, SCAN_CHUNK_BYTES)
                check(len(chunk) >= end - off, path, off, "block runs past the end of Data.db")
            at = off - chunk_off
            if _u32_unpack_from(chunk, at)[0] + BLOCK_OVERHEAD != end - off:
                raise CorruptionError(path, off, "block does not end where the summary says")
            yield (*decode_block(chunk, at, path, off), off)

    def _blocks(self, i: int, decode=decode_rows) -> Iterator[tuple]:
        """(offset, *decode(block)) of each block from block i to the last: by default (offset,
        sort keys, tokens, keys, payloads) (data_block.decode_rows)."""
        path, version = self.data_path, self.format_version
        for raw, s, e, off in self._frames(i):
            yield (off, *decode(raw, s, e, path, off, version))

    def _scan_runs(self, i: int, stop: int | None = None, arrays: bool = False) -> Iterator[tuple]:
        """(tokens, keys, payloads) of the blocks from block i on (before block stop), decoded together
        (data_block.decode_scan_chunk) a run of 1, 2, 4... blocks at a time, up to
        SCAN_RUN_BLOCKS: a short scan decodes little past what it takes, a long one pays a
        run's Python steps once for many blocks. A run is one pread of its blocks (at most
        SCAN_CHUNK_BYTES of them, or one block if larger), verified block by block in one loop;
        a read that comes back short (Data.db cut under the reader) is read again through
        `_frames`, which reports where. A run never reaches past `stop`: a range scan decodes
        (and fails on the corruption of) no block outside its range."""
        fd, path, version, bounds = self._data_fd, self.data_path, self.format_version, self._bounds
        last = len(bounds) - 1 if stop is None else min(stop, len(bounds) - 1)
        n = 1
        while i < last:
            off = bounds[i]  # one read a run, of at most SCAN_CHUNK_BYTES (or one block if larger)
            j = max(i + 1, min(i + n, last, bisect_right(bounds, off + SCAN_CHUNK_BYTES, i, last + 1) - 1))
            run = decode_scan_chunk(_pread(fd, bounds[j] - off, off), bounds[i:j + 1], path, version, arrays)
            if run is None:  # Data.db is cut short: block by block, which reports where
                run = decode_scan_run(list(self._frames(i, j)), path, version, arrays)
            yield run
            i = j
            n = min(2 * n, SCAN_RUN_BLOCKS)

    def scan_blocks(self, start: tuple[int, bytes] | None = None, end: tuple[int, bytes] | None = None,
                    *, end_inclusive: bool = False, arrays: bool = False) -> Iterator[tuple[list, tuple, tuple, bool]]:
        """The block stream (engine/block_merge.py) of the entries with start <= (token, key) < end
        (<= end if end_inclusive): (tokens, keys, payloads, False) per run of decoded blocks
        (`_scan_runs`), cut at the bounds. None means unbounded. `arrays`: each run's tokens as
        a numpy int64 array (what merge_blocks takes best), not a list."""
        if not self.index.partition_count:
            return
        first = 0
        if start is not None:
            first = max(0, self.index.block_of(sort_key(*start)))
        if end is not None and end[0] > MAX_TOKEN:  # past every token: no end (and no int64 overflow
            end = None                              # comparing it with the runs' numpy tokens)
        stop = None  # past the block that may hold `end`
        if end is not None:
            stop = self.index.block_of(sort_key(*end)) + 1
        for toks, keys, payloads in self._scan_runs(first, stop, arrays):
            lo, stop, done = 0, len(toks), False
            if start is not None:
                lo = lower(toks, keys, start[0], start[1])
                start = None
            if end is not None and (toks[-1], keys[-1]) >= end:
                stop = (upper if end_inclusive else lower)(toks, keys, end[0], end[1], lo)
                done = True
            if lo or stop < len(toks):
                toks, keys, payloads = toks[lo:stop], keys[lo:stop], payloads[lo:stop]
            if len(toks):
                yield toks, keys, payloads, False
            if done:
                return

    def scan(self, start: tuple[int, bytes] | None = None, end: tuple[int, bytes] | None = None,
             *, end_inclusive: bool = False) -> Iterator[tuple[int, bytes, bytes]]:
        """(token, key, payload) with start <= (token, key) < end (<= end if end_inclusive),
        in order. None means unbounded."""
        for toks, keys, payloads, _ in self.scan_blocks(start, end, end_inclusive=end_inclusive):
            yield from zip(toks, keys, payloads)  # whole blocks at C speed

    # -- checks ----------------------------------------------------------------------------------

    def iter_positions(self) -> Iterator[tuple[int, int, int, bytes, bytes]]:
        """Walk Data.db from its header: (block offset, entry number in block, token, key, payload)."""
        for off, _sks, toks, keys, payloads in self._blocks(0):
            for j, key in enumerate(keys):
                yield off, j, toks[j], key, payloads[j]

    def check_invariants(self, bloom_sample: int = 1000) -> None:
        """Read every byte of Data.db: order, block index <-> data agreement, statistics; the
        bloom filter has no false negatives on a sample. Raises CorruptionError for bad bytes,
        AssertionError for a broken invariant."""
        index, stats = self.index, self.stats
        seps = index.separators
        sample_every = max(1, index.partition_count // max(1, bloom_sample))
        prev = b""
        count = 0
        blocks = 0
        for off, keys, _toks, _keys, _payloads in self._blocks(0):
            assert off == index.offsets[blocks], f"block {blocks} is not at its summary offset"
            assert keys, f"empty block at {off}"
            assert prev < seps[blocks] <= keys[0], f"bad separator for block {blocks}"
            assert prev < keys[0] and all(map(lt, keys, keys[1:])), f"order broken in block {blocks}"
            for j in range(0, len(keys)):
                if (count + j) % sample_every == 0:
                    assert self.bloom.might_contain(keys[j][8:]), f"bloom false negative {keys[j]!r}"
            if not blocks:
                first = keys[0]
            prev = keys[-1]
            count += len(keys)
            blocks += 1
        assert blocks == len(seps), f"Data.db has {blocks} blocks, the summary {len(seps)}"
        assert count == index.partition_count == stats.partition_count
        assert prev == index.last_key
        if count:
            assert _u64_unpack_from(first, 0)[0] - TOKEN_BIAS == stats.min_token
            assert _u64_unpack_from(prev, 0)[0] - TOKEN_BIAS == stats.max_token
            assert first[8:] == stats.first_key and prev[8:] == stats.last_key
        assert stats.min_token <= stats.max_token or not count

    def close(self) -> None:
        bc = getattr(self, "block_cache", None)
        slots, self._slots = getattr(self, "_slots", None), None  # a read after close takes no slot
        if bc is not None:
            bc.release(self.cache_id, slots)
        mapped = getattr(self, "_map", None)
        if mapped is not None:
            mapped.close()
            self._map = None
        fd = getattr(self, "_data_fd", -1)
        if fd >= 0:
            os.close(fd)
            self._data_fd = -1

    def __del__(self) -> None:
        # A compacted-away sstable is unlinked at once but stays readable through its open fd
        # until the last read snapshot drops the reader; then its fd closes here.
        try:
            self.close()
        except OSError:
            pass

    def __enter__(self) -> "SSTableReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SSTableReader({self.directory!r}, generation={self.generation})"
