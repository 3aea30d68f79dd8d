"""The read pipeline: k-way merge of ordered sources, then per-partition reconcile.

Each source (a memtable, an SSTable) yields `(token, key, payload)` in (token, key) order with no
de-duplication; `heapq.merge` interleaves them and `group` hands every version of one partition
to `reconcile`, which decodes and merges them with the one reconcile rule. Compaction, scans,
Merkle validation and streaming all read through here; tombstones are dropped only at the top.
"""
from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from engine.partition import Partition, decode_partition, merge_all


def group(sources: list[Iterable[tuple[int, bytes, bytes]]]) -> Iterator[tuple[int, bytes, list[bytes]]]:
    """Merge ordered sources; yield (token, key, [payloads]) once per partition."""
    merged = heapq.merge(*sources) if len(sources) != 1 else iter(sources[0])
    current_token = current_key = None
    payloads: list[bytes] = []
    for token, key, payload in merged:
        if key == current_key and token == current_token:
            payloads.append(payload)
            continue
        if payloads:
            yield current_token, current_key, payloads
        current_token, current_key, payloads = token, key, [payload]
    if payloads:
        yield current_token, current_key, payloads


def reconcile(payloads: list[bytes]) -> Partition:
    if len(payloads) == 1:
        return decode_partition(payloads[0])
    return merge_all([decode_partition(p) for p in payloads])


def merge_partitions(sources) -> Iterator[tuple[int, bytes, Partition]]:
    for token, key, payloads in group(sources):
        yield token, key, reconcile(payloads)
