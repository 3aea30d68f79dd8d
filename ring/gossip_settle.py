"""Waiting for gossip to settle after a restart, as Cassandra does before it starts its native
transport ("Waiting for gossip to settle").

A node that was a ring member comes back knowing only itself until its first gossip exchange. A
CQL driver whose control connection lands on it in that moment reads an empty `system.peers` and
drops every other host from its metadata. So the runtime opens the CQL port only once `settled`.

Contract:
* The members this node last saw NORMAL (its peers, itself excluded) are kept in
  `system.bootstrap` under the key "peers", rewritten by `observe` whenever that set changes after
  the node has settled. A set learnt before settling is never saved (it would be the empty view of
  a node that has not heard from anyone yet).
* A node that starts with a saved set, and is not joining, is settled once its gossip knows any
  other endpoint (one exchange brings the whole view of the peer it reached) or after
  SETTLE_ROUNDS gossip rounds (every peer down: it serves what it has). A node without a saved set
  (new, joining, or alone) is settled at once.
Pure decisions on gossip states and times given by the caller; the store is the only I/O (a system
table, as in ring/operations/bootstrap.py).
"""
from __future__ import annotations

from ring import membership as ms
from ring.operations.bootstrap import BOOTSTRAP_TABLE

SETTLE_ROUNDS = 5
PEERS_KEY = "peers"


def saved_peers(store) -> frozenset[str]:
    row = store.get("system", BOOTSTRAP_TABLE, {"key": PEERS_KEY})
    return frozenset(ep for ep in row["state"].split(",") if ep) if row and row.get("state") else frozenset()


def normal_peers(states: dict, endpoint: str) -> frozenset[str]:
    """The endpoints other than `endpoint` whose gossip STATUS is NORMAL."""
    out = set()
    for ep, state in states.items():
        status = state.get(ms.ApplicationState.STATUS)
        if ep != endpoint and status and ms.parse_status(status)[0] == ms.Status.NORMAL:
            out.add(ep)
    return frozenset(out)


class GossipSettle:
    def __init__(self, store, endpoint: str, now_ms: int, interval_ms: int, joining: bool):
        self.store = store
        self.endpoint = endpoint
        self.saved = saved_peers(store)
        self.deadline_ms: int | None = None if joining or not self.saved else now_ms + SETTLE_ROUNDS * interval_ms

    def settled(self, states: dict, now_ms: int) -> bool:
        """Whether the node may serve CQL: no saved peers, gossip knows another endpoint, or the
        deadline passed. Once True, always True."""
        if self.deadline_ms is None:
            return True
        if len(states) > 1 or now_ms >= self.deadline_ms:
            self.deadline_ms = None
            return True
        return False

    def observe(self, states: dict, now_ms: int) -> None:
        """Save the NORMAL peers if settled and they changed (called when the ring changes)."""
        if not self.settled(states, now_ms):
            return
        members = normal_peers(states, self.endpoint)
        if members != self.saved:
            self.saved = members
            self.store.insert("system", BOOTSTRAP_TABLE, {"key": PEERS_KEY, "state": ",".join(sorted(members))})
