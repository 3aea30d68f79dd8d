"""The CQL `duration` type: months, days and nanoseconds, each signed, all of one sign.

Serialization (Cassandra's DurationSerializer): three signed vints (zigzag, then Cassandra's
unsigned vint: the count of leading 1 bits of the first byte is the number of extra bytes,
big-endian), months then days then nanoseconds. A duration has no total order (a month is not a
fixed number of days), so it may not be in a primary key, a set or a map key, as in Cassandra.
Literals: `1y2mo3w4d5h6m7s8ms9us10ns` (any subset, in this order, `-` in front), and ISO 8601
`P1Y2M3DT4H5M6S` / `P2W` as strings. Python form: `Duration(months, days, nanoseconds)`.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from engine.errors import InvalidRequest

_INT64 = 1 << 63
_NANOS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}
_UNIT = re.compile(r"(\d+)(y|mo|w|d|h|ms|m|s|us|µs|ns)", re.IGNORECASE)
_ISO = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z")
_ISO_WEEKS = re.compile(r"P(\d+)W\Z")


class Duration(NamedTuple):
    months: int
    days: int
    nanoseconds: int


def validate(value, column: str) -> Duration:
    """A Duration from a Duration or anything with months / days / nanoseconds (cassandra.util.Duration)."""
    try:
        d = Duration(int(value.months), int(value.days), int(value.nanoseconds))
    except (AttributeError, TypeError, ValueError):
        raise InvalidRequest(f"column '{column}' is duration: expected a Duration(months, days, nanoseconds), "
                             f"got {type(value).__name__}") from None
    if not (all(x >= 0 for x in d) or all(x <= 0 for x in d)):
        raise InvalidRequest(f"column '{column}' is duration: months, days and nanoseconds must have the same sign")
    if not (-(2**31) <= d.months < 2**31 and -(2**31) <= d.days < 2**31 and -_INT64 <= d.nanoseconds < _INT64):
        raise InvalidRequest(f"column '{column}' is duration: {d} is out of range")
    return d


def parse(text: str) -> Duration:
    """A duration literal (unit form or ISO 8601) as a Duration; InvalidRequest if it is not one."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    months = days = nanos = 0
    iso = _ISO.match(body.upper()) if body[:1] in "pP" else None
    weeks = _ISO_WEEKS.match(body.upper()) if body[:1] in "pP" else None
    if weeks:
        days = 7 * int(weeks.group(1))
    elif iso and body[1:]:
        y, mo, d, h, mi, s = (int(g or 0) for g in iso.groups())
        months, days, nanos = 12 * y + mo, d, (h * 3600 + mi * 60 + s) * 10**9
    else:
        pos = 0
        for m in _UNIT.finditer(body):
            if m.start() != pos:
                break
            pos = m.end()
            n, unit = int(m.group(1)), m.group(2).lower()
            if unit == "y":
                months += 12 * n
            elif unit == "mo":
                months += n
            elif unit == "w":
                days += 7 * n
            elif unit == "d":
                days += n
            else:
                nanos += n * _NANOS[unit]
        if pos != len(body) or not body:
            raise InvalidRequest(f"Unable to convert '{text}' to a duration")
    return validate(Duration(sign * months, sign * days, sign * nanos), "duration")


def _vint(n: int) -> bytes:
    v = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF          # zigzag
    magnitude = 64 - (v | 1).bit_length()
    size = (639 - magnitude * 9) >> 6
    raw = bytearray(v.to_bytes(size, "big") if size < 9 else b"\x00" + v.to_bytes(8, "big"))
    raw[0] |= (0xFF << (9 - size)) & 0xFF
    return bytes(raw)


def serialize(d: Duration) -> bytes:
    return _vint(d.months) + _vint(d.days) + _vint(d.nanoseconds)


def deserialize(data: bytes) -> Duration:
    values, pos = [], 0
    try:
        for _ in range(3):
            first = data[pos]
            extra = 8 - (~first & 0xFF).bit_length() if first != 0xFF else 8
            v = first & (0xFF >> extra) if extra < 8 else 0
            for b in data[pos + 1:pos + 1 + extra]:
                v = (v << 8) | b
            if pos + 1 + extra > len(data):
                raise IndexError
            pos += 1 + extra
            values.append((v >> 1) ^ -(v & 1))
    except IndexError:
        raise InvalidRequest(f"malformed duration value: {len(data)} bytes") from None
    if pos != len(data):
        raise InvalidRequest(f"malformed duration value: {len(data) - pos} trailing bytes")
    return Duration(*values)


def to_string(d: Duration) -> str:
    """Cassandra's Duration.toString: `1y2mo3d4h5m6s7ms8us9ns`, units that are zero left out."""
    if d == (0, 0, 0):
        return "0s"
    sign = "-" if min(d) < 0 else ""
    months, days, nanos = (abs(x) for x in d)
    out = [sign]
    for n, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d")):
        if n:
            out.append(f"{n}{unit}")
    for unit in ("h", "m", "s", "ms", "us", "ns"):
        n, nanos = divmod(nanos, _NANOS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
