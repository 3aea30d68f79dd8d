"""Runs a planned compaction: merge the inputs through the read pipeline, purge, write, swap.

Copy-through: a partition found in one input only, stored in the plain form (payload version 3:
one live row, no TTL, no tombstone, no deletion), has nothing to reconcile, purge, expire or
shadow, and encode_partition is canonical, so the general path would write back the very same
bytes; it is copied as it is (no Partition, no re-encode: only its timestamp and cell count are
read, for the statistics). Tables with dropped columns take the general path for every partition
(a plain row may hold a dropped column's cell).

Crash safety comes from the order: outputs are written completely (each SSTable's TOC last), then
one manifest write replaces the inputs with the outputs, then the input files are deleted. A crash
before the manifest write leaves outputs the manifest doesn't name; a crash after it leaves inputs
it doesn't name; either kind is deleted on the next open. Nothing is lost or duplicated.
"""
from __future__ import annotations

import msgpack

from engine import merge
from engine.compaction.purge import compact_partition
from engine.dropped_columns import visible_partitions
from engine.partition import encode_partition
from engine.partition_stats import PartitionStats
from engine.sstable_writer import SSTableWriter

_unpackb = msgpack.unpackb


def _intervals(readers) -> tuple:
    out = []
    for r in readers:
        out.extend(tuple(i) for i in r.stats.commit_log_intervals)
    return tuple(sorted(set(out)))


def _plain_form(payload: bytes) -> bool:
    """Whether a payload is in the plain form: a msgpack array whose first item is an int (the
    general form's first item is nil or an array), read from the first bytes only."""
    b = payload[0]
    i = 1 if 0x90 <= b <= 0x9f else 3 if b == 0xdc else 5 if b == 0xdd else 0
    if not i or len(payload) <= i:
        return False
    b = payload[i]
    return b <= 0x7f or 0xcc <= b <= 0xd3 or b >= 0xe0


def _partitions(cfs, sources, copy_through: bool):
    """(token, key, Partition | None, payload | None) of the merged inputs: the payload of a
    copy-through partition (module docstring), else the merged Partition, dropped columns hidden."""
    if not copy_through or cfs.table.dropped:
        for token, key, p in visible_partitions(cfs.table, merge.merge_partitions(sources)):
            yield token, key, p, None
        return
    reconcile = merge.reconcile
    for token, key, payloads in merge.group(sources):
        if len(payloads) == 1 and _plain_form(payloads[0]):
            yield token, key, None, payloads[0]
        else:
            yield token, key, reconcile(payloads), None


def execute(cfs, task, fail_at: str | None = None, keep=None, copy_through: bool = True):
    """Compact `task.inputs` of a ColumnFamilyStore; returns the output readers.

    `keep(token) -> bool`, when given, drops every partition whose token it rejects (nodetool
    cleanup: the ranges this node no longer replicates). `fail_at` ("after_outputs") is a
    fault-injection point used by the crash tests. `copy_through=False` sends every partition
    through decode, purge and encode (the tests compare the two paths byte for byte).
    """
    now_s = cfs.clock.now_s()
    gc_before = now_s - cfs.gc_grace_seconds()
    memtables, sstables = cfs.snapshot()
    inputs = [s for s in sstables if s.generation in task.inputs]
    assert len(inputs) == len(task.inputs), (task, [s.generation for s in sstables])
    others = [s for s in sstables if s.generation not in task.inputs]
    lo_token = min(s.stats.min_token for s in inputs)
    hi_token = max(s.stats.max_token for s in inputs)
    overlapping = [s for s in others if s.stats.max_token >= lo_token and s.stats.min_token <= hi_token]
    intervals = _intervals(inputs)
    expected = sum(s.stats.partition_count for s in inputs)
    outputs, writer, stats = [], None, None
    written = 0
    progress = {"keyspace": cfs.table.keyspace, "table": cfs.table.name, "kind": task.reason,
                "partitions_done": 0, "partitions_total": expected, "bytes_read": 0, "bytes_written": 0,
                "bytes_total": sum(s.size_bytes for s in inputs)}  # nodetool compactionstats

    def counted(reader):
        for rec in reader.scan():
            progress["partitions_done"] += 1
            progress["bytes_read"] += len(rec[1]) + len(rec[2])
            yield rec

    def open_writer():
        with cfs.lock:
            gen = cfs.manifest.new_generation()
        return SSTableWriter(cfs.directory, gen, expected_partitions=max(1, expected),
                             bloom_fp_chance=cfs.table.option("bloom_filter_fp_chance"),
                             compression=cfs.table.option("compression")), PartitionStats()

    def close_writer():
        data_stats = stats.to_dict()
        data_stats.update(commit_log_intervals=intervals, level=task.output_level,
                          created_ms=cfs.clock.wall_ms())
        outputs.append(writer.finish(data_stats))

    cfs.compactions_running[id(progress)] = progress
    try:
        for token, key, p, payload in _partitions(cfs, [counted(s) for s in inputs], copy_through):
            if keep is not None and not keep(token):
                cfs.stats["partitions_cleaned"] = cfs.stats.get("partitions_cleaned", 0) + 1
                continue
            if payload is None:
                max_ts = cfs.max_purgeable_timestamp(token, key, overlapping, memtables)
                out = compact_partition(p, now_s, gc_before, max_ts)
                if out is None:
                    continue
                payload = encode_partition(out)
            if writer is None:
                writer, stats = open_writer()
                written = 0
            writer.append(token, key, payload)
            if p is None:
                flat = _unpackb(payload)
                stats.add_plain(flat[0], (len(flat) + 1) >> 1)
            else:
                stats.add(out)
            written += len(payload) + len(key)
            progress["bytes_written"] += len(payload) + len(key)
            if task.max_output_bytes and written >= task.max_output_bytes:
                close_writer()
                writer = None
        if writer is not None:
            close_writer()
            writer = None
    except BaseException:
        if writer is not None:
            writer.abort()
        for o in outputs:
            o.close()
        raise
    finally:
        cfs.compactions_running.pop(id(progress), None)
    if fail_at == "after_outputs":
        raise RuntimeError("injected crash after compaction outputs were written")
    for o in outputs:
        cfs.adopt(o)
    cfs.stats["bytes_compacted"] += sum(s.size_bytes for s in inputs)
    cfs.install_compaction(task.inputs, outputs, task.output_level)
    return outputs
