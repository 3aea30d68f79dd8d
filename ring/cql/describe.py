"""Server-side DESCRIBE (Cassandra 4+): the schema as rows and as CQL that recreates it. Pure.

cqlsh 6 sends `DESCRIBE ...` / `DESC ...` as a QUERY and prints the rows: KEYSPACES, TABLES,
TYPES, FUNCTIONS, AGGREGATES answer (keyspace_name, type, name); KEYSPACE, TABLE, INDEX, SCHEMA
and a bare name add create_statement; CLUSTER answers (cluster, partitioner, snitch[,
range_ownership]). Invariant: running the create_statements of DESCRIBE SCHEMA on an empty
cluster gives the same system_schema rows (keyspaces, tables but their ids, columns, indexes);
`WITH INTERNALS` adds each dropped column as `ALTER TABLE ... DROP c USING TIMESTAMP t` (and
ADD again when re-added), so dropped_columns match too. Table options come from
system_tables.table_row, the same values system_schema.tables shows.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidRequest
from ring.cql import ast, system_tables
from ring.cql.lexer import quote_name as q
from ring.cql.lexer import quote_string
from ring.cql.result import ColumnSpec
from ring.cql.types import CqlType, parse_type

_TEXT = CqlType("text")
_LISTS = ("keyspaces", "tables", "types", "functions", "aggregates", "indexes")
_OPTIONS = ("additional_write_policy", "bloom_filter_fp_chance", "caching", "cdc", "comment", "compaction",
            "compression", "crc_check_chance", "default_time_to_live", "gc_grace_seconds", "max_index_interval",
            "memtable_flush_period_in_ms", "min_index_interval", "read_repair", "speculative_retry")


def _spec(name: str, cql_type: CqlType = _TEXT) -> ColumnSpec:
    return ColumnSpec("system", "describe", name, cql_type)


@dataclass(frozen=True)
class DescribePlan:
    statement: ast.Describe
    keyspace: str | None        # the session's keyspace when prepared
    internals: bool = False

    def operations(self, values=()) -> list:
        return []

    def run(self, node, values=()) -> list[list]:
        return describe(node, self.statement, self.keyspace, self.internals)


def prepare_describe(s: ast.Describe, keyspace: str | None, query: str) -> tuple[DescribePlan, tuple]:
    """The plan and its result columns."""
    internals = "internals" in query.lower()
    if s.kind == "cluster":
        columns = [_spec("cluster"), _spec("partitioner"), _spec("snitch")]
        if keyspace and not system_tables.is_virtual(keyspace):
            columns.append(_spec("range_ownership", parse_type("map<text, frozen<list<text>>>")))
        return DescribePlan(s, keyspace), tuple(columns)
    columns = [_spec("keyspace_name"), _spec("type"), _spec("name")]
    if s.kind not in _LISTS:
        columns.append(_spec("create_statement"))
    return DescribePlan(s, keyspace, internals), tuple(columns)


def describe(node, s: ast.Describe, session_keyspace: str | None, internals: bool = False) -> list[list]:
    keyspaces = node.store.keyspaces
    if s.kind == "cluster":
        return [_cluster(node, session_keyspace)]
    if s.kind == "keyspaces":
        return [[k, "keyspace", k] for k in _keyspace_names(keyspaces, True)]
    if s.kind in ("tables", "indexes"):
        names = [session_keyspace] if session_keyspace else _keyspace_names(keyspaces, True)
        return [[k, s.kind[:-1] if s.kind == "tables" else "index", name]
                for k in names for name in _element_names(keyspaces, k, s.kind)]
    if s.kind in ("types", "functions", "aggregates"):
        return []
    if s.kind == "schema":
        return [row for k in _keyspace_names(keyspaces, s.full) for row in _keyspace(keyspaces, k, False, internals)]
    if s.kind == "keyspace":
        name = s.keyspace or _need(session_keyspace)
        if name not in keyspaces and not system_tables.is_virtual(name):
            raise InvalidRequest(f"'{name}' not found in keyspaces")
        return _keyspace(keyspaces, name, s.only, internals)
    if s.kind == "table":
        name = s.keyspace or _need(session_keyspace)
        return _table(keyspaces, name, s.name, internals)
    if s.kind == "index":
        name = s.keyspace or _need(session_keyspace)
        owner = next((t for t in _tables(keyspaces, name) if t.index(s.name)), None)
        if owner is None:
            raise InvalidRequest(f"Table for existing index '{s.name}' not found in '{name}'")
        return [[name, "index", s.name, index_statement(owner, owner.index(s.name))]]
    if s.kind == "name":
        if s.keyspace is None and (s.name in keyspaces or system_tables.is_virtual(s.name)):
            return _keyspace(keyspaces, s.name, False, internals)
        name = s.keyspace or _need(session_keyspace)
        if name in keyspaces and s.name in keyspaces[name].tables:
            return _table(keyspaces, name, s.name, internals)
        owner = next((t for t in _tables(keyspaces, name) if t.index(s.name)), None)
        if owner is not None:
            return [[name, "index", s.name, index_statement(owner, owner.index(s.name))]]
        raise InvalidRequest(f"'{s.name}' not found in keyspace '{name}'")
    raise InvalidRequest(f"DESCRIBE {s.kind.upper()} is not supported (no {s.kind}s in dynatable)")


def _need(keyspace: str | None) -> str:
    if not keyspace:
        raise InvalidRequest("No keyspace specified and no current keyspace")
    return keyspace


def _keyspace_names(keyspaces, full: bool) -> list[str]:
    user = sorted(k for k in keyspaces if not system_tables.is_virtual(k))
    return sorted(user + (["system", "system_schema", "system_virtual_schema"] if full else []))


def _tables(keyspaces, name: str) -> list:
    ks = keyspaces.get(name)
    return [] if ks is None or system_tables.is_virtual(name) else sorted(ks.tables.values(), key=lambda t: t.name)


def _element_names(keyspaces, name: str, kind: str) -> list[str]:
    if kind == "indexes":
        return sorted(i.name for t in _tables(keyspaces, name) for i in t.indexes)
    if system_tables.is_virtual(name):
        return sorted(t for k, t in system_tables.TABLES if k == name)
    return [t.name for t in _tables(keyspaces, name)]


def _keyspace(keyspaces, name: str, only: bool, internals: bool) -> list[list]:
    rows = [[name, "keyspace", name, keyspace_statement(name, keyspaces.get(name))]]
    if only:
        return rows
    if system_tables.is_virtual(name):
        return rows + [[name, "table", t, virtual_table_statement(name, t)] for t in _element_names(keyspaces, name, "")]
    for table in _tables(keyspaces, name):
        rows += _table(keyspaces, name, table.name, internals)
    return rows


def _table(keyspaces, keyspace: str, name: str, internals: bool) -> list[list]:
    if system_tables.is_virtual(keyspace) and (keyspace, name) in system_tables.TABLES:
        return [[keyspace, "table", name, virtual_table_statement(keyspace, name)]]
    if keyspace not in keyspaces:
        raise InvalidRequest(f"'{keyspace}' not found in keyspaces")
    table = keyspaces[keyspace].tables.get(name)
    if table is None:
        raise InvalidRequest(f"'{name}' not found in keyspace '{keyspace}'")
    rows = [[keyspace, "table", name, table_statement(table, internals)]]
    return rows + [[keyspace, "index", i.name, index_statement(table, i)] for i in sorted(table.indexes, key=lambda i: i.name)]


def _cluster(node, keyspace: str | None) -> list:
    row = [node.config.cluster_name, system_tables.PARTITIONER,
           "org.apache.cassandra.locator.GossipingPropertyFileSnitch"]
    if keyspace and not system_tables.is_virtual(keyspace):
        node.refresh_ring()
        row.append({str(tok): node.replicas(keyspace, tok) for tok in node.ring.tokens})
    return row


# -- CQL text -----------------------------------------------------------------------------------------

def _literal(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote_string(str(k))}: {quote_string(str(v))}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_string(value)
    return repr(value)


def keyspace_statement(name: str, ks) -> str:
    if ks is None or system_tables.is_virtual(name):
        replication, durable = {"class": system_tables.STRATEGY_PACKAGE + "LocalStrategy"}, True
        prefix = f"/*\nWarning: Keyspace {name} is a virtual keyspace and cannot be recreated with CQL.\n*/\n"
    else:
        replication, durable, prefix = system_tables.replication_map(ks.replication), ks.durable_writes, ""
    return (f"{prefix}CREATE KEYSPACE {q(name)} WITH replication = {_literal(replication)}"
            f"  AND durable_writes = {_literal(durable)};")


def _columns_text(keyspace: str, name: str, columns: list, pk: list, ck: list, order: dict,
                  statics=frozenset()) -> str:
    lines = [f"    {q(n)} {parse_type(t)}" + (" STATIC" if n in statics else "")
             + (" PRIMARY KEY" if [n] == pk and not ck else "") for n, t in columns]
    if len(pk) > 1 or ck:
        key = f"({', '.join(map(q, pk))})" if len(pk) > 1 else q(pk[0])
        lines.append(f"    PRIMARY KEY ({', '.join([key] + [q(c) for c in ck])})")
    out = f"CREATE TABLE {q(keyspace)}.{q(name)} (\n" + ",\n".join(lines) + "\n) WITH "
    if ck:
        out += "CLUSTERING ORDER BY (" + ", ".join(f"{q(c)} {order.get(c, 'ASC')}" for c in ck) + ")\n    AND "
    return out


def table_statement(table, internals: bool = False) -> str:
    """CREATE TABLE (Cassandra's layout: key columns, then the others by name; options sorted)."""
    regular = sorted((c.name, c.cql_type) for c in table.regular)
    gone = sorted((n, d[0]) for n, d in table.dropped.items() if n not in table.by_name) if internals else []
    columns = [(c.name, c.cql_type) for c in table.partition_key + table.clustering] + sorted(regular + gone)
    order = {c.name: "DESC" if c.descending else "ASC" for c in table.clustering}
    out = _columns_text(table.keyspace, table.name, columns, [c.name for c in table.partition_key],
                        [c.name for c in table.clustering], order, {c.name for c in table.statics})
    row = system_tables.table_row(table.keyspace, table.name, table)
    out += "\n    AND ".join(f"{o} = {_literal(row[o])}" for o in _OPTIONS) + ";"
    if internals:
        for n, (cql_type, dropped_us, _) in sorted(table.dropped.items()):
            out += f"\nALTER TABLE {q(table.keyspace)}.{q(table.name)} DROP {q(n)} USING TIMESTAMP {dropped_us};"
            if n in table.by_name:
                static = " STATIC" if table.by_name[n].static else ""
                out += f"\nALTER TABLE {q(table.keyspace)}.{q(table.name)} ADD {q(n)} {parse_type(cql_type)}{static};"
    return out


def virtual_table_statement(keyspace: str, name: str) -> str:
    pk, ck, regular = system_tables.TABLES[(keyspace, name)]
    columns = list(pk) + list(ck) + sorted(regular)
    text = _columns_text(keyspace, name, columns, [n for n, _ in pk], [n for n, _ in ck], {})
    return (f"/*\nWarning: Table {keyspace}.{name} is a virtual table and cannot be recreated with CQL.\n*/\n"
            + text + "comment = 'virtual table';")


def index_statement(table, index) -> str:
    return f"CREATE INDEX {q(index.name)} ON {q(table.keyspace)}.{q(table.name)} ({q(index.column)});"
