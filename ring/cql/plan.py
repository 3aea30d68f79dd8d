"""What a prepared statement does, as the node's client operations. Pure.

prepare.py builds one plan per statement; the executor calls `plan.operations(values)` with the
bound values (Python values, decoded by the bind specs' types; index = marker position) and
submits each (op, args) pair to the node (docs/node_api.md: insert, delete, select, scan,
index_query, create_keyspace, ...), adding `consistency`, and `timestamp` when the plan has
none. A value source is either a Python value (a literal, already converted) or an
ast.BindMarker (looked up in `values`). Key alternatives (`k IN (...)`) expand to one
operation per combination, in the order written. Nothing here invents an operation: a plan
names only ops and args the node handlers read today (TRUNCATE is the node's "truncate" op,
ring/ops/truncate.py).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from engine.errors import InvalidRequest
from ring.cql import ast, json_values
from ring.cql.collection_ops import CollectionSource, resolve_op

UNSET = object()        # an unset bind value ([value] length -2): the column is left alone


def resolve(source, values):
    if isinstance(source, ast.BindMarker):
        return values[source.index]
    return source


def _alternatives(key: tuple, values) -> list[dict]:
    """key = ((column, source, is_in), ...) -> every combination as {column: value}."""
    choices = []
    for column, source, is_in in key:
        value = resolve(source, values)
        options = list(value or ()) if is_in else [value]
        if is_in and isinstance(source, ast.BindMarker) and value is None:
            raise InvalidRequest(f"Invalid null value for IN restriction on {column}")
        for v in options:
            if v is None or v is UNSET:
                raise InvalidRequest(f"Invalid {'unset' if v is UNSET else 'null'} value for {column}")
        choices.append([(column, v) for v in options])
    return [dict(combo) for combo in itertools.product(*choices)]


def _positive(name: str, source, values) -> int | None:
    value = resolve(source, values)
    if value is None or value is UNSET:
        return None
    if value <= 0:
        raise InvalidRequest(f"{name} must be strictly positive")
    return value


def _using(args: dict, ttl, timestamp, values):
    if ttl is not None:
        v = resolve(ttl, values)
        if v is not None and v is not UNSET:
            if v < 0:
                raise InvalidRequest("A TTL must be greater or equal to 0, but was " + str(v))
            args["ttl"] = v
    if timestamp is not None:
        v = resolve(timestamp, values)
        if v is not None and v is not UNSET:
            args["timestamp"] = v


@dataclass(frozen=True)
class SchemaPlan:
    """DDL: one node op (create_keyspace, create_table, drop_*, create_index, truncate) with its args."""
    op: str
    args: dict

    def operations(self, values=()) -> list[tuple[str, dict]]:
        return [(self.op, dict(self.args))]


@dataclass(frozen=True)
class UsePlan:
    keyspace: str

    def operations(self, values=()) -> list:
        return []


@dataclass(frozen=True)
class WritePlan:
    """INSERT and UPDATE -> insert (row = key + assigned columns); DELETE -> delete."""
    op: str                         # "insert" | "delete"
    keyspace: str
    table: str
    key: tuple                      # ((column, source, is_in), ...) partition and given clustering columns
    row: tuple = ()                 # insert: ((column, source), ...)
    columns: tuple = ()             # delete: regular columns to delete (cell tombstones)
    start: tuple = ()               # delete of a clustering range: ((column, source), ...) prefix
    end: tuple = ()
    start_inclusive: bool = True
    end_inclusive: bool = True
    ttl: object = None
    timestamp: object = None
    json: tuple | None = None       # INSERT JSON: (table, document source, default null)

    def operations(self, values=()) -> list[tuple[str, dict]]:
        if self.json is not None:
            table, document, default_null = self.json
            row = json_values.row_from_json(table, resolve(document, values), default_null)
            args = {"keyspace": self.keyspace, "table": self.table, "row": row}
            _using(args, self.ttl, self.timestamp, values)
            return [("insert", args)]
        out = []
        for key in _alternatives(self.key, values):
            args = {"keyspace": self.keyspace, "table": self.table}
            if self.op == "insert":
                row = dict(key)
                for column, source in self.row:
                    if isinstance(source, CollectionSource):
                        v = resolve_op(source, values, UNSET)
                        if v is not None:
                            row[column] = v
                        continue
                    v = resolve(source, values)
                    if v is not UNSET:
                        row[column] = v
                args["row"] = row
            else:
                args["key"] = key
                if self.columns:
                    args["columns"] = _deletion_targets(self.columns, values)
                    if not args["columns"]:
                        continue
                if self.start or self.end:
                    args.update(_bounds(self, values))
            _using(args, self.ttl, self.timestamp, values)
            out.append((self.op, args))
        return out


def _deletion_targets(columns: tuple, values) -> list:
    """DELETE's columns: names, and (name, CollectionOp) for elements (an unset key drops one)."""
    out = []
    for c in columns:
        if isinstance(c, str):
            out.append(c)
        elif (op := resolve_op(c[1], values, UNSET)) is not None:
            out.append((c[0], op))
    return out


def _bounds(plan, values) -> dict:
    out = {}
    if plan.start:
        out["start"] = tuple(resolve(s, values) for _, s in plan.start)
        out["start_inclusive"] = plan.start_inclusive
    if plan.end:
        out["end"] = tuple(resolve(s, values) for _, s in plan.end)
        out["end_inclusive"] = plan.end_inclusive
    for side in ("start", "end"):
        if any(v is None or v is UNSET for v in out.get(side, ())):
            raise InvalidRequest("Invalid null or unset value in a clustering column restriction")
    return out


@dataclass(frozen=True)
class ReadPlan:
    """SELECT -> select (partition key given), scan (token range or whole ring) or index_query.

    `filters` ((column, op, source), ...) are ALLOW FILTERING restrictions the executor applies
    to each row; `selection` says how a row dict becomes the result row (prepare.py)."""
    op: str                         # "select" | "scan" | "index_query"
    keyspace: str
    table: str
    key: tuple = ()                 # select: ((column, source, is_in), ...)
    start: tuple = ()               # select: clustering bounds, as in WritePlan
    end: tuple = ()
    start_inclusive: bool = True
    end_inclusive: bool = True
    reverse: bool = False
    columns: tuple | None = None    # regular columns to fetch (None = all)
    writetime: bool = False
    ttl: bool = False               # 'ttl(col)' entries: the seconds left of each cell's TTL
    start_token: object = None      # scan: (start, end] tokens; sources
    end_token: object = None
    where: tuple = ()               # index_query: ((column, op, source), ...)
    filters: tuple = ()
    limit: object = None
    per_partition_limit: object = None
    distinct: bool = False
    count: bool = False

    def request_base(self) -> dict:
        """The request fields every operation of this read carries (also the point path's)."""
        base = {"keyspace": self.keyspace, "table": self.table}
        if self.columns is not None:
            base["columns"] = list(self.columns)
        if self.writetime:
            base["writetime"] = True
        if self.ttl:
            base["ttl"] = True
        return base

    def operations(self, values=()) -> list[tuple[str, dict]]:
        base = self.request_base()
        if self.op == "scan":
            for name in ("start_token", "end_token"):
                source = getattr(self, name)
                if source is not None:
                    base[name] = resolve(source, values)
            return [("scan", base)]
        if self.op == "index_query":
            base["where"] = [[c, op, resolve(s, values)] for c, op, s in self.where]
            return [("index_query", base)]
        out = []
        bounds = _bounds(self, values)
        limit = self.limit_value(values)
        ppl = _positive("PER PARTITION LIMIT", self.per_partition_limit, values) if self.per_partition_limit else None
        for key in _alternatives(self.key, values):
            args = dict(base, key=key, **bounds)
            if self.reverse:
                args["reverse"] = True
            if ppl is not None or (limit is not None and not self.filters and not self.count):
                args["limit"] = min(x for x in (ppl, limit) if x is not None)
            out.append(("select", args))
        return out

    def limit_value(self, values=()) -> int | None:
        """The statement's LIMIT (applied by the executor across all operations' rows)."""
        return _positive("LIMIT", self.limit, values) if self.limit is not None else None


@dataclass(frozen=True)
class BatchPlan:
    kind: str                       # LOGGED | UNLOGGED | COUNTER
    plans: tuple                    # WritePlans
    timestamp: object = None

    def operations(self, values=()) -> list[tuple[str, dict]]:
        out = []
        for plan in self.plans:
            for op, args in plan.operations(values):
                if self.timestamp is not None and "timestamp" not in args:
                    _using(args, None, self.timestamp, values)
                out.append((op, args))
        return out
