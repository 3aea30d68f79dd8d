"""Purge for compaction outputs: what a merged partition keeps when it is rewritten.

compact_partition drops every cell a deletion shadows (keeping the deletion), turns expired cells
into tombstones, and purges a tombstone only when it is older than gc_grace (ldt < gc_before) and
older than anything outside the compaction may hold for its key (ts < max_purgeable_ts), as
Cassandra's CompactionController does. It never drops a live cell that no deletion shadows.
"""
from __future__ import annotations

from engine.partition import Partition, Row, collection_tombstones, covering_deletion


def _purgeable(ts: int, ldt: int, gc_before: int, max_purgeable_ts: int) -> bool:
    return ldt < gc_before and ts < max_purgeable_ts


def compact_partition(p: Partition, now_s: int, gc_before: int, max_purgeable_ts: int) -> Partition | None:
    """Rewrite a merged partition for a compaction output.

    Shadowed cells are always dropped (the deletion that shadows them is kept). Expired cells
    become tombstones with ldt = expiry - ttl (Cassandra's AbstractCell.purge). A tombstone is
    purged only if its ldt < gc_before (now - gc_grace_seconds) and its timestamp is below
    `max_purgeable_ts`, the smallest timestamp any data outside the compaction may hold for this
    key. Returns None when nothing remains.
    """
    pdel = p.deletion
    if pdel and _purgeable(pdel[0], pdel[1], gc_before, max_purgeable_ts):
        pdel = None
    ranges = [r for r in p.ranges if not _purgeable(r[2], r[3], gc_before, max_purgeable_ts)]
    out = Partition(pdel, {}, ranges)
    for ck, row in p.rows.items():
        mfda = covering_deletion(p, ck, row)
        rdel = row.deletion
        if rdel and (_purgeable(rdel[0], rdel[1], gc_before, max_purgeable_ts)
                     or rdel[0] <= covering_deletion(p, ck, None)):
            rdel = None
        cells = {}
        for col, cell in row.cells.items():
            ts, ldt, ttl, value = cell
            if ts <= mfda:
                continue
            if value is not None and ttl and ldt <= now_s:
                cell = (ts, ldt - ttl, 0, None)
                ldt = ldt - ttl
                value = None
            if value is None and _purgeable(ts, ldt, gc_before, max_purgeable_ts):
                continue
            cells[col] = cell
        if len(cells) > 1 and any(c.__class__ is tuple for c in cells):
            tombs = collection_tombstones(row.cells)
            for c in [c for c, cell in cells.items()
                      if c.__class__ is tuple and c[1] and c[0] in tombs and cell[0] <= tombs[c[0]]]:
                del cells[c]
        if cells or rdel:
            out.rows[ck] = Row(rdel, cells)
    return None if out.is_empty() else out
