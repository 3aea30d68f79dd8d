"""Collection operations of UPDATE and DELETE, from the syntax to engine CollectionOps. Pure.

Three steps, one per layer:
* prepare: `prepare_assignment` / `prepare_element_delete` check the operation against the
  column's type in Cassandra's words and return a `CollectionSource` (its value a literal,
  already converted, or a bind marker, whose spec is recorded with the right type: `m[?]` binds
  the key type, `m = m - ?` a set of keys);
* plan: `resolve_op(source, values)` makes the engine's CollectionOp (None for a null or unset
  value: nothing to do, as in Cassandra);
* execute: list operations by index or by value (`l[i] = v`, `DELETE l[i]`, `l = l - [..]`)
  need the list as it is, as in Cassandra (a read before the write): `pending_reads(ops)` says
  which rows to read, `settle(op, row)` turns the op into put / delete_paths on the paths read.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.collections import CollectionOp
from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.literal import convert
from ring.cql.result import ColumnSpec
from ring.cql.types import CqlType, parse_type

_READ_KINDS = ("list_remove", "list_put_index", "list_delete_index")


@dataclass(frozen=True)
class CollectionSource:
    kind: str           # append prepend add remove remove_key | list_remove list_put_index list_delete_index
    value: object       # a value source (converted literal or ast.BindMarker)
    key: object = None  # m[k] = v: the key's source (value is v's)


def _source(binder, term, t: CqlType, table, name: str):
    if isinstance(term, ast.BindMarker):
        binder.bind(term, ColumnSpec(table.keyspace, table.name, term.name or name, t))
        return term
    return convert(term, t, name)


def _multicell(col, what: str) -> CqlType:
    t = parse_type(col.cql_type)
    if t.name not in ("list", "set", "map"):
        raise InvalidRequest(f"Invalid operation ({what}) for non collection column {col.name}")
    if t.frozen:
        raise InvalidRequest(f"Invalid operation ({what}) for frozen collection column {col.name}")
    return t


def prepare_assignment(binder, table, col, rhs) -> CollectionSource:
    """`c = c + x`, `c = x + c`, `c = c - x` or `c[k] = v` on column `col`."""
    name = col.name
    if isinstance(rhs, ast.Element):
        t = _multicell(col, f"{name}[...] = ...")
        if t.name == "set":
            raise InvalidRequest(f"Invalid operation ({name}[...] = ...) for set column {name}")
        if t.name == "list":
            key = _source(binder, rhs.key, CqlType("int"), table, f"idx({name})")
            return CollectionSource("list_put_index", _source(binder, rhs.value, t.params[0], table, name), key)
        key = _source(binder, rhs.key, t.params[0], table, f"key({name})")
        return CollectionSource("add", _source(binder, rhs.value, t.params[1], table, f"value({name})"), key)
    what = f"{name} = {'... + ' + name if rhs.prepend else name + ' ' + rhs.op + ' ...'}"
    t = _multicell(col, what)
    if rhs.prepend and t.name != "list":
        raise InvalidRequest(f"Invalid operation ({what}) for non list column {name}")
    value_type = CqlType("set", (t.params[0],)) if t.name == "map" and rhs.op == "-" else t
    value = _source(binder, rhs.value, value_type, table, name)
    if t.name == "list":
        kind = "list_remove" if rhs.op == "-" else ("prepend" if rhs.prepend else "append")
    else:
        kind = "add" if rhs.op == "+" else "remove"
    return CollectionSource(kind, value)


def prepare_element_delete(binder, table, col, element: ast.Element) -> CollectionSource:
    """`DELETE c[key]`: a map entry or a list element."""
    t = _multicell(col, f"DELETE {col.name}[...]")
    if t.name == "set":
        raise InvalidRequest(f"Invalid operation (DELETE {col.name}[...]) for set column {col.name}")
    if t.name == "list":
        return CollectionSource("list_delete_index", _source(binder, element.key, CqlType("int"), table,
                                                             f"idx({col.name})"))
    return CollectionSource("remove_key", _source(binder, element.key, t.params[0], table, f"key({col.name})"))


def resolve_op(source: CollectionSource, values, unset) -> CollectionOp | None:
    value = values[source.value.index] if isinstance(source.value, ast.BindMarker) else source.value
    key = source.key
    if isinstance(key, ast.BindMarker):
        key = values[key.index]
    if key is unset or value is unset:
        return None
    if source.key is not None and key is None:
        raise InvalidRequest("Invalid null value for a collection element's key or index")
    if source.kind == "add" and source.key is not None:
        if value is None:                       # m[k] = null deletes the entry
            return CollectionOp("remove", [key])
        return CollectionOp("add", {key: value})
    if source.kind == "remove_key":            # DELETE m[k]: one key
        if value is None:
            raise InvalidRequest("Invalid null value for a map key")
        return CollectionOp("remove", [value])
    if source.kind == "list_delete_index":
        return CollectionOp("list_delete_index", value)
    if source.kind == "list_put_index":
        return CollectionOp("list_put_index", value, key)
    if value is None:
        return None
    if source.kind == "remove" and isinstance(value, dict):
        value = list(value)
    return CollectionOp(source.kind, value)


# -- execute: the read before a list write ---------------------------------------------------------

def needs_read(op) -> bool:
    return isinstance(op, CollectionOp) and op.kind in _READ_KINDS


def pending_reads(args: dict) -> list[str]:
    """The list columns of one insert / delete op's args whose operation needs the list read first."""
    if "row" in args:
        return [name for name, v in args["row"].items() if needs_read(v)]
    return [c[0] for c in args.get("columns") or () if not isinstance(c, str) and needs_read(c[1])]


def settle(op: CollectionOp, current: list | None, column: str) -> CollectionOp:
    """A list op on the list as read ([(path, value), ...] or None) as engine put / delete_paths."""
    current = current or []
    if op.kind == "list_remove":
        drop = list(op.value)
        return CollectionOp("delete_paths", [p for p, v in current if v in drop])
    index = op.path if op.kind == "list_put_index" else op.value
    if not 0 <= index < len(current):
        if op.kind == "list_delete_index" and not current:
            return CollectionOp("delete_paths", [])
        raise InvalidRequest(f"List index {index} out of bound, list has size {len(current)}")
    path = current[index][0]
    if op.kind == "list_delete_index":
        return CollectionOp("delete_paths", [path])
    if op.value is None:
        return CollectionOp("delete_paths", [path])
    return CollectionOp("put", op.value, path)
