"""Property value serializers: the fixed encodings (by declared type) and the class registry; the
dynamic serializer (one type-tag byte + payload, object graphs) is dynamic_serializer.py.

Fixed encodings follow the original's native Cassandra ones (big-endian): boolean 1 byte, int 4,
long 8, float 4 (IEEE), double 8, bigint two's complement, decimal 4-byte scale + unscaled,
string UTF-8, uuid 16, bytes raw, datetime 8-byte epoch microseconds + 4-byte UTC offset.
Nothing is ever unpickled: a class must be registered (`register_class`) to be
written, and an unknown class name read back is an error, never a silent document.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import struct
import uuid
from typing import Protocol

from engine.errors import InvalidRequest

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NAIVE = -(2 ** 31)   # utc-offset field of a naive datetime
INT_RANGES = {"int": (-(2 ** 31), 2 ** 31 - 1), "long": (-(2 ** 63), 2 ** 63 - 1)}
FLOAT32_MAX = 3.4028234663852886e38


class SerializationError(InvalidRequest):
    """A value cannot be written or read back with its serializer. Nothing was applied."""


class PropertyValueSerializer(Protocol):
    def to_bytes(self, value) -> bytes: ...
    def from_bytes(self, data: bytes): ...


class ClassRegistry:
    """Classes that may be written and read back, by a stable name ("module.QualName")."""

    def __init__(self):
        self._by_name: dict[str, type] = {}
        self._names: dict[type, str] = {}

    def register(self, cls: type, name: str | None = None) -> type:
        if not dataclasses.is_dataclass(cls):
            raise SerializationError(f"{cls!r} is not a dataclass; only dataclasses can be registered")
        name = name or f"{cls.__module__}.{cls.__qualname__}"
        self._by_name[name] = cls
        self._names[cls] = name
        return cls

    def ensure(self, cls: type) -> str:
        """The name of dataclass `cls`, registering it under its default name if it is new."""
        if cls not in self._names:
            self.register(cls)
        return self._names[cls]

    def name_of(self, cls: type) -> str:
        try:
            return self._names[cls]
        except KeyError:
            raise SerializationError(f"class {cls.__module__}.{cls.__qualname__} is not registered; call "
                                     "persistency.register_class(cls) in every process that writes or "
                                     "reads it") from None

    def class_of(self, name: str) -> type:
        try:
            return self._by_name[name]
        except KeyError:
            raise SerializationError(f"class {name} is not registered in this process; import its module and "
                                     "call persistency.register_class(cls) before reading") from None


CLASSES = ClassRegistry()
register_class = CLASSES.register


def new_instance(cls: type, values: dict):
    """An instance of dataclass `cls` with every field None, then `values` set (no __init__)."""
    obj = object.__new__(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        object.__setattr__(obj, f.name, None)
    for k, v in values.items():
        if k not in names:
            raise SerializationError(f"{cls.__qualname__} has no field {k!r}")
        object.__setattr__(obj, k, v)
    return obj


# -- fixed, by declared type ---------------------------------------------------------------------

def _twos(n: int) -> bytes:
    return n.to_bytes(max(1, (n + (n < 0)).bit_length() // 8 + 1), "big", signed=True)


def _decimal_bytes(v: decimal.Decimal) -> bytes:
    if not v.is_finite():
        raise SerializationError(f"decimal {v} is not finite; only finite decimals can be stored")
    sign, digits, exponent = v.as_tuple()
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return struct.pack(">i", -exponent) + _twos(unscaled)


def _decimal_from(data: bytes) -> decimal.Decimal:
    scale = struct.unpack_from(">i", data)[0]
    sign, digits, _ = decimal.Decimal(int.from_bytes(data[4:], "big", signed=True)).as_tuple()
    return decimal.Decimal((sign, digits, -scale))   # exact: no context rounding


def _datetime_bytes(v: dt.datetime) -> bytes:
    offset = v.utcoffset()
    aware = v if offset is not None else v.replace(tzinfo=dt.UTC)
    micros = (aware - EPOCH) // dt.timedelta(microseconds=1)
    return struct.pack(">qi", micros, NAIVE if offset is None else int(offset.total_seconds()))


def _datetime_from(data: bytes) -> dt.datetime:
    micros, offset = struct.unpack(">qi", data)
    value = EPOCH + dt.timedelta(microseconds=micros)
    if offset == NAIVE:
        return value.replace(tzinfo=None)
    return value.astimezone(dt.timezone(dt.timedelta(seconds=offset)))


def _check(ok: bool, type_name: str, value, what: str) -> None:
    if not ok:
        raise SerializationError(f"a {type_name} property needs {what}, got {type(value).__name__} {value!r:.60}")


def encode_fixed(type_name: str, value) -> bytes:
    """The native encoding of `value` for a fixed property declared as `type_name`."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if type_name in INT_RANGES:
        lo, hi = INT_RANGES[type_name]
        _check(is_int, type_name, value, "an int")
        if not lo <= value <= hi:
            raise SerializationError(f"{value} is out of range for a {type_name} property [{lo}, {hi}]; "
                                     "declare it 'long' or 'bigint'")
        return value.to_bytes(4 if type_name == "int" else 8, "big", signed=True)
    if type_name in ("float", "double"):
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), type_name, value, "a number")
        if type_name == "float":
            if abs(value) > FLOAT32_MAX and abs(value) != float("inf"):
                raise SerializationError(f"{value} is out of range for a float (32-bit) property; declare it 'double'")
            return struct.pack(">f", value)
        return struct.pack(">d", value)
    if type_name == "boolean":
        _check(isinstance(value, bool), type_name, value, "a bool")
        return b"\x01" if value else b"\x00"
    if type_name == "string":
        _check(isinstance(value, str), type_name, value, "a str")
        return value.encode("utf-8", "surrogatepass")
    if type_name == "bytes":
        _check(isinstance(value, (bytes, bytearray, memoryview)), type_name, value, "bytes")
        return bytes(value)
    if type_name == "uuid":
        _check(isinstance(value, uuid.UUID), type_name, value, "a uuid.UUID")
        return value.bytes
    if type_name == "datetime":
        _check(isinstance(value, dt.datetime), type_name, value, "a datetime.datetime")
        return _datetime_bytes(value)
    if type_name == "decimal":
        _check(isinstance(value, decimal.Decimal), type_name, value, "a decimal.Decimal")
        return _decimal_bytes(value)
    if type_name == "bigint":
        _check(is_int, type_name, value, "an int")
        return _twos(value)
    raise AssertionError(f"not a native fixed type: {type_name}")


def decode_fixed(type_name: str, data: bytes):
    if type_name in INT_RANGES:
        return int.from_bytes(data, "big", signed=True)
    if type_name == "float":
        return struct.unpack(">f", data)[0]
    if type_name == "double":
        return struct.unpack(">d", data)[0]
    if type_name == "boolean":
        return data != b"\x00"
    if type_name == "string":
        return data.decode("utf-8", "surrogatepass")
    if type_name == "bytes":
        return bytes(data)
    if type_name == "uuid":
        return uuid.UUID(bytes=bytes(data))
    if type_name == "datetime":
        return _datetime_from(data)
    if type_name == "decimal":
        return _decimal_from(data)
    if type_name == "bigint":
        return int.from_bytes(data, "big", signed=True)
    raise AssertionError(f"not a native fixed type: {type_name}")
