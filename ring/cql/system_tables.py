"""The virtual system tables drivers read on connect, generated from the node's live state. Pure.

`system.local`, `system.peers`, `system.peers_v2`, the `system_schema.*` tables and the empty
`system_virtual_schema.*` ones, with Cassandra 4.0's columns and types (shared/specs/cql.md 2.3
says which a driver needs). Nothing is stored: every read builds its rows from the node's config,
gossip state, ring and schema, so they are never stale. Invariants:

* `schema_version` is a uuid derived only from the node's schema version (a digest of the
  schema), so nodes that agree on the schema report the same uuid (driver schema agreement).
* peers are the other endpoints gossip knows that have tokens and have not left; a peer's CQL
  address comes from its NATIVE_ADDRESS_AND_PORT state, else its endpoint's host and port 9042.
* `system_schema.tables.flags` is `{'compound'}` (anything else makes the driver drop columns)
  and `system_schema.keyspaces.replication` carries the long strategy class names.

`prepare_select` turns a SELECT on these tables into a `VirtualPlan` (equality and IN on any
column, column selection and aliases, COUNT(*), LIMIT); `VirtualPlan.run(node, values)` answers.
"""
from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.cql import ast
from ring.cql.literal import convert
from ring.cql.plan import UNSET, resolve
from ring.cql.result import ColumnSpec
from ring.cql.types import CqlType, parse_type

RELEASE_VERSION = "4.0.11"      # what drivers see: >= 4.0 picks their V4 schema parser; cqlsh needs >= 4
CQL_VERSION = "3.4.5"           # Cassandra 4.0's, as advertised in SUPPORTED (connection.py)
NATIVE_PROTOCOL_VERSION = "5"
PARTITIONER = "org.apache.cassandra.dht.Murmur3Partitioner"
STRATEGY_PACKAGE = "org.apache.cassandra.locator."
VIRTUAL_KEYSPACES = ("system", "system_schema", "system_virtual_schema")

_MAP = "frozen<map<text, text>>"
_LIST = "frozen<list<text>>"
_SCHEMA_COLUMNS = (("clustering_order", "text"), ("column_name_bytes", "blob"), ("kind", "text"),
                   ("position", "int"), ("type", "text"))

# (keyspace, table) -> (partition key columns, clustering columns, regular columns); each (name, type)
TABLES = {
    ("system", "local"): (
        (("key", "text"),), (),
        (("bootstrapped", "text"), ("broadcast_address", "inet"), ("broadcast_port", "int"),
         ("cluster_name", "text"), ("cql_version", "text"), ("data_center", "text"),
         ("gossip_generation", "int"), ("host_id", "uuid"), ("listen_address", "inet"), ("listen_port", "int"),
         ("native_protocol_version", "text"), ("partitioner", "text"), ("rack", "text"),
         ("release_version", "text"), ("rpc_address", "inet"), ("rpc_port", "int"), ("schema_version", "uuid"),
         ("tokens", "set<text>"))),
    ("system", "peers"): (
        (("peer", "inet"),), (),
        (("data_center", "text"), ("host_id", "uuid"), ("preferred_ip", "inet"), ("rack", "text"),
         ("release_version", "text"), ("rpc_address", "inet"), ("schema_version", "uuid"), ("tokens", "set<text>"))),
    ("system", "peers_v2"): (
        (("peer", "inet"),), (("peer_port", "int"),),
        (("data_center", "text"), ("host_id", "uuid"), ("native_address", "inet"), ("native_port", "int"),
         ("preferred_ip", "inet"), ("preferred_port", "int"), ("rack", "text"), ("release_version", "text"),
         ("schema_version", "uuid"), ("tokens", "set<text>"))),
    ("system_schema", "keyspaces"): (
        (("keyspace_name", "text"),), (), (("durable_writes", "boolean"), ("replication", _MAP))),
    ("system_schema", "tables"): (
        (("keyspace_name", "text"),), (("table_name", "text"),),
        (("additional_write_policy", "text"), ("bloom_filter_fp_chance", "double"), ("caching", _MAP),
         ("cdc", "boolean"), ("comment", "text"), ("compaction", _MAP), ("compression", _MAP),
         ("crc_check_chance", "double"), ("default_time_to_live", "int"),
         ("extensions", "frozen<map<text, blob>>"), ("flags", "frozen<set<text>>"), ("gc_grace_seconds", "int"),
         ("id", "uuid"), ("max_index_interval", "int"), ("memtable_flush_period_in_ms", "int"),
         ("min_index_interval", "int"), ("read_repair", "text"), ("speculative_retry", "text"))),
    ("system_schema", "columns"): (
        (("keyspace_name", "text"),), (("table_name", "text"), ("column_name", "text")), _SCHEMA_COLUMNS),
    ("system_schema", "indexes"): (
        (("keyspace_name", "text"),), (("table_name", "text"), ("index_name", "text")),
        (("kind", "text"), ("options", _MAP))),
    ("system_schema", "dropped_columns"): (
        (("keyspace_name", "text"),), (("table_name", "text"), ("column_name", "text")),
        (("dropped_time", "timestamp"), ("kind", "text"), ("type", "text"))),
    ("system_schema", "triggers"): (
        (("keyspace_name", "text"),), (("table_name", "text"), ("trigger_name", "text")), (("options", _MAP),)),
    ("system_schema", "types"): (
        (("keyspace_name", "text"),), (("type_name", "text"),), (("field_names", _LIST), ("field_types", _LIST))),
    ("system_schema", "functions"): (
        (("keyspace_name", "text"),), (("function_name", "text"), ("argument_types", _LIST)),
        (("argument_names", _LIST), ("body", "text"), ("called_on_null_input", "boolean"), ("language", "text"),
         ("return_type", "text"))),
    ("system_schema", "aggregates"): (
        (("keyspace_name", "text"),), (("aggregate_name", "text"), ("argument_types", _LIST)),
        (("final_func", "text"), ("initcond", "text"), ("return_type", "text"), ("state_func", "text"),
         ("state_type", "text"))),
    ("system_schema", "views"): (
        (("keyspace_name", "text"),), (("view_name", "text"),),
        (("base_table_id", "uuid"), ("base_table_name", "text"), ("id", "uuid"), ("include_all_columns", "boolean"),
         ("where_clause", "text"))),
    ("system_virtual_schema", "keyspaces"): ((("keyspace_name", "text"),), (), ()),
    ("system_virtual_schema", "tables"): (
        (("keyspace_name", "text"),), (("table_name", "text"),), (("comment", "text"),)),
    ("system_virtual_schema", "columns"): (
        (("keyspace_name", "text"),), (("table_name", "text"), ("column_name", "text")), _SCHEMA_COLUMNS),
}


def is_virtual(keyspace: str | None) -> bool:
    return keyspace in VIRTUAL_KEYSPACES


def columns_of(keyspace: str, table: str) -> list[tuple[str, str, str, int]]:
    """(name, type, kind, position) in `SELECT *` order: partition key, clustering, regular by name."""
    pk, ck, regular = TABLES[(keyspace, table)]
    return ([(n, t, "partition_key", i) for i, (n, t) in enumerate(pk)]
            + [(n, t, "clustering", i) for i, (n, t) in enumerate(ck)]
            + [(n, t, "regular", -1) for n, t in sorted(regular)])


def schema_uuid(version: str | None) -> uuid.UUID | None:
    """The uuid drivers compare for schema agreement: a digest of the node's schema version."""
    return None if not version else uuid.UUID(bytes=hashlib.md5(f"schema:{version}".encode()).digest(), version=3)


def host_uuid(host_id: str | None) -> uuid.UUID | None:
    """A host id as a uuid (a non-uuid id, e.g. the simulator's "host-n1", is hashed into one)."""
    if not host_id:
        return None
    try:
        return uuid.UUID(host_id)
    except ValueError:
        return uuid.UUID(bytes=hashlib.md5(f"host:{host_id}".encode()).digest(), version=3)


def _inet(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: drivers then use the address they connected to


def native_address(node, ep: str) -> tuple[object, int]:
    """(inet, port) of `ep`'s CQL server, from gossip, else the endpoint's host and port 9042."""
    value = node.gossiper.app_state(ep, ms.ApplicationState.NATIVE_ADDRESS_AND_PORT)
    if value:
        return _inet(ms.endpoint_host(value)), ms.endpoint_port(value, ms.NATIVE_TRANSPORT_PORT)
    return _inet(ms.endpoint_host(ep)), ms.NATIVE_TRANSPORT_PORT


# -- rows --------------------------------------------------------------------------------------

def local_rows(node) -> list[dict]:
    config = node.config
    address, native_port = native_address(node, node.endpoint)
    listen = _inet(ms.endpoint_host(node.endpoint))
    port = ms.endpoint_port(node.endpoint, 7000)
    state = node.gossiper.states.get(node.endpoint)
    return [{
        "key": "local", "bootstrapped": "COMPLETED" if node.mode == "NORMAL" else "IN_PROGRESS",
        "broadcast_address": listen, "broadcast_port": port, "cluster_name": config.cluster_name,
        "cql_version": CQL_VERSION, "data_center": config.datacenter,
        "gossip_generation": state.generation if state is not None else None,
        "host_id": host_uuid(config.host_id), "listen_address": listen, "listen_port": port,
        "native_protocol_version": NATIVE_PROTOCOL_VERSION, "partitioner": PARTITIONER, "rack": config.rack,
        "release_version": RELEASE_VERSION, "rpc_address": address, "rpc_port": native_port,
        "schema_version": schema_uuid(node.schema.version()), "tokens": frozenset(str(t) for t in node.tokens),
    }]


def _peers(node) -> list[tuple[str, dict]]:
    out = []
    for ep in node.gossiper.peers():
        status = node.gossiper.app_state(ep, ms.ApplicationState.STATUS)
        tokens = node.gossiper.app_state(ep, ms.ApplicationState.TOKENS)
        if not tokens or (status and ms.parse_status(status)[0] in ms.DEAD_STATES):
            continue  # not (yet, or any more) a member: drivers would route to it
        app = lambda key: node.gossiper.app_state(ep, key)  # noqa: E731
        out.append((ep, {
            "peer": _inet(ms.endpoint_host(ep)), "data_center": app(ms.ApplicationState.DC),
            "host_id": host_uuid(app(ms.ApplicationState.HOST_ID)), "preferred_ip": None,
            "rack": app(ms.ApplicationState.RACK), "release_version": RELEASE_VERSION,
            "schema_version": schema_uuid(app(ms.ApplicationState.SCHEMA)),
            "tokens": frozenset(str(t) for t in ms.parse_tokens(tokens)),
        }))
    return out


def peers_rows(node) -> list[dict]:
    return [dict(row, rpc_address=native_address(node, ep)[0]) for ep, row in _peers(node)]


def peers_v2_rows(node) -> list[dict]:
    out = []
    for ep, row in _peers(node):
        address, port = native_address(node, ep)
        out.append(dict(row, peer_port=ms.endpoint_port(ep, 7000), native_address=address, native_port=port,
                        preferred_port=None))
    return out


def replication_map(replication: dict) -> dict:
    """A keyspace's replication as system_schema shows it: long class name, values as text."""
    cls = str(replication.get("class", "SimpleStrategy"))
    out = {k: str(v) for k, v in replication.items() if k != "class"}
    out["class"] = cls if "." in cls else STRATEGY_PACKAGE + cls
    return out


def _schema_tables(node) -> list[tuple[str, str, str | None, list]]:
    """(keyspace, table, table id, [(name, type, kind, position, descending)]) of every table described."""
    out = []
    for (ks, name) in TABLES:
        if ks != "system_virtual_schema":
            out.append((ks, name, None, [(n, t, k, p, False) for n, t, k, p in columns_of(ks, name)]))
    for ks_name, ks in sorted(node.store.keyspaces.items()):
        if is_virtual(ks_name):
            continue
        for table in sorted(ks.tables.values(), key=lambda t: t.name):
            positions = {c.name: i for group in (table.partition_key, table.clustering) for i, c in enumerate(group)}
            out.append((ks_name, table.name, table.id, [(c.name, c.cql_type, "static" if c.static else c.kind,
                                                         positions.get(c.name, -1), c.descending)
                                                        for c in table.columns]))
    return out


def keyspaces_rows(node) -> list[dict]:
    rows = [{"keyspace_name": ks, "durable_writes": True, "replication": {"class": STRATEGY_PACKAGE + "LocalStrategy"}}
            for ks in ("system", "system_schema")]
    for name, ks in sorted(node.store.keyspaces.items()):
        if not is_virtual(name):
            rows.append({"keyspace_name": name, "durable_writes": ks.durable_writes,
                         "replication": replication_map(ks.replication)})
    return rows


def tables_rows(node) -> list[dict]:
    rows = []
    for ks, name, table_id, _ in _schema_tables(node):
        rows.append(table_row(ks, name, node.store.keyspaces[ks].tables[name] if table_id else None))
    return rows


def table_row(ks: str, name: str, table) -> dict:
    """The system_schema.tables row of a table (`table` None for a virtual one); DESCRIBE prints it."""
    option = (lambda o: table.option(o)) if table else (lambda o: None)
    compaction = option("compaction") or {"class": "SizeTieredCompactionStrategy"}
    caching = option("caching") or {"keys": "ALL", "rows_per_partition": "NONE"}
    return {
        "keyspace_name": ks, "table_name": name, "additional_write_policy": "99p",
        "bloom_filter_fp_chance": option("bloom_filter_fp_chance") or 0.01,
        "caching": {k: str(v) for k, v in caching.items()}, "cdc": False, "comment": "",
        "compaction": {k: str(v) if k != "class" else STRATEGY_PACKAGE.replace("locator", "db.compaction") + v
                       for k, v in compaction.items()},
        "compression": ({"chunk_length_in_kb": "16", "class": "org.apache.cassandra.io.compress.LZ4Compressor"}
                        if option("compression") == "lz4" else {"enabled": "false"}),
        "crc_check_chance": 1.0, "default_time_to_live": option("default_time_to_live") or 0,
        "extensions": {}, "flags": frozenset({"compound"}),
        "gc_grace_seconds": option("gc_grace_seconds") if table else 0,
        "id": host_uuid(table.id) if table else uuid.UUID(bytes=hashlib.md5(f"{ks}.{name}".encode()).digest(),
                                                          version=3),
        "max_index_interval": 2048, "memtable_flush_period_in_ms": 0, "min_index_interval": 128,
        "read_repair": option("read_repair") or "BLOCKING", "speculative_retry": option("speculative_retry") or "99p",
    }


def columns_rows(node) -> list[dict]:
    rows = []
    for ks, name, _, columns in _schema_tables(node):
        for col, cql_type, kind, position, descending in columns:
            order = ("desc" if descending else "asc") if kind == "clustering" else "none"
            rows.append({"keyspace_name": ks, "table_name": name, "column_name": col, "clustering_order": order,
                         "column_name_bytes": col.encode(), "kind": kind, "position": position,
                         "type": str(parse_type(cql_type))})
    return rows


def indexes_rows(node) -> list[dict]:
    rows = []
    for ks_name, ks in sorted(node.store.keyspaces.items()):
        if is_virtual(ks_name):
            continue
        for table in sorted(ks.tables.values(), key=lambda t: t.name):
            for index in table.indexes:
                rows.append({"keyspace_name": ks_name, "table_name": table.name, "index_name": index.name,
                             "kind": "COMPOSITES", "options": {"target": index.column}})
    return rows


def dropped_columns_rows(node) -> list[dict]:
    """One row per dropped column name: the last drop's time (ms) and the type it had."""
    rows = []
    for ks_name, ks in sorted(node.store.keyspaces.items()):
        if is_virtual(ks_name):
            continue
        for table in sorted(ks.tables.values(), key=lambda t: t.name):
            for col, (cql_type, dropped_us, _) in sorted(table.dropped.items()):
                rows.append({"keyspace_name": ks_name, "table_name": table.name, "column_name": col,
                             "dropped_time": datetime.fromtimestamp(dropped_us // 1000 / 1000, timezone.utc),
                             "kind": "regular", "type": str(parse_type(cql_type))})
    return rows


ROWS = {
    ("system", "local"): local_rows, ("system", "peers"): peers_rows, ("system", "peers_v2"): peers_v2_rows,
    ("system_schema", "keyspaces"): keyspaces_rows, ("system_schema", "tables"): tables_rows,
    ("system_schema", "columns"): columns_rows, ("system_schema", "indexes"): indexes_rows,
    ("system_schema", "dropped_columns"): dropped_columns_rows,
}


def rows(node, keyspace: str, table: str) -> list[dict]:
    """Every row of a virtual table, now (empty tables have no generator)."""
    make = ROWS.get((keyspace, table))
    return make(node) if make is not None else []


# -- SELECT on a virtual table -------------------------------------------------------------------

@dataclass(frozen=True)
class VirtualPlan:
    """SELECT from a virtual table: answered from `rows(node, ...)` on the coordinator, no ring trip."""
    keyspace: str
    table: str
    selection: tuple        # ((result column name, source column name or None for COUNT), ...)
    where: tuple            # ((column, source, is_in), ...)
    limit: object = None

    def operations(self, values=()) -> list:
        return []

    def run(self, node, values=()) -> list[list]:
        wanted = []
        for column, source, is_in in self.where:
            value = resolve(source, values)
            if value is None or value is UNSET:
                raise InvalidRequest(f"Invalid {'unset' if value is UNSET else 'null'} value for {column}")
            wanted.append((column, set(value) if is_in else {value}))
        found = [r for r in rows(node, self.keyspace, self.table)
                 if all(r.get(column) in options for column, options in wanted)]
        limit = resolve(self.limit, values) if self.limit is not None else None
        if self.selection and self.selection[0][1] is None:
            return [[min(len(found), limit) if limit else len(found)]]
        if limit is not None and limit is not UNSET:
            found = found[:limit]
        return [[r.get(source) for _, source in self.selection] for r in found]


def prepare_select(s: ast.Select, keyspace: str | None, binder) -> tuple[VirtualPlan, tuple]:
    ks = s.keyspace or keyspace
    if (ks, s.table) not in TABLES:
        raise InvalidRequest(f"table {s.table} does not exist in the virtual keyspace {ks}")
    types = {n: parse_type(t) for n, t, _, _ in columns_of(ks, s.table)}
    if s.selectors is None:
        selection = tuple((n, n) for n in types)
    else:
        selection = []
        for sel in s.selectors:
            e = sel.expression
            if isinstance(e, ast.CountRows) and len(s.selectors) == 1:
                selection.append((sel.alias or "count", None))
            elif isinstance(e, ast.ColumnRef) and e.name in types:
                selection.append((sel.alias or e.name, e.name))
            elif isinstance(e, ast.ColumnRef):
                raise InvalidRequest(f"Undefined column name {e.name} in selection clause")
            else:
                raise InvalidRequest(f"{ks}.{s.table} is a virtual table: select columns or COUNT(*) only")
        selection = tuple(selection)
    where = []
    for r in s.where:
        if not isinstance(r, ast.Relation) or r.op not in ("=", "IN") or r.column not in types:
            raise InvalidRequest(f"{ks}.{s.table} is a virtual table: only = and IN on its columns are supported")
        t = types[r.column]
        spec = ColumnSpec(ks, s.table, r.column, t)
        if r.op == "IN":
            if isinstance(r.value, ast.BindMarker):
                binder.bind(r.value, ColumnSpec(ks, s.table, r.value.name or f"in({r.column})", CqlType("list", (t,))))
                source = r.value
            else:
                source = [_literal(binder, v, spec) for v in r.value.items]
        else:
            source = _literal(binder, r.value, spec)
        where.append((r.column, source, r.op == "IN"))
    limit = s.limit
    if isinstance(limit, ast.BindMarker):
        binder.bind(limit, ColumnSpec(ks, s.table, limit.name or "[limit]", CqlType("int")))
    elif limit is not None:
        limit = convert(limit, CqlType("int"), "[limit]")
    specs = tuple(ColumnSpec(ks, s.table, name, CqlType("bigint") if src is None else types[src])
                  for name, src in selection)
    return VirtualPlan(ks, s.table, selection, tuple(where), limit), specs


def _literal(binder, term, spec: ColumnSpec):
    if isinstance(term, ast.BindMarker):
        binder.bind(term, ColumnSpec(spec.keyspace, spec.table, term.name or spec.name, spec.type))
        return term
    return convert(term, spec.type, spec.name)
