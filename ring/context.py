"""What a handler may see and do on its node: the narrow view handed to coordinator state machines.

Rule: handlers decide, the node sends. A handler (coordinator.py, index_query.py,
anti_entropy.py, streaming.py, operations/) never holds the `Node`; it holds a `Context`
and uses only what is named here: the clock (`now_ms`), `register` for a message id routing
replies to it, `count` for metrics, and a few queries and topology operations. Everything it
wants sent it returns as effects. Handlers receive replies through one protocol,
`on_reply(now_ms, src, reply)`, and time through `on_timeout(now_ms)` (called on every tick; a
handler checks its own deadlines). `finished` tells the node to stop routing to it.
"""
from __future__ import annotations

from typing import Protocol

from ring.replica import local_table


class Handler(Protocol):
    msg_id: int | None
    finished: bool

    def on_reply(self, now_ms: int, src: str, reply) -> list: ...

    def on_timeout(self, now_ms: int) -> list: ...


class Context:
    """A node as its handlers see it. Holds the node privately; exposes only named operations."""

    __slots__ = ("_node",)

    def __init__(self, node):
        self._node = node

    # -- clock, identity, requests --------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self._node.now_ms

    def wall_us(self) -> int:
        """The (skewable) wall clock in microseconds: write timestamps, hint ids, TTLs."""
        return self._node.clock.wall_us()

    @property
    def endpoint(self) -> str:
        return self._node.endpoint

    @property
    def config(self):
        return self._node.config

    @property
    def store(self):
        return self._node.store

    def register(self, handler: Handler) -> int:
        """A fresh message id routing replies to `handler`; its previous id stops routing."""
        return self._node.register_handler(handler)

    def count(self, name: str, n: int = 1) -> None:
        self._node.meter.count(name, n)

    # -- queries --------------------------------------------------------------------------------

    def is_alive(self, ep: str) -> bool:
        return self._node.is_alive(ep)

    def note_latency(self, ep: str, sent_at_ms: int) -> None:
        """A latency sample (now - sent_at) for the dynamic snitch; the local node is skipped."""
        if ep != self._node.endpoint:
            self._node.snitch.record_latency(ep, self._node.now_ms - sent_at_ms, self._node.now_ms)

    def record_read_latency(self, latency_ms: int) -> None:
        self._node.read_latency.record(latency_ms)

    @property
    def snitch(self):
        return self._node.snitch

    @property
    def topology(self):
        return self._node.topology

    @property
    def ring(self):
        return self._node.ring

    def strategy(self, keyspace: str):
        return self._node.strategy(keyspace)

    def schema_version(self) -> str:
        return self._node.schema.version()

    def app_state(self, ep: str, key):
        return self._node.gossiper.app_state(ep, key)

    def known_endpoints(self) -> list[str]:
        return list(self._node.gossiper.states)

    def local_table(self, table_id: str):
        """The local schema's table with this id, or None (not created, or not yet learned)."""
        return local_table(self._node.store, table_id)

    def host_id_of(self, ep: str) -> str | None:
        return self._node.host_id_of(ep)

    def write_replicas(self, keyspace: str, token: int) -> list[str]:
        """Every endpoint a write of `token` goes to: the natural replicas, then the pending ones."""
        return self._node.replicas(keyspace, token) + list(self._node.pending_endpoints(keyspace, token))

    def hint(self, ep: str, table, key: bytes, payload: bytes) -> bool:
        """Keep a mutation for replica `ep` (hinted handoff); False if no hint was stored."""
        return self._node.hint(ep, table, key, payload)

    # -- topology operations (ring/operations/) -------------------------------------------------

    @property
    def mode(self) -> str:
        return self._node.mode

    def set_mode(self, mode: str) -> None:
        self._node.mode = mode

    @property
    def tokens(self) -> list[int]:
        return self._node.tokens

    def set_tokens(self, tokens: list[int]) -> None:
        self._node.tokens = tokens

    def refresh_ring(self) -> None:
        self._node.refresh_ring()

    def announce(self, status) -> None:
        self._node.announce(status)

    def advertise_for(self, ep: str, states: dict) -> None:
        """Gossip states on behalf of another (dead) endpoint: removenode."""
        self._node.gossiper.advertise_for(ep, states)

    def convict(self, ep: str) -> None:
        """Stop failure-detecting `ep` (removed from the ring)."""
        self._node.detector.remove(ep)

    def truncate_hints(self, host_id: str) -> int:
        return self._node.hints.truncate(host_id)
