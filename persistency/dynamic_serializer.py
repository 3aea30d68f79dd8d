"""The dynamic property serializer: one type-tag byte + payload, keeping the exact Python type, for
any object graph (docs/format.md#space-property-values-persistency).

Tags are the original GigaSpaces ones where a Python type matches, plus containers, registered
dataclasses and SpaceDocuments. Version 2 of the encoding adds references (tag 0x98), so shared
and cyclic graphs round-trip with their identity: lists, dicts, sets, dataclass objects and
SpaceDocuments are numbered in the order their encoding starts (pre-order); a value met again is
written as a reference to its number. Version 1 bytes (no references) read unchanged. Tuples and
frozensets are values: a cycle through one cannot be rebuilt and is an error.

Invariants: nothing is ever unpickled; a class must be registered to be written, and an unknown
class name read back is an error, never a silent document; nesting is limited to MAX_DEPTH; every
refusal is a SerializationError naming the path inside the value (`[2].owner.tags{}`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import struct
import uuid

import msgpack

from persistency.document import SpaceDocument
from persistency.serializer import (
    CLASSES,
    ClassRegistry,
    SerializationError,
    decode_fixed,
    encode_fixed,
)

# on disk: never renumber
TAG_STR, TAG_BOOL, TAG_LONG, TAG_DOUBLE = 0x82, 0x83, 0x85, 0x87
TAG_UUID, TAG_DATETIME, TAG_BIGINT, TAG_DECIMAL, TAG_BYTES = 0x89, 0x8A, 0x8B, 0x8C, 0x8D
TAG_LIST, TAG_TUPLE, TAG_SET, TAG_FROZENSET, TAG_DICT = 0x90, 0x91, 0x92, 0x93, 0x94
TAG_OBJECT, TAG_DOCUMENT, TAG_NONE, TAG_REF = 0x95, 0x96, 0x97, 0x98
_SEQUENCES = {list: TAG_LIST, tuple: TAG_TUPLE, set: TAG_SET, frozenset: TAG_FROZENSET}
_SEQUENCE_TYPES = {tag: t for t, tag in _SEQUENCES.items()}
_NATIVE = {TAG_STR: "string", TAG_DOUBLE: "double", TAG_UUID: "uuid", TAG_DATETIME: "datetime",
           TAG_BIGINT: "bigint", TAG_DECIMAL: "decimal"}
MAX_DEPTH = 200   # nesting levels in one value (a deeper chain: an error, never a RecursionError)


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _at(path: str) -> str:
    return f" (at {path})" if path else ""


class _Encoder:
    """One value's encoding: the numbers of the referenceable objects met so far."""

    def __init__(self, registry: ClassRegistry):
        self.registry = registry
        self.numbers: dict[int, int] = {}     # id(object) -> its number
        self.keep: list = []                  # keeps numbered objects alive, so ids stay unique
        self.open: set[int] = set()           # tuples / frozensets being encoded (cycle detection)

    def encode(self, value, path: str, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels{_at(path)}")
        t = type(value)
        if value is None:
            return bytes([TAG_NONE])
        if t is bool:
            return bytes([TAG_BOOL, value])
        if t is int:
            if -(2 ** 63) <= value < 2 ** 63:
                return bytes([TAG_LONG]) + value.to_bytes(8, "big", signed=True)
            return bytes([TAG_BIGINT]) + encode_fixed("bigint", value)
        if t is float:
            return bytes([TAG_DOUBLE]) + struct.pack(">d", value)
        if t is str:
            return bytes([TAG_STR]) + encode_fixed("string", value)
        if t in (bytes, bytearray):
            return bytes([TAG_BYTES]) + struct.pack(">I", len(value)) + bytes(value)
        if t is uuid.UUID:
            return bytes([TAG_UUID]) + value.bytes
        if t is dt.datetime:
            return bytes([TAG_DATETIME]) + encode_fixed("datetime", value)
        if t is decimal.Decimal:
            try:
                return bytes([TAG_DECIMAL]) + encode_fixed("decimal", value)
            except SerializationError as e:
                raise SerializationError(f"{e}{_at(path)}") from None
        if t in (tuple, frozenset):
            return self._value_container(value, path, depth)
        if t in (list, set, dict, SpaceDocument) or dataclasses.is_dataclass(value) and not isinstance(value, type):
            number = self.numbers.get(id(value))
            if number is not None:
                return bytes([TAG_REF]) + _pack(number)
            self.numbers[id(value)] = len(self.numbers)
            self.keep.append(value)
            return self._referenceable(value, path, depth + 1)
        raise SerializationError(f"cannot serialize a {t.__module__}.{t.__qualname__}{_at(path)}: use a dataclass "
                                 "registered with persistency.register_class, a container, or a plain value")

    def _value_container(self, value, path: str, depth: int) -> bytes:
        if id(value) in self.open:
            raise SerializationError(f"a cycle through a {type(value).__name__} cannot be encoded{_at(path)}; "
                                     "use a list (or a set) there")
        self.open.add(id(value))
        try:
            if type(value) is tuple:
                items = [self.encode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            else:
                items = [self.encode(v, f"{path}{{}}", depth + 1) for v in self._set_order(value)]
        finally:
            self.open.discard(id(value))
        return bytes([_SEQUENCES[type(value)]]) + _pack(items)

    def _set_order(self, value) -> list:
        """Set elements in the order of their standalone encodings: equal sets encode equally."""
        return sorted(value, key=lambda v: _Encoder(self.registry).encode(v, "", 0))

    def _referenceable(self, value, path: str, depth: int) -> bytes:
        t = type(value)
        if t is list:
            return bytes([TAG_LIST]) + _pack([self.encode(v, f"{path}[{i}]", depth) for i, v in enumerate(value)])
        if t is set:
            return bytes([TAG_SET]) + _pack([self.encode(v, f"{path}{{}}", depth) for v in self._set_order(value)])
        if t is dict:
            return bytes([TAG_DICT]) + _pack([[self.encode(k, f"{path}{{key}}", depth),
                                               self.encode(v, f"{path}[{k!r:.40}]", depth)] for k, v in value.items()])
        if t is SpaceDocument:
            return bytes([TAG_DOCUMENT]) + _pack([value.type_name, self._fields(value.properties, path, depth)])
        try:
            name = self.registry.name_of(t)
        except SerializationError as e:
            raise SerializationError(f"{e}{_at(path)}") from None
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return bytes([TAG_OBJECT]) + _pack([name, self._fields(fields, path, depth)])

    def _fields(self, props: dict, path: str, depth: int) -> list:
        return [[k, self.encode(v, f"{path}.{k}" if path else k, depth)] for k, v in props.items()]


class _Decoder:
    """One value's decoding: the referenceable objects in the order their encodings start."""

    def __init__(self, registry: ClassRegistry):
        self.registry = registry
        self.objects: list = []

    def decode(self, data: bytes, depth: int = 0):
        if not data:
            return None
        if depth > MAX_DEPTH:
            raise SerializationError(f"stored value nested deeper than {MAX_DEPTH} levels")
        tag, payload = data[0], data[1:]
        if tag in _NATIVE:
            return decode_fixed(_NATIVE[tag], payload)
        if tag == TAG_NONE:
            return None
        if tag == TAG_BOOL:
            return payload != b"\x00"
        if tag == TAG_LONG:
            return int.from_bytes(payload, "big", signed=True)
        if tag == TAG_BYTES:
            (n,) = struct.unpack_from(">I", payload)
            return bytes(payload[4:4 + n])
        if tag == TAG_REF:
            number = msgpack.unpackb(payload)
            if not isinstance(number, int) or not 0 <= number < len(self.objects):
                raise SerializationError(f"reference #{number!r} to an object not decoded before it")
            return self.objects[number]
        if tag in (TAG_TUPLE, TAG_FROZENSET):
            return _SEQUENCE_TYPES[tag](self.decode(b, depth + 1) for b in msgpack.unpackb(payload))
        return self._referenceable(tag, payload, depth + 1)

    def _referenceable(self, tag: int, payload: bytes, depth: int):
        """A new object, numbered before its contents are decoded (they may refer back to it)."""
        if tag not in (TAG_LIST, TAG_SET, TAG_DICT, TAG_DOCUMENT, TAG_OBJECT):
            raise SerializationError(f"unknown dynamic value tag 0x{tag:02x}; was it written with another serializer?")
        body = msgpack.unpackb(payload)
        if tag == TAG_LIST:
            obj = []
            self.objects.append(obj)
            obj.extend(self.decode(b, depth) for b in body)
        elif tag == TAG_SET:
            obj = set()
            self.objects.append(obj)
            obj.update(self.decode(b, depth) for b in body)
        elif tag == TAG_DICT:
            obj = {}
            self.objects.append(obj)
            for k, v in body:
                key = self.decode(k, depth)
                obj[key] = self.decode(v, depth)
        elif tag == TAG_DOCUMENT:
            type_name, fields = body
            obj = SpaceDocument(type_name, {})
            self.objects.append(obj)
            for k, v in fields:
                obj.properties[k] = self.decode(v, depth)
        else:
            name, fields = body
            cls = self.registry.class_of(name)
            obj = object.__new__(cls)
            names = [f.name for f in dataclasses.fields(cls)]
            for n in names:
                object.__setattr__(obj, n, None)
            self.objects.append(obj)
            for k, v in fields:
                if k not in names:
                    raise SerializationError(f"{cls.__qualname__} has no field {k!r}")
                object.__setattr__(obj, k, self.decode(v, depth))
        return obj


class DynamicPropertyValueSerializer:
    """The default serializer of dynamic properties (and of fixed non-native leaves)."""

    def __init__(self, registry: ClassRegistry = CLASSES):
        self.registry = registry

    def to_bytes(self, value) -> bytes:
        return _Encoder(self.registry).encode(value, "", 0)

    def from_bytes(self, data: bytes):
        try:
            return _Decoder(self.registry).decode(data)
        except (ValueError, TypeError, struct.error, msgpack.UnpackException) as e:
            raise SerializationError(f"stored dynamic value does not decode: {type(e).__name__}: {e}") from None


DEFAULT_DYNAMIC = DynamicPropertyValueSerializer()
