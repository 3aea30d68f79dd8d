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


def flat_view(raw, s: int, e: int) -> tuple | None:
    """The fixed-stride view of the format-3 entries in raw[s:e] (module docstring), or None.
    Runs once per cold block: a few byte tests and four strided compares at C speed."""
    if e - s < 9 or raw[s] != FIXARRAY_3 or raw[s + 1] != BIN8:
        return None
    p = s + 3 + raw[s + 2]  # after the key prefix
    if p + 3 > e:
        return None
    n = raw[p]
    if 0x91 <= n <= 0x9F:
        n &= 0x0F
        s0 = p + 1
    elif n == ARRAY16:
        n = (raw[p + 1] << 8) | raw[p + 2]
        s0 = p + 3
        if not n:
            return None
    else:
        return None
    if s0 + 2 > e or raw[s0] != BIN8:
        return None
    stride = raw[s0 + 1] + 2
    s_end = s0 + n * stride
    if s_end + 3 > e:
        return None
    m = raw[s_end]  # the payloads' array header: n again
    if m == 0x90 | n and n < 16:
        p0 = s_end + 1
    elif m == ARRAY16 and n >= 16 and (raw[s_end + 1] << 8) | raw[s_end + 2] == n:
        p0 = s_end + 3
    else:
        return None
    if p0 + 2 > e or raw[p0] != BIN8:
        return None
    plen = raw[p0 + 1] + 2
    if p0 + n * plen != e:
        return None
    heads = b"\xc4" * n
    if (raw[s0:s_end:stride] != heads or raw[p0:e:plen] != heads
            or raw[s0 + 1:s_end:stride] != bytes((stride - 2,)) * n or raw[p0 + 1:e:plen] != bytes((plen - 2,)) * n):
        return None
    return raw, raw[s + 3:p], raw[s0:s0 + 2], s0, s_end, stride, p0, plen


def flat_find(view: tuple, key: bytes) -> bytes | None:
    """The payload stored for `key` in a flat view, or None (SSTableReader.get_probed's search)."""
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
