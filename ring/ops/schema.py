"""Schema operations: create and drop keyspaces, tables and indexes; describe the schema.

Rule: the registry (ring/schema_sync.py) decides and records; an op validates, applies locally
with a fresh timestamp, gossips the new schema version and pushes the schema to every live peer,
then answers {"schema_version"}. IF NOT EXISTS on something that exists answers at once and
pushes nothing; without it, AlreadyExists. A NetworkTopologyStrategy map naming a datacenter
this node does not know (its own, and every endpoint's DC in its gossip state) is refused, as in
Cassandra 4+. Each op is `op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from engine.errors import AlreadyExists, InvalidRequest
from ring import membership as ms
from ring import speculative_retry
from ring.messages import Reply, SchemaPush, Send
from ring.ops.data import table_args
from ring.placement.strategy import NetworkTopologyStrategy, from_options


def create_keyspace(node, rid: int, args: dict) -> list:
    replication = args.get("replication") or {"class": "SimpleStrategy", "replication_factor": 1}
    strategy = from_options(replication)  # validates
    if args["name"] in node.store.keyspaces:
        if args.get("if_not_exists"):
            return [Reply(rid, result={"schema_version": node.schema.version()})]  # IF NOT EXISTS: a no-op
        raise AlreadyExists(args["name"])
    if isinstance(strategy, NetworkTopologyStrategy):
        check_datacenters(args["name"], strategy.datacenters, known_datacenters(node))
    node.schema.create_keyspace(args["name"], replication, node.new_timestamp(None))
    return schema_changed(node, rid)


def known_datacenters(node) -> set[str]:
    """The DCs this node knows: its own and each gossiped endpoint's (dead or alive)."""
    known = {node.config.datacenter}
    for ep in node.gossiper.states:
        dc = node.gossiper.app_state(ep, ms.ApplicationState.DC)
        if dc:
            known.add(dc)
    return known


def check_datacenters(keyspace: str, per_dc: dict, known: set[str]) -> None:
    """Cassandra 4+'s rule: every DC named in an NTS replication map must be a known one."""
    unknown = sorted(set(per_dc) - known)
    if unknown:
        raise InvalidRequest(
            f"Unrecognized strategy option {{{', '.join(unknown)}}} passed to NetworkTopologyStrategy "
            f"for keyspace {keyspace}; known datacenters: {', '.join(sorted(known))}")


def create_table(node, rid: int, args: dict) -> list:
    speculative_retry.parse((args.get("options") or {}).get("speculative_retry"))  # validates
    ks = node.store.keyspaces.get(args["keyspace"])
    if ks is not None and args["name"] in ks.tables:
        if args.get("if_not_exists"):
            return [Reply(rid, result={"schema_version": node.schema.version()})]  # IF NOT EXISTS: a no-op
        raise AlreadyExists(args["keyspace"], args["name"])
    node.schema.create_table(args["keyspace"], args["name"], args["columns"], args["primary_key"],
                             args.get("clustering_order"), args.get("options"), node.new_timestamp(None),
                             table_id=f"{node.rng.getrandbits(128):032x}")  # from the injected rng: replayable
    return schema_changed(node, rid)


def create_index(node, rid: int, args: dict) -> list:
    keyspace, table = table_args(node, args)
    node.schema.create_index(keyspace, table.name, args.get("column"), args.get("name"),
                             args.get("if_not_exists", True), node.new_timestamp(None))
    return schema_changed(node, rid)


def drop_index(node, rid: int, args: dict) -> list:
    if not args.get("keyspace"):
        raise InvalidRequest("no keyspace given: pass keyspace= or connect(keyspace)")
    node.schema.drop_index(args["keyspace"], args.get("name"), args.get("if_exists", True), node.new_timestamp(None))
    return schema_changed(node, rid)


def drop_table(node, rid: int, args: dict) -> list:
    node.schema.drop_table(args["keyspace"], args["name"], node.new_timestamp(None))
    return schema_changed(node, rid)


def drop_keyspace(node, rid: int, args: dict) -> list:
    node.schema.drop_keyspace(args["name"], node.new_timestamp(None))
    return schema_changed(node, rid)


def describe_schema(node, rid: int, args: dict) -> list:
    export = node.schema.export()
    return [Reply(rid, result={"keyspaces": export["keyspaces"], "tables": export["tables"],
                               "version": node.schema.version()})]


def schema_changed(node, rid: int) -> list:
    version = node.schema.version()
    node.gossiper.set_app_state(ms.ApplicationState.SCHEMA, version)
    push = SchemaPush(0, node.schema.export())
    peers = [ep for ep in node.gossiper.peers() if node.is_alive(ep)]
    return [Send(ep, push) for ep in peers] + [Reply(rid, result={"schema_version": version})]
