"""Compaction tasks and what every strategy shares: the snapshot type, the task type, ranges,
the level invariant and the single-sstable tombstone rule.

Pure values and functions (no clock, no filesystem). `picker.py` chooses a strategy and plans;
`size_tiered.py` and `leveled.py` build tasks from these pieces; `executor.py` runs a task.
Nothing here imports a strategy, so there is no import cycle. Rules: docs/compaction.md.
"""
from __future__ import annotations

from dataclasses import dataclass

NO_DELETION_TIME = 2**63 - 1
MAX_LEVEL = 8  # LCS has 9 levels, L0..L8 (LeveledManifest)
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSTableInfo:
    generation: int
    size_bytes: int
    level: int  # 0 for STCS tables and for LCS L0
    first_token: int
    last_token: int  # signed 64-bit
    first_key: bytes
    last_key: bytes  # partitions are ordered by (token, key)
    min_timestamp: int
    max_timestamp: int  # µs
    max_local_deletion_time: int  # s; NO_DELETION_TIME if none
    droppable_tombstones: int  # tombstones whose ldt < gc_before, computed by the caller for `now`
    cell_count: int
    created_s: int

    @property
    def first(self) -> tuple[int, bytes]:
        return (self.first_token, self.first_key)

    @property
    def last(self) -> tuple[int, bytes]:
        return (self.last_token, self.last_key)


@dataclass(frozen=True, slots=True)
class CompactionTask:
    inputs: tuple[int, ...]  # generations, sorted
    output_level: int
    max_output_bytes: int | None  # split outputs at this size; None = one output
    reason: str  # "size-tiered bucket", "STCS in L0", "L0 in place", "L0->L1", "L1->L2", "tombstone", "major"


def make_task(inputs, output_level: int, max_output_bytes: int | None, reason: str) -> CompactionTask:
    gens = tuple(sorted({s.generation for s in inputs}))
    return CompactionTask(gens, output_level, max_output_bytes, reason)


# -- ranges ------------------------------------------------------------------------------------

def hull(sstables) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """The closed (token, key) interval spanning every given sstable."""
    return min(s.first for s in sstables), max(s.last for s in sstables)


def intersects(lo, hi, s: SSTableInfo) -> bool:
    """Does sstable `s` overlap the closed interval [lo, hi]?"""
    return s.first <= hi and lo <= s.last


def overlapping(lo, hi, sstables) -> list[SSTableInfo]:
    return [s for s in sstables if intersects(lo, hi, s)]


# -- the level invariant ------------------------------------------------------------------------

def check_level_invariants(snapshot: list[SSTableInfo]) -> None:
    """Raise AssertionError unless the snapshot is well formed and levels >= 1 never overlap."""
    gens = [s.generation for s in snapshot]
    if len(gens) != len(set(gens)):
        raise AssertionError(f"duplicate generations in snapshot: {sorted(gens)}")
    by_level: dict[int, list[SSTableInfo]] = {}
    for s in snapshot:
        if not 0 <= s.level <= MAX_LEVEL:
            raise AssertionError(f"sstable {s.generation} has level {s.level}, outside 0..{MAX_LEVEL}")
        if s.first > s.last:
            raise AssertionError(f"sstable {s.generation} has first {s.first} > last {s.last}")
        if s.size_bytes < 0:
            raise AssertionError(f"sstable {s.generation} has negative size {s.size_bytes}")
        by_level.setdefault(s.level, []).append(s)
    for level, tables in by_level.items():
        if level == 0:
            continue
        tables.sort(key=lambda s: s.first)
        for a, b in zip(tables, tables[1:]):
            if not a.last < b.first:
                raise AssertionError(
                    f"L{level} sstables {a.generation} {a.first}..{a.last} and "
                    f"{b.generation} {b.first}..{b.last} overlap")


# -- single-sstable tombstone compaction --------------------------------------------------------

def droppable_ratio(s: SSTableInfo) -> float:
    return s.droppable_tombstones / max(1, s.cell_count)


def worth_dropping_tombstones(s: SSTableInfo, snapshot, options: dict, now_s: int, gc_before: int) -> bool:
    """Cassandra's AbstractCompactionStrategy.worthDroppingTombstones, without key estimates.

    Old enough (now >= created + interval), droppable ratio above the threshold, and either
    unchecked, or no other live sstable overlaps it, or it is fully expired (every deletion is
    past gc_before and all its data is older than anything that overlaps it).
    """
    if now_s < s.created_s + options["tombstone_compaction_interval"]:
        return False
    if droppable_ratio(s) <= options["tombstone_threshold"]:
        return False
    if options["unchecked_tombstone_compaction"]:
        return True
    others = [o for o in snapshot if o.generation != s.generation and intersects(s.first, s.last, o)]
    if not others:
        return True
    return s.max_local_deletion_time < gc_before and s.max_timestamp < min(o.min_timestamp for o in others)
