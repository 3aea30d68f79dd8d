"""From stored keys and cells back to the API's rows: the partition key and clustering bytes
decoded to column values, and a live row's cells to a dict (writetime/ttl entries on request,
multi-cell collections assembled from their elements). Pure functions over a Table schema;
the inverse of engine/mutation.py's key and cell encoding.
"""
from __future__ import annotations

from engine import collections as coll
from engine import cql_types
from engine.schema import Table


def decode_clustering(table: Table, ck: bytes) -> dict:
    out, pos = {}, 0
    for col in table.clustering:
        t = coll.parse(col.cql_type) if "<" in col.cql_type else col.cql_type
        if col.descending:
            n = coll.ordered_length(t, ck, pos, True)
            value, _ = coll.decode_ordered(t, cql_types.invert(ck[pos:pos + n]), 0)
            pos += n
        else:
            value, pos = coll.decode_ordered(t, ck, pos)
        out[col.name] = value
    return out


def decode_key(table: Table, key: bytes) -> dict:
    cols = table.partition_key
    if not any("<" in c.cql_type for c in cols):
        values = cql_types.deserialize_partition_key([c.cql_type for c in cols], key)
        return {c.name: v for c, v in zip(cols, values)}
    types = [coll.parse(c.cql_type) or c.cql_type for c in cols]
    if len(cols) == 1:
        return {cols[0].name: coll.deserialize(types[0], key)}
    out, pos = {}, 0
    for col, t in zip(cols, types):
        length = int.from_bytes(key[pos:pos + 2], "big")
        out[col.name] = coll.deserialize(t, key[pos + 2:pos + 2 + length])
        pos += 3 + length
    return out


def row_dict(table: Table, key_values: dict, ck: bytes, cells: dict, columns=None,
             writetime: bool = False, paths: bool = False, ttl_now: int | None = None) -> dict:
    """A live row as a plain dict; with writetime=True also 'writetime(col)' entries (µs), with
    ttl_now (the reader's clock, s) also 'ttl(col)': the seconds left, None for a cell without TTL.

    A multi-cell collection is assembled from its element cells (none: the column is absent,
    i.e. null); paths=True gives a list as [(path, value), ...] (what `l[i] = v` needs)."""
    row = dict(key_values)
    if ck:
        row.update(decode_clustering(table, ck))
    elif table.clustering:                  # the static row alone: null clustering
        row.update((c.name, None) for c in table.clustering)
    by_id = table.by_id
    elements = None
    for col_id, cell in cells.items():
        if col_id.__class__ is tuple:
            if elements is None:
                elements = {}
            elements.setdefault(col_id[0], []).append((col_id[1], cell[3]))
            continue
        col = by_id.get(col_id)
        if col is None or (columns is not None and col.name not in columns):
            continue
        value = cell[3]
        if col.cql_type == "blob":
            row[col.name] = value
        elif "<" in col.cql_type:
            row[col.name] = coll.deserialize(coll.parse(col.cql_type), value)
        else:
            row[col.name] = cql_types.deserialize(col.cql_type, value)
        if writetime:
            row[f"writetime({col.name})"] = cell[0]
        if ttl_now is not None:
            row[f"ttl({col.name})"] = cell[1] - ttl_now if cell[2] else None
    if elements:
        for col_id, pairs in elements.items():
            col = by_id.get(col_id)
            if col is None or (columns is not None and col.name not in columns):
                continue
            pairs.sort()
            value = coll.assemble(coll.parse(col.cql_type), [p for p in pairs if p[0]], paths)
            if value is not None:
                row[col.name] = value
    if columns is not None:
        keep = set(columns) | set(key_values) | {c.name for c in table.clustering}
        if writetime:
            keep |= {f"writetime({c})" for c in columns}
        if ttl_now is not None:
            keep |= {f"ttl({c})" for c in columns}
        row = {k: v for k, v in row.items() if k in keep}
    return row
