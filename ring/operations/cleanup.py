"""Cleanup (nodetool cleanup): which partitions a node may drop once the ring has changed.

Rule: refused while the ring is changing or this node is not NORMAL (a pending range may be about
to become this node's). Otherwise a partition is kept iff this node replicates its token under
the keyspace's strategy in the current ring. Pure; the engine rewrites each SSTable with the
predicate (`Store.cleanup`), driven by ring/ops/topology.py.
"""
from __future__ import annotations

from collections.abc import Callable

from engine.errors import InvalidRequest


def refuse_while_moving(topology, mode: str) -> None:
    if topology.moving or mode != "NORMAL":
        raise InvalidRequest("Node is involved in cluster membership changes. Not safe to run cleanup; "
                             "run it once every node is NORMAL (nodetool status)")


def keeps(strategy, ring, endpoint: str, snitch) -> Callable[[int], bool]:
    """token -> whether `endpoint` replicates it in `ring` (one lookup per ring token, up front)."""
    owned = [endpoint in strategy.replicas(ring, tok, snitch) for tok in ring.tokens]
    return lambda token: owned[ring.first_token_index(token)]
