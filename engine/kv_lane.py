"""The key-value lane's encoder (engine/batch.py): the payloads and the commit-log record of a
batch of plain rows of one table, each of one key and one blob column, row i written at
stamps[i].

encode_lane returns exactly what the general path makes, byte for byte: payload i is
encode_plain_insert's `only` form, msgpack [stamps[i], column id, values[i]]
(docs/format.md#partition-payload), and the record is msgpack [[table id, key, payload], ...],
Store._append_columns' record (docs/format.md, commit log) (tests/engine/test_kv_lane.py).
When every key has one width, every value one width and every stamp is a uint 64 in msgpack
(2**32 <= ts < 2**64: wall-clock microseconds), each row of the record has one layout, so the
whole record is one numpy matrix filled column by column and each payload a slice of it: ~105 ns
a row against ~200 for a packb per payload and per record row (bench/README.md, "Batched puts,
session 13"). Any other batch is packed row by row.
"""
from __future__ import annotations

from itertools import repeat

import msgpack
import numpy as _np

from engine.encoding import one_width

_packer = msgpack.Packer(use_bin_type=True)
_packb = _packer.pack
_U64_MIN, _U64_END = 1 << 32, 1 << 64   # the stamps msgpack packs as uint 64 (0xcf + 8 bytes)
_MIN_ROWS = 8                           # below this the matrix costs more than it saves


def _bin_header(n: int) -> bytes:
    """msgpack's header of a bin of n bytes (bin 8, 16 or 32)."""
    packed = _packb(bytes(n))
    return packed[:len(packed) - n]


def encode_lane(table_id: str, column_id: int, keys: list, values: list, stamps: list,
                record: bool = True) -> tuple:
    """(payloads, record) of the rows (keys[i], values[i]) written at stamps[i]; with record=False
    (a closing lane's rows, logged later by the general path) the record may be None."""
    n = len(keys)
    if n >= _MIN_ROWS and _U64_MIN <= min(stamps) and max(stamps) < _U64_END:
        jk, jv = b"".join(keys), b"".join(values)
        kw, vw = one_width(keys, jk), one_width(values, jv)
        if kw > 0 and vw >= 0:
            return _encode_fixed(_packb(table_id), _packb(column_id), n, kw, vw, jk, jv, stamps)
    payloads = [_packb([ts, column_id, value]) for ts, value in zip(stamps, values)]
    return payloads, _packb([*zip(repeat(table_id, n), keys, payloads)]) if record else None


def _encode_fixed(tid: bytes, cid: bytes, n: int, kw: int, vw: int, jk: bytes, jv: bytes, stamps: list) -> tuple:
    """encode_lane of rows of one layout: [0x93 tid bin(key) bin([0x93 0xcf ts cid bin(value)])]."""
    pw = 10 + len(cid) + len(_bin_header(vw)) + vw       # 0x93, 0xcf + 8 bytes, cid, bin(value)
    head = b"\x93" + tid + _bin_header(kw)
    payload_at = len(head) + kw + len(_bin_header(pw))
    template = b"".join((head, bytes(kw), _bin_header(pw), b"\x93\xcf", bytes(8), cid, _bin_header(vw), bytes(vw)))
    width = len(template)
    rows = _np.empty((n, width), _np.uint8)
    rows[:] = _np.frombuffer(template, _np.uint8)
    rows[:, len(head):len(head) + kw] = _np.frombuffer(jk, _np.uint8).reshape(n, kw)
    rows[:, payload_at + 2:payload_at + 10] = _np.array(stamps, ">u8").view(_np.uint8).reshape(n, 8)
    if vw:
        rows[:, width - vw:] = _np.frombuffer(jv, _np.uint8).reshape(n, vw)
    data = rows.tobytes()
    payloads = [data[at:at + pw] for at in range(payload_at, n * width, width)]
    return payloads, _packer.pack_array_header(n) + data
