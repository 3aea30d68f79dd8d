"""Collections: list<T>, set<T>, map<K, V>, frozen and not, as the engine stores them.

A collection type is a string (`list<int>`, `frozen<map<text, int>>`), parsed here into
`CollectionType(name, params, frozen)`; a scalar parameter stays its type name.

* A **frozen** collection is one ordinary cell holding Cassandra's serialization (`i32 count`,
  then per element `i32 length | bytes`, a map's key before its value). It may be a key
  column: `encode_ordered` is a prefix-free, order-preserving codec (per element `01` and the
  element's own ordered encoding, then `00`), so frozen values compare as Cassandra compares
  them: element by element, a shorter prefix first.
* A **non-frozen** (multi-cell) collection is one cell per element, keyed in a row by
  `(column_id, path)`: a set element's path is its ordered encoding (value empty), a map
  entry's path its key's ordered encoding (value: the value's bytes), a list element's path a
  16-byte time-ordered key (`list_path`). Path `b""` is never an element: it holds the
  **collection tombstone**, a tombstone cell shadowing every element of the column whose
  timestamp is <= its own. An overwrite writes it at ts - 1 and the new elements at ts, as
  Cassandra does. docs/format.md#partition-payload has the layout.

Invariant: paths of one column sort (as bytes) in the collection's order, so assembling a
collection is reading its cells in path order. Python forms: list, frozenset (elements
hashable: nested lists become tuples), dict; an empty non-frozen collection reads as null.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import cql_types
from engine.encoding import I32, U32, U64
from engine.errors import InvalidRequest

TOMBSTONE_PATH = b""
_ARITY = {"list": 1, "set": 1, "map": 2}
_BIAS = 1 << 63


@dataclass(frozen=True, slots=True)
class CollectionType:
    name: str                       # list | set | map
    params: tuple                   # element types: str (scalar) or CollectionType
    frozen: bool

    def __str__(self) -> str:
        text = f"{self.name}<{', '.join(map(str, self.params))}>"
        return f"frozen<{text}>" if self.frozen else text


@dataclass(frozen=True, slots=True)
class CollectionOp:
    """A non-overwriting change to a multi-cell collection (the value of a column in a write).

    kind: append / prepend (list, `value` a list), add (set elements or map entries), remove
    (set elements or map keys, tombstones), put (list element at `path` = value), delete_paths
    (list elements at the paths in `value`). The CQL layer turns its by-index and by-value list
    operations into put / delete_paths after reading the list (ring/cql/collection_ops.py)."""
    kind: str
    value: object = None
    path: bytes = b""


_PARSED: dict = {}


def parse(cql_type: str):
    """The CollectionType of a collection type string, or None for a scalar type."""
    found = _PARSED.get(cql_type)
    if found is None and cql_type not in _PARSED:
        found = None
        if "<" in cql_type:
            found, rest = _parse(cql_type.replace(" ", ""))
            if rest or not isinstance(found, CollectionType):
                raise InvalidRequest(f"invalid type {cql_type!r}")
        _PARSED[cql_type] = found
    return found


def _frozen(t):
    """Everything inside a frozen collection is frozen (frozen<list<set<int>>> as Cassandra reads it)."""
    if not isinstance(t, CollectionType):
        return t
    return CollectionType(t.name, tuple(_frozen(p) for p in t.params), True)


def _parse(s: str, within_frozen: bool = False):
    i = 0
    while i < len(s) and (s[i].isalnum() or s[i] == "_"):
        i += 1
    name, rest = s[:i], s[i:]
    if not rest.startswith("<"):
        if name not in cql_types.TYPES:
            raise InvalidRequest(f"unknown type {name!r}")
        return name, rest
    params = []
    rest = rest[1:]
    while True:
        p, rest = _parse(rest, within_frozen or name == "frozen")
        params.append(p)
        if rest.startswith(","):
            rest = rest[1:]
            continue
        if not rest.startswith(">"):
            raise InvalidRequest(f"missing '>' after {name}<...")
        rest = rest[1:]
        break
    if name == "frozen":
        inner = params[0]
        if len(params) != 1 or not isinstance(inner, CollectionType):
            raise InvalidRequest("frozen<> takes one collection type")
        return _frozen(inner), rest
    if name not in _ARITY or len(params) != _ARITY[name]:
        raise InvalidRequest(f"type {name} does not take {len(params)} parameter(s)")
    for p in params:
        if isinstance(p, CollectionType) and not p.frozen and not within_frozen:
            raise InvalidRequest("Non-frozen collections are not allowed inside collections: "
                                 f"{name}<{', '.join(map(str, params))}>")
        if p == "duration" and (name == "set" or p is params[0] and name == "map"):
            raise InvalidRequest(f"duration cannot be a set element or a map key ({name})")
    return CollectionType(name, tuple(params), False), rest


def is_multicell(cql_type: str) -> bool:
    t = parse(cql_type)
    return t is not None and not t.frozen


# -- values: validation and Cassandra's serialization -----------------------------------------

def validate(t, value, column: str):
    """The canonical Python value of a collection (or scalar) of type `t`; InvalidRequest if not one."""
    if not isinstance(t, CollectionType):
        return cql_types.validate(t, value, column)
    if t.name == "map":
        if not isinstance(value, dict):
            raise InvalidRequest(f"column '{column}' is {t}: expected a dict, got {type(value).__name__}")
        return {_element(t.params[0], k, column): _element(t.params[1], v, column) for k, v in value.items()}
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidRequest(f"column '{column}' is {t}: expected a {t.name}, got {type(value).__name__}")
    items = [_element(t.params[0], v, column) for v in value]
    return items if t.name == "list" else frozenset(items)


def _element(t, value, column: str):
    if value is None:
        raise InvalidRequest(f"null is not supported inside collections (column '{column}')")
    return hashable(validate(t, value, column))


def hashable(value):
    """Nested frozen collections as set elements or map keys: lists -> tuples, dicts -> item tuples."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((hashable(k), hashable(v)) for k, v in value.items())
    return value


def _sorted(t, items):
    return sorted(items, key=lambda v: encode_ordered(t, v))


def serialize(t, value) -> bytes:
    """Cassandra's bytes of an already validated value (sets and maps in element order)."""
    if not isinstance(t, CollectionType):
        return cql_types.serialize(t, value)
    if t.name == "map":
        kt, vt = t.params
        items = value.items() if isinstance(value, dict) else value
        keys = _sorted(kt, [k for k, _ in items])
        pairs = dict(items)
        return I32.pack(len(keys)) + b"".join(_sized(serialize(kt, _thaw(kt, k))) +
                                              _sized(serialize(vt, _thaw(vt, pairs[k]))) for k in keys)
    et = t.params[0]
    items = list(value) if t.name == "list" else _sorted(et, value)
    return I32.pack(len(items)) + b"".join(_sized(serialize(et, _thaw(et, v))) for v in items)


def _thaw(t, value):
    """A hashable element back to the form serialize expects (tuples of a frozen map -> dict)."""
    if isinstance(t, CollectionType) and t.name == "map" and isinstance(value, tuple):
        return dict(value)
    return value


def _sized(raw: bytes) -> bytes:
    return I32.pack(len(raw)) + raw


def deserialize(t, data: bytes):
    if not isinstance(t, CollectionType):
        return cql_types.deserialize(t, data)
    value, pos = _deserialize_at(t, data, 0)
    if pos != len(data):
        raise InvalidRequest(f"{len(data) - pos} trailing bytes after a {t} value")
    return value


def _deserialize_at(t: CollectionType, data: bytes, pos: int):
    n = I32.unpack_from(data, pos)[0]
    pos += 4
    items = []
    for _ in range(n * (2 if t.name == "map" else 1)):
        size = I32.unpack_from(data, pos)[0]
        pos += 4
        items.append(data[pos:pos + size])
        pos += size
    if t.name == "map":
        kt, vt = t.params
        return {hashable(deserialize(kt, items[i])): deserialize(vt, items[i + 1])
                for i in range(0, len(items), 2)}, pos
    values = [deserialize(t.params[0], raw) for raw in items]
    return (values if t.name == "list" else frozenset(hashable(v) for v in values)), pos


# -- the order-preserving codec (frozen collections in clustering keys, element paths) --------

def encode_ordered(t, value) -> bytes:
    if not isinstance(t, CollectionType):
        return cql_types.encode_ordered(t, value)
    if t.name == "map":
        kt, vt = t.params
        pairs = value.items() if isinstance(value, dict) else value
        parts = sorted(b"\x01" + encode_ordered(kt, k) + encode_ordered(vt, _thaw(vt, v)) for k, v in pairs)
        return b"".join(parts) + b"\x00"
    et = t.params[0]
    parts = [b"\x01" + encode_ordered(et, _thaw(et, v)) for v in value]
    if t.name == "set":
        parts.sort()
    return b"".join(parts) + b"\x00"


def decode_ordered(t, buf: bytes, pos: int):
    if not isinstance(t, CollectionType):
        return cql_types.decode_ordered(t, buf, pos)
    items = []
    while buf[pos] == 1:
        if t.name == "map":
            k, pos = decode_ordered(t.params[0], buf, pos + 1)
            v, pos = decode_ordered(t.params[1], buf, pos)
            items.append((hashable(k), v))
        else:
            v, pos = decode_ordered(t.params[0], buf, pos + 1)
            items.append(v)
    pos += 1
    if t.name == "map":
        return dict(items), pos
    return (items if t.name == "list" else frozenset(hashable(v) for v in items)), pos


def ordered_length(t, buf: bytes, pos: int, descending: bool) -> int:
    """Length of one encoded component at `pos` (DESC components are decoded from a copy)."""
    if not isinstance(t, CollectionType):
        return cql_types.component_length(t, buf, pos, descending)
    part = buf[pos:]
    if descending:
        part = cql_types.invert(part)
    return decode_ordered(t, part, 0)[1]


# -- cells of a multi-cell collection ------------------------------------------------------------

def list_path(ts: int, seq: int, prepend: bool = False) -> bytes:
    """A list element's path: u64 (time + 2^63) | u32 seq | u32 0, time = ts for an append and
    -ts for a prepend, so every prepended element sorts before every appended one and a later
    prepend before an earlier one (Cassandra's PrecisionTime mirrors around 2010 to the same end)."""
    time = -ts if prepend else ts
    return U64.pack(time + _BIAS) + U32.pack(seq) + b"\x00\x00\x00\x00"


def element_cells(t: CollectionType, value, ts: int, live) -> list[tuple[bytes, tuple]]:
    """(path, cell) for each element of a validated value; `live(data)` makes the cell."""
    if t.name == "list":
        return [(list_path(ts, i), live(serialize(t.params[0], v))) for i, v in enumerate(value)]
    if t.name == "set":
        return [(encode_ordered(t.params[0], v), live(b"")) for v in value]
    kt, vt = t.params
    return [(encode_ordered(kt, k), live(serialize(vt, _thaw(vt, v)))) for k, v in value.items()]


def op_cells(t: CollectionType, op: CollectionOp, column: str, ts: int, live, dead) -> list[tuple[bytes, tuple]]:
    """(path, cell) pairs an operation writes (no collection tombstone: it keeps other elements)."""
    kind = op.kind
    if kind in ("append", "prepend"):
        if t.name != "list":
            raise InvalidRequest(f"column '{column}' is {t}: {kind} applies to lists")
        items = validate(t, op.value, column)
        et = t.params[0]
        return [(list_path(ts, i, kind == "prepend"), live(serialize(et, v))) for i, v in enumerate(items)]
    if kind == "add":
        if t.name == "list":
            raise InvalidRequest(f"column '{column}' is {t}: add applies to sets and maps")
        return element_cells(t, validate(t, op.value, column), ts, live)
    if kind == "remove":
        if t.name == "list":
            raise InvalidRequest(f"column '{column}' is {t}: removing list values needs the list read first")
        kt = t.params[0]
        return [(encode_ordered(kt, _element(kt, k, column)), dead()) for k in op.value]
    if kind == "delete_paths":
        if t.name != "list" or any(type(p) is not bytes or len(p) != 16 for p in op.value):
            raise InvalidRequest(f"column '{column}' is {t}: {kind} needs list element paths")
        return [(p, dead()) for p in op.value]
    if kind == "put":
        if t.name != "list" or len(op.path) != 16:
            raise InvalidRequest(f"column '{column}' is {t}: {kind} needs a list element's path")
        return [(op.path, live(serialize(t.params[0], _element(t.params[0], op.value, column))))]
    raise InvalidRequest(f"unknown collection operation {kind!r}")


def assemble(t: CollectionType, cells: list[tuple[bytes, bytes]], with_paths: bool = False):
    """The Python value of a multi-cell collection from its live (path, value) pairs in path order;
    None when there are none. with_paths: a list's [(path, value), ...] instead (for l[i] = v)."""
    if not cells:
        return None
    if t.name == "list":
        et = t.params[0]
        if with_paths:
            return [(p, deserialize(et, v)) for p, v in cells]
        return [deserialize(et, v) for _, v in cells]
    kt = t.params[0]
    if t.name == "set":
        return frozenset(decode_ordered(kt, p, 0)[0] for p, _ in cells)
    vt = t.params[1]
    return {hashable(decode_ordered(kt, p, 0)[0]): deserialize(vt, v) for p, v in cells}
