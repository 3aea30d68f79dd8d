"""CQL literals to Python values of a column's type. Pure.

`convert(term, cql_type, receiver)` turns an ast Constant / Null / collection literal into the
Python form ring.cql.types.serialize and engine.cql_types accept (int, float, Decimal, str,
bytes, bool, uuid.UUID, timestamp as int milliseconds, datetime.date, time as int nanoseconds,
ipaddress objects, list / frozenset / dict / tuple). A literal of the wrong kind raises
InvalidRequest in Cassandra's words: `Invalid STRING constant (abc) for "k" of type int`.
Bind markers are not literals: prepare.py keeps them as positions.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import re
import uuid

from engine import duration
from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.types import CqlType, hashable, serialize

_INTEGERS = ("int", "bigint", "varint", "smallint", "tinyint", "counter")
_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?)?\s*(Z|[+-]\d\d:?\d\d)?\Z")
_TIME = re.compile(r"(\d\d?):(\d\d):(\d\d)(?:\.(\d{1,9}))?\Z")


def convert(term, t: CqlType, receiver: str):
    """The Python value of a literal for `receiver` (a column name or bind name) of type `t`."""
    if isinstance(term, ast.Null):
        return None
    if isinstance(term, ast.Constant):
        value = _constant(term, t, receiver)
        serialize(t, value)                     # range checks (smallint, tinyint, int ...), the wire's rules
        return value
    name = t.name
    if isinstance(term, ast.ListLiteral) and name == "list":
        return [_element(x, t.params[0], receiver) for x in term.items]
    if isinstance(term, ast.SetLiteral) and name == "set":
        return frozenset(_element(x, t.params[0], receiver) for x in term.items)
    if isinstance(term, ast.MapLiteral) and name in ("map", "set") and (name == "map" or not term.entries):
        if name == "set":
            return frozenset()
        return {_element(k, t.params[0], receiver): _element(v, t.params[1], receiver) for k, v in term.entries}
    if isinstance(term, ast.TupleLiteral) and name == "tuple":
        if len(term.items) > len(t.params):
            raise InvalidRequest(f"Invalid tuple literal for {receiver}: too many elements. Type {t} expects "
                                 f"{len(t.params)} but got {len(term.items)}")
        return tuple(convert(x, p, receiver) for x, p in zip(term.items, t.params)) + \
            (None,) * (len(t.params) - len(term.items))
    if isinstance(term, ast.FunctionCall):
        raise InvalidRequest(f"Unknown function {term.name}(): functions in values are not supported yet")
    raise InvalidRequest(f"Invalid {_describe(term)} literal for {receiver} of type {t}")


def _element(term, t: CqlType, receiver: str):
    if isinstance(term, ast.Null):
        raise InvalidRequest(f"null is not supported inside collections ({receiver})")
    if isinstance(term, ast.BindMarker):
        raise InvalidRequest(f"bind markers inside collection literals are not supported yet ({receiver})")
    value = convert(term, t, receiver)
    if isinstance(value, (list, dict)):
        return hashable(value)
    return value


def _describe(term) -> str:
    return {ast.ListLiteral: "list", ast.SetLiteral: "set", ast.MapLiteral: "map",
            ast.TupleLiteral: "tuple"}.get(type(term), type(term).__name__)


def _constant(c: ast.Constant, t: CqlType, receiver: str):
    kind, text, name = c.kind, c.text, t.name

    def bad():
        return InvalidRequest(f"Invalid {kind.upper()} constant ({text}) for \"{receiver}\" of type {t}")

    try:
        if name in _INTEGERS:
            if kind != "integer":
                raise bad()
            return int(text)
        if name in ("float", "double"):
            if kind not in ("integer", "float"):
                raise bad()
            return float(text.replace("Infinity", "inf"))
        if name == "decimal":
            if kind not in ("integer", "float") or "N" in text or "I" in text:
                raise bad()
            return decimal.Decimal(text)
        if name in ("text", "ascii"):
            if kind != "string":
                raise bad()
            return text
        if name == "blob":
            if kind != "hex" or len(text) % 2:
                raise bad()
            return bytes.fromhex(text)
        if name == "boolean":
            if kind != "boolean":
                raise bad()
            return text == "true"
        if name in ("uuid", "timeuuid"):
            if kind not in ("uuid", "string"):
                raise bad()
            value = uuid.UUID(text)
            if name == "timeuuid" and value.version != 1:
                raise InvalidRequest(f"Invalid UUID constant ({text}) for \"{receiver}\" of type timeuuid: "
                                     "not a version 1 (time-based) UUID")
            return value
        if name == "timestamp":
            return _timestamp(kind, text, bad)
        if name == "date":
            if kind == "integer":
                return int(text) - (1 << 31)
            if kind != "string":
                raise bad()
            return _dt.date.fromisoformat(text)
        if name == "time":
            if kind == "integer":
                return int(text)
            m = _TIME.match(text) if kind == "string" else None
            if m is None:
                raise bad()
            h, mi, s, frac = m.groups()
            return ((int(h) * 60 + int(mi)) * 60 + int(s)) * 10**9 + int((frac or "0").ljust(9, "0"))
        if name == "inet":
            if kind != "string":
                raise bad()
            return ipaddress.ip_address(text)
        if name == "duration":
            if kind not in ("duration", "string") and not (kind == "integer" and text.lstrip("-") == "0"):
                raise bad()
            return duration.parse(text if kind != "integer" else "0s")
    except (ValueError, decimal.InvalidOperation):
        raise bad()
    raise bad()


def _timestamp(kind: str, text: str, bad) -> int:
    """Milliseconds since the epoch, from an integer or an ISO-8601-like string (UTC unless a zone is given)."""
    if kind == "integer":
        return int(text)
    m = _TIMESTAMP.match(text) if kind == "string" else None
    if m is None:
        raise bad()
    y, mo, d, h, mi, s, ms, zone = m.groups()
    tz = _dt.timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    when = _dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                        int((ms or "0").ljust(3, "0")) * 1000, tzinfo=tz)
    return (when - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)) // _dt.timedelta(milliseconds=1)
