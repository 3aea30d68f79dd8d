"""PREPARE: a parsed statement meets the live schema. Pure.

`prepare(query, keyspace, keyspaces)` parses the query, resolves names against `keyspaces`
(name -> engine.schema.Keyspace, the node's live schema), checks literal types and Cassandra's
restriction rules, and returns a `PreparedStatement`: the prepared id (MD5 of the session
keyspace + the query string, as Cassandra computes it, so every node agrees), the bind specs
(Cassandra's names: the column, `[limit]`, `[per_partition_limit]`, `[ttl]`, `[timestamp]`,
`partition key token`, `in(col)`), pk_indexes (bind positions of the partition key columns, for
token-aware routing), the result columns of a SELECT, and the plan (plan.py) the executor runs.
Errors are InvalidRequest in Cassandra's words; SELECT's rules live in select_rules.py.
`PreparedCache` is the bounded LRU of prepared statements by id.
"""
from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from engine.errors import InvalidRequest
from engine.schema import Table
from ring.cql import ast, cas, collection_ops, ddl_plans, describe, role_statements, system_tables
from ring.cql.literal import convert
from ring.cql.parser import parse
from ring.cql.plan import BatchPlan, UsePlan, WritePlan
from ring.cql.result import ColumnSpec, encode_specs
from ring.cql.select_rules import Binder, clustering_slice, prepare_select, table_of
from ring.cql.types import CqlType, parse_type

PREPARED_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class PreparedStatement:
    query_id: bytes
    query: str
    keyspace: str | None            # the session keyspace it was prepared under
    statement: object               # the ast statement
    bind: tuple[ColumnSpec, ...]
    pk_indexes: tuple[int, ...]
    result_columns: tuple[ColumnSpec, ...]
    plan: object
    json_columns: tuple[ColumnSpec, ...] = ()   # SELECT JSON: the selection rendered into `[json]`

    @functools.cached_property
    def result_specs(self) -> tuple[int, bytes]:
        """The result columns' metadata as encoded in every ROWS answer (result.encode_specs)."""
        return encode_specs(self.result_columns)

    @property
    def result_metadata_id(self) -> bytes:
        """v5: changes whenever the result columns do."""
        text = ";".join(f"{c.keyspace}.{c.table}.{c.name}:{c.type}" for c in self.result_columns)
        return hashlib.md5(text.encode()).digest()


def prepared_id(query: str, keyspace: str | None) -> bytes:
    """Cassandra's QueryProcessor.computeId: MD5 of keyspace + query (the query alone without one)."""
    return hashlib.md5(((keyspace or "") + query).encode("utf-8")).digest()


def prepare(query: str, keyspace: str | None, keyspaces) -> PreparedStatement:
    statement, bind_count = parse(query)
    binder = Binder(bind_count)
    result_columns: tuple = ()
    json_columns: tuple = ()
    target = _target_keyspace(statement, keyspace)
    role_statements.check_not_protected(statement, keyspace)
    if isinstance(statement, role_statements.RoleStatement):
        plan, result_columns = role_statements.RolePlan(statement), role_statements.result_columns(statement)
    elif isinstance(statement, ast.Describe):
        plan, result_columns = describe.prepare_describe(statement, keyspace, query)
    elif isinstance(statement, ast.Select) and system_tables.is_virtual(target):
        plan, result_columns = system_tables.prepare_select(statement, keyspace, binder)
    elif system_tables.is_virtual(target):
        raise InvalidRequest(f"{target} is a system keyspace: its tables are read-only views of the node's state")
    elif isinstance(statement, ast.Select):
        plan, result_columns = prepare_select(statement, keyspace, keyspaces, binder)
        if statement.json:
            json_columns, first = result_columns, result_columns[0]
            result_columns = (ColumnSpec(first.keyspace, first.table, "[json]", CqlType("text")),)
    elif isinstance(statement, (ast.Insert, ast.Update, ast.Delete)):
        plan = prepare_write(statement, keyspace, keyspaces, binder)
    elif isinstance(statement, ast.Batch):
        plan = prepare_batch(statement, keyspace, keyspaces, binder)
    elif isinstance(statement, ast.Use):
        plan = UsePlan(statement.keyspace)
    else:
        plan = ddl_plans.plan_ddl(statement, keyspace, keyspaces)
    bind = binder.specs()
    return PreparedStatement(prepared_id(query, keyspace), query, keyspace, statement, bind,
                             binder.pk_indexes if not isinstance(statement, ast.Batch) else (),
                             result_columns, plan, json_columns)


def _target_keyspace(statement, keyspace: str | None) -> str | None:
    """The keyspace a statement reads or changes (None for USE and BATCH, checked per statement)."""
    if isinstance(statement, (ast.CreateKeyspace, ast.DropKeyspace)):
        return statement.name
    if isinstance(statement, (ast.Use, ast.Batch, ast.Describe)):
        return None
    return getattr(statement, "keyspace", None) or keyspace


class PreparedCache:
    """The prepared statements by id, least recently used evicted past `max_entries`."""

    def __init__(self, max_entries: int = PREPARED_CACHE_ENTRIES):
        assert max_entries > 0
        self.max_entries = max_entries
        self._by_id: OrderedDict[bytes, PreparedStatement] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, query_id: bytes) -> PreparedStatement | None:
        """None means Unprepared (0x2500): the client prepares again."""
        found = self._by_id.get(query_id)
        if found is not None:
            self._by_id.move_to_end(query_id)
        return found

    def prepare(self, query: str, keyspace: str | None, keyspaces) -> PreparedStatement:
        found = self.get(prepared_id(query, keyspace))
        if found is not None:
            return found
        prepared = prepare(query, keyspace, keyspaces)
        self._by_id[prepared.query_id] = prepared
        if len(self._by_id) > self.max_entries:
            self._by_id.popitem(last=False)
        return prepared

    def invalidate(self, keyspace: str, table: str | None = None) -> None:
        """Forget statements on a dropped or altered keyspace / table (they prepare again)."""
        for qid, p in list(self._by_id.items()):
            targets = _targets(p.statement, p.keyspace)
            if any(ks == keyspace and (table is None or t == table) for ks, t in targets):
                del self._by_id[qid]


def _targets(statement, keyspace) -> list[tuple]:
    if isinstance(statement, ast.Batch):
        return [t for s in statement.statements for t in _targets(s, keyspace)]
    table = getattr(statement, "table", None)
    return [(getattr(statement, "keyspace", None) or keyspace, table)]


# -- INSERT / UPDATE / DELETE ---------------------------------------------------------------------

def _source(binder: Binder, term, column, table: Table):
    """A value source for a column: a converted literal, or a bind marker (its spec recorded)."""
    t = column_type(column)
    if isinstance(term, ast.BindMarker):
        binder.bind(term, ColumnSpec(table.keyspace, table.name, term.name or column.name, t), column)
        return term
    return convert(term, t, column.name)


def column_type(column) -> CqlType:
    return parse_type(column.cql_type)


def _using(binder: Binder, table: Table, ttl, timestamp):
    out = []
    for term, name, type_name in ((ttl, "[ttl]", "int"), (timestamp, "[timestamp]", "bigint")):
        if term is None:
            out.append(None)
        elif isinstance(term, ast.BindMarker):
            binder.bind(term, ColumnSpec(table.keyspace, table.name, term.name or name, CqlType(type_name)))
            out.append(term)
        else:
            out.append(convert(term, CqlType(type_name), name))
    return out


def _write_key(binder: Binder, table: Table, where, statement: str) -> tuple[tuple, tuple, tuple, dict]:
    """WHERE of an UPDATE / DELETE: (key sources, start, end, inclusivity) with Cassandra's rules."""
    key, slices = [], {}
    for r in where:
        if isinstance(r, ast.TokenRelation):
            raise InvalidRequest(f"The token function cannot be used in WHERE clauses for {statement} statements")
        col = table.by_name.get(r.column)
        if col is None:
            raise InvalidRequest(f"Undefined column name {r.column} in table {table.qualified_name}")
        if col.kind == "regular":
            raise InvalidRequest(f"Non PRIMARY KEY columns found in where clause: {r.column} ")
        if r.op == "=":
            key.append((col.name, _source(binder, r.value, col, table), False))
        elif r.op == "IN":
            key.append((col.name, binder.in_source(r, col, table, _source), True))
        elif r.op in ("<", "<=", ">", ">=") and col.kind == "clustering" and statement == "DELETE":
            slices.setdefault(col.name, []).append((r.op, _source(binder, r.value, col, table)))
        else:
            raise InvalidRequest(f"Invalid operator {r.op} for PRIMARY KEY part {col.name}")
    given = {k[0] for k in key}
    missing = [c.name for c in table.partition_key if c.name not in given]
    if missing:
        raise InvalidRequest(f"Some partition key parts are missing: {', '.join(missing)}")
    return tuple(key), slices


def prepare_write(s, keyspace, keyspaces, binder: Binder):
    """A WritePlan, or a cas.CasPlan when the statement has an IF clause."""
    table = table_of(keyspaces, s.keyspace or keyspace, s.table)
    if isinstance(s, ast.Insert) and s.json is not None:
        if s.if_not_exists:
            raise InvalidRequest("INSERT JSON ... IF NOT EXISTS is not supported yet (docs/cql.md)")
        ttl, ts = _using(binder, table, s.ttl, s.timestamp)
        document = s.json
        if isinstance(document, ast.BindMarker):
            binder.bind(document, ColumnSpec(table.keyspace, table.name, document.name or "[json]", CqlType("text")))
        else:
            document = convert(document, CqlType("text"), "[json]")
        return WritePlan("insert", table.keyspace, table.name, (), ttl=ttl, timestamp=ts,
                         json=(table, document, not s.json_default_unset))
    plan = _prepare_write(s, table, binder)
    conditional = s.if_not_exists if isinstance(s, ast.Insert) else (s.if_exists or s.conditions)
    return cas.prepare_cas(s, table, plan, binder, _source) if conditional else plan


def _statics_only(table: Table, names) -> bool:
    """Whether `names` are all static columns (then no clustering key is needed)."""
    names = list(names)
    return bool(names) and all(table.by_name[n].static for n in names if n in table.by_name)


def _prepare_write(s, table: Table, binder: Binder) -> WritePlan:
    if isinstance(s, ast.Insert):
        if len(s.columns) != len(s.values):
            raise InvalidRequest("Unmatched column names/values")
        if len(set(s.columns)) != len(s.columns):
            raise InvalidRequest("Multiple definitions found for a column")
        ttl, ts = _using(binder, table, s.ttl, s.timestamp)
        pairs = []
        for name, term in zip(s.columns, s.values):
            col = table.by_name.get(name)
            if col is None:
                raise InvalidRequest(f"Undefined column name {name} in table {table.qualified_name}")
            pairs.append((col, _source(binder, term, col, table)))
        key = tuple((c.name, v, False) for c, v in pairs if c.kind != "regular")
        given = {c.name for c, _ in pairs}
        statics = _statics_only(table, [c.name for c, _ in pairs if c.kind == "regular"])
        for col in table.partition_key + table.clustering:
            if col.name not in given and not (statics and col.kind == "clustering"):
                raise InvalidRequest(f"Some {'partition key' if col.kind == 'partition_key' else 'clustering key'}"
                                     f" parts are missing: {col.name}")
        binder.note_key(table, s.columns, s.values)
        row = tuple((c.name, v) for c, v in pairs if c.kind == "regular")
        return WritePlan("insert", table.keyspace, table.name, key, row=row, ttl=ttl, timestamp=ts)
    if isinstance(s, ast.Update):
        ttl, ts = _using(binder, table, s.ttl, s.timestamp)
        row = []
        for name, term in s.assignments:
            col = table.by_name.get(name)
            if col is None:
                raise InvalidRequest(f"Undefined column name {name} in table {table.qualified_name}")
            if col.kind != "regular":
                raise InvalidRequest(f"PRIMARY KEY part {name} found in SET part")
            if isinstance(term, (ast.Element, ast.CollectionUpdate)):
                row.append((col.name, collection_ops.prepare_assignment(binder, table, col, term)))
                continue
            row.append((col.name, _source(binder, term, col, table)))
        key, slices = _write_key(binder, table, s.where, "UPDATE")
        binder.note_where_key(table, s.where)
        missing = [c.name for c in table.clustering if c.name not in {k[0] for k in key}]
        if missing and not _statics_only(table, [n for n, _ in row]):
            raise InvalidRequest(f"Some clustering keys are missing: {', '.join(missing)}")
        return WritePlan("insert", table.keyspace, table.name, key, row=tuple(row), ttl=ttl, timestamp=ts)
    _, ts = _using(binder, table, None, s.timestamp)
    targets = []
    for target in s.columns:
        name = target if isinstance(target, str) else target[0]
        col = table.by_name.get(name)
        if col is None:
            raise InvalidRequest(f"Undefined column name {name} in table {table.qualified_name}")
        if col.kind != "regular":
            raise InvalidRequest(f"Invalid identifier {name} for deletion (should not be a PRIMARY KEY part)")
        targets.append(name if isinstance(target, str) else
                       (name, collection_ops.prepare_element_delete(binder, table, col, target[1])))
    key, slices = _write_key(binder, table, s.where, "DELETE")
    binder.note_where_key(table, s.where)
    given = [k[0] for k in key if k[0] in {c.name for c in table.clustering}]
    ck_names = [c.name for c in table.clustering]
    if given != ck_names[:len(given)]:
        raise InvalidRequest(f"PRIMARY KEY column \"{ck_names[len(given)]}\" cannot be restricted"
                             f" as preceding column \"{ck_names[len(given) - 1] if given else ck_names[0]}\" is not restricted")
    if s.columns and len(given) != len(ck_names) and not (not given and _statics_only(table, s.columns)):
        raise InvalidRequest("Range deletions are not supported for specific columns")
    start, end, start_inc, end_inc = clustering_slice(table, given, key, slices)
    return WritePlan("delete", table.keyspace, table.name, key, columns=tuple(targets), start=start, end=end,
                     start_inclusive=start_inc, end_inclusive=end_inc, timestamp=ts)


def prepare_batch(s: ast.Batch, keyspace, keyspaces, binder: Binder) -> BatchPlan:
    if s.kind == "COUNTER":
        raise InvalidRequest("counter batches are not supported (no counter columns yet)")
    ts = None
    if s.timestamp is not None:
        first = s.statements[0] if s.statements else None
        ts = s.timestamp if isinstance(s.timestamp, ast.BindMarker) else convert(s.timestamp, CqlType("bigint"), "[timestamp]")
        if isinstance(ts, ast.BindMarker):
            binder.bind(ts, ColumnSpec(keyspace or "", getattr(first, "table", ""), ts.name or "[timestamp]",
                                       CqlType("bigint")))
    plans = []
    for inner in s.statements:
        if inner.timestamp is not None and s.timestamp is not None:
            raise InvalidRequest("Timestamp must be set either on BATCH or individual statements")
        if system_tables.is_virtual(inner.keyspace or keyspace):
            raise InvalidRequest(f"{inner.keyspace or keyspace} is a system keyspace: its tables are read-only")
        plans.append(prepare_write(inner, keyspace, keyspaces, binder))
    if any(isinstance(p, cas.CasPlan) for p in plans):
        if s.timestamp is not None:
            raise InvalidRequest("Cannot provide custom timestamp for conditional BATCH")
        return cas.prepare_cas_batch([p if isinstance(p, cas.CasPlan) else cas.as_cas(inner, p)
                                      for inner, p in zip(s.statements, plans)], keyspace)
    return BatchPlan(s.kind, tuple(plans), ts)

