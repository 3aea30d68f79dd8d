"""Merkle-tree anti-entropy repair (nodetool repair), as a coordinator state machine.

Rule: anti_entropy.py decides; node.py sends (a handler on a `Context`, ring/context.py). For
one table, range by range (the ranges this node replicates, or only its primary ranges with
-pr): every replica builds a Merkle tree of the range from a validation scan (`ring/merkle.py`, bounded depth), the trees are compared, and only
the leaf ranges that differ are synced: for each pair of replicas that differ, each side's
partitions in those ranges are read page by page and written to the other (reconcile makes the
writes idempotent, so syncing a range twice is harmless). Identical replicas share one source,
as Cassandra's optimised streams do. `--preview` compares and streams nothing. Every replica of
a range must be up, or the range fails (as in Cassandra).
"""
from __future__ import annotations

from itertools import combinations

from engine.token import MAX_TOKEN
from ring.errors import RepairFailure
from ring.merkle import MerkleTree, difference
from ring.messages import (MutationRequest, MutationResponse, RangeReadRequest, RangeReadResponse, Reply, Send,
                           ValidationRequest, ValidationResponse)

PAGE_PARTITIONS = 256


def unwrap(lo: int | None, hi: int) -> list[tuple[int | None, int]]:
    """A token range (lo, hi] as non-wrapping pieces; lo None is the ring minimum."""
    if lo is not None and lo >= hi:
        return [(lo, MAX_TOKEN), (None, hi)]
    return [(lo, hi)]


def scan_bounds(lo: int | None, hi: int) -> tuple:
    """(lo, hi] of a non-wrapping piece as (token, key) bounds: start inclusive, end exclusive."""
    start = (lo + 1, b"") if lo is not None else None
    end = (hi + 1, b"") if hi < MAX_TOKEN else None
    return start, end


def plan_syncs(trees: dict[str, MerkleTree], skip_last: bool = False) -> tuple[list[tuple[str, str, list]], list]:
    """Which replica sends which ranges to which: both directions of every differing pair, with
    one source per group of identical replicas. Returns (syncs, differing ranges). `skip_last`
    is the canary `Faults.repair_skip_last_run` (ring/faults.py): each pair's last run of
    differing leaves is dropped, as a loop that never flushes its final run would."""
    eps = sorted(trees)
    groups: dict[bytes, list[str]] = {}
    for ep in eps:
        groups.setdefault(b"".join(trees[ep].leaves()), []).append(ep)
    syncs, differing = [], set()
    for a, b in combinations(eps, 2):
        ranges = difference(trees[a], trees[b])
        if skip_last:
            ranges = ranges[:-1]
        if not ranges:
            continue
        differing.update(ranges)
        for source, target in ((a, b), (b, a)):
            group = next(g for g in groups.values() if source in g)
            if source != group[0] and target not in group:
                continue  # an identical replica already sends these ranges to the target
            syncs.append((source, target, ranges))
    seen, unique = set(), []
    for source, target, ranges in syncs:
        if (source, target) not in seen:
            seen.add((source, target))
            unique.append((source, target, ranges))
    return unique, sorted(differing, key=lambda r: (r[0] is not None, r[0] or 0, r[1]))


class RepairSession:
    msg_id = None

    def __init__(self, ctx, request_id: int, table, jobs: list, preview: bool, deadline_ms: int):
        self.ctx = ctx
        self.request_id = request_id
        self.table = table
        self.jobs = jobs                # [(lo, hi, replicas, merkle depth)]
        self.preview = preview
        self.deadline_ms = deadline_ms
        self.done = False
        self.index = 0
        self.trees: dict[str, MerkleTree] = {}
        self.syncs: list = []
        self.pieces: list = []
        self.cursor = None
        self.pending_acks = 0
        self.phase = "validate"
        self.summary = {"table": table.qualified_name, "ranges_compared": 0, "ranges_out_of_sync": 0,
                        "leaf_ranges_out_of_sync": 0, "rows_streamed": 0, "bytes_streamed": 0,
                        "partitions_validated": 0, "preview": preview}

    @property
    def finished(self) -> bool:
        return self.done

    def start(self) -> list:
        return self._next_job()

    def _fail(self, what: str) -> list:
        self.done = True
        return [Reply(self.request_id, error=RepairFailure(f"repair of {self.table.qualified_name} failed: {what}"))]

    def _next_job(self) -> list:
        if self.index >= len(self.jobs):
            self.done = True
            return [Reply(self.request_id, result=self.summary)]
        lo, hi, replicas, depth = self.jobs[self.index]
        down = [ep for ep in replicas if not self.ctx.is_alive(ep)]
        if down:
            return self._fail(f"replica(s) {down} of range ({lo}, {hi}] are down; repair needs every replica up")
        self.phase = "validate"
        self.trees = {}
        self.expected = set(replicas)
        msg_id = self.ctx.register(self)
        return [Send(ep, ValidationRequest(msg_id, self.table.id, lo, hi, depth)) for ep in replicas]

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        kind = type(reply)
        if kind is ValidationResponse:
            return self._on_validation(src, reply.tree, reply.partitions, reply.error)
        if kind is RangeReadResponse:
            return self._on_range(src, reply.partitions, reply.exhausted, reply.error)
        assert kind is MutationResponse, reply
        return self._on_applied(src, reply.error)

    def _on_validation(self, src: str, tree, partitions: int, error) -> list:
        if self.done or self.phase != "validate" or src not in self.expected:
            return []
        if error is not None:
            return self._fail(f"validation on {src}: {error}")
        self.trees[src] = MerkleTree.from_wire(tree)
        self.summary["partitions_validated"] += partitions
        if set(self.trees) != self.expected:
            return []
        self.summary["ranges_compared"] += 1
        self.syncs, differing = plan_syncs(self.trees, self.ctx.config.faults.repair_skip_last_run)
        if differing:
            self.summary["ranges_out_of_sync"] += 1
            self.summary["leaf_ranges_out_of_sync"] += len(differing)
        if self.preview or not self.syncs:
            self.syncs = []
            self.index += 1
            return self._next_job()
        return self._next_sync()

    def _next_sync(self) -> list:
        if not self.syncs:
            self.index += 1
            return self._next_job()
        _, _, ranges = self.syncs[0]
        self.pieces = [piece for lo, hi in ranges for piece in unwrap(lo, hi)]
        self.cursor = None
        return self._read_more()

    def _read_more(self) -> list:
        if not self.pieces:
            self.syncs.pop(0)
            return self._next_sync()
        source = self.syncs[0][0]
        start, end = scan_bounds(*self.pieces[0])
        if self.cursor is not None:
            start = self.cursor
        self.phase = "read"
        msg_id = self.ctx.register(self)
        return [Send(source, RangeReadRequest(msg_id, self.table.id, list(start) if start else None,
                                              list(end) if end else None, PAGE_PARTITIONS))]

    def _on_range(self, src: str, partitions, exhausted: bool, error) -> list:
        if self.done or self.phase != "read":
            return []
        if error is not None:
            return self._fail(f"reading from {src}: {error}")
        if exhausted:
            self.pieces.pop(0)
            self.cursor = None
        else:
            token, key = partitions[-1][0], partitions[-1][1]
            self.cursor = (token, key + b"\x00")
        if not partitions:
            return self._read_more()
        target = self.syncs[0][1]
        self.phase = "write"
        self.pending_acks = len(partitions)
        msg_id = self.ctx.register(self)
        out = []
        for token, key, payload in partitions:
            self.summary["rows_streamed"] += 1
            self.summary["bytes_streamed"] += len(key) + len(payload)
            out.append(Send(target, MutationRequest(msg_id, self.table.id, key, payload)))
        return out

    def _on_applied(self, src: str, error) -> list:
        """A streamed partition was applied (MutationResponse)."""
        if self.done or self.phase != "write":
            return []
        if error is not None:
            return self._fail(f"streaming to {src}: {error}")
        self.pending_acks -= 1
        return self._read_more() if self.pending_acks == 0 else []

    def on_timeout(self, now_ms: int) -> list:
        if self.done or now_ms < self.deadline_ms:
            return []
        return self._fail(f"timed out in phase {self.phase} at range {self.index + 1} of {len(self.jobs)}")
