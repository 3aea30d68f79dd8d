"""A verified format-3 Data.db block kept as its own bytes, searched in place (the point-read view).

Unpacking a block (data_block.unpack_entries) builds two bytes objects per entry and two tuples:
at 1M keys, ~15 us and ~6.8 KB of fresh heap per cold block, most of a cold hit
(bench/README.md, s10-eng_hit3). Most blocks need none of it: when every key suffix has the same
length w and every payload the same length, both under 256 bytes, the msgpack of the block
`[key_prefix, [key suffix]*n, [payload]*n]` has a fixed stride, and entry j is found by its byte
offset. `flat_view` proves that layout from the bytes (C-speed strided compares) and returns

    (raw, key_prefix, head, s0, s_end, stride, p0, plen)

where raw[s0:s_end] holds the n suffixes, each as `head + suffix` (head = bin8 header
`c4 w`, stride = w + 2), and payload j is raw[p0 + j*plen + 2 : p0 + (j+1)*plen]. It returns None
for any other layout (different lengths, bin16, array32, a format-2 block), and the reader then
unpacks the block as before. The view holds the block's bytes and ~150 bytes more.

Invariant: a view exists only for bytes that msgpack decodes to exactly the value
unpack_entries accepts (a 3-array of bin, n bins, n bins, n >= 1, nothing after it), so a view
never answers what the unpacked block would not; `flat_find` returns the payload of the entry whose
key equals `key`, or None. The on-disk format is unchanged (docs/format.md, "Reads").
"""
from __future__ import annotations

BIN8 = 0xC4
FIXARRAY_3 = 0x93
ARRAY16 = 0xDC
VIEW_OVERHEAD = 150  # the view tuple, its ints and the prefix/head bytes, over len(raw)


def _array_len(raw, p: int, e: int) -> tuple[int, int]:
    """(n, position after the header) of a msgpack fixarray / array16 at raw[p], or (-1, p)."""
    if p >= e:
        return -1, p
    b = raw[p]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, p + 1
    if b == ARRAY16 and p + 3 <= e:
        return (raw[p + 1] << 8) | raw[p + 2], p + 3
    return -1, p


def _strided(raw, p: int, n: int, e: int) -> int:
    """The element length (with its 2-byte bin8 header) when raw[p:] starts with n bin8 values of
    one length that end at or before e, else -1."""
    if p + 2 > e or raw[p] != BIN8:
        return -1
    stride = raw[p + 1] + 2
    end = p + n * stride
    if end > e:
        return -1
    if raw[p:end:stride] != b"\xc4" * n or raw[p + 1:end:stride] != bytes((stride - 2,)) * n:
        return -1
    return stride


def flat_view(raw, s: int, e: int) -> tuple | None:
    """The fixed-stride view of the format-3 entries in raw[s:e] (module docstring), or None."""
    if e - s < 7 or raw[s] != FIXARRAY_3 or raw[s + 1] != BIN8:
        return None
    p = s + 3 + raw[s + 2]
    if p > e:
        return None
    key_prefix = raw[s + 3:p]
    n, s0 = _array_len(raw, p, e)
    if n < 1:
        return None
    stride = _strided(raw, s0, n, e)
    if stride < 0:
        return None
    s_end = s0 + n * stride
    n2, p0 = _array_len(raw, s_end, e)
    if n2 != n:
        return None
    plen = _strided(raw, p0, n, e)
    if plen < 0 or p0 + n * plen != e:
        return None
    return raw, key_prefix, raw[s0:s0 + 2], s0, s_end, stride, p0, plen


def flat_find(view: tuple, key: bytes) -> bytes | None:
    """The payload stored for `key` in a flat view, or None (SSTableReader.get_probed inlines it)."""
    raw, key_prefix, head, s0, s_end, stride, p0, plen = view
    kp = len(key_prefix)
    if len(key) - kp != stride - 2 or (kp and key[:kp] != key_prefix):
        return None
    pattern = head + key[kp:]
    j = raw.find(pattern, s0, s_end)
    while (j - s0) % stride and j >= 0:  # a match across two entries: look on
        j = raw.find(pattern, j + 1, s_end)
    if j < 0:
        return None
    at = p0 + (j - s0) // stride * plen
    return raw[at + 2:at + plen]
