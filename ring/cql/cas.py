"""Lightweight transactions in CQL: IF clauses become the node's conditional ops. Pure.

`prepare_cas(statement, table, write, binder, source)` checks an INSERT ... IF NOT EXISTS,
UPDATE ... IF EXISTS | IF cond AND ..., or DELETE ... IF ... against Cassandra's rules and
returns a `CasPlan`; `prepare_cas_batch` does the same for a BATCH whose statements carry
conditions (`CasBatchPlan`, one partition of one table). Their `operations(values)` name the
ops of ring/ops/lwt.py (insert if_not_exists, update if_/if_exists, delete if_/if_exists,
batch); the executor adds `consistency` (the commit level) and `serial_consistency`.
`result_rows(...)` turns the op's answer into Cassandra's result (ModificationStatement.
buildCasResultSet): a ROWS result whose first column is the boolean `[applied]`; when not
applied, the current values follow: every column of the row in SELECT * order (IF EXISTS,
IF NOT EXISTS), or the conditioned columns in IF order (column conditions); a batch adds the
primary key columns first and answers one row per conditioned row that exists; a row that does
not exist adds nothing. Rules: docs/lwt.md#cql.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.plan import UNSET, WritePlan, resolve
from ring.cql.result import ColumnSpec, Rows, RowsMetadata
from ring.cql.types import CqlType, parse_type

APPLIED = "[applied]"
BOOLEAN = CqlType("boolean")


@dataclass(frozen=True)
class CasPlan:
    """One conditional INSERT / UPDATE / DELETE: a WritePlan plus its IF clause."""
    kind: str                       # "insert" | "update" | "delete" (the statement)
    write: WritePlan
    conditions: tuple = ()          # ((column, op, source), ...) in IF order; IN: a list source
    if_exists: bool = False
    if_not_exists: bool = False

    @property
    def keyspace(self) -> str:
        return self.write.keyspace

    @property
    def table(self) -> str:
        return self.write.table

    def statement(self, values) -> dict:
        """The batch-statement dict of ring/ops/lwt.py: op, key or row, set / columns, condition."""
        (op, args), = self.write.operations(values)
        out = {"op": self.kind}
        if "ttl" in args:
            out["ttl"] = args["ttl"]
        if self.kind == "insert":
            out["row"] = args["row"]
        else:
            key = args["key"] if op == "delete" else {c: args["row"][c] for c, _, _ in self.write.key}
            out["key"] = key
            if self.kind == "update":
                out["set"] = {c: v for c, v in args["row"].items() if c not in key}
                if not out["set"]:
                    raise InvalidRequest("UPDATE with only unset values: nothing to set")
            elif args.get("columns"):
                out["columns"] = args["columns"]
        if self.if_not_exists:
            out["if_not_exists"] = True
        elif self.if_exists:
            out["if_exists"] = True
        elif self.conditions:
            out["if_"] = [(c, op, _condition_value(c, op, s, values)) for c, op, s in self.conditions]
        return out

    def operations(self, values=()) -> list[tuple[str, dict]]:
        s = self.statement(values)
        args = {k: v for k, v in s.items() if k != "op"}
        return [(self.kind, dict(args, keyspace=self.keyspace, table=self.table))]


@dataclass(frozen=True)
class CasBatchPlan:
    """A BATCH with conditions: one `batch` op on one partition of one table."""
    plans: tuple                    # CasPlans (statements without a condition have none)

    def operations(self, values=()) -> list[tuple[str, dict]]:
        first = self.plans[0]
        return [("batch", {"keyspace": first.keyspace, "table": first.table,
                           "statements": [p.statement(values) for p in self.plans]})]

    def condition_columns(self) -> list[str] | None:
        """The conditioned columns in IF order, or None when some statement is IF [NOT] EXISTS."""
        out = []
        for p in self.plans:
            if p.if_exists or p.if_not_exists:
                return None
            out += [c for c, _, _ in p.conditions if c not in out]
        return out


def _condition_value(column: str, op: str, source, values):
    value = resolve(source, values)
    if value is UNSET:
        raise InvalidRequest(f"Invalid 'unset' value in condition on {column}")
    if op == "IN":
        if value is None:
            raise InvalidRequest(f"Invalid null list in IN condition on {column}")
        return [None if v is UNSET else v for v in value]
    return value


def prepare_cas(s, table, write: WritePlan, binder, source) -> CasPlan:
    """Cassandra's checks for a conditional statement, then its CasPlan."""
    if s.timestamp is not None:
        raise InvalidRequest("Cannot provide custom timestamp for conditional updates")
    for column, _, is_in in write.key:
        if is_in:
            part = "partition key" if table.by_name[column].kind == "partition_key" else "clustering key columns"
            raise InvalidRequest(f"IN on the {part} is not supported with conditional "
                                 f"{'deletions' if isinstance(s, ast.Delete) else 'updates'}")
    if isinstance(s, ast.Insert):
        return CasPlan("insert", write, if_not_exists=True)
    kind = "update" if isinstance(s, ast.Update) else "delete"
    given = {c for c, _, _ in write.key}
    missing = [c.name for c in table.clustering if c.name not in given]
    statics_only = all(table.by_name[c].static for c, _ in write.row) if kind == "update" else \
        bool(write.columns) and all(table.by_name[c].static for c in write.columns)
    conds_static = all(table.by_name[c.column].static for c in s.conditions if c.column in table.by_name)
    if missing and not (statics_only and conds_static and not s.if_exists):
        if kind == "delete":
            raise InvalidRequest("DELETE statements must restrict all PRIMARY KEY columns with equality relations in "
                                 f"order to use IF conditions, but column '{missing[0]}' is not restricted")
        raise InvalidRequest(f"Some clustering keys are missing: {', '.join(missing)}")
    conditions = []
    for cond in s.conditions:
        col = table.by_name.get(cond.column)
        if col is None:
            raise InvalidRequest(f"Undefined column name {cond.column} in table {table.qualified_name}")
        if col.kind != "regular":
            raise InvalidRequest(f"PRIMARY KEY column '{col.name}' cannot have IF conditions")
        if cond.op == "IN":
            value = binder.in_source(ast.Relation(col.name, "IN", cond.value), col, table, source) \
                if isinstance(cond.value, ast.BindMarker) else \
                [source(binder, v, col, table) for v in cond.value.items]
        else:
            value = source(binder, cond.value, col, table)
            if value is None and cond.op not in ("=", "!="):
                raise InvalidRequest(f"Invalid comparison with null for operator \"{cond.op}\"")
        conditions.append((col.name, cond.op, value))
    return CasPlan(kind, write, tuple(conditions), s.if_exists)


def prepare_cas_batch(plans: list, keyspace: str | None) -> CasBatchPlan:
    """Every statement of a conditional BATCH as a CasPlan; one table (partition: checked by the node)."""
    tables = {(p.keyspace, p.table) for p in plans}
    if len(tables) > 1:
        raise InvalidRequest("Batch with conditions cannot span multiple tables")
    return CasBatchPlan(tuple(plans))


def as_cas(statement, write: WritePlan) -> CasPlan:
    """A statement without a condition, riding in a conditional batch."""
    kind = {ast.Insert: "insert", ast.Update: "update", ast.Delete: "delete"}[type(statement)]
    if statement.timestamp is not None:
        raise InvalidRequest("Cannot provide custom timestamp for conditional BATCH")
    if kind == "delete" and (write.start or write.end):
        raise InvalidRequest("Range deletions are not supported in a batch with conditions")
    return CasPlan(kind, write)


# -- the answer ----------------------------------------------------------------------------------

def _columns(table, names) -> list:
    return [ColumnSpec(table.keyspace, table.name, n, parse_type(table.by_name[n].cql_type)) for n in names]


def select_star_order(table) -> list[str]:
    """SELECT * order: partition key, clustering, static columns by name, regular columns by name."""
    rest = sorted(table.regular, key=lambda c: (not c.static, c.name))
    return [c.name for c in table.partition_key + table.clustering] + [c.name for c in rest]


def result_rows(table, plan, answer: dict) -> Rows:
    """The op's answer as Cassandra's [applied] ROWS result (metadata always sent)."""
    applied = ColumnSpec(table.keyspace, table.name, APPLIED, BOOLEAN)
    if answer.get("applied"):
        return Rows.from_values(RowsMetadata((applied,)), [[True]])
    if isinstance(plan, CasBatchPlan):
        found = answer.get("rows") or []
        conditioned = plan.condition_columns()
        keys = [c.name for c in table.partition_key + table.clustering]
        names = select_star_order(table) if conditioned is None else keys + [c for c in conditioned if c not in keys]
    else:
        row = {k: v for k, v in answer.items() if k != "applied"}
        found = [row] if row else []
        names = select_star_order(table) if plan.if_exists or plan.if_not_exists else \
            list(dict.fromkeys(c for c, _, _ in plan.conditions))
    if not found:
        return Rows.from_values(RowsMetadata((applied,)), [[False]])
    metadata = RowsMetadata(tuple([applied] + _columns(table, names)))
    return Rows.from_values(metadata, [[False] + [r.get(n) for n in names] for r in found])
