"""Data.db blocks: the checksummed frame (formats 2 and 3) and their prefix-compressed entries.

A block on disk is `u32 stored_len | u8 compression | stored bytes | u32 crc32(header + stored)`;
stored bytes are the raw entries, or `u32 raw_len | lz4 block` when compression is 1. A block is
verified whole (CRC, then decompression) before any byte of it is used.

Raw entries are one msgpack array (every block decodes on its own). Format 3 stores no tokens:

    [key_prefix, [key suffix]*n, [payload]*n]

an entry's token is the Murmur3Partitioner token of its key (engine/token.py), computed only where
a token is needed (scans and checks; a point read matches the key alone). A format-3 Data.db may
also hold format-2 blocks: the writer keeps a block's tokens when one of them is not its key's
token (synthetic tokens in tests and tools; the engine always uses Murmur3). Format 2 (read only):

    [tok_prefix, key_prefix, tok_suffixes (n * w bytes, w = 8 - len(tok_prefix)), [key suffix]*n, [payload]*n]

where tok_prefix is what every entry's u64(token + 2**63) shares and key_prefix what every key
shares. An entry's sort key is the 8 token bytes followed by the key (engine/block_index.py); plain bytes
order of sort keys is (signed token, key) order. Invariants: entries are in strictly increasing
sort-key order; a block holds at least one entry; decoding never reads past the block and any
inconsistency raises CorruptionError(path, block offset, what).
Layouts: docs/format.md (SSTables).
"""
from __future__ import annotations

from itertools import repeat
from operator import add as _add, lt as _lt, sub as _sub
from os.path import commonprefix as _commonprefix

import struct
from struct import unpack as _struct_unpack

import lz4.block
import mmh3
import msgpack
import numpy

from engine.block_index import TOKEN_BIAS
from engine.encoding import U32, U64, check, crc32
from engine.errors import CorruptionError
from engine.token import MIN_TOKEN, _cmurmur3, token as _token  # _cmurmur3: None without the C driver

# Block compression byte. On disk: never renumber.
COMPRESSION_NONE = 0
COMPRESSION_LZ4 = 1
BLOCK_HEADER_SIZE = 5  # u32 stored_len | u8 compression
BLOCK_OVERHEAD = 9  # header + u32 crc32(header + stored bytes)

_u32_unpack_from = U32.unpack_from
_head_unpack_from = struct.Struct(">IB").unpack_from  # u32 stored_len | u8 compression
_u32_pack = U32.pack
_u64_pack = U64.pack
_lz4_decompress = lz4.block.decompress
_packb = msgpack.packb
_unpackb = msgpack.unpackb
_join = b"".join
_frombuffer = numpy.frombuffer
_array = numpy.array
_int64 = numpy.int64
_le_int64 = numpy.dtype("<i8")
# the x64_128 digest of a key: h1 then h2, 8 bytes little-endian each (hash_bytes: ~4 ns a key
# less than mmh3 5's mmh3_x64_128_digest, which gives the same bytes)
_digest = mmh3.hash_bytes


def frame_block(raw: bytes, compress: bool) -> bytes:
    """The on-disk frame of one block's raw entries (lz4 only where it saves bytes)."""
    ctype, stored = COMPRESSION_NONE, raw
    if compress:
        packed = lz4.block.compress(raw, store_size=False)
        if len(packed) + 4 < len(raw):
            ctype, stored = COMPRESSION_LZ4, _u32_pack(len(raw)) + packed
    head = _u32_pack(len(stored)) + bytes((ctype,))
    return b"".join((head, stored, _u32_pack(crc32(stored, crc32(head)))))


def decode_block(buf: bytes, at: int, path: str, file_offset: int) -> tuple[bytes, int, int]:
    """Check the block that starts at buf[at] (all of it must be in buf).

    Returns (raw, start, end): the uncompressed entry bytes are raw[start:end] (for an
    uncompressed block `raw` is `buf` itself, so nothing is copied)."""
    if at + BLOCK_OVERHEAD > len(buf):
        raise CorruptionError(path, file_offset, "block header is truncated")
    (stored_len,) = _u32_unpack_from(buf, at)
    ctype = buf[at + 4]
    end = at + BLOCK_HEADER_SIZE + stored_len
    if end + 4 > len(buf):
        raise CorruptionError(path, file_offset, f"block of {stored_len} bytes is truncated")
    if _u32_unpack_from(buf, end)[0] != crc32(memoryview(buf)[at:end]):
        raise CorruptionError(path, file_offset, "block checksum mismatch")
    start = at + BLOCK_HEADER_SIZE
    if ctype == COMPRESSION_NONE:
        return buf, start, end
    if ctype != COMPRESSION_LZ4:
        raise CorruptionError(path, file_offset + 4, f"unknown block compression {ctype}")
    check(stored_len >= 4, path, file_offset, "lz4 block lacks its uncompressed size")
    (raw_len,) = _u32_unpack_from(buf, start)
    try:
        raw = _lz4_decompress(memoryview(buf)[start + 4:end], uncompressed_size=raw_len)
    except lz4.block.LZ4BlockError as exc:
        raise CorruptionError(path, file_offset, f"lz4 block does not decompress: {exc}") from None
    check(len(raw) == raw_len, path, file_offset, "lz4 block has the wrong uncompressed size")
    return raw, 0, raw_len


class BlockBuilder:
    """Accumulates the entries of one block; `size` estimates its raw bytes."""

    __slots__ = ("toks", "keys", "payloads", "size", "count")

    def __init__(self):
        self.toks: list[int] = []
        self.keys: list[bytes] = []
        self.payloads: list[bytes] = []
        self.size = 0
        self.count = 0

    def add(self, biased_token: int, key: bytes, payload: bytes) -> None:
        self.toks.append(biased_token)
        self.keys.append(key)
        self.payloads.append(payload)
        self.size += len(key) + len(payload) + 12
        self.count += 1

    def take(self) -> bytes:
        """The raw entries: a format-3 array when every (biased) token is its key's Murmur3
        token, else a format-2 array (module docstring); the builder is empty again."""
        toks, keys, payloads = self.toks, self.keys, self.payloads
        lo, hi = min(keys), max(keys)
        kp = len(_commonprefix((lo, hi)))
        suffixes = [k[kp:] for k in keys] if kp else keys
        if block_tokens(keys) == list(map(_sub, toks, repeat(TOKEN_BIAS))):
            raw = _packb([lo[:kp], suffixes, payloads], use_bin_type=True)
        else:
            first, last = toks[0], toks[-1]  # ascending: their common prefix is everyone's
            tp = (64 - (first ^ last).bit_length()) >> 3
            tok_prefix = first.to_bytes(8, "big")[:tp]
            tok_blob = b"".join([t.to_bytes(8, "big")[tp:] for t in toks]) if tp < 8 else b""
            raw = _packb([tok_prefix, lo[:kp], tok_blob, suffixes, payloads], use_bin_type=True)
        self.toks, self.keys, self.payloads = [], [], []
        self.size = self.count = 0
        return raw


def unpack_entries(raw, p: int, end: int, path: str, file_offset: int, version: int = 3) -> tuple:
    """The fields of the entries in raw[p:end], shape-checked but not expanded: format 3's
    (key_prefix, key_suffixes, payloads) or format 2's (tok_prefix, key_prefix, tok_blob,
    key_suffixes, payloads); a version-2 file holds only the latter. What a point read caches and
    searches with `find_entry`; `decode_entries` expands it and also checks that every key and
    payload is bin and the entry order (a point read checks only the payload it returns)."""
    try:
        m = _unpackb(raw[p:end] if p or end != len(raw) else raw, use_list=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptionError(path, file_offset, f"block entries are not valid msgpack: {exc}") from None
    if type(m) is tuple and len(m) == 3 and version >= 3:
        key_prefix, key_suffixes, payloads = m
        if type(key_prefix) is not bytes or type(key_suffixes) is not tuple or type(payloads) is not tuple:
            raise CorruptionError(path, file_offset, "block entries have the wrong types")
        if not payloads or len(key_suffixes) != len(payloads):
            raise CorruptionError(path, file_offset, "block entry counts disagree")
        return m
    if type(m) is not tuple or len(m) != 5:
        raise CorruptionError(path, file_offset, "block entries are not [3 or 5 items]" if version >= 3
                              else "block entries are not [5 items]")
    tok_prefix, key_prefix, tok_blob, key_suffixes, payloads = m
    if (type(tok_prefix) is not bytes or type(key_prefix) is not bytes or type(tok_blob) is not bytes
            or type(key_suffixes) is not tuple or type(payloads) is not tuple):
        raise CorruptionError(path, file_offset, "block entries have the wrong types")
    n = len(payloads)
    w = 8 - len(tok_prefix)
    if not n or w < 0 or len(key_suffixes) != n or len(tok_blob) != n * w:
        raise CorruptionError(path, file_offset, "block entry counts disagree")
    return m


def find_entry(m: tuple, sk: bytes) -> bytes | None:
    """The payload of sort key `sk` in an unpacked block (`unpack_entries`), or None.

    A format-3 block: the shared key prefix, then a C-speed `tuple.index` of the key suffix
    (exact bytes equality; keys are unique in an SSTable, and a suffix that is not bin never
    equals one); the token bytes of sk are not looked at: an entry's token is its key's.
    A format-2 block: touches only what it needs: the shared prefixes, then a C-speed `find` of the token
    suffix in the fixed-width token blob (aligned hits only), then the key suffixes of the
    entries with that token (a key suffix that is not bin never equals one). It does not rely
    on the entry order, so a block whose order is broken still never yields another key's
    payload. The caller checks that the payload it gets is bin."""
    if len(m) == 3:
        key_prefix, key_suffixes, payloads = m
        kp = len(key_prefix)
        if kp and sk[8:8 + kp] != key_prefix:
            return None
        try:
            return payloads[key_suffixes.index(sk[8 + kp:])]
        except ValueError:
            return None
    tok_prefix, key_prefix, tok_blob, key_suffixes, payloads = m
    tp = len(tok_prefix)
    if sk[:tp] != tok_prefix or sk[8:8 + len(key_prefix)] != key_prefix:
        return None
    suffix = sk[8 + len(key_prefix):]
    w = 8 - tp
    if not w:  # one token for the whole block
        for j, ks in enumerate(key_suffixes):
            if ks == suffix:
                return payloads[j]
        return None
    ts = sk[tp:8]
    i = tok_blob.find(ts)
    while i >= 0:
        if i % w:
            i = tok_blob.find(ts, i + 1)
            continue
        j = i // w
        if key_suffixes[j] == suffix:
            return payloads[j]
        i = tok_blob.find(ts, i + w)
    return None


def block_tokens(keys) -> list[int]:
    """The Murmur3Partitioner tokens of `keys`, in one C-level pass: cassandra-driver's murmur3
    directly, and `engine.token.token` for the whole block only when a key is empty or hashes to
    the reserved minimum (the two cases its wrapper maps)."""
    if _cmurmur3 is not None:
        toks = list(map(_cmurmur3, keys))
        if b"" not in keys and MIN_TOKEN not in toks:
            return toks
    return list(map(_token, keys))


def decode_scan(raw, p: int, end: int, path: str, file_offset: int, version: int = 3) -> tuple:
    """(tokens, keys, payloads) of the entries in raw[p:end], in order: what a scan streams,
    checked like `decode_entries` (every key and payload bin, strictly increasing (token, key))
    without building sort keys: the order is checked on the tokens alone, and on the sort keys
    only in a block where two entries share a token. A format-3 block's tokens are computed
    here, in one pass over its keys (`block_tokens`)."""
    m = unpack_entries(raw, p, end, path, file_offset, version)
    key_suffixes, payloads = m[-2], m[-1]
    try:  # msgpack gives bytes for bin and never another bytes-like type: join fails on str, int...
        _join(key_suffixes)
        _join(payloads)
    except TypeError:
        raise CorruptionError(path, file_offset, "block keys and payloads must be bin") from None
    if len(m) == 3:
        key_prefix = m[0]
        keys = [key_prefix + k for k in key_suffixes] if key_prefix else key_suffixes
        toks = increasing_tokens(keys, not key_prefix)
        if toks is not None:
            return toks, keys, payloads
        toks = block_tokens(keys)
    else:
        tok_prefix, key_prefix, tok_blob = m[:3]
        n = len(payloads)
        w = 8 - len(tok_prefix)
        if w:
            tbs = b"".join([tok_prefix + tok_blob[i:i + w] for i in range(0, n * w, w)])
        else:
            tbs = tok_prefix * n
        keys = [key_prefix + k for k in key_suffixes] if key_prefix else key_suffixes
        toks = [t - TOKEN_BIAS for t in _struct_unpack(f">{n}Q", tbs)]
    if not all(map(_lt, toks, toks[1:])):  # a tie (or worse): the full (token, key) order
        sks = tuple(map(_add, map(_u64_pack, map(_add, toks, repeat(TOKEN_BIAS))), keys))
        if not all(map(_lt, sks, sks[1:])):
            raise CorruptionError(path, file_offset, "block entries are not in sort-key order")
    return toks, keys, payloads


def decode_scan_run(blocks: list, path: str, version: int = 3, arrays: bool = False) -> tuple:
    """(tokens, keys, payloads) of several consecutive blocks, [(raw, start, end, file
    offset)] as decode_block verified them: the concatenation of their `decode_scan`s, made
    with one pass for the whole run where every block is format 3 (one murmur3 map, one order
    check over the run, across its blocks too). Anything else (a format-2 block, an empty key,
    a token tie, the reserved minimum, a key or payload that is not bin, an order broken
    across blocks) takes decode_scan block by block, which decides and reports with the
    block's offset, and the seam between two blocks is checked there too. `arrays`: the
    tokens as a numpy int64 array instead of a list (for block_merge, which sorts them in numpy)."""
    keys: list = []
    payloads: list = []
    check_empty = False
    if _cmurmur3 is not None:
        for raw, p, end, off in blocks:
            try:  # unpack_entries' format-3 case, inline; anything else: the block-by-block path
                m = _unpackb(raw[p:end] if p or end != len(raw) else raw, use_list=False)
            except (ValueError, TypeError, msgpack.UnpackException):
                break
            if m.__class__ is not tuple or len(m) != 3 or version < 3:
                break
            key_prefix, key_suffixes, block_payloads = m
            if (key_prefix.__class__ is not bytes or key_suffixes.__class__ is not tuple
                    or block_payloads.__class__ is not tuple or not block_payloads
                    or len(key_suffixes) != len(block_payloads)):
                break
            if key_prefix:
                try:
                    keys += [key_prefix + k for k in key_suffixes]
                except TypeError:  # a suffix that is not bin
                    break
            else:
                keys += key_suffixes
                check_empty = True
            payloads += block_payloads
        else:
            try:  # msgpack gives bytes for bin and never another bytes-like type; a key
                if check_empty:  # joined to its prefix was already checked (bytes + other raises)
                    _join(keys)
                _join(payloads)
            except TypeError:
                pass
            else:
                toks = increasing_tokens(keys, check_empty, arrays)
                if toks is not None:
                    return toks, keys, payloads
    toks, keys, payloads = [], [], []
    for raw, p, end, off in blocks:
        t, k, v = decode_scan(raw, p, end, path, off, version)
        if toks and (toks[-1], keys[-1]) >= (t[0], k[0]):
            raise CorruptionError(path, off, "block entries are not in sort-key order after the previous block")
        toks += t
        keys += k
        payloads += v
    return (_array(toks, _int64) if arrays else toks), keys, payloads


def decode_scan_chunk(chunk: bytes, offs, path: str, version: int = 3, arrays: bool = False) -> tuple | None:
    """What decode_scan_run returns for the consecutive blocks at the file offsets offs[:-1]
    (offs[-1]: where the last one ends), `chunk` holding exactly Data.db[offs[0]:offs[-1]];
    None when chunk is short (a file cut short: the caller reads block by block, which
    reports). An uncompressed block is verified here, as decode_block verifies it (its length
    against the summary's, its CRC) without a call of its own; any other block (compressed,
    or one that fails a check) goes to decode_block, which decides and raises with its offset."""
    base = offs[0]
    if len(chunk) != offs[-1] - base:
        return None
    frames = []
    view = memoryview(chunk)
    nxt = base
    for b in range(1, len(offs)):
        off, nxt = nxt, offs[b]
        at, end = off - base, nxt - base - 4  # the block is chunk[at:end + 4]; its CRC at end
        if end - at > BLOCK_HEADER_SIZE:
            stored_len, ctype = _head_unpack_from(chunk, at)
            if (ctype == COMPRESSION_NONE and at + BLOCK_HEADER_SIZE + stored_len == end
                    and _u32_unpack_from(chunk, end)[0] == crc32(view[at:end])):
                frames.append((chunk, at + BLOCK_HEADER_SIZE, end, off))
                continue
        if end - at < BLOCK_HEADER_SIZE or _u32_unpack_from(chunk, at)[0] + BLOCK_OVERHEAD != nxt - off:
            raise CorruptionError(path, off, "block does not end where the summary says")
        frames.append((*decode_block(chunk, at, path, off), off))
    return decode_scan_run(frames, path, version, arrays)


def increasing_tokens(keys: list, check_empty: bool, arrays: bool = False):
    """The tokens of `keys` in one C murmur3 pass when they are strictly increasing, else None
    (and None without the C murmur3, or when `check_empty` and a key is empty): the caller then
    decides the order the slow way. Strictly increasing tokens have their least first, so only
    toks[0] can be the reserved minimum (which token() remaps).

    Keys that are all ASCII take mmh3's x64_128 digest (no argument tuple, ~25 ns a key against
    cassandra-driver's ~55) and a numpy order check over its h1 halves: for bytes < 0x80,
    Cassandra's murmur3 (which reads a tail byte as signed) and the standard one agree; any
    other key takes cassandra-driver's murmur3 for the whole list. `arrays`: the tokens as a
    numpy int64 array, not a list."""
    if _cmurmur3 is None or (check_empty and not all(keys)):
        return None
    if len(keys) > 1 and _join(keys).isascii():
        h1 = _frombuffer(_join(map(_digest, keys)), _le_int64)[::2]  # (h1, h2) little-endian each
        if h1[0] != MIN_TOKEN and (h1[1:] > h1[:-1]).all():
            return h1 if arrays else h1.tolist()
        return None
    toks = list(map(_cmurmur3, keys))
    if toks and toks[0] != MIN_TOKEN and all(map(_lt, toks, toks[1:])):
        return _array(toks, _int64) if arrays else toks
    return None


def decode_rows(raw, p: int, end: int, path: str, file_offset: int, version: int = 3) -> tuple:
    """(sort keys, tokens, keys, payloads) of the entries in raw[p:end]: `decode_scan` and the
    entries' sort keys (engine/block_index.py)."""
    toks, keys, payloads = decode_scan(raw, p, end, path, file_offset, version)
    sks = tuple(map(_add, map(_u64_pack, map(_add, toks, repeat(TOKEN_BIAS))), keys))
    return sks, toks, keys, payloads


def decode_entries(raw, p: int, end: int, path: str, file_offset: int,
                   version: int = 3) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The (sort keys, payloads) of the entries in raw[p:end], in order (`decode_rows`). Tuples
    of bytes, so that the collector untracks them while the block cache holds them."""
    sks, _toks, _keys, payloads = decode_rows(raw, p, end, path, file_offset, version)
    return sks, payloads
