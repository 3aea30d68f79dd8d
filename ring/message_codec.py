"""The wire codec of ring/messages.py: a message is the msgpack array `[type_id, field...]`.

Fields go in declaration order; type ids are on the wire: never renumber. `decode` rejects what is
not a well-formed message (an unknown type id, the wrong number of fields, a field of a type its
declaration does not allow) with an `InvalidRequest` naming the message and the field, so the node
never sees one. Client values that msgpack has no type for travel as ext types (1 uuid,
2 timestamp-ms, 3 decimal, 4 date, 5 inet); nothing is ever pickled. Framing (length, version,
checksum, size limit) is the runtime's job: docs/format.md (wire). `message(type_id)` declares a
message class (a frozen, slotted dataclass) and registers it here.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import uuid
from dataclasses import dataclass, fields

import msgpack

from engine.errors import InvalidRequest

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)


def _default(obj):
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(1, obj.bytes)
    if isinstance(obj, _dt.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_dt.timezone.utc)
        ms = (obj - _EPOCH) // _dt.timedelta(milliseconds=1)
        return msgpack.ExtType(2, ms.to_bytes(8, "big", signed=True))
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(3, str(obj).encode())
    if isinstance(obj, _dt.date):  # after datetime, its subclass
        return msgpack.ExtType(4, (obj - _EPOCH_DATE).days.to_bytes(4, "big", signed=True))
    if isinstance(obj, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return msgpack.ExtType(5, obj.packed)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _ext_hook(code: int, data: bytes):
    if code == 1 and len(data) == 16:
        return uuid.UUID(bytes=data)
    if code == 2 and len(data) == 8:
        return _EPOCH + _dt.timedelta(milliseconds=int.from_bytes(data, "big", signed=True))
    if code == 3:
        return decimal.Decimal(data.decode())
    if code == 4 and len(data) == 4:
        return _EPOCH_DATE + _dt.timedelta(days=int.from_bytes(data, "big", signed=True))
    if code == 5 and len(data) in (4, 16):
        return ipaddress.ip_address(data)
    raise InvalidRequest(f"unknown or malformed msgpack ext type {code} on the wire")


def packb(obj) -> bytes:
    # msgpack.packb builds a Packer per call: a shared one is not safe across threads (the store's
    # and the driver's threads also encode), and ring/ protocol code may not own thread state
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpackb(data: bytes):
    return msgpack.unpackb(data, ext_hook=_ext_hook, strict_map_key=False, raw=False)


_REGISTRY: dict[int, type] = {}


_FIELD_TYPES = {"int": int, "str": str, "bytes": bytes, "bool": bool, "list": list, "dict": dict,
                "None": type(None), "object": object}
_SHAPES: dict[type, tuple] = {}   # message class -> ((field name, accepted types), ...)
_NAMES: dict[type, tuple] = {}    # message class -> field names in declaration order (for encode)
# decode's fast path: per field, the exact types msgpack may hand back for it (None: any); a value
# of another type goes through `_check_shape`'s full rules, which decide. And a constructor that
# sets the slots directly (a frozen dataclass's __init__ goes through object.__setattr__).
_EXACT: dict[type, tuple] = {}
_BUILD: dict[type, object] = {}


def _builder(cls):
    """cls(*values) without the frozen dataclass's __init__: the same slots set, in a generated
    function. A message with a `__post_init__` (its own checks) keeps its __init__."""
    names = _NAMES[cls]
    if hasattr(cls, "__post_init__"):
        return cls
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    set{i}(self, v{i})\n" for i in range(len(names)))
    src = f"def build({args}):\n    self = new(cls)\n{body}    return self\n"
    env = {"new": object.__new__, "cls": cls, **{f"set{i}": getattr(cls, n).__set__ for i, n in enumerate(names)}}
    exec(src, env)  # noqa: S102 - generated from the class's own field names
    return env["build"]


def message(type_id: int):
    def register(cls):
        cls = dataclass(frozen=True, slots=True)(cls)
        assert type_id not in _REGISTRY, type_id
        cls.TYPE_ID = type_id
        _REGISTRY[type_id] = cls
        _SHAPES[cls] = tuple((f.name, tuple(_FIELD_TYPES[t.strip()] for t in f.type.split("|")))
                             for f in fields(cls))
        _NAMES[cls] = tuple(f.name for f in fields(cls))
        _EXACT[cls] = tuple(None if object in accepted else frozenset(accepted) for _, accepted in _SHAPES[cls])
        _BUILD[cls] = _builder(cls)
        return cls
    return register


def _check_shape(cls, values: list) -> None:
    """Each field has one of its declared types (a bool is not an int here): a message of the
    wrong shape is rejected at decode, before any handler sees it."""
    for value, (name, accepted) in zip(values, _SHAPES[cls]):
        if isinstance(value, bool) and bool not in accepted and object not in accepted:
            ok = False
        else:
            ok = isinstance(value, accepted)
        if not ok:
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in accepted)
            raise InvalidRequest(f"malformed {cls.__name__}: field {name} must be {wanted}, "
                                 f"got {type(value).__name__}")


def encode(msg) -> bytes:
    return packb([msg.TYPE_ID, *[getattr(msg, name) for name in _NAMES[type(msg)]]])


def astuple_shallow(msg) -> tuple:
    return tuple(getattr(msg, name) for name in _NAMES[type(msg)])


def decode(data: bytes):
    try:
        obj = unpackb(data)
    except (ValueError, TypeError, msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException) as e:
        raise InvalidRequest(f"malformed message: {e}") from None
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], int):
        raise InvalidRequest("malformed message: expected [type_id, field...]")
    cls = _REGISTRY.get(obj[0])
    if cls is None:
        raise InvalidRequest(f"unknown message type {obj[0]}")
    exact = _EXACT[cls]
    if len(obj) - 1 != len(exact):
        raise InvalidRequest(f"malformed {cls.__name__}: {len(obj) - 1} fields, expected {len(exact)}")
    values = obj[1:]
    for value, allowed in zip(values, exact):
        if allowed is not None and type(value) not in allowed:
            _check_shape(cls, values)   # the full rules: raise, or accept (a subclass of a declared type)
            break
    return _BUILD[cls](*values)
