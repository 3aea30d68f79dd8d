"""The IF clause of a lightweight transaction, as a pure function of the row it finds.

`parse(table, if_, if_exists, if_not_exists)` (if_ a dict {column: value | (op, value)}, or a
list of (column, op, value) triples, as CQL sends it) validates a condition once, at the coordinator
(InvalidRequest naming the column or operator); `applies(cond, row)` decides it on the current
row (a dict as `row_decode.row_dict` builds it, or None when the row does not exist); `not_applied`
is what the client gets back when it does not apply, as Cassandra's `[applied] = False` row.

Semantics (Cassandra's ColumnCondition): a missing row or column is null; `col = null` holds for
null; `!=` holds when the values differ (null included); `<`, `<=`, `>`, `>=` are false against
null; `IN (...)` holds when the value is one of the list (null may be listed). Conditions name
regular columns only: a primary-key column cannot have an IF condition.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

from engine import cql_types
from engine.errors import InvalidRequest

OPERATORS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
             ">": operator.gt, ">=": operator.ge, "IN": None}
MAX_CONDITIONS = 64


@dataclass(frozen=True, slots=True)
class Condition:
    kind: str                     # "exists", "not_exists" or "columns"
    columns: tuple = ()           # ((name, op, value), ...), op one of OPERATORS


def _value(table, name: str, value):
    col = table.column(name)
    return None if value is None else cql_types.validate(col.cql_type, value, name)


def parse(table, if_=None, if_exists: bool = False, if_not_exists: bool = False) -> Condition:
    given = [bool(if_), bool(if_exists), bool(if_not_exists)]
    if sum(given) != 1:
        raise InvalidRequest("a conditional write takes exactly one of if_={...}, if_exists=True or "
                             "if_not_exists=True")
    if if_exists:
        return Condition("exists")
    if if_not_exists:
        return Condition("not_exists")
    if isinstance(if_, (list, tuple)):      # [(name, op, value), ...]: a column may appear twice (CQL)
        if not all(isinstance(c, (list, tuple)) and len(c) == 3 for c in if_):
            raise InvalidRequest("if_ as a list holds (column, operator, value) triples")
        items = [(name, (op, value)) for name, op, value in if_]
    elif isinstance(if_, dict):
        items = sorted(if_.items())
    else:
        items = None
    if items is None or len(items) > MAX_CONDITIONS:
        raise InvalidRequest(f"if_ must be a dict of at most {MAX_CONDITIONS} column conditions")
    out = []
    for name, spec in items:
        col = table.column(name)
        if col.kind != "regular":
            raise InvalidRequest(f"PRIMARY KEY column '{name}' cannot have IF conditions")
        op, value = ("=", spec) if not isinstance(spec, (list, tuple)) else _op(name, spec)
        op = op.upper()
        if op not in OPERATORS:
            raise InvalidRequest(f"unknown operator {op!r} in the condition on '{name}'; use one of "
                                 f"{', '.join(o for o in OPERATORS if o != '==')}")
        if op == "IN":
            if not isinstance(value, (list, tuple)):
                raise InvalidRequest(f"IN on '{name}' needs a list of values")
            value = tuple(_value(table, name, v) for v in value)
        else:
            if value is None and op not in ("=", "==", "!="):
                raise InvalidRequest(f"invalid comparison with null for operator {op} on '{name}'")
            value = _value(table, name, value)
        out.append((name, "=" if op == "==" else op, value))
    return Condition("columns", tuple(out))


def _op(name: str, spec) -> tuple:
    if len(spec) != 2 or not isinstance(spec[0], str):
        raise InvalidRequest(f"the condition on '{name}' must be a value or (operator, value)")
    return spec[0], spec[1]


def applies(cond: Condition, row: dict | None) -> bool:
    if cond.kind == "exists":
        return row is not None
    if cond.kind == "not_exists":
        return row is None
    for name, op, expected in cond.columns:
        current = None if row is None else row.get(name)
        if op == "IN":
            if current not in expected:
                return False
        elif op in ("=", "!="):
            if OPERATORS[op](current, expected) is False:
                return False
        elif current is None or not OPERATORS[op](current, expected):
            return False
    return True


def not_applied(cond: Condition, row: dict | None, key_columns) -> dict:
    """Cassandra's answer when the condition fails: [applied] = False, and the current values of
    the row (IF NOT EXISTS / IF EXISTS) or of the key and the conditioned columns."""
    out = {"applied": False}
    if row is None:
        return out
    if cond.kind == "columns":
        names = list(key_columns) + [name for name, _, _ in cond.columns]
        out.update({n: row.get(n) for n in names if n in row or n in dict.fromkeys(key_columns)})
        for name, _, _ in cond.columns:
            out.setdefault(name, None)
        return out
    out.update(row)
    return out
