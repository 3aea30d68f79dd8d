"""Shared by the compaction picker tests: SSTableInfo snapshots made by hand, and a tiny
compaction simulator (mini-lsm style) that applies planned tasks to a snapshot.

`apply_task` replaces a task's inputs by outputs of the summed size split into contiguous,
non-overlapping ranges; `check_task` asserts a task's contract against the snapshot and the tasks
in flight; `drain` plans and applies until nothing is left, checking the level invariants.
"""
from __future__ import annotations

import math

from engine.compaction.picker import plan
from engine.compaction.task import NO_DELETION_TIME, SSTableInfo, check_level_invariants, hull, intersects

MIB = 1024 * 1024
DAY = 86400
STCS = {"class": "SizeTieredCompactionStrategy"}
LCS = {"class": "LeveledCompactionStrategy"}
MIN_TOKEN, MAX_TOKEN = -(2**63), 2**63 - 1
MAX_KEY = b"\xff" * 8
NOW = 10 * DAY


def sst(gen, size=MIB, level=0, first=0, last=100, *, fk=b"", lk=b"", min_ts=0, max_ts=0,
        ldt=NO_DELETION_TIME, droppable=0, cells=100, created=0) -> SSTableInfo:
    return SSTableInfo(gen, size, level, first, last, fk, lk, min_ts, max_ts, ldt, droppable, cells, created)


def plan_of(options, snapshot, compacting=(), now=NOW, gc_grace=864000):
    return plan(options, snapshot, frozenset(compacting), now, gc_grace)


def apply_task(snapshot, task, next_gen, now_s):
    """Replace the inputs with outputs of the summed size, split at max_output_bytes into
    contiguous non-overlapping (token, key) ranges across the inputs' hull."""
    inputs = [s for s in snapshot if s.generation in task.inputs]
    assert len(inputs) == len(task.inputs)
    total = sum(s.size_bytes for s in inputs)
    lo, hi = hull(inputs)
    k = 1 if not task.max_output_bytes else max(1, math.ceil(total / task.max_output_bytes))
    k = min(k, hi[0] - lo[0] + 1)
    bounds = [lo[0] + ((hi[0] - lo[0] + 1) * i) // k for i in range(k + 1)]
    outputs = []
    for i in range(k):
        first = lo if i == 0 else (bounds[i], b"")
        last = hi if i == k - 1 else (bounds[i + 1] - 1, MAX_KEY)
        size = total // k + (1 if i < total % k else 0)
        outputs.append(SSTableInfo(
            next_gen + i, size, task.output_level, first[0], last[0], first[1], last[1],
            min(s.min_timestamp for s in inputs), max(s.max_timestamp for s in inputs),
            max(s.max_local_deletion_time for s in inputs), 0,
            sum(s.cell_count - s.droppable_tombstones for s in inputs) // k, now_s))
    kept = [s for s in snapshot if s.generation not in task.inputs]
    return kept + outputs, next_gen + k, total


def check_task(task, snapshot, in_flight):
    gens = {s.generation for s in snapshot}
    busy = set().union(*(t.inputs for t in in_flight)) if in_flight else set()
    assert task.inputs == tuple(sorted(set(task.inputs)))
    assert set(task.inputs) <= gens and not set(task.inputs) & busy
    assert len(task.inputs) >= 2 or task.reason in ("tombstone", "major") or task.reason.endswith(" alone")
    if task.output_level >= 1:
        inputs = [s for s in snapshot if s.generation in task.inputs]
        lo, hi = hull(inputs)
        for s in snapshot:
            if s.level == task.output_level and s.generation not in task.inputs:
                assert not intersects(lo, hi, s), (task, s)
        for t in in_flight:  # concurrent outputs into the same level must not overlap
            if t.output_level == task.output_level:
                olo, ohi = hull([s for s in snapshot if s.generation in t.inputs])
                assert hi < olo or ohi < lo, (task, t)


def drain(options, snapshot, next_gen, now_s, limit=20_000):
    """Plan and apply until nothing is left to do; returns (snapshot, next_gen, bytes written)."""
    written = 0
    for _ in range(limit):
        task = plan(options, snapshot, frozenset(), now_s, 864000)
        if task is None:
            return snapshot, next_gen, written
        check_task(task, snapshot, [])
        snapshot, next_gen, w = apply_task(snapshot, task, next_gen, now_s)
        written += w
        check_level_invariants(snapshot)
    raise AssertionError("compaction loop did not terminate")
