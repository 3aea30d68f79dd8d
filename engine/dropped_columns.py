"""Dropped columns on the read and compaction paths: cells a DROP hid never come back.

`visible(table, p)` returns the partition without the cells of dropped columns: a cell is kept
iff its column id is the row marker (0), or a current column's id whose name was never dropped,
or whose drop (`table.dropped_floor`) is older than the cell's timestamp. Cells of an id the
table no longer has (a dropped column, the re-added one has a new id) are removed. Compaction
runs the same filter before writing, so dropped cells are purged from disk. Tables that never
dropped a column are returned as they are (no cost). Pure; the input is never mutated.
"""
from __future__ import annotations

from engine.partition import Partition, Row
from engine.schema import MARKER_COLUMN_ID, Table


def _column_id(col) -> int:
    return col if type(col) is int else col[0]   # non-frozen collection cells are keyed (id, path)


def visible(table: Table, p: Partition | None) -> Partition | None:
    if p is None or not table.dropped:
        return p
    by_id, floors = table.by_id, table.dropped_floor
    out = Partition(p.deletion, {}, p.ranges)
    for ck, row in p.rows.items():
        cells = {}
        for col, cell in row.cells.items():
            cid = _column_id(col)
            if cid == MARKER_COLUMN_ID or (cid in by_id and cell[0] > floors.get(cid, -(2**63))):
                cells[col] = cell
        if cells or row.deletion is not None:
            out.rows[ck] = Row(row.deletion, cells)
    return out


def visible_partitions(table: Table, partitions):
    """Filter a (token, key, Partition) stream (a scan or a compaction's merge)."""
    if not table.dropped:
        yield from partitions
        return
    for token, key, p in partitions:
        p = visible(table, p)
        if not p.is_empty():
            yield token, key, p
