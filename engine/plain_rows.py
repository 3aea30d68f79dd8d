"""The read fast path of plain single-row partitions: one partition's cells (`simple_row_cells`,
point reads) and the row dicts of a run of them made in C-level passes (`plain_rows`, scans).

`plain_rows` turns a run of partitions (their keys and their single payloads, engine/block_merge.py)
into one row dict each, exactly the dicts results.simple_row makes one by one, when every
payload of the run is in the plain form (docs/format.md, "The plain form (payload version 3)")
with the same column ids, each a regular column of the table; else it returns None and the
caller takes the row-by-row path for the run. The run is checked as a whole: one unpack per
payload (a C-level map), then the shape of every payload compared with the first one's (a plain
payload's items 1, 3, 5... are its column ids; a general-form payload's item 1 is a list, so it
never matches). One-column runs (the commonest) are unpacked as one stream (the payloads joined,
one Unpacker: ~15 ns a row less than an unpackb each) and must give exactly n objects that end
where the last payload ends, so trailing bytes, an extra object or a cut payload decline the run.
What the stream cannot tell apart is a payload cut short whose rest begins the next payload with
every object still of the run's shape; the writers never make one (each payload is one packb,
and Data.db blocks are CRC-checked). When that stream is n objects of one byte layout
([int, id, bin] with the same int type and value length: `fixed_values`), nothing is unpacked:
the values are one strided view of the stream. Values are converted as row_dict converts them (column_converters; blob: as is).
"""
from __future__ import annotations

from functools import partial
import msgpack
import numpy

from engine import row_decode
from engine.partition import NO_DELETION_TIME, plain_cells

_unpackb = msgpack.unpackb
_Unpacker = msgpack.Unpacker
_join = b"".join
_ndarray, _dtype, _void = numpy.ndarray, numpy.dtype, numpy.void


def plain_rows(t, converters: dict, blob_key: str | None, keys, payloads) -> list[dict] | None:
    """[row dict] of `keys` / `payloads` (same length, every payload bytes), or None (module
    docstring). `converters` is results.column_converters(t); `blob_key` the partition key
    column's name when it is one blob column (its bytes are the key), else None.

    Each payload's unpacked list is dropped as soon as its row is made: a run of them kept
    alive would be walked, and promoted, by the collector's young collections."""
    try:
        first = _unpackb(payloads[0])
        if first.__class__ is not list or not first or first[0].__class__ is not int:
            return None
        width = len(first)
        ids = first[1::2]
        convs = [converters.get(c) for c in ids]
        if None in convs or not width & 1:
            return None
        n = len(payloads)
        flats = map(_unpackb, payloads)
        if width == 3:  # one column, the commonest shape: one comprehension; a payload of
            cid = ids[0]  # another length raises ValueError, one of another form fails `c == cid`
            name, fn = convs[0]
            stream = _join(payloads)  # the payloads as one msgpack stream: one unpacker, not n
            values = fixed_values(stream, len(payloads), cid)
            if values is not None:  # n objects [int, cid, bin] of one byte layout: no unpacking
                if fn is not None:
                    values = list(map(fn, values))
                if blob_key is not None:
                    return [{blob_key: k, name: v} for k, v in zip(keys, values)]
                decode_key = partial(row_decode.decode_key, t)
                return [{**decode_key(k), name: v} for k, v in zip(keys, values)]
            flats = _Unpacker(use_list=False)  # tuples: a little cheaper to make than lists
            flats.feed(stream)
            if blob_key is not None:
                if fn is None:
                    rows = [{blob_key: k, name: v} for k, (_, c, v) in zip(keys, flats) if c == cid]
                else:
                    rows = [{blob_key: k, name: fn(v)} for k, (_, c, v) in zip(keys, flats) if c == cid]
            else:
                decode_key = partial(row_decode.decode_key, t)
                rows = [{**decode_key(k), name: v if fn is None else fn(v)}
                        for k, (_, c, v) in zip(keys, flats) if c == cid]
            # n objects that end where the payloads end (tell: the bytes the n objects took)
            return rows if len(rows) == n and flats.tell() == len(stream) else None
        rows = []
        for k, flat in zip(keys, flats):
            if len(flat) != width or flat[1::2] != ids:
                return None
            row = {blob_key: k} if blob_key is not None else row_decode.decode_key(t, k)
            for (name, fn), v in zip(convs, flat[2::2]):
                row[name] = v if fn is None else fn(v)
            rows.append(row)
        return rows
    except (ValueError, TypeError, msgpack.UnpackException):
        return None  # not this shape, or not msgpack: the row-by-row path decides (and reports)


# msgpack int types of a fixed size: the type byte -> the int's size with it (positive fixints and
# negative fixints are one byte, which is their own type byte)
_INT_SIZES = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}
_BIN8, _BIN16, _FIXARRAY_3 = 0xC4, 0xC5, 0x93


def fixed_values(stream: bytes, n: int, cid: int) -> list | None:
    """The n values of `stream` (a run's payloads joined) when it is n msgpack objects of one
    byte layout, each [int, cid, bin] (the plain one-column form), with the same int type, `cid`
    a positive fixint and a bin8 or bin16 of the same length; else None (the caller unpacks).
    That is what unpacking the stream would find (n objects that end where it ends) and it is
    checked at C speed: the stream's length, then each header byte's column of the (n, L)
    stream; the values are one strided numpy view made bytes (tolist)."""
    size, rest = divmod(len(stream), n) if n else (0, 1)
    if rest or size < 5 or stream[0] != _FIXARRAY_3:
        return None
    b1 = stream[1]
    ts_end = 1 + _INT_SIZES.get(b1, 1 if b1 < 0x80 or b1 >= 0xE0 else 0)
    if ts_end == 1 or size < ts_end + 3 or not 0 <= cid < 0x80 or stream[ts_end] != cid:
        return None
    kind = stream[ts_end + 1]
    at = ts_end + (3 if kind == _BIN8 else 4 if kind == _BIN16 else 0)
    if at == ts_end or size < at or int.from_bytes(stream[ts_end + 2:at], "big") != size - at:
        return None
    for i in (0, 1, *range(ts_end, at)):  # every header byte but the int's own (any int is a timestamp)
        if stream[i::size].count(stream[i]) != n:
            return None
    if at == size:  # empty values
        return [b""] * n
    return _ndarray((n,), _dtype((_void, size - at)), stream, at, (size,)).tolist()


def simple_row_cells(payload: bytes) -> dict | None:
    """The read fast path for a plain single-row partition: its cells {column id: (ts,
    NO_DELETION_TIME, 0, value)}, exactly what partition.live_row returns for it; or None
    whenever the payload is anything else (a deletion of any level, more than one row or a
    clustering, a TTL or tombstone cell, a value that is not bytes), so the caller takes the
    general path. It relies only on the payload layout of docs/format.md#partition-payload:
    a plain-form payload (version 3) always qualifies."""
    try:
        struct = _unpackb(payload)
    except ValueError:
        return None
    if struct[0].__class__ is int:     # the plain form: [ts, col, value, ...]
        return plain_cells(struct)
    pdel, rows, ranges = struct
    if pdel is not None or ranges or len(rows) != 1:
        return None
    row = rows[0]
    if row[0] != b"" or row[1] is not None or len(row) == 3:
        return None
    cells = {}
    for i in range(3, len(row)):
        c = row[i]
        if len(c) != 3 or type(c[2]) is not bytes or type(c[0]) is not int:  # (id, path): a collection element
            return None
        cells[c[0]] = (c[1], NO_DELETION_TIME, 0, c[2])
    return cells
