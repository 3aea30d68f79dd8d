"""The replica's check of a partition update (docs/format.md#partition-payload): a payload from
elsewhere (a coordinator, a peer's stream, a Paxos commit) is decoded once and must be the layout's
exact shape, canonical, so the same bytes can go to the commit log and the memtable as they are.
Anything else is an InvalidRequest naming the problem, and nothing is applied.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from engine.partition import NO_DELETION_TIME, Partition, Row, _unpackb, cell_order

_INT64 = 2**63


def decode_update(payload, plain_as_counts: bool = False):
    """A partition payload from elsewhere (a coordinator, a peer's stream), decoded and checked.

    The replica's only decode of a mutation (docs/format.md#partition-payload): it must be the
    layout's exact shape, with rows in strictly increasing clustering order, cells in strictly
    increasing column-id order and every integer in 0..2^63-1, so the bytes are canonical and
    can go to the commit log and memtable as they are. Anything else is an InvalidRequest naming
    the problem; nothing is applied. With plain_as_counts, a plain-form payload (version 3) is
    checked alike but comes back as `(ts, cells, 0, 0)`, what Store._append takes in place of a
    Partition (ColumnFamilyStore.apply_plain: no Partition object).
    """
    if type(payload) is not bytes:
        raise InvalidRequest(f"partition update must be bytes, not {type(payload).__name__}")
    try:
        struct = _unpackb(payload)
    except Exception as e:  # msgpack raises many types for garbage; each one means "does not decode"
        raise InvalidRequest(f"partition update does not decode: {type(e).__name__}: {e}") from None
    try:
        if type(struct) is list and struct and type(struct[0]) is int:
            return _checked_plain(struct, not plain_as_counts)
        return _checked_partition(struct)
    except (TypeError, ValueError, IndexError) as e:
        raise InvalidRequest(f"partition update is malformed: {e}") from None


def decode_update_for_apply(payload):
    """decode_update(payload, plain_as_counts=True): the replica's write path."""
    return decode_update(payload, True)


def _checked_partition(struct) -> Partition:
    if type(struct) is not list or len(struct) != 3:
        raise ValueError("payload is not [partition_deletion, rows, range_tombstones]")
    pdel, rows, ranges = struct
    if pdel is not None:
        pdel = _deletion(pdel, "partition deletion")
    if type(rows) is not list or type(ranges) is not list:
        raise ValueError("rows and range tombstones must be arrays")
    out_rows, last_ck = {}, None
    for r in rows:
        if type(r) is not list or len(r) < 3 or type(r[0]) is not bytes:
            raise ValueError("a row is not [clustering (bin), mfda, ldt, cell...]")
        ck = r[0]
        if last_ck is not None and ck <= last_ck:
            raise ValueError(f"rows are not in strictly increasing clustering order at {ck.hex()[:32]}")
        last_ck = ck
        rdel = None if r[1] is None and r[2] is None else _deletion(r[1:3], "row deletion")
        cells, last_col = {}, (-1, b"")
        for c in r[3:]:
            if type(c) is not list or not 3 <= len(c) <= 5:
                raise ValueError(f"a cell of row {ck.hex()[:32]} is not a 3-, 4- or 5-element array")
            col, ts, value = c[0], c[1], c[2]
            if type(col) is list and len(col) == 2 and type(col[0]) is int and type(col[1]) is bytes:
                col = (col[0], col[1])
            elif type(col) is not int:
                raise ValueError(f"cell key {col!r} is neither a column id nor [column id, path] in row {ck.hex()[:32]}")
            order = cell_order(col)
            if not last_col < order or not 0 <= order[0] < 65536:
                raise ValueError(f"column id {col!r} is out of order or out of range in row {ck.hex()[:32]}")
            last_col = order
            _int(ts, "cell timestamp")
            n = len(c)
            if n == 3 and type(value) is bytes:
                cells[col] = (ts, NO_DELETION_TIME, 0, value)
            elif n == 5 and type(value) is bytes:
                cells[col] = (ts, _int(c[4], "cell expiry"), _int(c[3], "cell ttl"), value)
            elif n == 4 and value is None:
                cells[col] = (ts, _int(c[3], "cell local deletion time"), 0, None)
            else:
                raise ValueError(f"cell {col} of row {ck.hex()[:32]} is neither live, expiring nor a tombstone")
        out_rows[ck] = Row(rdel, cells)
    out_ranges = []
    for rt in ranges:
        if (type(rt) is not list or len(rt) != 4 or type(rt[0]) is not bytes
                or (rt[1] is not None and type(rt[1]) is not bytes)):
            raise ValueError("a range tombstone is not [lo (bin), hi (bin) | nil, mfda, ldt]")
        out_ranges.append((rt[0], rt[1], _int(rt[2], "range mfda"), _int(rt[3], "range ldt")))
    return Partition(pdel, out_rows, out_ranges)


def _checked_plain(struct: list, build: bool = True):
    """The plain form [ts, col, value, ...] (payload version 3): an odd length, column ids
    strictly increasing in 1..65535 (the marker, 0, is implied), every value bin. Returns its
    Partition, or with build=False `(ts, cell count with the marker, 0 tombstones, 0)`."""
    ts = _int(struct[0], "plain row timestamp")
    if len(struct) % 2 != 1:
        raise ValueError(f"plain row of {len(struct)} items is not [ts, column id, value, ...]")
    cells, last = {0: (ts, NO_DELETION_TIME, 0, b"")}, 0
    for i in range(1, len(struct), 2):
        col, value = struct[i], struct[i + 1]
        if type(col) is not int or not last < col < 65536:
            raise ValueError(f"column id {col!r} of the plain row is out of order or out of range")
        if type(value) is not bytes:
            raise ValueError(f"value of column {col} of the plain row is not bin")
        last = col
        if build:
            cells[col] = (ts, NO_DELETION_TIME, 0, value)
    if not build:
        return (ts, (len(struct) + 1) >> 1, 0, 0)
    return Partition(None, {b"": Row(None, cells)}, [])


def _deletion(d, what: str) -> tuple:
    if type(d) is not list or len(d) != 2:
        raise ValueError(f"{what} is not [marked_for_delete_at, local_deletion_time]")
    return (_int(d[0], what), _int(d[1], what))


def _int(v, what: str) -> int:
    if type(v) is not int or not 0 <= v < _INT64:
        raise ValueError(f"{what} {v!r} is not an integer in 0..2^63-1")
    return v
