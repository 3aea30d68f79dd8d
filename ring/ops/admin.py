"""Admin operations (nodetool's read-mostly verbs): status, describe_ring, describecluster,
gossipinfo, info, flush, compact, tablestats, getendpoints, hints, netstats, tpstats,
compactionstats, drain and the simulator's set_clock_offset.

Rule: an op reads the node's state (gossip, ring, store, metrics) and answers with one `Reply`;
none of them sends a message. `status_rows` is also `Node.status()`. Each op is
`op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.errors import InvalidRequest
from engine.token import token as token_of
from ring import membership as ms
from ring import replica
from ring.messages import Reply
from ring.ops.data import table_args
from ring.placement.token_ring import ownership, primary_ownership


def status_rows(node, keyspace: str | None = None) -> list[dict]:
    """nodetool status: one row per endpoint in the ring (LEFT and REMOVED ones are gone). With a
    keyspace, `owns` is the effective ownership under its replication (the rows sum to its RF)."""
    node.refresh_ring()
    rows = []
    owned = (primary_ownership(node.ring) if keyspace is None
             else ownership(node.ring, node.strategy(keyspace), node.snitch))
    for ep in sorted(node.gossiper.states):
        state = node.gossiper.states[ep]
        status = state.get(ms.ApplicationState.STATUS)
        if status and ms.parse_status(status)[0] in (ms.Status.LEFT, ms.Status.REMOVED):
            continue  # gone from the ring, as in Cassandra's nodetool status
        rows.append({
            "endpoint": ep,
            "datacenter": state.get(ms.ApplicationState.DC),
            "rack": state.get(ms.ApplicationState.RACK),
            "up": node.is_alive(ep),
            "state": ms.parse_status(status)[0] if status else "UNKNOWN",
            "load_bytes": int(state.get(ms.ApplicationState.LOAD) or 0),
            "tokens": len(ms.parse_tokens(state.get(ms.ApplicationState.TOKENS) or "")),
            "owns": owned.get(ep, 0.0),
            "host_id": state.get(ms.ApplicationState.HOST_ID),
            "schema": state.get(ms.ApplicationState.SCHEMA),
            "generation": state.generation,
            "phi": 0.0 if ep == node.endpoint else node.detector.phi(ep, node.now_ms),
        })
    return rows


def status(node, rid: int, args: dict) -> list:
    keyspace = args.get("keyspace")
    if keyspace is not None and not isinstance(keyspace, str):
        raise InvalidRequest("status: keyspace must be a keyspace name")
    return [Reply(rid, result=status_rows(node, keyspace))]


def describe_ring(node, rid: int, args: dict) -> list:
    node.refresh_ring()
    endpoints = {}
    for row in status_rows(node):
        tokens = ms.parse_tokens(node.gossiper.app_state(row["endpoint"], ms.ApplicationState.TOKENS) or "")
        endpoints[row["endpoint"]] = {"datacenter": row["datacenter"], "rack": row["rack"], "up": row["up"],
                                      "status": row["state"], "tokens": tokens}
    keyspaces = {name: ks.replication for name, ks in node.store.keyspaces.items() if name != "system"}
    return [Reply(rid, result={"endpoints": endpoints, "keyspaces": keyspaces})]


def describecluster(node, rid: int, args: dict) -> list:
    """nodetool describecluster: name, snitch, partitioner, and which endpoints hold each schema
    version (more than one version means schema disagreement)."""
    versions: dict[str, list[str]] = {}
    unreachable = []
    for row in status_rows(node):
        if not row["up"]:
            unreachable.append(row["endpoint"])
        else:
            versions.setdefault(row["schema"] or "UNKNOWN", []).append(row["endpoint"])
    if unreachable:
        versions["UNREACHABLE"] = unreachable
    by_dc: dict[str, dict] = {}
    for row in status_rows(node):
        dc = by_dc.setdefault(row["datacenter"] or "?", {"up": 0, "down": 0})
        dc["up" if row["up"] else "down"] += 1
    return [Reply(rid, result={"name": node.config.cluster_name, "snitch": "GossipingPropertyFileSnitch",
                               "dynamic_snitch": True, "partitioner": "Murmur3Partitioner",
                               "schema_versions": versions, "datacenters": by_dc,
                               "keyspaces": sorted(k for k in node.store.keyspaces if k != "system")})]


def gossipinfo(node, rid: int, args: dict) -> list:
    """nodetool gossipinfo: every endpoint's gossip state as this node knows it (generation,
    heartbeat version, and each application state with its version)."""
    out = {}
    for ep in sorted(node.gossiper.states):
        state = node.gossiper.states[ep]
        out[ep] = {"generation": state.heartbeat.generation, "heartbeat": state.heartbeat.version,
                   "up": node.is_alive(ep),
                   "states": {str(k): [v.value, v.version] for k, v in sorted(state.app_states.items())}}
    return [Reply(rid, result=out)]


def info(node, rid: int, args: dict) -> list:
    me = node.gossiper.states[node.endpoint]
    return [Reply(rid, result={"endpoint": node.endpoint, "host_id": node.config.host_id,
                               "datacenter": node.config.datacenter, "rack": node.config.rack,
                               "generation": me.generation, "load_bytes": replica.load_bytes(node.store),
                               "tokens": len(node.tokens), "schema_version": node.schema.version(),
                               "mode": node.mode,
                               "uptime_ms": node.now_ms - node.started_ms, "metrics": node.metrics()})]


def flush(node, rid: int, args: dict) -> list:
    return [Reply(rid, result={"flushed": node.store.flush(args.get("keyspace"), args.get("table"))})]


def compact(node, rid: int, args: dict) -> list:
    return [Reply(rid, result={"compactions": replica.compact_major(node.store, args.get("keyspace"),
                                                                    args.get("table"))})]


def tablestats(node, rid: int, args: dict) -> list:
    """Per-table stats; the flush and compaction counters count since this node process started
    (they reset on restart, as Cassandra's metrics do), so each entry says how long that is."""
    since_s = (node.now_ms - node.started_ms) // 1000
    return [Reply(rid, result=[{**s, "counters_since_s": since_s} for s in node.store.tablestats()
                               if not s["table"].startswith("system.")])]


def getendpoints(node, rid: int, args: dict) -> list:
    keyspace, table = table_args(node, args)
    key = mut.partition_key_bytes(table, args.get("key") or {})
    return [Reply(rid, result={"token": token_of(key), "endpoints": node.replicas(keyspace, token_of(key))})]


def set_clock_offset(node, rid: int, args: dict) -> list:
    offset = int(args.get("offset_ms", 0))
    node.clock.offset_us = offset * 1000
    return [Reply(rid, result={"offset_ms": offset})]


def listpendinghints(node, rid: int, args: dict) -> list:
    return [Reply(rid, result=node.hints.list_pending())]


def truncatehints(node, rid: int, args: dict) -> list:
    host = args.get("host_id")
    if host is None and args.get("target"):  # the endpoint whose hints to drop
        host = node.host_id_of(args["target"])
        if host is None:
            raise InvalidRequest(f"no node {args['target']} in this node's gossip view")
    return [Reply(rid, result={"removed": node.hints.truncate(host)})]


def netstats(node, rid: int, args: dict) -> list:
    """Mode and the progress of streams: bootstrap, decommission / removenode, fetches for others."""
    out = {"mode": node.mode, "operations": []}
    if node.bootstrap is not None:
        out["operations"].append(node.bootstrap.progress())
    if node.topology_change is not None:
        out["operations"].append(node.topology_change.progress())
    out["operations"] += [session.progress() for session in node.fetches.sessions.values()]
    return [Reply(rid, result=out)]


def tpstats(node, rid: int, args: dict) -> list:
    """nodetool tpstats: the node's pools and queues under Cassandra's names. A field a pool does
    not have is None ("n/a"), never a made-up zero: mutations and reads are applied inline on the
    node's loop, so MutationStage and ReadStage have completed counts but no queue."""
    engine = node.store.pool_stats()
    counters = node.stats
    streams = len(node.fetches.sessions) + (node.bootstrap is not None) + (node.topology_change is not None)
    pools = {
        "Native-Transport-Requests": _pool(len(node.meter.in_flight), None,
                                           sum(st.count for st in node.request_stats.values())),
        "MutationStage": _pool(None, None, counters.get("replica_mutations", 0)),
        "ReadStage": _pool(None, None, counters.get("replica_reads", 0)),
        "RequestResponseStage": _pool(len(node.handlers), None, None),
        "HintsDispatcher": _pool(None, sum(node.hints.pending.values()), node.hints.stats.get("hints_delivered", 0)),
        "MemtableFlushWriter": engine["MemtableFlushWriter"],
        "CompactionExecutor": engine["CompactionExecutor"],
        "StreamingSessions": _pool(streams, None, None),
    }
    return [Reply(rid, result={"pools": pools, "mode": node.mode})]


def _pool(active, pending, completed) -> dict:
    return {"active": active, "pending": pending, "completed": completed, "blocked": None, "all_time_blocked": None}


def compactionstats(node, rid: int, args: dict) -> list:
    """nodetool compactionstats: the running compactions with their progress, and the pending ones."""
    engine = node.store.pool_stats()
    return [Reply(rid, result={"compactions": engine["compactions"], "pending": engine["pending_compactions"],
                               "compactors": engine["compactors"]})]


def drain(node, rid: int, args: dict) -> list:
    """nodetool drain: flush every memtable, then refuse writes (Node: mode DRAINED) until a restart.
    Reads, gossip and the admin verbs go on, so `nodetool status` still works."""
    if node.mode not in ("NORMAL", "DRAINED"):
        raise InvalidRequest(f"cannot drain: this node is {node.mode}; wait until it is NORMAL")
    flushed = node.store.flush()
    node.mode = "DRAINED"
    return [Reply(rid, result={"flushed": flushed, "mode": node.mode})]
