"""TRUNCATE: discard every row of one table on every node of the ring (Cassandra's
StorageProxy.truncateBlocking).

Rule: the op decides and sends, the replicas discard, the node routes the answers here. Every
endpoint that owns tokens must be alive (per the failure detector) or nothing is sent and the
client gets Unavailable at ALL ("Cannot achieve consistency level ALL"), as in Cassandra: a
node that missed the truncate would bring the rows back through repair or read repair. Each
node answers a `TruncateRequest` from its own store (engine/truncation.py: auto_snapshot, then
memtable and SSTables dropped, the truncation position recorded so a commit-log replay cannot
resurrect them). The client's `Reply` comes once every endpoint acknowledged; an endpoint's error,
or no answer within `range_request_timeout_ms` (10 s by default; Cassandra's separate
truncate_request_timeout is 60 s, longer than the drivers' default 10 s client timeout), fails
it with `TruncateError` (Truncate_error 0x1003 in CQL). The op is `truncate(node, request_id, args)`.
"""
from __future__ import annotations

from ring import membership as ms
from ring.consistency import ConsistencyLevel
from ring.errors import TruncateError, UnavailableError
from ring.messages import Reply, Send, TruncateRequest
from ring.ops.data import table_args

def ring_endpoints(node) -> list[str]:
    """The endpoints holding tokens that have not left or been removed (nodetool status' rows)."""
    node.refresh_ring()
    out = []
    for ep in sorted(node.ring.endpoints):
        status = node.gossiper.app_state(ep, ms.ApplicationState.STATUS) if ep != node.endpoint else None
        if status and ms.parse_status(status)[0] in (ms.Status.LEFT, ms.Status.REMOVED):
            continue
        out.append(ep)
    return out or [node.endpoint]


def truncate(node, rid: int, args: dict) -> list:
    _, table = table_args(node, args)
    endpoints = ring_endpoints(node)
    alive = [ep for ep in endpoints if ep == node.endpoint or node.is_alive(ep)]
    if len(alive) < len(endpoints):
        raise UnavailableError(ConsistencyLevel.ALL, len(endpoints), len(alive))
    handler = TruncateHandler(rid, set(endpoints), node.now_ms, node.config.range_request_timeout_ms)
    msg = TruncateRequest(node.context.register(handler), table.id)
    return [Send(ep, msg) for ep in endpoints]


class TruncateHandler:
    """Waits for every endpoint's TruncateResponse; replies once (done, error or timeout)."""

    msg_id = None

    def __init__(self, request_id: int, expected: set[str], now_ms: int, timeout_ms: int):
        self.request_id = request_id
        self.expected = expected
        self.acked: set[str] = set()
        self.timeout_ms = timeout_ms
        self.deadline_ms = now_ms + timeout_ms
        self.finished = False

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        if self.finished or src not in self.expected:
            return []
        if reply.error is not None:
            self.finished = True
            return [Reply(self.request_id, error=TruncateError(f"{src} failed: {reply.error}"))]
        self.acked.add(src)
        if self.acked != self.expected:
            return []
        self.finished = True
        return [Reply(self.request_id, result={"truncated": sorted(self.acked)})]

    def on_timeout(self, now_ms: int) -> list:
        if self.finished or now_ms < self.deadline_ms:
            return []
        self.finished = True
        missing = ", ".join(sorted(self.expected - self.acked))
        return [Reply(self.request_id, error=TruncateError(f"no answer from {missing} in "
                                                           f"{self.timeout_ms} ms"))]
