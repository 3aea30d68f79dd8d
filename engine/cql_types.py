"""CQL types: validation, Cassandra's value serialization, and the order-preserving clustering codec.

Two encodings per type:
* `serialize` / `deserialize`: Cassandra's own bytes for a value (partition keys and cell
  values use these, so tokens match Cassandra's);
* `encode_ordered` / `decode_ordered`: a prefix-free encoding whose unsigned byte order equals
  the type's CQL order, so a clustering key is one `bytes` and every comparison is a plain bytes
  comparison. DESC inverts every byte of a component. Layouts: docs/format.md#clustering-keys.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import uuid

from engine import duration
from engine.encoding import F32, F64, I32, I64, U32, U64
from engine.errors import InvalidRequest

TYPES = (
    "int", "bigint", "varint", "float", "double", "decimal", "text", "ascii", "blob",
    "boolean", "timestamp", "uuid", "timeuuid", "smallint", "tinyint", "date", "time", "inet",
    "duration",                                     # engine/duration.py
)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_DATE_CENTER = 1 << 31                     # date on the wire: u32 days with the epoch at 2^31
NANOS_PER_DAY = 86_400 * 10**9
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1),
              "smallint": (-(2**15), 2**15 - 1), "tinyint": (-128, 127)}


def validate(cql_type: str, value, column: str):
    """Return the value in canonical Python form or raise InvalidRequest naming the column."""
    def bad(expected: str):
        return InvalidRequest(
            f"column '{column}' is {cql_type}: expected {expected}, got {type(value).__name__} {value!r:.60}"
        )
    if cql_type in ("int", "bigint", "varint", "smallint", "tinyint"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
        lo_hi = _INT_RANGE.get(cql_type)
        if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
            raise InvalidRequest(f"column '{column}' is {cql_type}: {value} is out of range {lo_hi}")
        return value
    if cql_type in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if cql_type == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            raise bad("a decimal.Decimal or an integer")
        return decimal.Decimal(value)
    if cql_type in ("text", "ascii"):
        if not isinstance(value, str):
            raise bad("a str")
        if cql_type == "ascii" and not value.isascii():
            raise InvalidRequest(f"column '{column}' is ascii: {value!r:.60} has non-ASCII characters")
        return value
    if cql_type == "blob":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise bad("bytes")
        return bytes(value)
    if cql_type == "boolean":
        if not isinstance(value, bool):
            raise bad("a bool")
        return value
    if cql_type == "timestamp":
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=_dt.timezone.utc)
            return (value - _EPOCH) // _dt.timedelta(milliseconds=1)
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # milliseconds since the epoch
        raise bad("a datetime or integer milliseconds since the epoch")
    if cql_type in ("uuid", "timeuuid"):
        if not isinstance(value, uuid.UUID):
            raise bad("a uuid.UUID")
        if cql_type == "timeuuid" and value.version != 1:
            raise InvalidRequest(f"column '{column}' is timeuuid: {value} is not a version 1 UUID")
        return value
    if cql_type == "duration":
        return duration.validate(value, column)
    if cql_type == "date":   # canonical: int days since 1970-01-01
        days = (value - _EPOCH_DATE).days if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime) \
            else value
        if isinstance(days, bool) or not isinstance(days, int):
            raise bad("a datetime.date or integer days since the epoch")
        if not -_DATE_CENTER <= days < _DATE_CENTER:
            raise InvalidRequest(f"column '{column}' is date: {days} days is out of range")
        return days
    if cql_type == "time":   # canonical: int nanoseconds since midnight
        if isinstance(value, _dt.time):
            value = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**9 + value.microsecond * 1000
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a datetime.time or integer nanoseconds since midnight")
        if not 0 <= value < NANOS_PER_DAY:
            raise InvalidRequest(f"column '{column}' is time: {value} is not in [0, 86400e9) nanoseconds")
        return value
    if cql_type == "inet":
        if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return value
        if isinstance(value, str):
            try:
                return ipaddress.ip_address(value)
            except ValueError:
                raise InvalidRequest(f"column '{column}' is inet: {value!r:.60} is not an IPv4 or IPv6 address")
        raise bad("an ipaddress address or its text")
    raise InvalidRequest(f"column '{column}' has unknown type {cql_type!r}")


# -- Cassandra serialization ------------------------------------------------------------------

def _varint_bytes(n: int) -> bytes:
    length = max(1, (n + (n < 0)).bit_length() // 8 + 1)
    return n.to_bytes(length, "big", signed=True)


def serialize(cql_type: str, value) -> bytes:
    """Cassandra's serialization of an already validated value."""
    if cql_type == "int":
        return I32.pack(value)
    if cql_type in ("bigint", "timestamp"):
        return I64.pack(value)
    if cql_type == "varint":
        return _varint_bytes(value)
    if cql_type == "text" or cql_type == "ascii":
        return value.encode("utf-8")
    if cql_type == "blob":
        return value
    if cql_type == "double":
        return F64.pack(value)
    if cql_type == "float":
        return F32.pack(value)
    if cql_type == "boolean":
        return b"\x01" if value else b"\x00"
    if cql_type in ("uuid", "timeuuid"):
        return value.bytes
    if cql_type in ("smallint", "tinyint"):
        return value.to_bytes(2 if cql_type == "smallint" else 1, "big", signed=True)
    if cql_type == "date":
        return U32.pack(value + _DATE_CENTER)
    if cql_type == "time":
        return I64.pack(value)
    if cql_type == "inet":
        return value.packed
    if cql_type == "decimal":
        sign, digits, exponent = value.as_tuple()
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return I32.pack(-exponent) + _varint_bytes(unscaled)
    if cql_type == "duration":
        return duration.serialize(value)
    raise AssertionError(cql_type)


def deserialize(cql_type: str, data: bytes):
    """Inverse of serialize."""
    if cql_type == "int":
        return I32.unpack(data)[0]
    if cql_type == "bigint":
        return I64.unpack(data)[0]
    if cql_type == "timestamp":
        return _EPOCH + _dt.timedelta(milliseconds=I64.unpack(data)[0])
    if cql_type == "varint":
        return int.from_bytes(data, "big", signed=True)
    if cql_type in ("text", "ascii"):
        return data.decode("utf-8")
    if cql_type == "blob":
        return bytes(data)
    if cql_type == "double":
        return F64.unpack(data)[0]
    if cql_type == "float":
        return F32.unpack(data)[0]
    if cql_type == "boolean":
        return data != b"\x00"
    if cql_type in ("uuid", "timeuuid"):
        return uuid.UUID(bytes=bytes(data))
    if cql_type == "decimal":
        scale = I32.unpack(data[:4])[0]
        return decimal.Decimal(int.from_bytes(data[4:], "big", signed=True)).scaleb(-scale)
    if cql_type == "duration":
        return duration.deserialize(data)
    if cql_type in ("smallint", "tinyint"):
        return int.from_bytes(data, "big", signed=True)
    if cql_type == "date":
        return date_of(U32.unpack(data)[0] - _DATE_CENTER)
    if cql_type == "time":
        return I64.unpack(data)[0]
    if cql_type == "inet":
        return ipaddress.ip_address(bytes(data))
    raise AssertionError(cql_type)


def date_of(days: int):
    """datetime.date of days since the epoch; an int when Python's dates cannot hold it."""
    try:
        return _EPOCH_DATE + _dt.timedelta(days=days)
    except OverflowError:
        return days


def serialize_partition_key(types: list[str], values: list) -> bytes:
    """One component: its bytes. Composite: per component u16 length, bytes, 0x00 (Cassandra)."""
    if len(types) == 1:
        return serialize(types[0], values[0])
    out = bytearray()
    for cql_type, value in zip(types, values):
        part = serialize(cql_type, value)
        if len(part) > 0xFFFF:
            raise InvalidRequest(f"partition key component of {len(part)} bytes exceeds 65535")
        out += len(part).to_bytes(2, "big") + part + b"\x00"
    return bytes(out)


def deserialize_partition_key(types: list[str], key: bytes) -> list:
    if len(types) == 1:
        return [deserialize(types[0], key)]
    values, pos = [], 0
    for cql_type in types:
        length = int.from_bytes(key[pos : pos + 2], "big")
        values.append(deserialize(cql_type, key[pos + 2 : pos + 2 + length]))
        pos += 3 + length
    return values


# -- Order-preserving clustering codec ---------------------------------------------------------

_SIGN32, _SIGN64 = 1 << 31, 1 << 63
_FIXED = {"int": 4, "bigint": 8, "timestamp": 8, "float": 4, "double": 8, "boolean": 1,
          "uuid": 17, "timeuuid": 16, "smallint": 2, "tinyint": 1, "date": 4, "time": 8}
_ESCAPED = ("text", "ascii", "blob", "inet")   # variable length: 0x00 escaped, 00 00 terminated


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _float_key(bits: int, sign: int, mask: int) -> int:
    return (bits ^ mask) if bits & sign else (bits | sign)


def _time_order(u: uuid.UUID) -> bytes:
    b = u.bytes  # time_low(4) time_mid(2) time_hi_and_version(2) rest(8)
    return b[6:8] + b[4:6] + b[0:4] + b[8:16]


def _time_unorder(b: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=b[4:8] + b[2:4] + b[0:2] + b[8:16])


def encode_ordered(cql_type: str, value) -> bytes:
    """Prefix-free bytes whose unsigned order is the CQL order of `value` (ascending)."""
    if cql_type == "int":
        return U32.pack((value + _SIGN32) & 0xFFFFFFFF)
    if cql_type in ("bigint", "timestamp"):
        return U64.pack((value + _SIGN64) & 0xFFFFFFFFFFFFFFFF)
    if cql_type in ("text", "ascii"):
        return _escape(value.encode("utf-8"))
    if cql_type == "blob":
        return _escape(value)
    if cql_type == "boolean":
        return b"\x01" if value else b"\x00"
    if cql_type == "smallint":
        return ((value + (1 << 15)) & 0xFFFF).to_bytes(2, "big")
    if cql_type == "tinyint":
        return bytes([(value + 128) & 0xFF])
    if cql_type == "date":
        return U32.pack(value + _DATE_CENTER)        # Cassandra's bytes already sort as dates
    if cql_type == "time":
        return U64.pack(value + _SIGN64)
    if cql_type == "inet":
        return _escape(value.packed)                 # Cassandra orders inet by its unsigned bytes
    if cql_type == "double":
        return U64.pack(_float_key(U64.unpack(F64.pack(value))[0], _SIGN64, 0xFFFFFFFFFFFFFFFF))
    if cql_type == "float":
        return U32.pack(_float_key(U32.unpack(F32.pack(value))[0], _SIGN32, 0xFFFFFFFF))
    if cql_type == "timeuuid":
        return _time_order(value)
    if cql_type == "uuid":
        return bytes([value.version or 0]) + (_time_order(value) if value.version == 1 else value.bytes)
    if cql_type == "varint":
        if value >= 0:
            mag = value.to_bytes((value.bit_length() + 7) // 8, "big")
            return bytes([0x80 + len(mag)]) + mag
        m = -value
        length = (m.bit_length() + 7) // 8
        return bytes([0x7F - length]) + ((1 << (8 * length)) - m).to_bytes(length, "big")
    raise InvalidRequest(f"type {cql_type} cannot be a clustering column")


def decode_ordered(cql_type: str, buf: bytes, pos: int) -> tuple[object, int]:
    """Decode one ascending component at `pos`; returns (value, next position)."""
    width = _FIXED.get(cql_type)
    if width is not None:
        part = buf[pos : pos + width]
        end = pos + width
        if cql_type == "int":
            return (U32.unpack(part)[0] - _SIGN32), end
        if cql_type == "bigint":
            return (U64.unpack(part)[0] - _SIGN64), end
        if cql_type == "timestamp":
            return _EPOCH + _dt.timedelta(milliseconds=U64.unpack(part)[0] - _SIGN64), end
        if cql_type == "boolean":
            return part == b"\x01", end
        if cql_type == "double":
            k = U64.unpack(part)[0]
            bits = (k ^ _SIGN64) if k & _SIGN64 else (k ^ 0xFFFFFFFFFFFFFFFF)
            return F64.unpack(U64.pack(bits))[0], end
        if cql_type == "float":
            k = U32.unpack(part)[0]
            bits = (k ^ _SIGN32) if k & _SIGN32 else (k ^ 0xFFFFFFFF)
            return F32.unpack(U32.pack(bits))[0], end
        if cql_type == "timeuuid":
            return _time_unorder(part), end
        if cql_type == "uuid":
            return (_time_unorder(part[1:]) if part[0] == 1 else uuid.UUID(bytes=part[1:])), end
        if cql_type == "smallint":
            return int.from_bytes(part, "big") - (1 << 15), end
        if cql_type == "tinyint":
            return part[0] - 128, end
        if cql_type == "date":
            return date_of(U32.unpack(part)[0] - _DATE_CENTER), end
        if cql_type == "time":
            return U64.unpack(part)[0] - _SIGN64, end
    if cql_type in _ESCAPED:
        out = bytearray()
        while True:
            nul = buf.index(b"\x00", pos)
            out += buf[pos:nul]
            if buf[nul + 1] == 0:
                raw = bytes(out)
                if cql_type == "inet":
                    return ipaddress.ip_address(raw), nul + 2
                return (raw if cql_type == "blob" else raw.decode("utf-8")), nul + 2
            out.append(0)
            pos = nul + 2
    if cql_type == "varint":
        head = buf[pos]
        if head >= 0x80:
            length = head - 0x80
            return int.from_bytes(buf[pos + 1 : pos + 1 + length], "big"), pos + 1 + length
        length = 0x7F - head
        body = int.from_bytes(buf[pos + 1 : pos + 1 + length], "big")
        return -((1 << (8 * length)) - body), pos + 1 + length
    raise AssertionError(cql_type)


_INVERT = bytes(255 - i for i in range(256))


def invert(raw: bytes) -> bytes:
    """Byte-wise complement: turns an ascending encoding into a descending one and back."""
    return raw.translate(_INVERT)


def component_length(cql_type: str, buf: bytes, pos: int, descending: bool) -> int:
    """Length of the encoded component at `pos` (needed to decode DESC components)."""
    width = _FIXED.get(cql_type)
    if width is not None:
        return width
    if cql_type in _ESCAPED:
        nul, esc = (b"\xff", 0xFF) if descending else (b"\x00", 0x00)
        start = pos
        while True:
            i = buf.index(nul, pos)
            if buf[i + 1] == esc:
                return i + 2 - start
            pos = i + 2
    if cql_type == "varint":
        head = buf[pos] ^ (0xFF if descending else 0)
        return 1 + (head - 0x80 if head >= 0x80 else 0x7F - head)
    raise AssertionError(cql_type)

