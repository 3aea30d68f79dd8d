"""Coordinator requests as small state machines: a write, a read, a range scan.

Rule: handlers decide; node.py sends. A handler receives replica responses (`on_reply`) and
clock ticks (`on_timeout`), and answers with effects: more messages to send, and at most one
`Reply` for the client (the Handler protocol, ring/context.py). It sees its node only through a
`Context`. Counting uses the pure rules of ring/consistency.py.

* Write: every live replica gets the mutation; success once `block_for` counting replicas
  acknowledged; WriteTimeout(level, received, block_for) at the deadline (the write may still be
  applied). The handler lives until every replica answered or the deadline passed, so the node
  can hint the replicas that never did.
* Read: a data request to the closest replica, digest requests to the next block_for - 1. If the
  digests all match, answer. Otherwise read full data from every contacted replica, reconcile,
  write the reconciled partition back to the replicas that differ and wait for their acks
  (blocking read repair, so quorum reads are monotonic), then answer.
* Scan: one token sub-range at a time, `block_for` replicas each return up to `limit` partitions
  from the resume point; they are merged up to the smallest key where some replica may have more.
"""
from __future__ import annotations

import xxhash

from engine.partition import Partition, decode_partition, encode_partition, merge_all
from ring import consistency as cl
from ring.errors import ReadFailure, ReadTimeout, WriteFailure, WriteTimeout
from ring.faults import Faults
from ring.messages import MutationRequest, MutationResponse, RangeReadRequest, ReadRequest, ReadResponse, Reply, Send


SCAN_SPECULATION_MIN_MS = 200  # a page of a scan does more work than a point read: never sooner


def digest_of(payload: bytes | None) -> bytes:
    return xxhash.xxh64(payload or b"").digest()


def canonical_payload(p: Partition | None) -> bytes | None:
    if p is None or p.is_empty():
        return None
    return encode_partition(merge_all([p]))


class WriteHandler:
    msg_id = None

    def __init__(self, request_id: int, level, rf_by_dc, local_dc, replica_dc: dict,
                 deadline_ms: int, write_type: str = "SIMPLE", pending_by_dc: dict | None = None):
        self.request_id = request_id
        self.level = level
        self.rf_by_dc = rf_by_dc
        self.local_dc = local_dc
        self.replica_dc = replica_dc
        self.deadline_ms = deadline_ms
        self.write_type = write_type
        self.acks_by_dc: dict[str, int] = {}
        self.failures = 0
        self.done = False           # the client has its answer
        self.finished = False       # every replica answered, or the deadline passed
        self.result = None
        self.pending_by_dc = pending_by_dc   # bootstrapping / gaining replicas: block_for grows by them
        self.block_for = cl.block_for(level, rf_by_dc, local_dc, pending_by_dc=pending_by_dc)
        self.sent_to: set[str] = set()
        self.acked: set[str] = set()
        self.hinted = 0
        self.mutation = None        # (table, key, payload), kept to hint replicas that time out
        self.faults = Faults.none()  # test-only canary mutants (ring/faults.py)

    def received(self) -> int:
        return sum(self.acks_by_dc.values())

    def on_hint_stored(self, replica: str | None = None) -> list:
        """ANY: a stored hint is the acknowledgement (and only at ANY)."""
        self.hinted += 1
        if not self.done and self.level is cl.ConsistencyLevel.ANY:
            self.done = True
            return [Reply(self.request_id, result=self.result)]
        wrong_dc = self.faults.hint_counts_locally and self.level is cl.ConsistencyLevel.EACH_QUORUM
        if (self.faults.count_hints or wrong_dc) and replica is not None and not self.done:  # canaries
            dc = self.local_dc if wrong_dc else self.replica_dc.get(replica, self.local_dc)
            self.acks_by_dc[dc] = self.acks_by_dc.get(dc, 0) + 1
            if cl.tally(self.level, self.acks_by_dc, self.rf_by_dc, self.local_dc, pending_by_dc=self.pending_by_dc):
                self.done = True
                return [Reply(self.request_id, result=self.result)]
        return []

    def unacked(self) -> list[str]:
        return sorted(self.sent_to - self.acked)

    def on_reply(self, now_ms: int, src: str, reply: MutationResponse) -> list:
        if src in self.acked:
            return []  # a duplicated response (the network may deliver one twice): one replica, one ack
        error = reply.error
        if error is None:
            self.acked.add(src)
        if self.acked >= self.sent_to:
            self.finished = True
        if self.done:
            return []
        if error is not None:
            self.failures += 1
            if self.failures > len(self.replica_dc) - self.block_for:
                self.done = True
                return [Reply(self.request_id, error=WriteFailure(self.level, self.received(), self.failures,
                                                                  self.block_for))]
            return []
        dc = self.replica_dc.get(src, self.local_dc)
        self.acks_by_dc[dc] = self.acks_by_dc.get(dc, 0) + 1
        if self.faults.ack_early and self.received() >= max(1, self.block_for - 1):
            self.done = True  # canary: acknowledges one replica too early
            return [Reply(self.request_id, result=self.result)]
        if cl.tally(self.level, self.acks_by_dc, self.rf_by_dc, self.local_dc, pending_by_dc=self.pending_by_dc):
            self.done = True
            return [Reply(self.request_id, result=self.result)]
        return []

    def on_timeout(self, now_ms: int) -> list:
        if self.finished or now_ms < self.deadline_ms:
            return []
        self.finished = True
        if self.done:
            return []
        self.done = True
        counted = sum(n for dc, n in self.acks_by_dc.items() if cl.counts_towards(self.level, dc, self.local_dc))
        return [Reply(self.request_id, error=WriteTimeout(self.level, counted, self.block_for, self.write_type))]


class ReadHandler:
    """One partition read at a consistency level, with digest comparison and blocking read repair."""

    msg_id = None

    @property
    def finished(self) -> bool:
        return self.done

    def __init__(self, ctx, request_id: int, level, table, key: bytes, lo: bytes, hi, targets: list[str],
                 block_for: int, deadline_ms: int, finish, read_repair: bool, extra=(),
                 speculate_at_ms: float | None = None):
        self.ctx = ctx
        self.request_id = request_id
        self.level = level
        self.table = table
        self.key = key
        self.lo, self.hi = lo, hi
        self.targets = targets          # contacted replicas, closest first; targets[0] gets the data request
        self.block_for = block_for
        self.deadline_ms = deadline_ms
        self.finish = finish            # callable(Partition | None) -> result
        self.read_repair = read_repair
        self.phase = "digest"
        self.digests: dict[str, bytes] = {}
        self.data: dict[str, bytes | None] = {}
        self.repair_pending: set[str] = set()
        self.merged: Partition | None = None
        self.done = False
        self.failures = 0
        self.data_targets = {targets[0]}    # replicas asked for full data
        self.extra = list(extra)            # live replicas not contacted: speculative retry's choice
        self.speculate_at_ms = speculate_at_ms
        self.sent_at = dict.fromkeys(targets, ctx.now_ms)  # per replica: latency samples for speculation

    def requests(self, msg_id: int) -> list:
        first, rest = self.targets[0], self.targets[1:]
        out = [Send(first, ReadRequest(msg_id, self.table.id, self.key, self.lo, self.hi, False))]
        digest = ReadRequest(msg_id, self.table.id, self.key, self.lo, self.hi, True)   # encoded once
        out += [Send(ep, digest) for ep in rest]
        if self.speculate_at_ms is not None and self.speculate_at_ms <= self.ctx.now_ms:
            out += self._speculate()  # ALWAYS
        return out

    def _speculate(self) -> list:
        """Ask one more replica: for data if no data has come back yet, else for a digest."""
        self.speculate_at_ms = None
        if not self.extra:
            return []
        ep = self.extra.pop(0)
        for silent in (t for t in self.targets if t not in self.digests):
            # its silence so far is a latency sample for the dynamic snitch, so later requests
            # prefer the replicas that answer (Cassandra's snitch also counts timeouts)
            self.ctx.note_latency(silent, self.sent_at.get(silent, self.ctx.now_ms))
        want_data = not self.data
        if want_data:
            self.data_targets.add(ep)
        self.targets.append(ep)
        self.sent_at[ep] = self.ctx.now_ms
        self.ctx.count("speculative_retries")
        return [Send(ep, ReadRequest(self.msg_id, self.table.id, self.key, self.lo, self.hi, not want_data))]

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        if type(reply) is MutationResponse:
            return self._on_repair_ack(src)
        assert type(reply) is ReadResponse, reply
        return self._on_read(src, reply.payload, reply.digest, reply.error, now_ms)

    def _on_read(self, src: str, payload, digest: bytes, error, now_ms: int) -> list:
        if self.phase == "digest" and error is None and src != self.ctx.endpoint and src in self.sent_at:
            self.ctx.record_read_latency(now_ms - self.sent_at.pop(src))
        if self.done:
            return []
        if error is not None:
            self.failures += 1
            if self.failures > len(self.targets) - self.block_for:
                self.done = True
                return [Reply(self.request_id, error=ReadFailure(self.level, len(self.digests), self.failures,
                                                                 self.block_for))]
            return []
        if self.phase == "digest":
            self.digests[src] = digest
            if src in self.data_targets or payload is not None:
                self.data[src] = payload
            return self._digest_step(now_ms)
        if self.phase == "data":
            self.data[src] = payload
            if all(ep in self.data for ep in self.targets_contacted):
                return self._reconcile(now_ms)
        return []

    def _digest_step(self, now_ms: int) -> list:
        if len(self.digests) < self.block_for or not self.data:
            return []
        contacted = list(self.digests)
        if len(set(self.digests.values())) == 1:
            self.done = True
            payload = next(iter(self.data.values()))
            p = decode_partition(payload) if payload else None
            return [Reply(self.request_id, result=self.finish(p))]
        # mismatch: read full data from everyone who answered
        self.ctx.count("digest_mismatches")
        self.phase = "data"
        self.targets_contacted = contacted
        self.data = {}
        msg_id = self.ctx.register(self)
        return [Send(ep, ReadRequest(msg_id, self.table.id, self.key, self.lo, self.hi, False)) for ep in contacted]

    def _reconcile(self, now_ms: int) -> list:
        versions = {ep: (decode_partition(p) if p else Partition()) for ep, p in self.data.items()}
        merged = merge_all(list(versions.values()))
        self.merged = merged
        canonical = canonical_payload(merged)
        stale = [ep for ep, p in self.data.items() if canonical_payload(versions[ep]) != canonical]
        if not self.read_repair or not stale or canonical is None:
            self.done = True
            return [Reply(self.request_id, result=self.finish(merged))]
        self.phase = "repair"
        self.repair_pending = set(stale)
        self.ctx.count("read_repairs", len(stale))
        msg_id = self.ctx.register(self)
        return [Send(ep, MutationRequest(msg_id, self.table.id, self.key, canonical)) for ep in stale]

    def _on_repair_ack(self, src: str) -> list:
        if self.done or self.phase != "repair":
            return []
        self.repair_pending.discard(src)
        if not self.repair_pending:
            self.done = True
            return [Reply(self.request_id, result=self.finish(self.merged))]
        return []

    def on_timeout(self, now_ms: int) -> list:
        if self.done:
            return []
        if self.phase == "digest" and self.speculate_at_ms is not None and now_ms >= self.speculate_at_ms \
                and now_ms < self.deadline_ms:
            return self._speculate()
        if now_ms < self.deadline_ms:
            return []
        self.done = True
        received = len(self.digests)
        return [Reply(self.request_id, error=ReadTimeout(self.level, min(received, self.block_for), self.block_for,
                                                         data_present=bool(self.data)))]


class ScanHandler:
    """A paged token-range scan: sub-range by sub-range, block_for replicas each."""

    msg_id = None

    @property
    def finished(self) -> bool:
        return self.done

    def __init__(self, ctx, request_id: int, level, table, subranges: list, resume, page_size: int,
                 deadline_ms: int, emit, speculate_after_ms: float | None = None):
        self.ctx = ctx
        self.request_id = request_id
        self.level = level
        self.table = table
        self.subranges = subranges      # [(start (token,key) incl | None, end (token,key) excl | None, targets,
        #                                  other live replicas)]
        self.index = 0
        self.resume = resume            # (token, key, ck) or None
        self.page_size = page_size
        self.deadline_ms = deadline_ms
        self.emit = emit                # callable(token, key, Partition, rows_list, resume) -> None
        self.rows: list = []
        self.responses: dict[str, tuple] = {}
        self.done = False
        self.cursor = None              # (token, key) inclusive start within the current sub-range
        self.speculate_after_ms = speculate_after_ms
        self.speculate_at_ms = None     # for the page in flight: when to ask one more replica
        self.timeout_ms = deadline_ms - ctx.now_ms   # per request to the replicas, as Cassandra's
        self.silent: set[str] = set()   # replicas replaced by speculation: passed over from then on

    def start(self) -> list:
        return self._request()

    def _spares(self) -> list[str]:
        """The current sub-range's other live replicas, without those already found silent."""
        sub = self.subranges[self.index]
        return [ep for ep in (sub[3] if len(sub) > 3 else ()) if ep not in self.silent]

    def _speculate(self) -> list:
        """A replica of the page in flight has not answered in time: ask another live one instead."""
        self.speculate_at_ms = None
        extra = [ep for ep in self._spares() if ep not in self.expected]
        silent = sorted(self.expected - set(self.responses))
        if not extra or not silent:
            return []
        self.silent.add(silent[0])
        self.ctx.note_latency(silent[0], self.sent_ms)
        self.expected = (self.expected - {silent[0]}) | {extra[0]}
        self.ctx.count("speculative_retries")
        return [Send(extra[0], self.request)]

    def _request(self) -> list:
        while self.index < len(self.subranges):
            start, end, targets = self.subranges[self.index][:3]
            if self.resume is not None and end is not None and (self.resume[0], self.resume[1]) >= end:
                self.index += 1  # the previous pages already covered this sub-range
                continue
            cursor = self.cursor or start
            if self.resume is not None and (end is None or (self.resume[0], self.resume[1]) < end):
                rs = (self.resume[0], self.resume[1])
                if cursor is None or rs > cursor:
                    cursor = rs
            self.cursor = cursor
            self.responses = {}
            msg_id = self.ctx.register(self)
            limit = max(1, self.page_size - len(self.rows)) + 1
            req = RangeReadRequest(msg_id, self.table.id, list(cursor) if cursor else None,
                                   list(end) if end else None, limit)
            spare = self._spares()
            targets = [ep if ep not in self.silent or not spare else spare.pop(0) for ep in targets]
            self.expected = set(targets)
            self.request = req
            self.deadline_ms = self.ctx.now_ms + self.timeout_ms
            self.sent_ms = self.ctx.now_ms
            if self.speculate_after_ms is not None and len(self.subranges[self.index]) > 3:
                self.speculate_at_ms = self.ctx.now_ms + max(self.speculate_after_ms, SCAN_SPECULATION_MIN_MS)
            return [Send(ep, req) for ep in targets]
        self.done = True
        return [Reply(self.request_id, result={"rows": self.rows, "paging_state": None})]

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        partitions, exhausted, error = reply.partitions, reply.exhausted, reply.error
        if self.done or src not in self.expected:
            return []
        if error is not None:
            self.done = True
            return [Reply(self.request_id, error=ReadFailure(self.level, len(self.responses), 1, len(self.expected)))]
        self.responses[src] = (partitions, exhausted)
        if set(self.responses) != self.expected:
            return []
        # merge up to the smallest last key of a replica that may have more
        cutoff = None
        for parts, ex in self.responses.values():
            if not ex and parts:
                last = (parts[-1][0], parts[-1][1])
                cutoff = last if cutoff is None or last < cutoff else cutoff
        by_key: dict[tuple, list] = {}
        for parts, _ in self.responses.values():
            for token, key, payload in parts:
                tk = (token, key)
                if cutoff is None or tk <= cutoff:
                    by_key.setdefault(tk, []).append(payload)
        for tk in sorted(by_key):
            p = merge_all([decode_partition(x) for x in by_key[tk]])
            full = self.emit(tk[0], tk[1], p, self.rows, self.resume)
            self.resume = None
            if full:
                self.done = True
                return [Reply(self.request_id, result={"rows": self.rows, "paging_state": full})]
        if cutoff is None:   # every replica exhausted this sub-range
            self.index += 1
            self.cursor = None
        else:
            self.cursor = (cutoff[0], cutoff[1] + b"\x00")  # the smallest key after the cutoff
        return self._request()

    def on_timeout(self, now_ms: int) -> list:
        if self.done:
            return []
        if self.speculate_at_ms is not None and self.speculate_at_ms <= now_ms < self.deadline_ms:
            return self._speculate()
        if now_ms < self.deadline_ms:
            return []
        self.done = True
        return [Reply(self.request_id, error=ReadTimeout(self.level, len(self.responses), len(self.expected)))]
