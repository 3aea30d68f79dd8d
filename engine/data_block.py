"""Data.db blocks: the checksummed frame (both formats) and format 2's prefix-compressed entries.

A block on disk is `u32 stored_len | u8 compression | stored bytes | u32 crc32(header + stored)`;
stored bytes are the raw entries, or `u32 raw_len | lz4 block` when compression is 1. A block is
verified whole (CRC, then decompression) before any byte of it is used.

Format 2 raw entries, each relative to the previous entry of the SAME block (the first entry of a
block shares nothing, so every block decodes on its own):

    u8 token_shared (0..8) | token suffix: 8 - token_shared bytes of u64(token + 2**63) big-endian
    uvarint key_shared | uvarint key_suffix_len | key suffix
    uvarint payload_len | payload

An entry's sort key is the 8 token bytes followed by the key (engine/block_index.py); plain bytes
order of sort keys is (signed token, key) order. Invariants: entries are in strictly increasing
sort-key order; a block holds at least one entry; decoding never reads past the block and any
inconsistency raises CorruptionError(path, block offset, what).
Layouts: docs/format.md (SSTables).
"""
from __future__ import annotations

import lz4.block

from engine.encoding import U32, check, crc32, decode_uvarint, encode_uvarint
from engine.errors import CorruptionError

# Block compression byte. On disk: never renumber.
COMPRESSION_NONE = 0
COMPRESSION_LZ4 = 1
BLOCK_HEADER_SIZE = 5  # u32 stored_len | u8 compression
BLOCK_OVERHEAD = 9  # header + u32 crc32(header + stored bytes)

_u32_unpack_from = U32.unpack_from
_u32_pack = U32.pack
_lz4_decompress = lz4.block.decompress
_from_bytes = int.from_bytes
_VARINT1 = [bytes((n,)) for n in range(128)]


def _uvarint(n: int) -> bytes:
    return _VARINT1[n] if n < 128 else encode_uvarint(n)


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
    """Accumulates format-2 entries of one block; `add` returns the entry's encoded size."""

    __slots__ = ("parts", "size", "count", "_tok", "_key")

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0
        self.count = 0
        self._tok = -1  # biased token of the previous entry; -1: none yet
        self._key = b""

    def add(self, biased_token: int, key: bytes, payload: bytes) -> int:
        prev_tok, prev_key = self._tok, self._key
        if prev_tok < 0:
            ts = 0
        else:  # bytes shared by two big-endian u64s, from the bit length of their xor
            ts = (64 - (biased_token ^ prev_tok).bit_length()) >> 3
        tok_suffix = biased_token.to_bytes(8, "big")[ts:]
        ks = 0
        if prev_key:
            m = min(len(key), len(prev_key))
            x = _from_bytes(key[:m], "big") ^ _from_bytes(prev_key[:m], "big")
            ks = m - ((x.bit_length() + 7) >> 3)
        suffix = key[ks:]
        entry = b"".join((_VARINT1[ts], tok_suffix, _uvarint(ks), _uvarint(len(suffix)), suffix,
                          _uvarint(len(payload)), payload))
        self.parts.append(entry)
        self.size += len(entry)
        self.count += 1
        self._tok, self._key = biased_token, key
        return len(entry)

    def take(self) -> bytes:
        raw = b"".join(self.parts)
        self.parts = []
        self.size = self.count = 0
        self._tok, self._key = -1, b""
        return raw


def decode_entries(raw: bytes, p: int, end: int, path: str,
                   file_offset: int) -> tuple[list[bytes], list[bytes]]:
    """The (sort keys, payloads) of the format-2 entries in raw[p:end], in order."""
    keys: list[bytes] = []
    payloads: list[bytes] = []
    kappend = keys.append
    pappend = payloads.append
    tok = b""
    key = b""
    try:
        while p < end:
            ts = raw[p]
            if ts > 8 or ts > len(tok):
                raise CorruptionError(path, file_offset, f"token shares {ts} bytes with the entry before")
            q = p + 9 - ts
            tok = tok[:ts] + raw[p + 1:q]
            ks = raw[q]
            if ks >= 0x80:
                ks, q = decode_uvarint(raw, q, path)
            else:
                q += 1
            n = raw[q]
            if n >= 0x80:
                n, q = decode_uvarint(raw, q, path)
            else:
                q += 1
            if ks > len(key):
                raise CorruptionError(path, file_offset, f"key shares {ks} bytes with the entry before")
            p = q + n
            key = key[:ks] + raw[q:p]
            n = raw[p]
            p += 1
            if n >= 0x80:
                if raw[p] < 0x80:  # a two-byte length: payloads of 128 B to 16 KiB
                    n = (n & 0x7F) | (raw[p] << 7)
                    p += 1
                else:
                    n, p = decode_uvarint(raw, p - 1, path)
            q = p + n
            if q > end:
                raise CorruptionError(path, file_offset, "entry runs past the block")
            kappend(tok + key)
            pappend(raw[p:q])
            p = q
    except IndexError:
        raise CorruptionError(path, file_offset, "entry runs past the block") from None
    if p != end or len(tok) != 8:
        raise CorruptionError(path, file_offset, "entries do not fill the block")
    for a, b in zip(keys, keys[1:]):
        if a >= b:
            raise CorruptionError(path, file_offset, "block entries are not in sort-key order")
    return keys, payloads
