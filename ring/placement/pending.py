"""Topology changes as pure decisions: which ring reads use, which ring the cluster is moving to,
which endpoints must also take writes meanwhile, and which token ranges move where.

Gossip STATUS decides an endpoint's place (Cassandra's words, docs/ring.md#topology-changes):

* NORMAL, LEAVING (decommissioning) and `removing` (a dead node being re-replicated) are in the
  **current** ring: reads and the natural replicas of writes come from it;
* the **future** ring is NORMAL plus BOOT (joining): LEAVING and `removing` endpoints are gone;
* LEFT, `removed` and endpoints without a status are in neither.

The **pending** endpoints of a token are its replicas in the future ring that are not replicas
in the current ring. A write goes to them too and waits for that many more acknowledgements
(Cassandra's blockForWrite), so a write acknowledged during a move is on a quorum of the old
replica set *and* of the new one: nothing acknowledged is lost when the move completes.

A **movement** is one range (lo, hi] that an endpoint gains: it must fetch it from the range's
current replicas, preferring those that lose the range (they are the ones about to stop taking
its writes), before the move completes.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass

from ring import membership as ms
from ring.placement.token_ring import TokenRing

CURRENT = frozenset({ms.Status.NORMAL, ms.Status.LEAVING, ms.Status.REMOVING})
FUTURE = frozenset({ms.Status.NORMAL, ms.Status.BOOT})


@dataclass(frozen=True)
class Topology:
    current: TokenRing
    future: TokenRing
    status: Mapping[str, str]     # endpoint -> STATUS head, for endpoints in either ring

    @property
    def moving(self) -> bool:
        return self.current != self.future

    def endpoints_in(self, *statuses: str) -> list[str]:
        return sorted(ep for ep, st in self.status.items() if st in statuses)


def topology_from_states(states: Mapping[str, ms.EndpointState]) -> Topology:
    current: dict[str, list[int]] = {}
    future: dict[str, list[int]] = {}
    status: dict[str, str] = {}
    for ep, state in states.items():
        value = state.get(ms.ApplicationState.STATUS)
        tokens = state.get(ms.ApplicationState.TOKENS)
        if not value or not tokens:
            continue
        head = ms.parse_status(value)[0]
        if head in CURRENT or head in FUTURE:
            status[ep] = head
            toks = ms.parse_tokens(tokens)
            if head in CURRENT:
                current[ep] = toks
            if head in FUTURE:
                future[ep] = toks
    return Topology(TokenRing.from_endpoints(current), TokenRing.from_endpoints(future), status)


def _union_tokens(a: TokenRing, b: TokenRing) -> list[int]:
    return sorted(set(a.tokens) | set(b.tokens))


@dataclass(frozen=True)
class PendingIndex:
    """Pending endpoints per range of one keyspace: `ends[i]` closes the range (ends[i-1], ends[i]]."""

    ends: tuple[int, ...]
    pending: tuple[tuple[str, ...], ...]

    def lookup(self, token: int) -> tuple[str, ...]:
        if not self.ends:
            return ()
        i = bisect_left(self.ends, token)
        return self.pending[0 if i == len(self.ends) else i]


def pending_index(strategy, topology: Topology, snitch) -> PendingIndex:
    """The pending endpoints of every range, for one keyspace's strategy."""
    if not topology.moving or not topology.future.tokens or not topology.current.tokens:
        return PendingIndex((), ())
    ends = _union_tokens(topology.current, topology.future)
    pending = []
    for tok in ends:
        now = set(strategy.replicas(topology.current, tok, snitch))
        pending.append(tuple(ep for ep in strategy.replicas(topology.future, tok, snitch) if ep not in now))
    return PendingIndex(tuple(ends), tuple(pending))


@dataclass(frozen=True)
class Movement:
    lo: int
    hi: int                       # the range (lo, hi]; lo >= hi wraps past the ring's end
    target: str                   # the endpoint that gains the range
    sources: tuple[str, ...]      # its current replicas: those losing it first, then the others


def range_movements(strategy, current: TokenRing, future: TokenRing, snitch) -> list[Movement]:
    """Every (range, gaining endpoint) of a move from `current` to `future`, in token order."""
    if not current.tokens or not future.tokens:
        return []
    ends = _union_tokens(current, future)
    out = []
    for i, tok in enumerate(ends):
        now = strategy.replicas(current, tok, snitch)
        then = strategy.replicas(future, tok, snitch)
        losing = [ep for ep in now if ep not in then]
        keeping = [ep for ep in now if ep in then]
        for ep in then:
            if ep not in now:
                out.append(Movement(ends[i - 1], tok, ep, tuple(losing + keeping)))
    return out


def replication_shortfall(strategy, ring: TokenRing, snitch) -> str | None:
    """Why `ring` cannot hold every replica the strategy asks for (RF 3 on two nodes), or None."""
    by_dc = getattr(strategy, "datacenters", None)
    if by_dc is None:  # SimpleStrategy: one RF for the whole ring
        rf, have = strategy.rf, len(ring.endpoints)
        return f"RF = {rf}, N = {have}" if rf > have else None
    for dc, rf in by_dc.items():
        have = sum(1 for ep in ring.endpoints if snitch.datacenter(ep) == dc)
        if rf > have:
            return f"RF = {rf} in {dc}, N = {have}"
    return None
