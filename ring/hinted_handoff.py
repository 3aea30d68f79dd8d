"""Hints: mutations a coordinator keeps for a replica that was down or did not answer in time.

Rule: hinted_handoff.py decides and stores; node.py sends. Hints live in the node's own store, in
`system.hints` (partition: the target's host id; clustering: a per-node increasing hint id), so
they survive restarts like any write. Each hint expires after the smallest `gc_grace_seconds` of
the tables it touches (Cassandra's hint TTL): a hint older than that could resurrect deleted data.
No hint is stored for a node down longer than `max_hint_window_ms` (3 h). Hints never count
toward a consistency level, except ANY, where a stored hint is the acknowledgement. A hint travels
as a HintRequest carrying its creation time (the hint row's write time): the target drops it if
the table was truncated there since (ring/replica.py answer_hint).
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.messages import HintRequest, Send

SYSTEM = "system"
TABLE = "hints"
CHUNK_HINTS = 1024


class _Chunk:
    """Hints of one target read in one go: `waiting` to be handed out (id order), `handed` out
    and not yet acknowledged. Hint ids only grow, so the next chunk starts after `last_id`."""

    __slots__ = ("first_id", "handed", "last_id", "waiting")

    def __init__(self, rows: list[dict]):
        self.waiting = list(rows)
        self.handed: dict[int, dict] = {}
        self.first_id, self.last_id = rows[0]["id"], rows[-1]["id"]


class HintStore:
    def __init__(self, store, *, max_hint_window_ms: int = 3 * 3600 * 1000, max_hints_in_flight: int = 1024):
        self.store = store
        self.max_hint_window_ms = max_hint_window_ms
        self.max_hints_in_flight = max_hints_in_flight
        store.create_table(SYSTEM, TABLE, {"target": "text", "id": "bigint", "table_id": "text", "key": "blob",
                                           "payload": "blob", "endpoint": "text"}, primary_key=("target", "id"),
                           if_not_exists=True)
        self._next_id = 0
        self.pending: dict[str, int] = {}   # target host id -> hints stored (approximate once TTLs expire)
        self.endpoints: dict[str, str] = {}  # target host id -> its endpoint when hinted
        for row in store.scan_all(SYSTEM, TABLE, columns=["endpoint"]):
            self.pending[row["target"]] = self.pending.get(row["target"], 0) + 1
            self.endpoints[row["target"]] = row["endpoint"]
            self._next_id = max(self._next_id, row["id"] + 1)
        self.in_flight: set[tuple[str, int]] = set()
        self.chunks: dict[str, _Chunk] = {}  # target -> the hints read and being delivered
        self.stats = {"hints_stored": 0, "hints_delivered": 0, "hints_expired_window": 0}

    def should_hint(self, down_for_ms: int | None) -> bool:
        """Cassandra: hint only replicas down no longer than max_hint_window."""
        if down_for_ms is not None and down_for_ms > self.max_hint_window_ms:
            self.stats["hints_expired_window"] += 1
            return False
        return True

    def store_hint(self, target_host: str, endpoint: str, table, key: bytes, payload: bytes, ts: int) -> None:
        ttl = int(table.option("gc_grace_seconds"))
        if ttl <= 0:
            return  # gc_grace 0: a hint could only resurrect data; Cassandra skips it too
        self._next_id = max(self._next_id + 1, ts)
        self.store.insert(SYSTEM, TABLE, {"target": target_host, "id": self._next_id, "table_id": table.id,
                                          "key": key, "payload": payload, "endpoint": endpoint}, ttl=ttl)
        self.pending[target_host] = self.pending.get(target_host, 0) + 1
        self.endpoints[target_host] = endpoint
        self.stats["hints_stored"] += 1

    def next_batch(self, target_host: str, limit: int) -> list[dict]:
        """Up to `limit` undelivered hints for a target, oldest first. Hints are read a chunk
        (CHUNK_HINTS) at a time, after the last chunk read: the engine reads whole partitions,
        so one read per chunk, not per batch, keeps replay linear in the number of hints."""
        chunk = self.chunks.get(target_host)
        if chunk is None or (not chunk.waiting and not chunk.handed):
            if chunk is not None:
                self._delete_chunk(target_host, chunk)
            after = chunk.last_id if chunk is not None else None
            rows = self.store.select(SYSTEM, TABLE, {"target": target_host},
                                     start=None if after is None else {"id": after}, start_inclusive=False,
                                     limit=CHUNK_HINTS, writetime=True)  # writetime: the hint's creation
            if not rows:
                self.chunks.pop(target_host, None)
                self.pending.pop(target_host, None)  # everything delivered or expired
                return []
            chunk = self.chunks[target_host] = _Chunk(rows)
        out = chunk.waiting[:limit]
        del chunk.waiting[:limit]
        for row in out:
            chunk.handed[row["id"]] = row
        return out

    def failed(self, target_host: str, hint_id: int) -> None:
        """A delivery failed or timed out: the hint is handed out again by a later batch."""
        self.in_flight.discard((target_host, hint_id))
        chunk = self.chunks.get(target_host)
        row = chunk.handed.pop(hint_id, None) if chunk is not None else None
        if row is not None:
            chunk.waiting.insert(0, row)

    def delivered(self, target_host: str, hint_id: int) -> None:
        """Acknowledged. The chunk's hints are deleted with one range tombstone once all are
        delivered; a crash before that re-delivers them (mutations are idempotent)."""
        self.in_flight.discard((target_host, hint_id))
        chunk = self.chunks.get(target_host)
        if chunk is not None:
            chunk.handed.pop(hint_id, None)
        self.pending[target_host] = max(0, self.pending.get(target_host, 1) - 1)
        self.stats["hints_delivered"] += 1

    def _delete_chunk(self, target_host: str, chunk: _Chunk) -> None:
        self.store.delete(SYSTEM, TABLE, {"target": target_host}, start={"id": chunk.first_id},
                          end={"id": chunk.last_id})

    def check_capacity(self) -> None:
        if len(self.in_flight) >= self.max_hints_in_flight:
            from ring.errors import OverloadedError
            raise OverloadedError(f"{len(self.in_flight)} hints in flight (max_hints_in_flight="
                                  f"{self.max_hints_in_flight}); retry later")

    def list_pending(self) -> list[dict]:
        return [{"host_id": h, "endpoint": self.endpoints.get(h), "hints": n}
                for h, n in sorted(self.pending.items()) if n]

    def truncate(self, target_host: str | None = None) -> int:
        targets = [target_host] if target_host else list(self.pending)
        removed = 0
        for t in targets:
            if t is None:
                raise InvalidRequest("truncatehints needs a host id or nothing")
            removed += self.pending.pop(t, 0)
            self.chunks.pop(t, None)
            self.store.delete(SYSTEM, TABLE, {"target": t})
        return removed


class Handoff:
    """The coordinator's side: when each peer went down, hints for replicas that are down or did
    not acknowledge a write in time, and their delivery once the target is back."""

    def __init__(self, ctx, hints: HintStore):
        self.ctx = ctx
        self.hints = hints
        self.down_since: dict[str, int] = {}

    def track_down(self, now_ms: int, peers: list[str]) -> list[str]:
        """Note which peers are down since when; returns those that came back up."""
        back = []
        for ep in peers:
            if self.ctx.is_alive(ep):
                if self.down_since.pop(ep, None) is not None:
                    back.append(ep)
            else:
                self.down_since.setdefault(ep, now_ms)
        return back

    def hint(self, ep: str, table, key: bytes, payload: bytes) -> bool:
        """Keep `payload` for replica `ep` if handoff is on and it has not been down too long."""
        ctx = self.ctx
        host = ctx.host_id_of(ep)
        if not ctx.config.hinted_handoff_enabled or host is None or ep == ctx.endpoint:
            return False
        down_since = self.down_since.get(ep)
        if not self.hints.should_hint(None if down_since is None else ctx.now_ms - down_since):
            return False
        self.hints.store_hint(host, ep, table, key, payload, ctx.wall_us())
        return True

    def hint_unacked(self, handler) -> None:
        """A finished WriteHandler: hint every replica that never acknowledged."""
        if handler.mutation is None:
            return
        table, key, payload = handler.mutation
        for ep in handler.unacked():
            self.hint(ep, table, key, payload)

    def deliver(self, now_ms: int) -> list:
        """A batch of hints (hints_per_tick) for every live target whose schema matches ours."""
        ctx, hints = self.ctx, self.hints
        out = []
        for host in list(hints.pending):
            ep = hints.endpoints.get(host)
            if ep is None or not ctx.is_alive(ep) or ctx.host_id_of(ep) != host:
                continue
            if ctx.app_state(ep, ms.ApplicationState.SCHEMA) != ctx.schema_version():
                continue  # Cassandra delivers only to hosts with a matching schema
            for row in hints.next_batch(host, ctx.config.hints_per_tick):
                delivery = HintDelivery(hints, host, row["id"], now_ms + ctx.config.write_request_timeout_ms)
                msg_id = ctx.register(delivery)
                out.append(Send(ep, HintRequest(msg_id, row["table_id"], row["key"], row["payload"],
                                                row["writetime(payload)"])))
        return out


class HintDelivery:
    """One hint on its way to its target: deleted when acknowledged, retried later otherwise."""

    msg_id = None

    def __init__(self, hints: HintStore, target_host: str, hint_id: int, deadline_ms: int):
        self.hints = hints
        self.target_host = target_host
        self.hint_id = hint_id
        self.deadline_ms = deadline_ms
        self.done = False
        hints.in_flight.add((target_host, hint_id))

    @property
    def finished(self) -> bool:
        return self.done

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        if not self.done:
            self.done = True
            if reply.error is None:
                self.hints.delivered(self.target_host, self.hint_id)
            else:
                self.hints.failed(self.target_host, self.hint_id)
        return []

    def on_timeout(self, now_ms: int) -> list:
        if not self.done and now_ms >= self.deadline_ms:
            self.done = True
            self.hints.failed(self.target_host, self.hint_id)
        return []
