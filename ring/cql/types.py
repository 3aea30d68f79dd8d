"""CQL types on the wire: [option] type ids, CQL type strings, and value (de)serialization.

A `CqlType` is a name plus parameters (`list<int>` is CqlType("list", (INT,))); `frozen` is kept
for the type string only, since the native protocol does not mark frozenness. Values of the
engine's types (smallint, tinyint, date, time and inet among them) go through
`engine.cql_types` (one serialization for cells, keys and the wire); this module adds counter
and list / set / map / tuple.

Python forms: date <-> datetime.date (days outside its range stay an int of days since the
epoch), time <-> int nanoseconds since midnight (datetime.time accepted), inet <-> ipaddress
objects (str accepted), timestamp -> aware UTC datetime. An empty value decodes to None for
types whose empty form is not a value (numbers, uuids, ...), as the drivers do. Malformed values
raise `InvalidRequest` naming the type, as Cassandra's MarshalException does.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import cql_types
from engine.encoding import I32
from engine.errors import InvalidRequest
from ring.cql.notation import ProtocolException, Reader, encode_short, encode_string

# [option] ids. On the wire: never renumber.
OPTION_IDS = {
    "custom": 0x0000, "ascii": 0x0001, "bigint": 0x0002, "blob": 0x0003, "boolean": 0x0004,
    "counter": 0x0005, "decimal": 0x0006, "double": 0x0007, "float": 0x0008, "int": 0x0009,
    "timestamp": 0x000B, "uuid": 0x000C, "text": 0x000D, "varint": 0x000E, "timeuuid": 0x000F,
    "inet": 0x0010, "date": 0x0011, "time": 0x0012, "smallint": 0x0013, "tinyint": 0x0014,
    "duration": 0x0015, "list": 0x0020, "map": 0x0021, "set": 0x0022, "udt": 0x0030,
    "tuple": 0x0031,
}
_NAMES = {v: k for k, v in OPTION_IDS.items()}
_ALIASES = {"varchar": "text"}
_ARITY = {"list": 1, "set": 1, "map": 2}
_EMPTY_IS_VALUE = {"text", "ascii", "blob"}


@dataclass(frozen=True, slots=True)
class CqlType:
    name: str
    params: tuple["CqlType", ...] = ()
    frozen: bool = False
    custom_class: str = ""          # for name == "custom"

    def __str__(self) -> str:
        if self.name == "custom":
            return repr(self.custom_class)
        text = self.name if not self.params else f"{self.name}<{', '.join(map(str, self.params))}>"
        return f"frozen<{text}>" if self.frozen else text


def parse_type(text: str) -> CqlType:
    """A CQL type string (`int`, `varchar`, `frozen<map<text, list<int>>>`) as a CqlType."""
    cql_type, rest = _parse(text.replace(" ", "").lower(), text)
    if rest:
        raise InvalidRequest(f"unexpected {rest!r} after the type in {text!r}")
    return cql_type


def _parse(s: str, whole: str) -> tuple[CqlType, str]:
    i = 0
    while i < len(s) and (s[i].isalnum() or s[i] == "_"):
        i += 1
    name, rest = _ALIASES.get(s[:i], s[:i]), s[i:]
    if name == "frozen":
        if not rest.startswith("<"):
            raise InvalidRequest(f"frozen needs a parameter in {whole!r}")
        inner, rest = _parse(rest[1:], whole)
        if not rest.startswith(">"):
            raise InvalidRequest(f"missing '>' in {whole!r}")
        return CqlType(inner.name, inner.params, True, inner.custom_class), rest[1:]
    if name not in OPTION_IDS or name in ("custom", "udt"):
        raise InvalidRequest(f"unknown type {s[:i] or rest!r} in {whole!r}")
    params: list[CqlType] = []
    if rest.startswith("<"):
        rest = rest[1:]
        while True:
            inner, rest = _parse(rest, whole)
            params.append(inner)
            if rest.startswith(","):
                rest = rest[1:]
                continue
            if not rest.startswith(">"):
                raise InvalidRequest(f"missing '>' in {whole!r}")
            rest = rest[1:]
            break
    expected = _ARITY.get(name, len(params) if name == "tuple" else 0)
    if len(params) != expected or (name == "tuple" and not params):
        raise InvalidRequest(f"type {name} takes {expected} parameters, got {len(params)} in {whole!r}")
    return CqlType(name, tuple(params)), rest


# -- [option] ---------------------------------------------------------------------------------

def encode_option(t: CqlType) -> bytes:
    """The [option] for a type: u16 id, then the parameters' options (or the custom class name)."""
    out = encode_short(OPTION_IDS[t.name])
    if t.name == "custom":
        return out + encode_string(t.custom_class)
    if t.name == "tuple":
        out += encode_short(len(t.params))
    return out + b"".join(encode_option(p) for p in t.params)


def decode_option(reader: Reader, depth: int = 0) -> CqlType:
    if depth > 32:
        raise ProtocolException(f"type option nested deeper than 32 at offset {reader.pos}")
    code = reader.short()
    name = _NAMES.get(code)
    if name is None or name == "udt":
        raise ProtocolException(f"unsupported type option 0x{code:04x} at offset {reader.pos - 2}")
    if name == "custom":
        return CqlType("custom", custom_class=reader.string())
    count = reader.short() if name == "tuple" else _ARITY.get(name, 0)
    return CqlType(name, tuple(decode_option(reader, depth + 1) for _ in range(count)))


# -- values -----------------------------------------------------------------------------------

def serialize(t: CqlType, value) -> bytes:
    """Cassandra's bytes for `value` (never None: a null is the [value] length -1)."""
    name = t.name
    if name == "counter":
        return serialize(CqlType("bigint"), value)
    if name in ("list", "set"):
        if name == "set":
            value = _in_order(value)
        return I32.pack(len(value)) + b"".join(_element(t.params[0], v) for v in value)
    if name == "map":
        k, v = t.params
        return I32.pack(len(value)) + b"".join(_element(k, a) + _element(v, b) for a, b in value.items())
    if name == "tuple":
        if len(value) != len(t.params):
            raise InvalidRequest(f"{t} expects {len(t.params)} components, got {len(value)}")
        return b"".join(I32.pack(-1) if v is None else _element(p, v) for p, v in zip(t.params, value))
    if name not in cql_types.TYPES:
        raise InvalidRequest(f"values of type {t} are not supported")
    return cql_types.serialize(name, cql_types.validate(name, value, str(t)))


def _in_order(items):
    """A set's elements in their natural order (the order Cassandra sends; drivers keep it)."""
    try:
        return sorted(items)
    except TypeError:
        return list(items)


def _element(t: CqlType, value) -> bytes:
    if value is None:
        raise InvalidRequest(f"null is not allowed inside a collection of {t}")
    raw = serialize(t, value)
    return I32.pack(len(raw)) + raw


_FIXED_WIDTH = {"int": 4, "bigint": 8, "counter": 8, "timestamp": 8, "double": 8, "float": 4,
                "boolean": 1, "uuid": 16, "timeuuid": 16, "smallint": 2, "tinyint": 1,
                "date": 4, "time": 8}


def deserialize(t: CqlType, data: bytes | None):
    """Inverse of serialize; None for a null and for an empty value of a non-string type."""
    if data is None or (not data and t.name not in _EMPTY_IS_VALUE):
        return None
    name = t.name
    width = _FIXED_WIDTH.get(name)
    if width is not None and len(data) != width:
        raise InvalidRequest(f"expected {width} bytes for a {name} value, got {len(data)}")
    if name == "counter":
        return int.from_bytes(data, "big", signed=True)
    if name == "inet":
        if len(data) not in (4, 16):
            raise InvalidRequest(f"expected 4 or 16 bytes for an inet value, got {len(data)}")
    if name in ("list", "set", "map", "tuple"):
        return _deserialize_collection(t, Reader(data))
    if name == "decimal" and len(data) < 4:
        raise InvalidRequest(f"expected at least 4 bytes for a decimal value, got {len(data)}")
    if name not in cql_types.TYPES:
        raise InvalidRequest(f"values of type {t} are not supported")
    try:
        return cql_types.deserialize(name, data)
    except (UnicodeDecodeError, OverflowError) as e:
        raise InvalidRequest(f"malformed {name} value: {e}")


def _deserialize_collection(t: CqlType, r: Reader):
    try:
        if t.name == "tuple":
            out = tuple(deserialize(p, r.bytes()) if r.remaining() else None for p in t.params)
        else:
            n = r.int()
            if n < 0 or n > r.remaining() // 4:
                raise InvalidRequest(f"{t} value claims {n} elements in {r.remaining()} bytes")
            if t.name == "map":
                k, v = t.params
                out = {hashable(_item(k, r)): _item(v, r) for _ in range(n)}
            else:
                items = [_item(t.params[0], r) for _ in range(n)]
                out = items if t.name == "list" else _as_set(items)
        r.expect_end(f"{t} value")
        return out
    except ProtocolException as e:
        raise InvalidRequest(f"malformed {t} value: {e.message}")


def _item(t: CqlType, r: Reader):
    raw = r.bytes()
    if raw is None:
        raise InvalidRequest(f"null element inside a {t} collection")
    return deserialize(t, raw)


def hashable(value):
    """Frozen collections used as set elements or map keys: lists become tuples, maps item tuples."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((hashable(k), hashable(v)) for k, v in value.items())
    return value


def _as_set(items: list):
    return frozenset(hashable(v) for v in items)
