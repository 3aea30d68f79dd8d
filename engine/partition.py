"""Partitions, rows, cells and deletions, and the one reconcile rule every merge uses.

A cell is a tuple `(timestamp_us, local_deletion_time_s, ttl_s, value)`:
  live       (ts, NO_DELETION_TIME, 0, bytes)
  expiring   (ts, expiry_s, ttl_s, bytes)          dead once expiry_s <= now
  tombstone  (ts, deleted_at_s, 0, None)
A deletion (partition, row or range) is `DeletionTime = (marked_for_delete_at_us, local_deletion_time_s)`;
it covers every cell whose timestamp is <= marked_for_delete_at (ties go to the delete).

`reconcile_cells` is Cassandra's Cells.resolveRegular: higher timestamp; then a tombstone or an
expiring cell beats a live one and a tombstone beats an expiring one; then higher local deletion
time; then the greater value (unsigned bytes); then higher ttl, so the result never depends on the
argument order. It is commutative, associative and idempotent (tests/engine/test_partition.py).

Clustering keys are order-preserving bytes (engine/cql_types.py); a range tombstone covers the
half-open byte interval [lo, hi) with hi=None meaning +infinity. Column id 0 is the row marker.
A row's cells are keyed by column id, or by `(column_id, path)` for an element of a multi-cell
collection (engine/collections.py); path b"" is the collection tombstone, which shadows the
column's elements with timestamps <= its own, as a row deletion shadows the row's cells.
The msgpack payload layout is in docs/format.md#partition-payload.
"""
from __future__ import annotations

import msgpack

NO_DELETION_TIME = 2**63 - 1
_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb


def reconcile_cells(a: tuple, b: tuple) -> tuple:
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    if a == b:
        return a
    rank_a = 2 if a[3] is None else (1 if a[2] else 0)
    rank_b = 2 if b[3] is None else (1 if b[2] else 0)
    if rank_a != rank_b:
        return a if rank_a > rank_b else b
    if a[1] != b[1]:
        return a if a[1] > b[1] else b
    if a[3] != b[3]:
        return a if a[3] > b[3] else b
    return a if a[2] >= b[2] else b


def max_deletion(a: tuple | None, b: tuple | None) -> tuple | None:
    """The superseding deletion: higher marked_for_delete_at, then higher local deletion time."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


class Row:
    """One row: its deletion (or None) and its cells by column id."""

    __slots__ = ("deletion", "cells")

    def __init__(self, deletion: tuple | None = None, cells: dict | None = None):
        self.deletion = deletion
        self.cells = {} if cells is None else cells

    def merge(self, other: "Row") -> None:
        if other.deletion is not None:
            self.deletion = max_deletion(self.deletion, other.deletion)
        cells = self.cells
        for col, cell in other.cells.items():
            mine = cells.get(col)
            cells[col] = cell if mine is None else reconcile_cells(mine, cell)

    def __eq__(self, other):
        return isinstance(other, Row) and self.deletion == other.deletion and self.cells == other.cells

    def __repr__(self):
        return f"Row(deletion={self.deletion}, cells={self.cells})"


class Partition:
    """One partition's data: partition deletion, rows by clustering bytes, range tombstones."""

    __slots__ = ("deletion", "rows", "ranges")

    def __init__(self, deletion: tuple | None = None, rows: dict | None = None, ranges: list | None = None):
        self.deletion = deletion
        self.rows = {} if rows is None else rows
        self.ranges = [] if ranges is None else ranges  # [(lo, hi|None, mfda, ldt)]

    def merge(self, other: "Partition") -> "Partition":
        """Merge `other` into self (other is not modified; rows it owns may be adopted)."""
        if other.deletion is not None:
            self.deletion = max_deletion(self.deletion, other.deletion)
        rows = self.rows
        for ck, row in other.rows.items():
            mine = rows.get(ck)
            if mine is None:
                rows[ck] = Row(row.deletion, dict(row.cells))
            else:
                mine.merge(row)
        if other.ranges:
            self.ranges = _merge_ranges(self.ranges + other.ranges)
        return self

    def is_empty(self) -> bool:
        return self.deletion is None and not self.rows and not self.ranges

    def __eq__(self, other):
        return (isinstance(other, Partition) and self.deletion == other.deletion
                and self.rows == other.rows
                and sorted(self.ranges, key=range_order) == sorted(other.ranges, key=range_order))

    def __repr__(self):
        return f"Partition(deletion={self.deletion}, rows={self.rows}, ranges={self.ranges})"


def _merge_ranges(ranges: list) -> list:
    """Deduplicate range tombstones: one per (lo, hi) bound pair, keeping the superseding deletion."""
    best: dict = {}
    for lo, hi, mfda, ldt in ranges:
        key = (lo, hi)
        prev = best.get(key)
        if prev is None or (mfda, ldt) > prev:
            best[key] = (mfda, ldt)
    return sorted(((lo, hi, d[0], d[1]) for (lo, hi), d in best.items()), key=range_order)


def range_order(r: tuple) -> tuple:
    """Sort key for range tombstones: by lower bound, then upper bound (None = +infinity last)."""
    return (r[0], r[1] is None, r[1] or b"", r[2], r[3])


def merge_all(partitions: list[Partition]) -> Partition:
    """Reconcile many versions of one partition into a new Partition."""
    result = Partition()
    for p in partitions:
        result.merge(p)
    return result


# -- payload encoding --------------------------------------------------------------------------
# payload = general | plain   (told apart by the type of the array's first item)
# general = msgpack [pdel, rows, ranges]
#   pdel   = nil | [mfda, ldt]
#   rows   = [[ckey, rdel_mfda|nil, rdel_ldt|nil, cell...], ...]   sorted by ckey
#   cell   = [col, ts, value] | [col, ts, value, ttl, ldt] | [col, ts, nil, ldt]
#   col    = column id | [column id, path]   (a collection element; format version 2)
#   ranges = [[lo, hi|nil, mfda, ldt], ...]
# plain   = msgpack [ts, col, value, col, value, ...]   (format version 3): one row, clustering b"",
#   no deletion, the marker (0, ts, b"") implied, every cell live at ts, columns increasing from 1

def cell_order(key) -> tuple:
    """Sort key of a row's cell keys when collection elements are among them."""
    return (key, b"") if key.__class__ is int else key


def sorted_cells(cells: dict) -> list:
    """A row's (key, cell) pairs in payload order: by column id, a collection's elements by path."""
    try:
        return sorted(cells.items())
    except TypeError:                   # int and (id, path) keys: a row with collection elements
        return sorted(cells.items(), key=lambda kv: cell_order(kv[0]))


def _encode_cell(col, cell: tuple) -> list:
    ts, ldt, ttl, value = cell
    if col.__class__ is tuple:
        col = list(col)
    if value is None:
        return [col, ts, None, ldt]
    if ttl:
        return [col, ts, value, ttl, ldt]
    return [col, ts, value]


def plain_struct(p: Partition) -> list | None:
    """The plain form (payload version 3) of `p`, [ts, col, value, ...], when `p` qualifies: no
    partition deletion or range tombstone, one row at clustering b"" without a row deletion,
    whose marker is live (b"", no TTL) and whose cells are all live, without TTL, at the
    marker's timestamp, with plain column ids; else None (the general form is written)."""
    if p.deletion is not None or p.ranges or len(p.rows) != 1:
        return None
    row = p.rows.get(b"")
    if row is None or row.deletion is not None:
        return None
    cells = row.cells
    marker = cells.get(0)
    if marker is None or marker[2] or marker[3] != b"":
        return None
    ts = marker[0]
    out = [ts]
    if len(cells) == 1:
        return out
    try:
        items = sorted(cells.items())
    except TypeError:                   # (id, path) keys: collection elements
        return None
    for col, cell in items[1:]:
        if cell[0] != ts or cell[2] or cell[3] is None:
            return None
        out.append(col)
        out.append(cell[3])
    return out


def partition_struct(p: Partition) -> list:
    """The general form (payload versions 1 and 2) of `p`."""
    rows = []
    for ck in sorted(p.rows):
        row = p.rows[ck]
        d = row.deletion
        entry = [ck, d[0] if d else None, d[1] if d else None]
        entry.extend(_encode_cell(col, cell) for col, cell in sorted_cells(row.cells))
        rows.append(entry)
    pdel = list(p.deletion) if p.deletion else None
    return [pdel, rows, [list(r) for r in p.ranges]]


def encode_partition(p: Partition) -> bytes:
    """The payload of `p`: the plain form when `p` qualifies (plain_struct), else the general one.
    A function of the partition alone, so equal partitions always encode to equal bytes."""
    flat = plain_struct(p)
    return _packb(partition_struct(p) if flat is None else flat)


def plain_cells(flat: list) -> dict:
    """The row's cells {column id: cell} of a plain-form payload [ts, col, value, ...]."""
    ts = flat[0]
    cells = {0: (ts, NO_DELETION_TIME, 0, b"")}
    for i in range(1, len(flat), 2):
        cells[flat[i]] = (ts, NO_DELETION_TIME, 0, flat[i + 1])
    return cells


def decode_partition(payload: bytes) -> Partition:
    struct = _unpackb(payload)
    if struct[0].__class__ is int:      # the plain form (payload version 3)
        return Partition(None, {b"": Row(None, plain_cells(struct))}, [])
    pdel, rows, ranges = struct
    out_rows = {}
    for r in rows:
        cells = {}
        for c in r[3:]:
            n = len(c)
            col = c[0]
            if col.__class__ is list:
                col = (col[0], col[1])
            if n == 3:
                cells[col] = (c[1], NO_DELETION_TIME, 0, c[2])
            elif n == 5:
                cells[col] = (c[1], c[4], c[3], c[2])
            else:
                cells[col] = (c[1], c[3], 0, None)
        out_rows[r[0]] = Row((r[1], r[2]) if r[1] is not None else None, cells)
    return Partition(tuple(pdel) if pdel else None, out_rows, [tuple(r) for r in ranges])


def covering_deletion(p: Partition, ck: bytes, row: Row | None) -> int:
    """Highest marked_for_delete_at that covers clustering `ck` (partition, range, row)."""
    mfda = p.deletion[0] if p.deletion else -(2**63)
    for lo, hi, r_mfda, _ in p.ranges:
        if r_mfda > mfda and lo <= ck and (hi is None or ck < hi):
            mfda = r_mfda
    if row is not None and row.deletion and row.deletion[0] > mfda:
        mfda = row.deletion[0]
    return mfda


def live_rows(p: Partition, now_s: int, lo: bytes = b"", hi: bytes | None = None,
              reverse: bool = False, counter: list | None = None):
    """Yield (ckey, {col_id: cell}) for each live row in [lo, hi), shadowing applied.

    A row is live if its marker (column 0) or any regular cell is live. `counter`, when given,
    is [tombstones_scanned] and is incremented for each tombstone, expired cell, row and range
    deletion met (the read guard of Cassandra's ReadCommand).

    The row at clustering b"" is the static row when the table has clustering columns (and the
    only row when it has none): its live cells are added to every row yielded, and it is
    yielded alone (null clustering) only when no other row is and the read is of the whole
    partition (lo b"", hi None), as Cassandra answers a partition holding only static cells.
    """
    keys = sorted(p.rows, reverse=reverse)
    if counter is not None:
        counter[0] += len(p.ranges) + (1 if p.deletion else 0)
    static_row = p.rows.get(b"")
    static = _live_cells(static_row, covering_deletion(p, b"", static_row), now_s, counter) \
        if static_row is not None else None
    emitted = False
    for ck in keys:
        if not ck or ck < lo or (hi is not None and ck >= hi):
            continue
        row = p.rows[ck]
        if counter is not None and row.deletion:
            counter[0] += 1
        cells = _live_cells(row, covering_deletion(p, ck, row), now_s, counter)
        if cells:
            emitted = True
            yield ck, ({**static, **cells} if static else cells)
    if static and not emitted and not lo and hi is None:
        yield b"", static


def live_row(p: Partition, ck: bytes, now_s: int, counter: list | None = None) -> dict | None:
    """The live cells of the one row `ck` (a point read), shadowing and expiry applied, or None."""
    row = p.rows.get(ck)
    if counter is not None:
        counter[0] += len(p.ranges) + (1 if p.deletion else 0) + (1 if row is not None and row.deletion else 0)
    if row is None:
        return None
    cells = _live_cells(row, covering_deletion(p, ck, row), now_s, counter)
    static_row = p.rows.get(b"") if ck and cells else None
    if static_row is not None:              # the static row's cells show on every row
        cells = {**_live_cells(static_row, covering_deletion(p, b"", static_row), now_s, counter), **cells}
    return cells or None


def _live_cells(row: Row, mfda: int, now_s: int, counter: list | None) -> dict:
    """The row's cells newer than the covering deletion and not expired; counts the dead ones."""
    cells = {}
    complex_seen = False
    for col, cell in row.cells.items():
        ts, ldt, ttl, value = cell
        if ts <= mfda:
            continue
        if col.__class__ is tuple:
            complex_seen = True
        if value is None or (ttl and ldt <= now_s):
            if counter is not None:
                counter[0] += 1
            continue
        cells[col] = cell
    if complex_seen:
        _drop_shadowed_elements(row.cells, cells)
    return cells


def collection_tombstones(cells: dict) -> dict:
    """{column id: timestamp} of the collection tombstones (path b"") among a row's cells."""
    return {col[0]: cell[0] for col, cell in cells.items()
            if col.__class__ is tuple and not col[1] and cell[3] is None}


def _drop_shadowed_elements(all_cells: dict, cells: dict) -> None:
    """Remove from `cells` the collection elements a collection tombstone of the row covers."""
    tombs = collection_tombstones(all_cells)
    if tombs:
        for col in [c for c, cell in cells.items()
                    if c.__class__ is tuple and c[0] in tombs and cell[0] <= tombs[c[0]]]:
            del cells[col]


def slice_partition(p: Partition, lo: bytes, hi: bytes | None) -> Partition:
    """The part of `p` a clustering slice [lo, hi) can see: its rows, the range tombstones that
    intersect it, and the partition deletion, and the static row (clustering b"") whatever the
    slice, since every row shows it. Replicas answer reads with this."""
    rows = {ck: r for ck, r in p.rows.items() if (ck >= lo and (hi is None or ck < hi)) or not ck}
    ranges = [r for r in p.ranges if (r[1] is None or r[1] > lo) and (hi is None or r[0] < hi)]
    return Partition(p.deletion, rows, ranges)
