"""Size-tiered compaction (STCS), Cassandra's default: merge sstables of similar size.

Sorted by size, an sstable joins the first bucket (in creation order) whose average size `avg`
satisfies bucket_low*avg < size < bucket_high*avg, or where both it and `avg` are below
min_sstable_size (SizeTieredCompactionStrategy.getBuckets). Buckets with >= min_threshold
sstables are trimmed to max_threshold (the largest dropped); with no read rates to rank
"hotness", the bucket with the most sstables wins, then the smallest average size, then the
oldest generation. With no bucket, the largest sstable worth a single-sstable tombstone
compaction is chosen. Outputs stay at level 0. Doc: docs/compaction.md.
"""
from __future__ import annotations

from engine.compaction.options import invalid_option, parse_float, parse_int
from engine.compaction.task import CompactionTask, SSTableInfo, make_task, worth_dropping_tombstones

DEFAULTS = {
    "bucket_low": 0.5,
    "bucket_high": 1.5,
    "min_sstable_size": 50 * 1024 * 1024,  # bytes
}


def validate(opts: dict) -> None:
    """Check (in place) the STCS options (SizeTieredCompactionStrategyOptions.validateOptions)."""
    opts["min_sstable_size"] = parse_int(opts, "min_sstable_size", 0)
    opts["bucket_low"] = parse_float(opts, "bucket_low", 0.0)
    opts["bucket_high"] = parse_float(opts, "bucket_high", 0.0)
    if opts["bucket_high"] <= opts["bucket_low"]:
        raise invalid_option("bucket_high", opts["bucket_high"],
                   f"must be greater than bucket_low ({opts['bucket_low']})")


def get_buckets(sstables, bucket_low: float, bucket_high: float, min_sstable_size: int) -> list[list[SSTableInfo]]:
    """Group sstables of similar size; each bucket is in ascending size order."""
    buckets: list[list[SSTableInfo]] = []
    averages: list[int] = []
    for s in sorted(sstables, key=lambda s: (s.size_bytes, s.generation)):
        size = s.size_bytes
        for i, avg in enumerate(averages):
            if (bucket_low * avg < size < bucket_high * avg) or (size < min_sstable_size and avg < min_sstable_size):
                bucket = buckets[i]
                averages[i] = (avg * len(bucket) + size) // (len(bucket) + 1)  # integer, as Cassandra
                bucket.append(s)
                break
        else:
            buckets.append([s])
            averages.append(size)
    return buckets


def most_interesting_bucket(buckets, min_threshold: int, max_threshold: int) -> list[SSTableInfo]:
    """The bucket to compact: most sstables, then smallest average size, then oldest; [] if none."""
    pruned = [b[:max_threshold] for b in buckets if len(b) >= min_threshold]
    if not pruned:
        return []
    return min(pruned, key=lambda b: (-len(b), sum(s.size_bytes for s in b) / len(b),
                                      min(s.generation for s in b)))


def tombstone_candidate(opts: dict, candidates, snapshot, now_s: int, gc_before: int) -> SSTableInfo | None:
    """The largest sstable worth a single-sstable tombstone compaction (oldest on ties)."""
    worth = [s for s in candidates if worth_dropping_tombstones(s, snapshot, opts, now_s, gc_before)]
    if not worth:
        return None
    return min(worth, key=lambda s: (-s.size_bytes, s.generation))


def plan(opts: dict, snapshot: list[SSTableInfo], compacting: frozenset[int], now_s: int,
         gc_before: int) -> CompactionTask | None:
    candidates = [s for s in snapshot if s.generation not in compacting]
    buckets = get_buckets(candidates, opts["bucket_low"], opts["bucket_high"], opts["min_sstable_size"])
    bucket = most_interesting_bucket(buckets, opts["min_threshold"], opts["max_threshold"])
    if bucket:
        return make_task(bucket, 0, None, "size-tiered bucket")
    s = tombstone_candidate(opts, candidates, snapshot, now_s, gc_before)
    if s is not None:
        return make_task([s], s.level, None, "tombstone")
    return None


def plan_major(opts: dict, snapshot: list[SSTableInfo], compacting: frozenset[int]) -> CompactionTask | None:
    """Everything not compacting into one sstable (a lone sstable only if it has tombstones to drop)."""
    candidates = [s for s in snapshot if s.generation not in compacting]
    if len(candidates) >= 2 or (len(candidates) == 1 and candidates[0].droppable_tombstones > 0):
        return make_task(candidates, 0, None, "major")
    return None
