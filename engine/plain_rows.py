"""The row dicts of a run of plain partitions, made in C-level passes: a scan's fast path.

`plain_rows` turns a run of partitions (their keys and their single payloads, engine/block_merge.py)
into one row dict each, exactly the dicts results.simple_row makes one by one, when every
payload of the run is in the plain form (docs/format.md, "The plain form (payload version 3)")
with the same column ids, each a regular column of the table; else it returns None and the
caller takes the row-by-row path for the run. The run is checked as a whole: one unpack per
payload (a C-level map), then the shape of every payload compared with the first one's (a plain
payload's items 1, 3, 5... are its column ids; a general-form payload's item 1 is a list, so it
never matches). Values are converted as row_dict converts them (column_converters; blob: as is).
"""
from __future__ import annotations

from functools import partial
from operator import itemgetter

import msgpack

from engine import mutation as mut

_unpackb = msgpack.unpackb
_second = itemgetter(1)


def plain_rows(t, converters: dict, blob_key: str | None, keys, payloads) -> list[dict] | None:
    """[row dict] of `keys` / `payloads` (same length, every payload bytes), or None (module
    docstring). `converters` is results.column_converters(t); `blob_key` the partition key
    column's name when it is one blob column (its bytes are the key), else None."""
    try:
        flats = list(map(_unpackb, payloads))
    except (ValueError, TypeError, msgpack.UnpackException):
        return None  # the row-by-row path reports it
    first = flats[0]
    if first.__class__ is not list or not first or first[0].__class__ is not int:
        return None
    n, width = len(flats), len(first)
    ids = first[1::2]
    convs = [converters.get(c) for c in ids]
    if None in convs or not width & 1:
        return None
    if width == 3:  # one column: the commonest shape, by one comprehension
        if list(map(_second, flats)).count(ids[0]) != n:
            return None
        name, fn = convs[0]
        try:
            if blob_key is not None:
                if fn is None:
                    return [{blob_key: k, name: v} for k, (_, _, v) in zip(keys, flats)]
                return [{blob_key: k, name: fn(v)} for k, (_, _, v) in zip(keys, flats)]
            key_rows = list(map(partial(mut.decode_key, t), keys))
            for row, (_, _, v) in zip(key_rows, flats):
                row[name] = v if fn is None else fn(v)
            return key_rows
        except ValueError:  # a payload of another length: not this shape
            return None
    if list(map(len, flats)).count(width) != n:
        return None
    if width > 1:
        id_of = itemgetter(*range(1, width, 2))
        if list(map(id_of, flats)).count(id_of(first)) != n:
            return None
    elif list(map(type, map(itemgetter(0), flats))).count(int) != n:  # [ts]: the row marker alone
        return None
    columns = [list(map(itemgetter(i), flats)) if fn is None else list(map(fn, map(itemgetter(i), flats)))
               for i, (_, fn) in zip(range(2, width, 2), convs)]
    names = [name for name, _ in convs]
    if blob_key is not None:
        names.insert(0, blob_key)
        return [dict(zip(names, values)) for values in zip(keys, *columns)]
    key_rows = list(map(partial(mut.decode_key, t), keys))
    for row, values in zip(key_rows, zip(*columns)):
        row.update(zip(names, values))
    return key_rows
