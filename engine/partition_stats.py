"""What an SSTable's statistics (Statistics.db, engine/sstable_stats.py) need from the partitions
written into it: min/max timestamps, cell and tombstone counts, the latest local deletion time and
the droppable-tombstone histogram (60 s buckets), accumulated partition by partition by flush and
compaction. Counting rules: every cell counts (the row marker included); a tombstone (cell, row,
range or partition deletion) counts once and enters the histogram at its local deletion time; an
expiring cell enters the histogram at its expiry, as Cassandra's does.
"""
from __future__ import annotations

from engine.partition import NO_DELETION_TIME, Partition


class PartitionStats:
    """Accumulates what SSTable statistics need: timestamps, cell and tombstone counts, drop times."""

    __slots__ = ("min_timestamp", "max_timestamp", "cell_count", "tombstone_count",
                 "max_local_deletion_time", "histogram")

    def __init__(self):
        self.min_timestamp = 2**63 - 1
        self.max_timestamp = -(2**63)
        self.cell_count = 0
        self.tombstone_count = 0
        self.max_local_deletion_time = -1
        self.histogram: dict[int, int] = {}

    def _ts(self, ts: int) -> None:
        if ts < self.min_timestamp:
            self.min_timestamp = ts
        if ts > self.max_timestamp:
            self.max_timestamp = ts

    def _tombstone(self, ldt: int) -> None:
        self.tombstone_count += 1
        bucket = ldt - ldt % 60
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1

    def add(self, p: Partition) -> None:
        if p.deletion:
            self._ts(p.deletion[0])
            self._tombstone(p.deletion[1])
            self._ldt(p.deletion[1])
        for r in p.ranges:
            self._ts(r[2])
            self._tombstone(r[3])
            self._ldt(r[3])
        for row in p.rows.values():
            if row.deletion:
                self._ts(row.deletion[0])
                self._tombstone(row.deletion[1])
                self._ldt(row.deletion[1])
            for ts, ldt, ttl, value in row.cells.values():
                self.cell_count += 1
                self._ts(ts)
                if value is None or ttl:
                    self._ldt(ldt)
                    if value is None:
                        self._tombstone(ldt)
                    else:  # an expiring cell becomes droppable at expiry
                        self.histogram[ldt - ldt % 60] = self.histogram.get(ldt - ldt % 60, 0) + 1

    def add_plain(self, ts: int, cells: int) -> None:
        """add() of a plain-form partition: `cells` live cells (the marker included) at `ts`."""
        self._ts(ts)
        self.cell_count += cells

    def _ldt(self, ldt: int) -> None:
        if ldt > self.max_local_deletion_time:
            self.max_local_deletion_time = ldt

    def to_dict(self) -> dict:
        return {
            "min_timestamp": self.min_timestamp if self.cell_count or self.tombstone_count else 0,
            "max_timestamp": self.max_timestamp if self.cell_count or self.tombstone_count else 0,
            "cell_count": self.cell_count,
            "tombstone_count": self.tombstone_count,
            "max_local_deletion_time": (self.max_local_deletion_time
                                        if self.max_local_deletion_time >= 0 else NO_DELETION_TIME),
            "droppable_histogram": tuple(sorted(self.histogram.items())),
        }
