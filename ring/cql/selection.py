"""A SELECT's rows, from the node's row dicts to result rows. Pure.

The node's read ops answer rows as dicts (column -> Python value, `writetime(col)` -> µs,
`ttl(col)` -> seconds left or None; engine.row_decode.row_dict). `Selection` holds what the
executor does to them, in Cassandra's order: the ALLOW FILTERING restrictions (`ReadPlan.filters`) decide whether a row counts at all;
PER PARTITION LIMIT and DISTINCT (one row per partition) decide by the row's partition; LIMIT
counts what is left; then `project` turns a row into the result columns (`*`, columns and
aliases, writetime(), ttl(), token()). A null never satisfies a restriction, as in Cassandra.
"""
from __future__ import annotations

import operator

from engine import mutation as mut
from engine.errors import InvalidRequest
from engine.schema import Table
from engine.token import token as token_of
from ring.cql import ast
from ring.cql.plan import UNSET, resolve

_COMPARE = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Selection:
    def __init__(self, statement: ast.Select, table: Table, result_columns: tuple, filters: tuple, values):
        self.table = table
        self.pk_names = [c.name for c in table.partition_key]
        self.ck_names = [c.name for c in table.clustering]
        self.getters = [self._getter(sel.expression) for sel in statement.selectors] \
            if statement.selectors is not None else [_column(spec.name) for spec in result_columns]
        self.filters = []
        for column, op, source in filters:
            value = resolve(source, values)
            if value is None or value is UNSET:
                raise InvalidRequest(f"Invalid {'unset' if value is UNSET else 'null'} value for column {column}")
            if op == "IN":
                options = list(value)
                self.filters.append((column, lambda v, options=options: v in options))
            else:
                self.filters.append((column, lambda v, f=_COMPARE[op], x=value: f(v, x)))

    def _getter(self, e):
        if isinstance(e, ast.ColumnRef):
            return _column(e.name)
        if isinstance(e, ast.WriteTime):
            return _column(f"writetime({e.column})")
        if isinstance(e, ast.Ttl):
            return _column(f"ttl({e.column})")
        if isinstance(e, ast.TokenOf):
            return lambda row: token_of(self.partition_key(row))
        assert isinstance(e, ast.CountRows), e
        return None

    def admits(self, row: dict) -> bool:
        """Whether the row passes every ALLOW FILTERING restriction."""
        for column, test in self.filters:
            v = row.get(column)
            try:
                if v is None or not test(v):
                    return False
            except TypeError:           # values of another type than the column's: never equal
                return False
        return True

    def partition_key(self, row: dict) -> bytes:
        return mut.partition_key_bytes(self.table, {n: row[n] for n in self.pk_names})

    def clustering(self, row: dict) -> tuple:
        return tuple(row[n] for n in self.ck_names)

    def project(self, row: dict) -> list:
        return [g(row) for g in self.getters]


def _column(name: str):
    """row.get(name); the getter's `column` names the key (the point lane reads it inline)."""
    getter = lambda row: row.get(name)  # noqa: E731
    getter.column = name
    return getter


class RowSink:
    """Rows that pass, in order, under PER PARTITION LIMIT, DISTINCT and LIMIT; or their count.

    `state` fields survive across pages (paging.PagingState): `emitted`, `partition`,
    `partition_rows`."""

    def __init__(self, selection: Selection, limit: int | None, per_partition_limit: int | None,
                 distinct: bool, count: bool, emitted: int = 0, partition: bytes | None = None,
                 partition_rows: int = 0):
        self.selection = selection
        self.limit = limit
        self.ppl = 1 if distinct else per_partition_limit
        self.count = count
        self.emitted = emitted
        self.partition = partition
        self.partition_rows = partition_rows
        self.rows: list[list] = []
        self.counted = 0

    @property
    def limit_reached(self) -> bool:
        return self.limit is not None and self.emitted >= self.limit and not self.count

    def offer(self, row: dict) -> None:
        """Take one row from the node (in result order)."""
        if self.limit_reached or not self.selection.admits(row):
            return
        if self.ppl is not None:
            pk = self.selection.partition_key(row)
            if pk != self.partition:
                self.partition, self.partition_rows = pk, 0
            if self.partition_rows >= self.ppl:
                return
            self.partition_rows += 1
        if self.count:
            self.counted += 1
            return
        self.emitted += 1
        self.rows.append(self.selection.project(row))

    def partition_room(self, pk: bytes) -> int | None:
        """How many more rows of partition `pk` can count (None: no per-partition limit)."""
        if self.ppl is None:
            return None
        return self.ppl - (self.partition_rows if pk == self.partition else 0)
