"""The plain insert: the write hot path's encoder for the commonest INSERT, without Partition objects.

A plain insert is an INSERT without TTL (and without a table default_time_to_live) of one row
into a table with one partition-key column, no clustering and no static columns, that sets only
scalar regular columns (no collections). encode_plain_insert turns it straight into the payload
bytes (docs/format.md#partition-payload) plus the counts the memtable's statistics need;
Store.insert and Batch.insert apply it with ColumnFamilyStore.apply_plain / Memtable.put_plain.
Anything else returns None and takes mutation.build_insert_encoded, the general path.

Invariants: the payload is byte for byte what build_insert_encoded (with ttl 0) makes for the
same row, timestamp and now; every error the fast path raises is the general path's, with the
same message (tests/engine/test_put_fast_path.py). The per-table plan is computed once per Table
object (ALTER TABLE makes a new Table, so a schema change is never missed).
"""
from __future__ import annotations

from engine import cql_types
from engine.errors import InvalidRequest
from engine.mutation import MAX_KEY_BYTES, _first, partition_key_bytes
from engine.partition import _packb
from engine.schema import MARKER_COLUMN_ID, Table


def _plain_plan(table: Table):
    """The plain-insert plan of a table, made once per Table (ALTER makes a new Table): (partition
    key name, partition key type, {regular column name: (id, cql type, is blob)}, the only
    regular column's (name, id) when the table has one and it is a blob, else None) for a table
    with one partition-key column, no clustering, no static columns and no
    default_time_to_live; False for any other table (table options are never changed in place:
    ALTER makes a new Table). Collection columns are left out of the map, so a row that sets
    one takes the general path."""
    plan = table.__dict__.get("_plain_insert_plan")
    if plan is None:
        plan = False
        if (len(table.partition_key) == 1 and not table.clustering and not table.statics
                and not table.options.get("default_time_to_live")):
            pk = table.partition_key[0]
            only = table.regular[0] if len(table.regular) == 1 else None
            plan = (pk.name, pk.cql_type, {c.name: (c.id, c.cql_type, c.cql_type == "blob")
                                           for c in table.regular if "<" not in c.cql_type},
                    (only.name, only.id) if only is not None and only.cql_type == "blob" else None)
        object.__setattr__(table, "_plain_insert_plan", plan)
    return plan


def encode_plain_insert(table: Table, row: dict, ts: int, now_s: int, max_value_bytes: int):
    """The write hot path's fast encoder: (key, payload, cell count, tombstones) for an
    INSERT without TTL (and no default_time_to_live) of one row into a plain table (_plain_plan)
    that sets only scalar regular columns, or None when that is not the case (the caller then
    takes the general path, which also raises every error except an oversized value).

    The payload is byte for byte build_insert_encoded's (docs/format.md#partition-payload): the
    plain form [ts, col, value, ...] (version 3) when no column is null, else the general form
    [nil, [[b"", nil, nil, [0, ts, b""], cell...]], []] where a null is a tombstone
    [id, ts, nil, now_s]; cells sorted by column id. The cell count includes the marker."""
    plan = table.__dict__.get("_plain_insert_plan")
    if plan is None:
        plan = _plain_plan(table)
    if not plan:
        return None
    pk_name, pk_type, cols, only = plan
    raw = row.get(pk_name)
    if pk_type == "blob" and raw.__class__ is bytes and 0 < len(raw) <= MAX_KEY_BYTES:
        key = raw
    else:
        key = partition_key_bytes(table, row)  # first, as on the general path: its errors come first
    if only is not None and len(row) == 2:  # the key and the one blob column: [ts, id, value]
        value = row.get(only[0])
        if value.__class__ is bytes and len(value) <= max_value_bytes:
            return key, _packb([ts, only[1], value]), 2, 0
    flat = [ts]         # the plain form, built as the cells come while none is null
    last_id = -1        # ascending ids so far: no sort needed
    cells = None        # (id, data or None) once the row needs sorting or holds a null
    tombstones = 0
    for name, value in row.items():
        spec = cols.get(name)
        if spec is None:
            if name == pk_name:
                continue
            return None  # a collection, or an unknown column: the general path decides (and raises)
        if value is None:
            if cells is None:
                cells = [*zip(flat[1::2], flat[2::2])]
            cells.append((spec[0], None))
            tombstones += 1
            continue
        if spec[2] and value.__class__ is bytes:
            data = value
        else:
            ctype = spec[1]
            data = cql_types.serialize(ctype, cql_types.validate(ctype, value, name))
        if len(data) > max_value_bytes:
            raise InvalidRequest(
                f"value of column '{name}' is {len(data)} bytes, over max_value_bytes={max_value_bytes}")
        col_id = spec[0]
        if cells is not None:
            cells.append((col_id, data))
        elif col_id > last_id:
            flat += (col_id, data)
            last_id = col_id
        else:
            cells = [*zip(flat[1::2], flat[2::2]), (col_id, data)]
    if cells is None:
        return key, _packb(flat), len(flat) // 2 + 1, 0
    if len(cells) > 1:
        cells.sort(key=_first)  # column ids are unique: only the id is compared
    count = len(cells) + 1  # the marker included
    if not tombstones:
        flat = [ts]
        for col_id, data in cells:
            flat += (col_id, data)
        return key, _packb(flat), count, 0
    encoded = [b"", None, None, [MARKER_COLUMN_ID, ts, b""]]
    encoded += [[c, ts, d] if d is not None else [c, ts, None, now_s] for c, d in cells]
    return key, _packb([None, [encoded], []]), count, tombstones
