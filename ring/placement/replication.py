"""Which endpoints replicate a token of a keyspace, on the node's current topology.

Contract: `set_topology` is called whenever gossip changes the ring (ring/node.py refresh_ring);
between calls the answers are pure functions of (keyspace definition, topology, snitch), cached:
a keyspace's strategy until its definition object changes (ALTER KEYSPACE replaces it), a
SimpleStrategy placement per (rf, ring index) until the ring changes (a token's replicas depend
only on the ring position it falls in, never on the snitch), and the pending endpoints of the
moves in progress until the topology changes. `replicas` returns a fresh list the caller may own.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring.placement.pending import PendingIndex, Topology, pending_index
from ring.placement.strategy import SimpleStrategy, from_options
from ring.placement.token_ring import TokenRing


class ReplicaPlacement:
    def __init__(self, store, snitch, datacenter: str, topology: Topology):
        self.store = store
        self.snitch = snitch
        self.datacenter = datacenter
        self.topology = topology
        self.ring: TokenRing = topology.current
        self._strategies: dict[str, tuple] = {}
        self._placements: tuple[TokenRing | None, dict] = (None, {})
        self._pending: dict[str, tuple[object, PendingIndex]] = {}

    def set_topology(self, topology: Topology) -> None:
        self.topology = topology
        self.ring = topology.current
        self._pending.clear()

    def strategy(self, keyspace: str):
        ks = self.store.keyspaces.get(keyspace)
        if ks is None:
            raise InvalidRequest(f"keyspace '{keyspace}' does not exist")
        cached = self._strategies.get(keyspace)
        if cached is None or cached[0] is not ks:
            cached = self._strategies[keyspace] = (ks, from_options(ks.replication))
        return cached[1]

    def replicas(self, keyspace: str, token: int) -> list[str]:
        """The natural replicas of `token`, in the strategy's order."""
        strategy = self.strategy(keyspace)
        ring = self.ring
        if type(strategy) is not SimpleStrategy or not ring.tokens:
            return strategy.replicas(ring, token, self.snitch)
        computed_on, placements = self._placements
        if computed_on is not ring:
            self._placements = (ring, placements := {})
        index = ring.first_token_index(token)
        found = placements.get((strategy.rf, index))
        if found is None:
            found = placements[(strategy.rf, index)] = strategy.replicas(ring, ring.tokens[index], self.snitch)
        return list(found)

    def rf_by_dc(self, keyspace: str) -> dict[str, int]:
        return self.strategy(keyspace).rf_by_dc(self.ring, self.snitch, self.datacenter)

    def pending_endpoints(self, keyspace: str, token: int) -> tuple[str, ...]:
        """Endpoints that will replicate `token` once the moves in progress complete."""
        if not self.topology.moving:
            return ()
        strategy = self.strategy(keyspace)
        cached = self._pending.get(keyspace)
        if cached is None or cached[0] is not strategy:
            cached = self._pending[keyspace] = (strategy, pending_index(strategy, self.topology, self.snitch))
        return cached[1].lookup(token)
