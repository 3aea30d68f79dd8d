"""Operations that move data between nodes: repair, decommission, removenode, cleanup.

Rule: an op plans from the current ring and starts the state machine that does the work
(ring/anti_entropy.py RepairSession, ring/operations/ Decommission / RemoveNode); the
answer comes from that machine when it finishes. One topology change at a time per node;
cleanup is refused while the ring is changing. Each op is `op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring import replica
from ring.anti_entropy import RepairSession
from ring.merkle import MerkleTree
from ring.messages import Reply
from ring.operations import cleanup as cleanup_plan
from ring.operations.decommission import Decommission
from ring.operations.plan import user_tables
from ring.operations.removenode import RemoveNode
from ring.ops.data import table_args


def repair(node, rid: int, args: dict) -> list:
    """nodetool repair for one table: full repair of the ranges this node replicates (-pr: its
    primary ranges only); preview compares and streams nothing."""
    keyspace, table = table_args(node, args)
    node.refresh_ring()
    strategy = node.strategy(keyspace)
    ring = node.ring
    jobs = []
    for i, tok in enumerate(ring.tokens):
        prev = ring.tokens[i - 1]
        replicas = strategy.replicas(ring, tok, node.snitch)
        mine = ring.owners[i] == node.endpoint if args.get("primary_range") else node.endpoint in replicas
        if mine and len(replicas) > 1:
            jobs.append((prev, tok, replicas))
    local = replica.partition_estimate(node.store, table)
    max_depth = int(args.get("max_depth") or 18)
    sized = []
    for lo, hi, replicas in jobs:  # about two leaves per partition, from the range's share of the ring
        estimate = local * (((hi - lo) % 2**64) or 2**64) / 2**64
        sized.append((lo, hi, replicas, MerkleTree.choose_depth(max(1, int(2 * estimate)), max_depth=max_depth)))
    session = RepairSession(node.context, rid, table, sized, bool(args.get("preview")),
                            node.now_ms + int(args.get("timeout_ms") or 600_000))
    return session.start()


def decommission(node, rid: int, args: dict) -> list:
    """nodetool decommission: answers once this node's ranges are on their new owners and it LEFT."""
    _one_change_at_a_time(node)
    node.topology_change = Decommission(node.context, rid, node.now_ms + int(args.get("timeout_ms") or 3_600_000))
    node.register_handler(node.topology_change)
    return []


def removenode(node, rid: int, args: dict) -> list:
    """nodetool removenode HOST_ID: re-replicate a dead node's ranges from the live replicas."""
    host_id = args.get("host_id")
    if not host_id or not isinstance(host_id, str):
        raise InvalidRequest("removenode needs host_id= (nodetool status lists them)")
    _one_change_at_a_time(node)
    node.topology_change = RemoveNode(node.context, rid, host_id,
                                         node.now_ms + int(args.get("timeout_ms") or 3_600_000))
    node.register_handler(node.topology_change)
    return []


def _one_change_at_a_time(node) -> None:
    change = node.topology_change
    if change is not None and not change.finished:
        raise InvalidRequest(f"{change.operation} is still running on this node ({change.phase}); "
                             f"wait for it (nodetool netstats shows its progress)")


def cleanup(node, rid: int, args: dict) -> list:
    """nodetool cleanup [KS [TABLE]]: drop the partitions of ranges this node no longer replicates
    (after a node joined), by rewriting each SSTable. Refused while the ring is changing."""
    node.refresh_ring()
    cleanup_plan.refuse_while_moving(node.topology, node.mode)
    dropped = {}
    for strategy, table in user_tables(node.context):
        if args.get("keyspace") not in (None, table.keyspace) or args.get("table") not in (None, table.name):
            continue
        if not node.ring.tokens:
            continue
        dropped[table.qualified_name] = node.store.cleanup(
            table.keyspace, table.name, cleanup_plan.keeps(strategy, node.ring, node.endpoint, node.snitch))
    return [Reply(rid, result={"partitions_dropped": dropped})]
