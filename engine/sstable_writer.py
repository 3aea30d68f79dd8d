"""SSTable writer (format 3): streams partitions, already in (token, key) order, into a new generation.

Data.db gets blocks of prefix-compressed entries (engine/data_block.py); a block is closed as soon
as it reaches block_size_bytes, so it passes that size by at most one entry. For each block the
writer keeps its shortest separator and offset; finish() writes them as Summary.db (the block
index, engine/block_index.py), then Filter.db and Statistics.db, each fsynced; TOC.txt is written
last (via a temp file and a rename), then the directory is fsynced. A generation without TOC.txt
is incomplete and is ignored by readers. Rows come one at a time (append), sorted (append_all), or
in any order (append_unsorted, a memtable flush: sorted here); all three write the same bytes.
Formats: docs/format.md (SSTables).
"""
from __future__ import annotations

import os
import time
from operator import itemgetter

import mmh3
import msgpack
import numpy as _np

from engine.block_index import (HEADER_SIZE, MAX_BLOCK_SIZE, TOKEN_BIAS, BlockIndex, encode_header,
                                shortest_separator)
from engine.bloom import BloomFilter
from engine.data_block import BlockBuilder, block_tokens, frame_block
from engine.token import MIN_TOKEN
from engine.encoding import U64, one_width
from engine.sstable_files import DATA_MAGIC, component_path, component_paths
from engine.sstable_reader import DATA_VERSION, TOC_TEXT, SSTableReader
from engine.sstable_stats import (NO_DELETION_TIME, SSTableStats, encode_statistics,
                                  fsync_directory)

MAX_KEY_BYTES = 65535  # Cassandra's partition key limit
MAX_PAYLOAD_BYTES = 2**31 - 1
WRITE_BUFFER_BYTES = 1 << 20
_DATA_STATS_REQUIRED = ("min_timestamp", "max_timestamp", "cell_count", "tombstone_count",
                        "max_local_deletion_time", "droppable_histogram")
_DATA_STATS_OPTIONAL = ("commit_log_intervals", "level", "created_ms")

_u64_pack = U64.pack
_packer = msgpack.Packer(use_bin_type=True)
_packb = _packer.pack  # msgpack.packb(o, use_bin_type=True) without a Packer per block
_array_header = _packer.pack_array_header
_token_and_key = itemgetter(0, 1)
_hash_bytes = mmh3.hash_bytes  # the bloom filter's hash (engine/bloom.py) as 16 bytes: h1, h2 little-endian
_from_bytes = int.from_bytes


def _pick(idx: list, keys, payloads) -> tuple:
    """(keys, payloads) at the indexes idx (a non-empty list), as two sequences."""
    if len(idx) == 1:
        return (keys[idx[0]],), (payloads[idx[0]],)
    pick = itemgetter(*idx)
    return pick(keys), pick(payloads)


def _gather(idx: list, seq) -> tuple:
    """seq's items at the indexes idx (a non-empty list), as a sequence."""
    return (seq[idx[0]],) if len(idx) == 1 else itemgetter(*idx)(seq)


def _fixed_width_suffixes(keys: list, joined: bytes, order, ends: list) -> list | None:
    """For keys of one width w (1..255 bytes): (kp, packed) of each full block, the blocks
    being the rows order[0:ends[0]], order[ends[0]:ends[1]]... (token order): kp the length of
    the block's common key prefix, packed the msgpack bin 8 of every key's suffix after it, in
    row order (what packb of the suffix list holds after its array header). `joined` is
    b"".join(keys). One numpy pass over the keys' bytes in memory order, instead of reading
    each key object in token order for its block's min, max and suffix slices (bench/README.md,
    s11-eng_put8). None for other keys."""
    n, w = len(keys), len(keys[0])
    if not ends or not 0 < w < 256 or one_width(keys, joined) != w:
        return None
    counts = _np.diff(_np.array([0, *ends]))
    starts = _np.array([0, *ends[:-1]])
    rows = _np.frombuffer(joined, _np.uint8).reshape(n, w)[order[:ends[-1]]]
    differ = rows != rows[_np.repeat(starts, counts)]        # each row against its block's first
    common = _np.where(differ.any(1), differ.argmax(1), w)    # its common prefix with that first
    kps = _np.minimum.reduceat(common, starts)                # the block's: the least of them
    packed: list = [None] * len(ends)
    row_kp, count_of = _np.repeat(kps, counts), counts.tolist()
    for kp in set(kps.tolist()):                              # blocks of one kp: one matrix
        part = rows[row_kp == kp, kp:]
        size = w - kp + 2
        mat = _np.empty((len(part), size), _np.uint8)
        mat[:, 0], mat[:, 1], mat[:, 2:] = 0xC4, w - kp, part  # bin 8: c4, length, bytes
        data, at = mat.tobytes(), 0
        for b in _np.flatnonzero(kps == kp).tolist():
            end = at + count_of[b] * size
            packed[b] = (kp, data[at:end])
            at = end
    return packed


def _tokens_and_digests(keys: list, joined: bytes) -> tuple:
    """(tokens, digests) of a flush's keys from one MurmurHash3 pass: the (n, 2) int64 digests
    the bloom filter sets (BloomFilter.add_digests) and, as an int64 array, their h1 column,
    which is the Murmur3Partitioner token of every key but an empty one, one with a tail byte
    >= 0x80 (engine/token.py's sign extension: ASCII keys have none) or one whose h1 is the
    reserved MIN_TOKEN. For any of those: (block_tokens(keys), None), the filter hashes again.
    Saves the second hash of every key (~85 ns a row of a flush, bench/README.md s10-eng_put7)."""
    if joined.isascii() and min(map(len, keys)) > 0:
        digests = _np.frombuffer(b"".join(map(_hash_bytes, keys)), dtype="<i8").reshape(-1, 2)
        toks = digests[:, 0]
        if not (toks == MIN_TOKEN).any():
            return toks, digests
    return block_tokens(keys), None


class SSTableWriter:
    def __init__(self, directory: str, generation: int, *, expected_partitions: int,
                 bloom_fp_chance: float = 0.01, compression: str | None = None,
                 block_size_bytes: int = 8192):
        assert compression in (None, "lz4"), compression
        assert 0 < block_size_bytes <= MAX_BLOCK_SIZE, block_size_bytes
        assert 0.0 < bloom_fp_chance, bloom_fp_chance
        assert not component_paths(directory, generation), f"generation {generation} exists"
        self.directory = directory
        self.generation = generation
        self.compression = compression
        self.block_size = block_size_bytes
        self._bloom = BloomFilter.create_sparse(max(1, expected_partitions), bloom_fp_chance)
        self._data_path = component_path(directory, generation, "Data.db")
        self._data = open(self._data_path, "xb", buffering=WRITE_BUFFER_BYTES)
        self._finished = False
        self._data.write(encode_header(DATA_MAGIC, DATA_VERSION))
        self._data_off = HEADER_SIZE  # where the pending block will start
        self._block = BlockBuilder()
        self._separators: list[bytes] = []
        self._offsets: list[int] = []
        self._last_tok = -1  # biased token of the previous partition
        self._last_key = b""
        self._block_first = b""  # sort key of the pending block's first entry
        self._prev_block_last = b""  # sort key of the previous block's last entry
        self._first_sk = b""
        self._count = 0

    def append(self, token: int, key: bytes, payload: bytes) -> None:
        """Add one partition; (token, key) must be strictly greater than the previous one."""
        biased = token + TOKEN_BIAS
        assert (biased, key) > (self._last_tok, self._last_key), \
            f"append out of (token, key) order: {token} {key!r}"
        assert len(key) <= MAX_KEY_BYTES and len(payload) <= MAX_PAYLOAD_BYTES
        block = self._block
        if not block.count:
            self._block_first = _u64_pack(biased) + key
            if not self._count:
                self._first_sk = self._block_first
        block.add(biased, key, payload)
        self._last_tok, self._last_key = biased, key
        self._bloom.add(key)
        self._count += 1
        if block.size >= self.block_size:
            self._flush_block()

    def append_all(self, items) -> None:
        """append() of every (token, key, payload) of an iterable in strictly increasing (token,
        key) order: the same files, byte for byte, from one loop with its state in locals (a
        memtable flush; bench/README.md, "Write path at 1M keys")."""
        bias = TOKEN_BIAS
        block = self._block
        toks, keys, payloads = block.toks, block.keys, block.payloads
        bloom_add = self._bloom.deferred_add()          # set in bulk at encode (engine/bloom.py)
        limit = self.block_size
        last_tok, last_key = self._last_tok, self._last_key
        size, count, total = block.size, block.count, self._count
        try:
            for token, key, payload in items:
                biased = token + bias
                if biased < last_tok or (biased == last_tok and key <= last_key):
                    raise AssertionError(f"append out of (token, key) order: {token} {key!r}")
                if len(key) > MAX_KEY_BYTES or len(payload) > MAX_PAYLOAD_BYTES:
                    raise AssertionError(f"key of {len(key)} or payload of {len(payload)} bytes is too long")
                if not count:
                    self._block_first = _u64_pack(biased) + key
                    if not total:
                        self._first_sk = self._block_first
                toks.append(biased)
                keys.append(key)
                payloads.append(payload)
                size += len(key) + len(payload) + 12   # BlockBuilder.add's estimate
                count += 1
                total += 1
                last_tok, last_key = biased, key
                bloom_add(key)
                if size >= limit:
                    block.size, block.count = size, count
                    self._last_tok, self._last_key, self._count = last_tok, last_key, total
                    self._flush_block()               # take() gives the builder new lists
                    toks, keys, payloads = block.toks, block.keys, block.payloads
                    size = count = 0
        finally:
            block.size, block.count = size, count
            self._last_tok, self._last_key, self._count = last_tok, last_key, total

    def append_unsorted(self, toks, keys, payloads) -> None:
        """append_all() of rows (toks[i], keys[i], payloads[i]) given in ANY order (a memtable's,
        which is memory order), sorted here; toks None: the keys' Murmur3 tokens, computed here
        (a memtable keeps none). The same files, byte for byte, as append_all of the rows in
        (token, key) order. The per-row work is done in bulk and, but for the blocks
        themselves, in the given order, so no pass but the last reads the rows in (random) token
        order: numpy sorts the tokens (int64: every Murmur3 token fits) and finds the block ends,
        every block's Murmur3 check is one pass, the bloom filter is set at once
        (bench/README.md, "Puts at 1M keys, again"). Rows it cannot take in bulk (tokens that
        repeat, a single row, a writer that already holds rows) are sorted and go through append_all, which
        raises as append() does."""
        n = len(keys)
        if not n:
            return
        murmur = toks is None
        digests = None
        joined = b"".join(keys) if murmur else None
        if murmur:
            toks, digests = _tokens_and_digests(keys, joined)
        arr = _np.fromiter(toks, _np.int64, n) if digests is None else toks
        order = arr.argsort()  # not stable: used only when no two tokens tie (5x faster, bench/README.md s10-eng_put7)
        arr = arr[order]
        if (n < 2 or self._count or len(toks) != n or len(payloads) != n or not bool((arr[1:] > arr[:-1]).all())
                or max(map(len, keys)) > MAX_KEY_BYTES or max(map(len, payloads)) > MAX_PAYLOAD_BYTES):
            if digests is not None:
                toks = toks.tolist()
            self.append_all(sorted(zip(toks, keys, payloads), key=_token_and_key))
            return
        cum = _np.fromiter(map(len, keys), _np.int64, n)
        cum += _np.fromiter(map(len, payloads), _np.int64, n)
        cum += 12                                 # BlockBuilder.add's estimate
        cum = cum[order].cumsum()
        ends = []                                 # one past each full block's last row
        limit, base, at = self.block_size, 0, 0
        search = cum.searchsorted
        while at < n:
            j = int(search(base + limit))         # the first row whose block size reaches limit
            if j >= n:
                break
            base = int(cum[j])
            at = j + 1
            ends.append(at)
        if not murmur:  # format 3 for every block (else take() decides)
            murmur = block_tokens(keys) == list(toks)
        if digests is None:
            self._bloom.add_many(keys)
        else:
            self._bloom.add_digests(digests)
        fixed = None
        if murmur:  # format 3 blocks: of keys of one width, the suffixes are packed in one pass
            fixed = _fixed_width_suffixes(keys, joined, order, ends)
        order = order.tolist()   # rows are gathered per block (_pick): each touched twice while in cache
        toks = arr.tolist()
        bias, lz4, write = TOKEN_BIAS, self.compression == "lz4", self._data.write
        separators, offsets = self._separators, self._offsets
        prev_last, off = self._prev_block_last, self._data_off
        self._first_sk = _u64_pack(toks[0] + bias) + keys[order[0]]
        start = 0
        for i, end in enumerate(ends):
            if fixed is None:
                ks, ps = _pick(order[start:end], keys, payloads)
                first_key, last_key = ks[0], ks[-1]
            else:  # the suffixes are packed: only the payloads are gathered
                ps = _gather(order[start:end], payloads)
                first_key, last_key = keys[order[start]], keys[order[end - 1]]
            first = _u64_pack(toks[start] + bias) + first_key
            separators.append(shortest_separator(prev_last, first) if separators else first)
            prev_last = _u64_pack(toks[end - 1] + bias) + last_key
            offsets.append(off)
            if fixed is not None:  # == _packb([prefix, suffix list, ps])
                kp, suffixes = fixed[i]
                raw = b"".join((b"\x93", _packb(first_key[:kp]), _array_header(end - start), suffixes, _packb(ps)))
            elif murmur:
                lo, hi = min(ks), max(ks)
                m = len(lo) if len(lo) < len(hi) else len(hi)   # kp = len(commonprefix((lo, hi))):
                kp = m - ((_from_bytes(lo[:m], "big") ^ _from_bytes(hi[:m], "big")).bit_length() + 7 >> 3)
                raw = _packb([lo[:kp], [k[kp:] for k in ks] if kp else ks, ps])
            else:
                block = self._block
                block.toks, block.keys, block.payloads = [t + bias for t in toks[start:end]], ks, ps
                raw = block.take()
            frame = frame_block(raw, lz4)
            write(frame)
            off += len(frame)
            start = end
        self._prev_block_last, self._data_off = prev_last, off
        self._count = n
        self._last_tok, self._last_key = toks[-1] + bias, keys[order[-1]]
        if start < n:                             # the rest waits in the builder, as append leaves it
            ks, ps = _pick(order[start:], keys, payloads)
            block = self._block
            block.toks = [t + bias for t in toks[start:]]
            block.keys, block.payloads = list(ks), list(ps)
            block.count = n - start
            block.size = int(cum[-1]) - base
            self._block_first = _u64_pack(toks[start] + bias) + ks[0]

    def _flush_block(self) -> None:
        first = self._block_first
        if self._separators:
            self._separators.append(shortest_separator(self._prev_block_last, first))
        else:
            self._separators.append(first)
        self._prev_block_last = _u64_pack(self._last_tok) + self._last_key
        self._offsets.append(self._data_off)
        frame = frame_block(self._block.take(), self.compression == "lz4")
        self._data.write(frame)
        self._data_off += len(frame)

    def finish(self, data_stats: dict) -> SSTableReader:
        """Write the remaining components, fsync each, write TOC.txt last; return a reader."""
        self.write_components(data_stats)
        return SSTableReader.open(self.directory, self.generation)

    def write_components(self, data_stats: dict) -> None:
        """finish() without the reader (engine/flush_worker.py: the parent opens it)."""
        assert not self._finished, "finish() called twice"
        unknown = set(data_stats) - set(_DATA_STATS_REQUIRED) - set(_DATA_STATS_OPTIONAL)
        assert not unknown, f"unknown data_stats fields {sorted(unknown)}"
        stats = self._stats(data_stats)
        if self._block.count:
            self._flush_block()
        f = self._data
        f.flush()
        os.fsync(f.fileno())
        f.close()
        last_sk = _u64_pack(self._last_tok) + self._last_key if self._count else b""
        summary = BlockIndex(self._count, self._data_off, self.block_size, self._separators,
                             self._offsets, last_sk)
        summary.validate(self._data_path)
        self._write_file("Filter.db", self._bloom.encode())
        self._write_file("Summary.db", summary.encode())
        self._write_file("Statistics.db", encode_statistics(stats))
        toc = component_path(self.directory, self.generation, "TOC.txt")
        self._write_file("TOC.txt.tmp", TOC_TEXT.encode())
        os.replace(toc + ".tmp", toc)
        fsync_directory(self.directory)
        self._finished = True

    def _stats(self, d: dict) -> SSTableStats:
        missing = [k for k in _DATA_STATS_REQUIRED if k not in d]
        assert not missing, f"data_stats lacks {missing}"
        first_token = _u64_unpack(self._first_sk) if self._count else 0
        last_token = self._last_tok - TOKEN_BIAS if self._count else 0
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
            first_key=self._first_sk[8:], last_key=self._last_key)

    def _write_file(self, component: str, content: bytes) -> None:
        with open(component_path(self.directory, self.generation, component), "xb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        """Close and remove every file of this generation written so far (no-op after finish)."""
        if self._finished:
            return
        f = getattr(self, "_data", None)
        if f is not None and not f.closed:
            f.close()
        for path in component_paths(self.directory, self.generation):
            os.remove(path)
        self._finished = True


def _u64_unpack(sk: bytes) -> int:
    return U64.unpack_from(sk, 0)[0] - TOKEN_BIAS
