"""Dropped columns on the read and compaction paths: cells a DROP hid never come back.

`visible(table, p)` returns the partition without the cells of dropped columns. Column ids are
handed out in increasing order and never reused, so an id below `table.next_column_id` that no
current column has belongs to a dropped column: its cells are removed. A current column's cell
is kept unless its name was dropped at or after the cell's timestamp (`table.dropped_floor`:
a re-added column). Ids at or above `next_column_id` belong to a column this node has not learnt
yet (an ADD still spreading): they are kept, so a compaction never purges them. The row marker
(id 0) is always kept. Compaction runs the same filter before writing, so dropped cells are
purged from disk. Tables that never dropped a column are returned as they are (no cost). Pure;
the input is never mutated.
"""
from __future__ import annotations

from engine.partition import Partition, Row
from engine.schema import MARKER_COLUMN_ID, Table


def _column_id(col) -> int:
    return col if type(col) is int else col[0]   # non-frozen collection cells are keyed (id, path)


def visible(table: Table, p: Partition | None) -> Partition | None:
    if p is None or not table.dropped:
        return p
    floors, next_id = table.dropped_floor, table.next_column_id
    current = {c.id for c in table.columns}
    out = Partition(p.deletion, {}, p.ranges)
    for ck, row in p.rows.items():
        cells = {}
        for col, cell in row.cells.items():
            cid = _column_id(col)
            if cid == MARKER_COLUMN_ID or cid >= next_id or (cid in current and cell[0] > floors.get(cid, -(2**63))):
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
