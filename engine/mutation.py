"""From API calls to partition updates: validation, keys and cells (engine/row_decode.py goes back).

Pure functions over a Table schema. Every check happens here, before anything is applied:
unknown columns, wrong types, missing key columns, keys over 64 KiB, values over the configured
maximum and TTLs over 20 years raise InvalidRequest naming the problem.

Clustering bounds are positions in the table's clustering order (a DESC column's start is its
highest value); a prefix P covers the byte interval [P, successor(P)).
"""
from __future__ import annotations

from engine import collections as coll
from engine import cql_types
from engine.errors import InvalidRequest
from engine.partition import NO_DELETION_TIME, Partition, Row, encode_partition
from engine.partition import _packb  # the payload packer (one shared msgpack.Packer)
from engine.schema import MARKER_COLUMN_ID, Table

MAX_KEY_BYTES = 65535
_FIRST_CLUSTERING = b"\x00"  # the smallest non-empty clustering: range deletions start here, past the static row
MAX_TTL_SECONDS = 20 * 365 * 24 * 3600


def partition_key_bytes(table: Table, values: dict) -> bytes:
    cols = table.partition_key
    if len(cols) == 1:
        col = cols[0]
        if col.name not in values:
            raise InvalidRequest(f"missing partition key column '{col.name}' for {table.qualified_name}")
        raw = values[col.name]
        if col.cql_type == "blob" and type(raw) is bytes:
            key = raw
        elif "<" in col.cql_type:
            key = coll.serialize(coll.parse(col.cql_type), _validated(col, raw))
        else:
            key = cql_types.serialize(col.cql_type, _validated(col, raw))
    else:
        vals = []
        for col in cols:
            if col.name not in values:
                raise InvalidRequest(f"missing partition key column '{col.name}' for {table.qualified_name}")
            vals.append(_validated(col, values[col.name]))
        if any("<" in c.cql_type for c in cols):
            key = _composite_key(cols, vals)
        else:
            key = cql_types.serialize_partition_key([c.cql_type for c in cols], vals)
    if len(key) > MAX_KEY_BYTES:
        raise InvalidRequest(f"partition key of {len(key)} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes (64 KiB)")
    if not key:
        raise InvalidRequest("the partition key may not be empty")
    return key


def _composite_key(cols, vals) -> bytes:
    """A composite partition key with a frozen collection among its components."""
    out = bytearray()
    for col, value in zip(cols, vals):
        part = coll.serialize(coll.parse(col.cql_type) or col.cql_type, value)
        out += len(part).to_bytes(2, "big") + part + b"\x00"
    return bytes(out)


def _validated(col, value):
    if value is None:
        raise InvalidRequest(f"key column '{col.name}' may not be null")
    if "<" in col.cql_type:
        return coll.validate(coll.parse(col.cql_type), value, col.name)
    return cql_types.validate(col.cql_type, value, col.name)


def _encode_component(col, value) -> bytes:
    t = coll.parse(col.cql_type) if "<" in col.cql_type else col.cql_type
    enc = coll.encode_ordered(t, _validated(col, value))
    return cql_types.invert(enc) if col.descending else enc


def clustering_prefix(table: Table, values) -> bytes:
    """Encode clustering values (a dict by name, or a tuple in clustering order) as a prefix."""
    cols = table.clustering
    if isinstance(values, dict):
        out, missing = [], False
        for col in cols:
            if col.name in values:
                if missing:
                    raise InvalidRequest(f"clustering column '{col.name}' given without the ones before it")
                out.append(_encode_component(col, values[col.name]))
            else:
                missing = True
        return b"".join(out)
    values = tuple(values)
    if len(values) > len(cols):
        raise InvalidRequest(f"{len(values)} clustering values given; {table.qualified_name} has {len(cols)}")
    return b"".join(_encode_component(col, v) for col, v in zip(cols, values))


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix` (None = infinity)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def slice_bounds(table: Table, start, end, start_inclusive: bool = True,
                 end_inclusive: bool = True) -> tuple[bytes, bytes | None]:
    lo = b""
    if start is not None and (p := clustering_prefix(table, start)):
        lo = p if start_inclusive else (successor(p) or b"\xff" * (len(p) + 1))
    hi = None
    if end is not None and (p := clustering_prefix(table, end)):
        hi = successor(p) if end_inclusive else p
    return lo, hi


def _full_clustering(table: Table, values: dict) -> bytes:
    missing = [c.name for c in table.clustering if c.name not in values]
    if missing:
        raise InvalidRequest(f"missing clustering column(s) {missing} for {table.qualified_name}")
    return b"".join(_encode_component(c, values[c.name]) for c in table.clustering)


def _ttl(table: Table, ttl: int | None) -> int:
    if ttl is None:
        ttl = table.option("default_time_to_live") or 0
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        raise InvalidRequest(f"ttl must be a non-negative integer number of seconds, got {ttl!r}")
    if ttl > MAX_TTL_SECONDS:
        raise InvalidRequest(f"ttl {ttl} exceeds the maximum of {MAX_TTL_SECONDS} seconds (20 years)")
    return ttl


def build_insert(table: Table, row: dict, ts: int, now_s: int, ttl: int | None,
                 max_value_bytes: int) -> tuple[bytes, Partition]:
    """INSERT: a row marker plus one cell per given regular column (None writes a tombstone)."""
    key, update, _ = build_insert_encoded(table, row, ts, now_s, ttl, max_value_bytes)
    return key, update


def build_insert_encoded(table: Table, row: dict, ts: int, now_s: int, ttl: int | None,
                         max_value_bytes: int, statics_done: bool = False) -> tuple[bytes, Partition, bytes]:
    """build_insert plus the update's payload, built in the same pass (the write hot path).

    The payload is byte for byte encode_partition(update) (docs/format.md#partition-payload):
    the plain form [ts, col, value, ...] (version 3) for a row without clustering, TTL, null or
    collection element; else [nil, [[ckey, nil, nil, cell...]], []] with cells sorted by column
    id, the marker (id 0) first.
    """
    if table.statics and not statics_done:
        return _build_insert_static(table, row, ts, now_s, ttl, max_value_bytes)
    key = partition_key_bytes(table, row)
    ck = _full_clustering(table, row) if table.clustering else b""
    if ttl is None:
        ttl = table.option("default_time_to_live") or 0
    if ttl.__class__ is not int or ttl:  # exactly int 0 needs no check
        ttl = _ttl(table, ttl)
    by_name = table.by_name
    plain = not ttl and not ck          # the plain form, until a null or an element says otherwise
    if ttl:
        expiry = now_s + ttl
        cells = {MARKER_COLUMN_ID: (ts, expiry, ttl, b"")}
        encoded = [[MARKER_COLUMN_ID, ts, b"", ttl, expiry]]
    else:
        expiry = NO_DELETION_TIME
        cells = {MARKER_COLUMN_ID: (ts, expiry, 0, b"")}
        encoded = [[MARKER_COLUMN_ID, ts, b""]]
    for name, value in row.items():
        col = by_name.get(name)
        if col is None:
            raise InvalidRequest(f"unknown column '{name}' in table {table.qualified_name}")
        if col.kind != "regular":
            continue
        col_id = col.id
        ctype = None
        if "<" in col.cql_type:
            ctype = coll.parse(col.cql_type)
            if not ctype.frozen:
                _collection_cells(ctype, col, value, ts, now_s, ttl, expiry, cells, encoded, max_value_bytes)
                plain = False
                continue
        if value is None:
            plain = False
            cells[col_id] = (ts, now_s, 0, None)
            encoded.append([col_id, ts, None, now_s])
            continue
        if col.cql_type == "blob" and type(value) is bytes:
            data = value
        elif ctype is not None:
            data = coll.serialize(ctype, coll.validate(ctype, value, name))
        else:
            data = cql_types.serialize(col.cql_type, cql_types.validate(col.cql_type, value, name))
        if len(data) > max_value_bytes:
            raise InvalidRequest(
                f"value of column '{name}' is {len(data)} bytes, over max_value_bytes={max_value_bytes}")
        cells[col_id] = (ts, expiry, ttl, data)
        encoded.append([col_id, ts, data, ttl, expiry] if ttl else [col_id, ts, data])
    if len(encoded) > 2:
        try:
            encoded.sort(key=_first)  # column ids are unique: only the id is compared
        except TypeError:             # collection elements: [id, path] keys among the ids
            encoded.sort(key=_element_order)
    update = Partition(None, {ck: Row(None, cells)}, [])
    if plain:
        flat = [ts]
        for i in range(1, len(encoded)):
            c = encoded[i]
            flat += (c[0], c[2])
        return key, update, _packb(flat)
    encoded[0:0] = (ck, None, None)
    return key, update, _packb([None, [encoded], []])


def _build_insert_static(table: Table, row: dict, ts: int, now_s: int, ttl: int | None,
                         max_value_bytes: int) -> tuple[bytes, Partition, bytes]:
    """INSERT into a table with static columns: static cells go to the static row (clustering b"",
    no marker); the rest, with the marker, to the row the clustering values name. Without any
    clustering value only static columns may be given (Cassandra's rule)."""
    statics = {n: v for n, v in row.items() if n in table.by_name and table.by_name[n].static}
    rest = {n: v for n, v in row.items() if n not in statics}
    if any(c.name in row for c in table.clustering) or not statics:
        key, update, _ = build_insert_encoded(table, rest, ts, now_s, ttl, max_value_bytes, statics_done=True)
    else:
        bad = [n for n in rest if table.column(n).kind == "regular"]
        if bad:
            raise InvalidRequest(f"missing clustering column(s) {[c.name for c in table.clustering]} for "
                                 f"{table.qualified_name}: only static columns can be written without them")
        key, update = partition_key_bytes(table, row), Partition(None, {}, [])
    if statics:
        ttl = _ttl(table, ttl)
        update.rows[b""] = Row(None, {table.by_name[n].id: _cell(table.by_name[n], v, ts, now_s, ttl, max_value_bytes)
                                      for n, v in statics.items()})
    return key, update, encode_partition(update)


def _cell(col, value, ts: int, now_s: int, ttl: int, max_value_bytes: int) -> tuple:
    if value is None:
        return (ts, now_s, 0, None)
    if col.cql_type == "blob" and type(value) is bytes:
        data = value
    else:
        data = cql_types.serialize(col.cql_type, cql_types.validate(col.cql_type, value, col.name))
    if len(data) > max_value_bytes:
        raise InvalidRequest(f"value of column '{col.name}' is {len(data)} bytes, over max_value_bytes={max_value_bytes}")
    return (ts, now_s + ttl, ttl, data) if ttl else (ts, NO_DELETION_TIME, 0, data)


def _first(cell: list) -> int:
    return cell[0]


def _element_order(cell: list) -> tuple:
    return (cell[0], b"") if cell[0].__class__ is int else tuple(cell[0])


def _collection_cells(ctype, col, value, ts: int, now_s: int, ttl: int, expiry: int, cells: dict,
                      encoded: list, max_value_bytes: int) -> None:
    """A multi-cell collection's cells: an overwrite (a value or None) writes the collection
    tombstone (at ts - 1, or at ts for a null) and the elements; a CollectionOp only its elements."""
    col_id = col.id

    def live(data: bytes) -> tuple:
        if len(data) > max_value_bytes:
            raise InvalidRequest(
                f"an element of column '{col.name}' is {len(data)} bytes, over max_value_bytes={max_value_bytes}")
        return (ts, expiry, ttl, data)

    def dead() -> tuple:
        return (ts, now_s, 0, None)

    if isinstance(value, coll.CollectionOp):
        pairs = coll.op_cells(ctype, value, col.name, ts, live, dead)
    else:
        tomb_ts = ts if value is None else ts - 1
        pairs = [(coll.TOMBSTONE_PATH, (tomb_ts, now_s, 0, None))]
        if value is not None:
            pairs += coll.element_cells(ctype, coll.validate(ctype, value, col.name), ts, live)
    for path, cell in pairs:
        cells[(col_id, path)] = cell
        c_ts, ldt, c_ttl, data = cell
        if data is None:
            encoded.append([[col_id, path], c_ts, None, ldt])
        else:
            encoded.append([[col_id, path], c_ts, data, c_ttl, ldt] if c_ttl else [[col_id, path], c_ts, data])


def build_delete(table: Table, key_values: dict, ts: int, now_s: int, columns=None,
                 start=None, end=None, start_inclusive: bool = True,
                 end_inclusive: bool = True) -> tuple[bytes, Partition]:
    """DELETE at the narrowest level the arguments name: cells, row, range or partition."""
    key = partition_key_bytes(table, key_values)
    for name in key_values:
        table.column(name)
    given = [c for c in table.clustering if c.name in key_values]
    deletion = (ts, now_s)
    if columns:
        def is_static(entry) -> bool:
            return table.column(entry if isinstance(entry, str) else entry[0]).static
        rows = {}
        statics = [e for e in columns if is_static(e)]
        if statics:                         # DELETE s: tombstones in the static row
            rows[b""] = Row(None, _deleted_cells(table, statics, ts, now_s))
        plain = [e for e in columns if not is_static(e)]
        if plain:
            ck = _full_clustering(table, key_values) if table.clustering else b""
            rows[ck] = Row(None, _deleted_cells(table, plain, ts, now_s))
        return key, Partition(None, rows, [])
    if start is not None or end is not None:
        lo, hi = slice_bounds(table, start, end, start_inclusive, end_inclusive)
        if not lo and table.statics:        # a range never covers the static row (clustering b"")
            lo = _FIRST_CLUSTERING
        return key, Partition(None, {}, [(lo, hi, ts, now_s)])
    if table.clustering and len(given) == len(table.clustering):
        ck = _full_clustering(table, key_values)
        return key, Partition(None, {ck: Row(deletion, {})}, [])
    if given:
        prefix = clustering_prefix(table, key_values)
        return key, Partition(None, {}, [(prefix, successor(prefix), ts, now_s)])
    return key, Partition(deletion, {}, [])


def _deleted_cells(table: Table, columns, ts: int, now_s: int) -> dict:
    """Tombstones for DELETE of columns: a cell tombstone, a collection tombstone for a multi-cell
    collection, or an element's tombstone for a (name, CollectionOp) entry (DELETE m[k], l[i])."""
    out = {}
    for entry in columns:
        name, op = (entry, None) if isinstance(entry, str) else entry
        col = table.column(name)
        if col.kind != "regular":
            raise InvalidRequest(f"cannot delete primary key column(s) ['{name}']; delete the row instead")
        ctype = coll.parse(col.cql_type) if "<" in col.cql_type else None
        if op is not None:
            if ctype is None or ctype.frozen:
                raise InvalidRequest(f"column '{name}' is {col.cql_type}: only elements of non-frozen collections "
                                     "can be deleted")
            for path, cell in coll.op_cells(ctype, op, name, ts, None, lambda: (ts, now_s, 0, None)):
                out[(col.id, path)] = cell
        elif ctype is not None and not ctype.frozen:
            out[(col.id, coll.TOMBSTONE_PATH)] = (ts, now_s, 0, None)
        else:
            out[col.id] = (ts, now_s, 0, None)
    return out
