"""Leveled compaction (LCS): L0 takes flushes; each level n >= 1 is one sorted run of
non-overlapping sstables of about `sstable_size_in_mb`, at most fanout^n * sstable_size bytes.

Order of preference for one plan (after Cassandra's LeveledManifest.getCompactionCandidates):
  1. L0 holds more than 32 sstables: size-tier within L0 (thresholds 4/32), output L0.
  2. The highest level n in 1..7 whose non-compacting bytes exceed 1.001 * fanout^n * size:
     the eligible sstable with the fewest L(n+1) bytes overlapped per byte (then the oldest;
     when nothing overlaps it, its key-order neighbour joins; when it is its level's only sstable
     it goes up alone) and every L(n+1) sstable overlapping their hull -> L(n+1). L8 is never pushed up.
  3. At least 4 eligible L0 sstables, or more than 4 * sstable_size bytes of them: the 32
     oldest. If they hold >= sstable_size bytes they go to L1 with every L1 sstable overlapping
     their hull; otherwise they are merged in L0.
  4. A single-sstable tombstone compaction: highest level first, highest droppable ratio first.

Concurrency (so outputs of tasks running together never overlap in a level >= 1): a task is not
planned when an sstable it would need is compacting; L0 sstables overlapping the hull of the
compacting L0 sstables are not eligible. An LCS major must run alone (see plan_major).
Doc: docs/compaction.md.
"""
from __future__ import annotations

import bisect

from engine.compaction import size_tiered
from engine.compaction.options import parse_int
from engine.compaction.task import (MAX_LEVEL, MIB, CompactionTask, SSTableInfo, droppable_ratio, hull, intersects,
                                    make_task, overlapping, worth_dropping_tombstones)

DEFAULTS = {
    "sstable_size_in_mb": 160,
    "fanout_size": 10,
    **size_tiered.DEFAULTS,  # used for size-tiering in L0, as in Cassandra
}
L0_TRIGGER = 4  # eligible L0 sstables needed for an L0 compaction (leveldb's kL0_CompactionTrigger)
MAX_COMPACTING_L0 = 32  # at most this many L0 sstables per task; more than this in L0 -> STCS in L0
SCORE_SLACK = 1.001  # a level is over target when bytes / target > 1.001 (LeveledManifest)


def validate(opts: dict) -> None:
    opts["sstable_size_in_mb"] = parse_int(opts, "sstable_size_in_mb", 1)
    opts["fanout_size"] = parse_int(opts, "fanout_size", 1)
    size_tiered.validate(opts)


def sstable_size_bytes(opts: dict) -> int:
    return opts["sstable_size_in_mb"] * MIB


def max_bytes_for_level(opts: dict, level: int) -> int:
    size = sstable_size_bytes(opts)
    return 4 * size if level == 0 else opts["fanout_size"] ** level * size


def _levels(snapshot) -> list[list[SSTableInfo]]:
    levels: list[list[SSTableInfo]] = [[] for _ in range(MAX_LEVEL + 1)]
    for s in snapshot:
        assert 0 <= s.level <= MAX_LEVEL, f"sstable {s.generation} has level {s.level}"
        levels[s.level].append(s)
    return levels


def _busy(sstables, compacting) -> bool:
    return any(s.generation in compacting for s in sstables)


def _stcs_in_l0(opts, levels, compacting) -> CompactionTask | None:
    if len(levels[0]) <= MAX_COMPACTING_L0:
        return None
    idle = [s for s in levels[0] if s.generation not in compacting]
    buckets = size_tiered.get_buckets(idle, opts["bucket_low"], opts["bucket_high"], opts["min_sstable_size"])
    bucket = size_tiered.most_interesting_bucket(buckets, L0_TRIGGER, MAX_COMPACTING_L0)
    return make_task(bucket, 0, None, "STCS in L0") if bucket else None


def _level_task(opts, levels, n: int, compacting) -> CompactionTask | None:
    """Push one sstable of level n (>= 1) up, the one cheapest to merge (RocksDB's
    kMinOverlappingRatio): least L(n+1) bytes overlapped per byte pushed, then oldest."""
    order = lambda s: (s.first, s.last, s.generation)  # noqa: E731 - total, so plans are deterministic
    here = sorted(levels[n], key=order)
    nxt = sorted(levels[n + 1], key=order)  # non-overlapping: lasts are sorted too
    firsts, lasts = [s.first for s in nxt], [s.last for s in nxt]
    size_sum, busy_sum = [0], [0]
    for s in nxt:
        size_sum.append(size_sum[-1] + s.size_bytes)
        busy_sum.append(busy_sum[-1] + (s.generation in compacting))

    def above(group):  # the L(n+1) slice overlapping the group's hull, if none of it is busy
        lo, hi = hull(group)
        i, j = bisect.bisect_left(lasts, lo), bisect.bisect_right(firsts, hi)
        return (i, j) if busy_sum[j] == busy_sum[i] else None

    best, best_key = None, None
    for k, x in enumerate(here):
        if x.generation in compacting:
            continue
        group, span = [x], above([x])
        if span is not None and span[0] == span[1]:
            # Nothing above overlaps x: its key-order neighbour joins (next, else previous), so
            # the task has two inputs rather than being a bare rename.
            neighbours = [here[m] for m in (k + 1, k - 1)
                          if 0 <= m < len(here) and here[m].generation not in compacting]
            if len(here) > 1:
                group, span = [x], None
                for y in neighbours:
                    span = above([x, y])
                    if span is not None:
                        group = [x, y]
                        break
            # else x is its level's only sstable: it goes up alone (a level made of one sstable over
            # its target, e.g. a partition too large to split, would otherwise never shrink)
        if span is None:
            continue
        cost = (size_sum[span[1]] - size_sum[span[0]]) / max(1, sum(s.size_bytes for s in group))
        key = (cost, x.generation)
        if best_key is None or key < best_key:
            best, best_key = [*group, *nxt[span[0]:span[1]]], key
    if best is None:
        return None
    alone = " alone" if len(best) == 1 else ""
    return make_task(best, n + 1, sstable_size_bytes(opts), f"L{n}->L{n + 1}{alone}")


def _l0_task(opts, levels, compacting) -> CompactionTask | None:
    busy = [s for s in levels[0] if s.generation in compacting]
    busy_lo, busy_hi = hull(busy) if busy else (None, None)
    eligible = [s for s in levels[0] if s.generation not in compacting
                and (not busy or not intersects(busy_lo, busy_hi, s))]
    if len(eligible) < L0_TRIGGER and sum(s.size_bytes for s in eligible) <= max_bytes_for_level(opts, 0):
        return None
    candidates = sorted(eligible, key=lambda s: s.generation)[:MAX_COMPACTING_L0]
    size = sstable_size_bytes(opts)
    if sum(s.size_bytes for s in candidates) < size:
        return make_task(candidates, 0, None, "L0 in place")
    lo, hi = hull(candidates)
    if busy and lo <= busy_hi and busy_lo <= hi:
        return None
    ovl = overlapping(lo, hi, levels[1])
    if _busy(ovl, compacting) or len(candidates) + len(ovl) < 2:
        return None
    return make_task([*candidates, *ovl], 1, size, "L0->L1")


def _tombstone_task(opts, snapshot, levels, compacting, now_s, gc_before) -> CompactionTask | None:
    threshold = opts["tombstone_threshold"]
    for n in range(MAX_LEVEL, -1, -1):
        for s in sorted(levels[n], key=lambda s: (-droppable_ratio(s), s.generation)):
            if droppable_ratio(s) <= threshold:
                break
            if s.generation not in compacting and worth_dropping_tombstones(s, snapshot, opts, now_s, gc_before):
                return make_task([s], n, sstable_size_bytes(opts), "tombstone")
    return None


def plan(opts: dict, snapshot: list[SSTableInfo], compacting: frozenset[int], now_s: int,
         gc_before: int) -> CompactionTask | None:
    levels = _levels(snapshot)
    task = _stcs_in_l0(opts, levels, compacting)
    if task is not None:
        return task
    for n in range(MAX_LEVEL - 1, 0, -1):
        idle_bytes = sum(s.size_bytes for s in levels[n] if s.generation not in compacting)
        if idle_bytes > SCORE_SLACK * max_bytes_for_level(opts, n):
            task = _level_task(opts, levels, n, compacting)
            if task is not None:
                return task
    task = _l0_task(opts, levels, compacting)
    if task is not None:
        return task
    return _tombstone_task(opts, snapshot, levels, compacting, now_s, gc_before)


def plan_major(opts: dict, snapshot: list[SSTableInfo], compacting: frozenset[int]) -> CompactionTask | None:
    """Everything into one sorted run, in the lowest level >= 1 that can hold it (L8 at most).

    Only when nothing is compacting (None otherwise), and the caller must not start background
    tasks for the table until it commits: its output spans the hull of all data, which a
    concurrent task writing the same level could not see. A lone sstable is rewritten only if
    it has tombstones to drop.
    """
    if not snapshot or _busy(snapshot, compacting):
        return None
    total = sum(s.size_bytes for s in snapshot)
    level = next((n for n in range(1, MAX_LEVEL + 1) if total <= max_bytes_for_level(opts, n)), MAX_LEVEL)
    if len(snapshot) == 1 and snapshot[0].droppable_tombstones == 0:
        return None
    return make_task(snapshot, level, sstable_size_bytes(opts), "major")
