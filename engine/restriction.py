"""The WHERE clause of an index query: `[(column, op, value), ...]`, ANDed. Pure functions.

* `parse` validates against the table: a known column, an operator among OPS, a value of the
  column's CQL type; at most MAX_RESTRICTIONS of them. Bad input raises InvalidRequest naming it.
* `choose_index` picks the index a node answers from: an equality on an indexed column first,
  else the first indexed column restricted by a range; no indexed column is an InvalidRequest
  naming the restricted columns and saying to create an index.
* `matches` tests a row dict (the form `scan` returns) against every restriction.
Values compare in their CQL type's order: by the order-preserving encoding of engine/cql_types.py
(the same bytes the index is sorted by), decimals by their Python value. A missing (null) column
matches nothing, as in CQL.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import cql_types
from engine.errors import InvalidRequest
from engine.schema import IndexMetadata, Table

OPS = ("=", "<", "<=", ">", ">=")
MAX_RESTRICTIONS = 16


@dataclass(frozen=True, slots=True)
class Restriction:
    column: str
    op: str
    value: object        # the validated value, as the client gave it (sent on the wire)
    key: object          # its comparable form: ordered bytes, or a Decimal


def comparable(cql_type: str, value):
    """A key whose Python order is the CQL order of `value` (already validated)."""
    if cql_type == "decimal":
        return value
    return cql_types.encode_ordered(cql_type, value)


def comparable_bytes(cql_type: str, data: bytes):
    """`comparable` of a serialized cell value (engine/cql_types.py's Cassandra bytes)."""
    if cql_type == "timestamp":
        return cql_types.encode_ordered("bigint", cql_types.deserialize("bigint", data))
    return comparable(cql_type, cql_types.deserialize(cql_type, data))


def parse(table: Table, where) -> list[Restriction]:
    if not isinstance(where, (list, tuple)) or not where:
        raise InvalidRequest("where must be a non-empty list of (column, op, value) restrictions")
    if len(where) > MAX_RESTRICTIONS:
        raise InvalidRequest(f"{len(where)} restrictions exceed the maximum of {MAX_RESTRICTIONS}")
    out = []
    for item in where:
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise InvalidRequest(f"restriction {item!r:.80} is not a (column, op, value) triple")
        name, op, value = item
        col = table.column(name)
        if op not in OPS:
            raise InvalidRequest(f"operator {op!r} on column '{name}' is not supported; use one of {', '.join(OPS)}")
        if value is None:
            raise InvalidRequest(f"restriction on column '{name}' compares with null, which matches nothing; "
                                 "give a value")
        valid = cql_types.validate(col.cql_type, value, name)
        out.append(Restriction(name, op, value, comparable(col.cql_type, valid)))
    return out


def to_wire(restrictions: list[Restriction]) -> list:
    return [[r.column, r.op, r.value] for r in restrictions]


def choose_index(table: Table, restrictions: list[Restriction]) -> IndexMetadata:
    by_column = {}
    for index in table.indexes:
        by_column.setdefault(index.column, index)
    equal = [r for r in restrictions if r.op == "=" and r.column in by_column]
    if equal:
        return by_column[equal[0].column]
    ranged = [r for r in restrictions if r.column in by_column]
    if ranged:
        return by_column[ranged[0].column]
    names = sorted({r.column for r in restrictions})
    raise InvalidRequest(
        f"no secondary index on the restricted column(s) {', '.join(names)} of {table.qualified_name}; "
        f"create one with create_index('{table.name}', '{names[0]}') or restrict an indexed column")


def key_bounds(restrictions: list[Restriction], column: str) -> tuple:
    """(lo, hi) comparable keys bounding `column` (inclusive, None = unbounded); (lo, lo) for =.
    Loose on purpose: strictness is re-checked by `matches` on every row."""
    lo = hi = None
    for r in restrictions:
        if r.column != column:
            continue
        if r.op in ("=", ">", ">=") and (lo is None or r.key > lo):
            lo = r.key
        if r.op in ("=", "<", "<=") and (hi is None or r.key < hi):
            hi = r.key
    return lo, hi


def equality_key(restrictions: list[Restriction], column: str):
    """The comparable key of the first equality on `column`, or None."""
    return next((r.key for r in restrictions if r.column == column and r.op == "="), None)


def matches(table: Table, restrictions: list[Restriction], row: dict) -> bool:
    for r in restrictions:
        value = row.get(r.column)
        if value is None:
            return False
        col = table.by_name[r.column]
        key = comparable(col.cql_type, cql_types.validate(col.cql_type, value, r.column))
        op = r.op
        if op == "=":
            ok = key == r.key
        elif op == "<":
            ok = key < r.key
        elif op == "<=":
            ok = key <= r.key
        elif op == ">":
            ok = key > r.key
        else:
            ok = key >= r.key
        if not ok:
            return False
    return True
