"""Schema operations: create, alter and drop keyspaces, tables and indexes; describe the schema.

Rule: the registry (ring/schema_sync.py) decides and records; an op validates, applies locally
with a fresh timestamp, gossips the new schema version and pushes the schema to every live peer,
then answers {"schema_version"}. IF NOT EXISTS on something that exists answers at once and
pushes nothing; without it, AlreadyExists. A NetworkTopologyStrategy map naming a datacenter
this node does not know (its own, and every endpoint's DC in its gossip state) is refused, as in
Cassandra 4+ (CREATE and ALTER KEYSPACE alike). ALTER TABLE takes one action (add / drop /
rename / options, engine/schema_change.py); an ALTER that changes nothing (IF [NOT] EXISTS)
answers at once. Each op is `op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from functools import partial

from engine import schema_change
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
    node.schema.create_keyspace(args["name"], replication, node.new_timestamp(None),
                                durable_writes=args.get("durable_writes", True) is not False)
    return schema_changed(node, rid)


def alter_keyspace(node, rid: int, args: dict) -> list:
    ks = node.store.keyspaces.get(args["name"])
    if ks is None or args["name"] == "system":
        raise InvalidRequest(f"Keyspace '{args['name']}' doesn't exist")
    replication = args.get("replication")
    if replication is not None:
        strategy = from_options(replication)  # validates
        if isinstance(strategy, NetworkTopologyStrategy):
            check_datacenters(args["name"], strategy.datacenters, known_datacenters(node))
    ts = node.new_timestamp(None)
    node.schema.alter_keyspace(args["name"], lambda k: schema_change.alter_keyspace(
        k, replication, args.get("durable_writes"), ts))
    return schema_changed(node, rid)


def alter_table(node, rid: int, args: dict) -> list:
    """args: keyspace, table and one of add [[name, type]], drop [name] (+ timestamp), rename
    [[old, new]], options {...}; if_column_exists / if_column_not_exists for DROP / RENAME / ADD."""
    keyspace, table = table_args(node, args)
    change = table_change(args, node.new_timestamp(None))
    before = table
    after = node.schema.alter_table(keyspace, table.name, change)
    if after is before:
        return [Reply(rid, result={"schema_version": node.schema.version()})]   # nothing changed
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


def table_change(args: dict, ts: int):
    """The ALTER TABLE action of `args` as a function Table -> Table."""
    if args.get("add"):
        columns = [tuple(c) for c in args["add"]]
        return partial(schema_change.add_columns, columns=columns, ts=ts,
                       if_not_exists=args.get("if_column_not_exists", False))
    if args.get("drop"):
        return partial(schema_change.drop_columns, names=list(args["drop"]), ts=args.get("timestamp") or ts,
                       if_exists=args.get("if_column_exists", False))
    if args.get("rename"):
        return partial(schema_change.rename_columns, renames=[tuple(r) for r in args["rename"]], ts=ts,
                       if_exists=args.get("if_column_exists", False))
    if args.get("options") is not None:
        speculative_retry.parse(args["options"].get("speculative_retry"))  # validates
        return partial(schema_change.with_options, options=args["options"], ts=ts)
    raise InvalidRequest("alter_table needs one of add, drop, rename or options")


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
