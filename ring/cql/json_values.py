"""CQL values as JSON and back: SELECT JSON and INSERT JSON. Pure.

`to_json(t, value)` renders one value as Cassandra's toJson does: numbers and booleans as JSON
numbers and booleans; text, ascii, uuid, timeuuid, inet, date, time and duration as strings;
timestamps as `"2024-01-02 03:04:05.678Z"`; blobs as `"0x..."`; lists and sets as arrays; maps
as objects whose keys are strings (a non-text key is its own JSON rendering, as a string);
null as null. `row_to_json(specs, row)` makes the one `[json]` value of a SELECT JSON row.

`row_from_json(table, text, default_null)` is INSERT JSON: an object whose keys are column names
(a quoted key `"\"Name\""` keeps its case), each value accepted in the forms Cassandra's
fromJson accepts (a number or its string for numbers, a string for text and for most other
types, an array for lists and sets, an object for maps); columns not named are null (DEFAULT
NULL) or left alone (DEFAULT UNSET). Errors are InvalidRequest in Cassandra's words.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import json
import math

from engine import duration
from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.literal import convert
from ring.cql.types import CqlType, hashable, parse_type

_NUMBERS = ("int", "bigint", "varint", "smallint", "tinyint", "counter", "float", "double", "decimal")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _native(t: CqlType, value):
    """A value as the Python object json.dumps renders the way Cassandra does."""
    if value is None:
        return None
    name = t.name
    if name in ("list", "set"):
        items = list(value)
        if name == "set":
            try:
                items.sort()
            except TypeError:
                pass
        return [_native(t.params[0], v) for v in items]
    if name == "map":
        kt, vt = t.params
        return {_key(kt, k): _native(vt, v) for k, v in value.items()}
    if name in _NUMBERS or name == "boolean":
        return value
    if name == "timestamp":
        if isinstance(value, int):
            value = _EPOCH + _dt.timedelta(milliseconds=value)
        return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.") + \
            f"{value.microsecond // 1000:03d}Z"
    if name == "blob":
        return "0x" + bytes(value).hex()
    if name == "duration":
        return duration.to_string(value)
    if name == "time" and isinstance(value, int):
        seconds, nanos = divmod(value, 10**9)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{nanos:09d}"
    return str(value)


def _key(t: CqlType, k) -> str:
    """A map key as a JSON object key: text as it is, any other type its JSON text (Cassandra's
    MapType.toJSONString quotes the key's JSON, so a uuid key is "\"...\"")."""
    native = _native(t, _thaw(t, k))
    return native if t.name in ("text", "ascii") else _dumps(native)


def _thaw(t: CqlType, v):
    return dict(v) if t.name == "map" and isinstance(v, tuple) else v


def _dumps(obj) -> str:
    """JSON text as Cassandra writes it: `, ` and `: ` separators, decimals with their own digits,
    NaN and Infinity as bare words (Cassandra's Jackson output)."""
    if obj is None:
        return "null"
    if obj is True or obj is False:
        return "true" if obj else "false"
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, float):
        return ("NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")) if not math.isfinite(obj) \
            else repr(obj)
    if isinstance(obj, (int, str)):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, list):
        return "[" + ", ".join(map(_dumps, obj)) + "]"
    assert isinstance(obj, dict), obj
    return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + _dumps(v) for k, v in obj.items()) + "}"


def to_json(t: CqlType, value) -> str:
    return _dumps(_native(t, value))


def row_to_json(specs, row: list) -> str:
    """One SELECT JSON row: {"name": value, ...} in selection order (a cased name quoted, as Cassandra)."""
    parts = []
    for spec, value in zip(specs, row):
        name = spec.name if spec.name == spec.name.lower() else '"' + spec.name + '"'
        parts.append(_dumps(name) + ": " + to_json(spec.type, value))
    return "{" + ", ".join(parts) + "}"


# -- INSERT JSON -----------------------------------------------------------------------------------

def row_from_json(table, text, default_null: bool) -> dict:
    """{column: Python value} of an INSERT JSON document (unnamed regular columns: None or left out)."""
    if not isinstance(text, str):
        raise InvalidRequest("Got null for INSERT JSON values" if text is None else "INSERT JSON needs a string")
    try:
        doc = json.loads(text, parse_float=decimal.Decimal)
    except ValueError as e:
        raise InvalidRequest(f"Could not decode JSON string as a map: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest(f"Could not decode JSON string as a map: {text[:60]}")
    row = {}
    for key, value in doc.items():
        name = key[1:-1] if len(key) > 1 and key.startswith('"') and key.endswith('"') else key.lower()
        col = table.by_name.get(name)
        if col is None:
            raise InvalidRequest(f"JSON values map contains unrecognized column: {key}")
        row[name] = from_json(parse_type(col.cql_type), value, name)
    if default_null:
        for col in table.regular:
            row.setdefault(col.name, None)
    return row


def from_json(t: CqlType, value, receiver: str):
    """A parsed JSON value as the Python value of type `t` (Cassandra's fromJson forms)."""
    if value is None:
        return None
    name = t.name
    try:
        if name in ("list", "set"):
            if not isinstance(value, list):
                raise _bad(t, value)
            items = [_element(t.params[0], v, receiver) for v in value]
            return items if name == "list" else frozenset(items)
        if name == "map":
            if not isinstance(value, dict):
                raise _bad(t, value)
            kt = t.params[0]
            return {_element(kt, _key_from_json(kt, k), receiver): from_json(t.params[1], v, receiver)
                    for k, v in value.items()}
        if name in ("int", "bigint", "varint", "smallint", "tinyint", "counter"):
            if isinstance(value, bool):
                raise _bad(t, value)
            if isinstance(value, str):
                return convert(ast.Constant("integer", value.strip()), t, receiver)
            if isinstance(value, decimal.Decimal) and value == int(value):
                value = int(value)
            if not isinstance(value, int):
                raise _bad(t, value)
            return convert(ast.Constant("integer", str(value)), t, receiver)
        if name in ("float", "double", "decimal"):
            if isinstance(value, bool):
                raise _bad(t, value)
            if isinstance(value, (int, decimal.Decimal)):
                return decimal.Decimal(value) if name == "decimal" else float(value)
            return convert(ast.Constant("float", str(value)), t, receiver)
        if name == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise _bad(t, value)
            return value
        if name == "blob":
            if not isinstance(value, str) or not value.startswith("0x"):
                raise InvalidRequest(f"Value '{value}' is not a valid blob representation: String representation"
                                     " of blob is missing 0x prefix")
            return bytes.fromhex(value[2:])
        if name == "timestamp" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if name == "duration":
            return duration.parse(str(value))
        if name == "inet":
            return ipaddress.ip_address(str(value))
        if name in ("uuid", "timeuuid") and isinstance(value, str):
            return convert(ast.Constant("uuid", value.lower()), t, receiver)
        if not isinstance(value, str):
            raise _bad(t, value)
        return convert(ast.Constant("string", value), t, receiver)
    except (ValueError, TypeError, decimal.InvalidOperation):
        raise _bad(t, value) from None
    except InvalidRequest as e:
        raise InvalidRequest(f"Error decoding JSON value for {receiver}: {e}") from None


def _key_from_json(t: CqlType, key: str):
    """A map key: a string; for non-text key types, the key's own JSON text."""
    if t.name in ("text", "ascii"):
        return key
    try:
        return json.loads(key, parse_float=decimal.Decimal)
    except ValueError:
        return key


def _element(t: CqlType, v, receiver: str):
    if v is None:
        raise InvalidRequest(f"null is not supported inside collections ({receiver})")
    return hashable(from_json(t, v, receiver))


def _bad(t: CqlType, value) -> InvalidRequest:
    return InvalidRequest(f"Expected a {t} value for JSON, but got a {type(value).__name__}: {value!r:.60}")


__all__ = ["from_json", "row_from_json", "row_to_json", "to_json"]
