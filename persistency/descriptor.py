"""Type descriptors: how a space type is declared (SpaceDocument, the schema-less entry, is in document.py).

A `SpaceTypeDescriptor` round-trips exactly through `to_dict`/`from_dict` (msgpack-able; the
stored type metadata, docs/persistency.md#metadata). Fixed property types are named, since Python
has no int/long distinction (FIXED_TYPES), or are a class: a dataclass (flattened), any class
registered with `persistency.serializer.register_class` (one column), or `SpaceDocument`
(handled as a dynamic property at write time, as in the original).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from persistency.document import SpaceDocument
from persistency.serializer import CLASSES

FIXED_TYPES = ("boolean", "int", "long", "float", "double", "string", "bytes", "uuid", "datetime",
               "decimal", "bigint", "object")


# Python classes accepted in place of a type name (int is arbitrary-precision, so "bigint")
PYTHON_TYPES = {bool: "boolean", int: "bigint", float: "double", str: "string", bytes: "bytes",
                uuid.UUID: "uuid", dt.datetime: "datetime", decimal.Decimal: "decimal"}
_ANNOTATIONS = {**PYTHON_TYPES, SpaceDocument: "document"}


class IndexType(str, enum.Enum):
    NONE = "NONE"
    BASIC = "BASIC"
    EXTENDED = "EXTENDED"   # treated as BASIC by the persistency, as in the original


def type_ref(t) -> str:
    """How a fixed property type is stored: a FIXED_TYPES name, "document", or "class:<name>"."""
    if isinstance(t, str):
        if t not in FIXED_TYPES and t != "document" and not t.startswith("class:"):
            raise InvalidRequest(f"unknown fixed property type {t!r}; use one of {', '.join(FIXED_TYPES)}, "
                                 "a dataclass, a registered class or SpaceDocument")
        return t
    if t is SpaceDocument:
        return "document"
    if t in PYTHON_TYPES:
        return PYTHON_TYPES[t]
    if isinstance(t, type):
        return "class:" + (CLASSES.ensure(t) if dataclasses.is_dataclass(t) else CLASSES.name_of(t))
    raise InvalidRequest(f"fixed property type {t!r} is neither a type name nor a class")


def annotation_ref(tp) -> str:
    """A dataclass field's annotation as a fixed type name ("object" when it is none of ours)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        tp = args[0]   # Optional[X] is X
    if tp in _ANNOTATIONS:
        return _ANNOTATIONS[tp]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "class:" + CLASSES.ensure(tp)
    return "object"


def field_refs(cls: type) -> dict[str, str]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is just an opaque value
        hints = {}
    return {f.name: annotation_ref(hints.get(f.name, object)) for f in dataclasses.fields(cls)}


@dataclass
class SpaceTypeDescriptor:
    type_name: str
    id_property: str
    routing_property: str | None = None
    super_type_name: str | None = None
    fixed_properties: dict = field(default_factory=dict)      # name -> type name or class
    indexes: dict = field(default_factory=dict)               # path -> IndexType
    auto_generate_id: bool = False
    supports_dynamic_properties: bool = True
    supports_optimistic_locking: bool = False
    replicable: bool = True
    storage_type: str = "OBJECT"
    fifo_support: str = "OFF"
    fifo_grouping_property: str | None = None
    fifo_grouping_indexes: tuple = ()
    document_wrapper_class: str | None = None
    object_class: str | None = None                           # registered class name of the POJO

    def __post_init__(self):
        if not isinstance(self.type_name, str) or not self.type_name:
            raise InvalidRequest("a type descriptor needs a non-empty type_name")
        if not isinstance(self.id_property, str) or not self.id_property:
            raise InvalidRequest(f"type {self.type_name}: id_property must name a property")
        self.fixed_properties = {name: type_ref(t) for name, t in self.fixed_properties.items()}
        self.indexes = {path: IndexType(kind) for path, kind in self.indexes.items()}
        self.fifo_grouping_indexes = tuple(self.fifo_grouping_indexes)

    @classmethod
    def of_class(cls, object_class: type, id_property: str, **kwargs) -> SpaceTypeDescriptor:
        """The descriptor of a dataclass type: its fields are the fixed properties (types from the
        annotations), its registered name the type name."""
        name = CLASSES.ensure(object_class)
        return cls(name, id_property, fixed_properties=field_refs(object_class), object_class=name, **kwargs)

    @property
    def routing(self) -> str:
        return self.routing_property or self.id_property

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["indexes"] = {path: kind.value for path, kind in self.indexes.items()}
        d["fifo_grouping_indexes"] = list(self.fifo_grouping_indexes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SpaceTypeDescriptor:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
