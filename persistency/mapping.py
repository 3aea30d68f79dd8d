"""Pure mapping between space entries and column-family rows (no I/O).

A type's column family holds one row per entry: row key = the id property's value, columns
named by the flattened full path of each property (`address.street`), values as bytes. Rules
(docs/persistency.md#mapping, the original's section 2.5):
* fixed dataclass properties are flattened while the filter says so (default: fixed properties up
  to nesting level 10; top-level properties are level 1); a flattened object whose fields are all
  None is a stub column at its own path (boolean true), so it reads back as an empty object;
* every other fixed property is one leaf column, encoded by its declared type (serializer.py);
* dynamic properties are one column each (dynamic serializer); a filter that flattens them writes a
  marker column (`__sd:<type>` for a SpaceDocument, `__pe:<class>` for an object) and dotted children;
* None values and the id are never written, so an id-only entry has no columns (no row).
Reading processes columns in name order, so a marker column comes before its children.
`ColumnFamilyMetadata` is everything a reader needs; it is stored, so a data source never needs
the filter or the name converter.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from persistency.descriptor import FIXED_TYPES, SpaceTypeDescriptor, field_refs
from persistency.document import SpaceDocument
from persistency.dynamic_serializer import DEFAULT_DYNAMIC
from persistency.serializer import (
    CLASSES,
    ClassRegistry,
    PropertyValueSerializer,
    SerializationError,
    decode_fixed,
    encode_fixed,
    new_instance,
)

MAX_NESTING = 64              # a hard stop below any filter, for cyclic dataclass declarations
DOCUMENT_MARKER, OBJECT_MARKER, MAP_MARKER = "__sd:", "__pe:", "__me:"
MARKERS = (DOCUMENT_MARKER, OBJECT_MARKER, MAP_MARKER)
STUB = encode_fixed("boolean", True)
NATIVE = tuple(t for t in FIXED_TYPES if t != "object")
KEY_CQL_TYPES = {"boolean": "boolean", "int": "int", "long": "bigint", "float": "float", "double": "double",
                 "string": "text", "bytes": "blob", "uuid": "uuid", "decimal": "decimal", "bigint": "varint"}


class MappingError(InvalidRequest):
    """An entry or a row does not fit its type's mapping. Nothing was applied."""


@dataclass(frozen=True)
class PropertyContext:
    path: str | None             # full name of the parent, None at top level
    name: str
    type: type
    is_dynamic: bool
    current_nesting_level: int


class FlattenedPropertiesFilter(typing.Protocol):
    def should_flatten(self, ctx: PropertyContext) -> bool: ...


class DefaultFlattenedPropertiesFilter:
    """Flatten fixed properties up to nesting level 10; never dynamic ones."""

    MAX_NESTING_LEVEL = 10

    def should_flatten(self, ctx: PropertyContext) -> bool:
        return not ctx.is_dynamic and ctx.current_nesting_level <= self.MAX_NESTING_LEVEL


def is_flattenable(value) -> bool:
    return isinstance(value, SpaceDocument) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type) and bool(dataclasses.fields(value)))


def properties_of(entry) -> dict:
    if isinstance(entry, SpaceDocument):
        return entry.properties
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    raise MappingError(f"a space entry is a SpaceDocument or a dataclass instance, got {type(entry).__name__}")


def type_name_of(entry, registry: ClassRegistry = CLASSES) -> str:
    if isinstance(entry, SpaceDocument):
        return entry.type_name
    return registry.name_of(type(entry))


@dataclass
class ColumnFamilyMetadata:
    type_name: str
    cf_name: str
    descriptor: SpaceTypeDescriptor
    key_column: str
    key_type: str                                          # fixed type ref of the id
    leaves: dict[str, str] = field(default_factory=dict)    # column path -> fixed type ref
    nodes: dict[str, str] = field(default_factory=dict)     # flattened object path -> class name
    indexes: set[str] = field(default_factory=set)          # indexed paths

    VERSION = 1

    def to_dict(self) -> dict:
        return {"version": self.VERSION, "type_name": self.type_name, "cf_name": self.cf_name,
                "descriptor": self.descriptor.to_dict(), "key_column": self.key_column, "key_type": self.key_type,
                "leaves": self.leaves, "nodes": self.nodes, "indexes": sorted(self.indexes)}

    @classmethod
    def from_dict(cls, d: dict) -> ColumnFamilyMetadata:
        if d.get("version") != cls.VERSION:
            raise MappingError(f"type metadata version {d.get('version')} is not supported (this build reads "
                               f"version {cls.VERSION}); upgrade dynatable")
        return cls(d["type_name"], d["cf_name"], SpaceTypeDescriptor.from_dict(d["descriptor"]), d["key_column"],
                   d["key_type"], dict(d["leaves"]), dict(d["nodes"]), set(d["indexes"]))

    @property
    def key_cql_type(self) -> str:
        return KEY_CQL_TYPES.get(self.key_type, "blob")


def key_column_name(id_property: str) -> str:
    """The row key's column: the id property's name (the original's key alias) when it is a valid,
    unreserved column name, else "key"."""
    ok = id_property.isascii() and id_property[:1].isalpha() and id_property.replace("_", "a").isalnum()
    return id_property if ok and len(id_property) <= 48 and id_property not in ("column1", "value") else "key"


def build_metadata(descriptor: SpaceTypeDescriptor, flatten_filter: FlattenedPropertiesFilter,
                   cf_name: str, registry: ClassRegistry = CLASSES) -> ColumnFamilyMetadata:
    meta = ColumnFamilyMetadata(descriptor.type_name, cf_name, descriptor, key_column_name(descriptor.id_property),
                                descriptor.fixed_properties.get(descriptor.id_property, "object"))
    if meta.key_type == "document":
        raise MappingError(f"type {descriptor.type_name}: the id property cannot be a SpaceDocument")

    def walk(refs: dict[str, str], parent: str | None, level: int) -> None:
        for name, ref in refs.items():
            if parent is None and name == descriptor.id_property:
                continue
            path = f"{parent}.{name}" if parent else name
            if ref == "document":
                continue   # shape unknown until a value arrives: handled as dynamic at write time
            if ref.startswith("class:"):
                cls = registry.class_of(ref[6:])
                ctx = PropertyContext(parent, name, cls, False, level)
                if dataclasses.fields(cls) and level <= MAX_NESTING and flatten_filter.should_flatten(ctx):
                    meta.nodes[path] = ref[6:]
                    walk(field_refs(cls), path, level + 1)
                    continue
            meta.leaves[path] = ref

    walk(descriptor.fixed_properties, None, 1)
    meta.indexes = {p for p, kind in descriptor.indexes.items()
                    if kind.value != "NONE" and p != descriptor.id_property}
    return meta


class Mapper:
    """Entry <-> columns for one type, with the configured serializers and filter."""

    def __init__(self, meta: ColumnFamilyMetadata, fixed_serializer: PropertyValueSerializer | None = None,
                 dynamic_serializer: PropertyValueSerializer | None = None,
                 flatten_filter: FlattenedPropertiesFilter | None = None, registry: ClassRegistry = CLASSES):
        self.meta = meta
        self.fixed = fixed_serializer or dynamic_serializer or DEFAULT_DYNAMIC
        self.dynamic = dynamic_serializer or DEFAULT_DYNAMIC
        self.filter = flatten_filter or DefaultFlattenedPropertiesFilter()
        self.registry = registry

    # -- values ----------------------------------------------------------------------------------

    def encode_leaf(self, ref: str, value, path: str) -> bytes:
        try:
            return encode_fixed(ref, value) if ref in NATIVE else self.fixed.to_bytes(value)
        except SerializationError as e:
            raise MappingError(f"type {self.meta.type_name}, property {path}: {e}") from None

    def decode_leaf(self, ref: str, data: bytes):
        return decode_fixed(ref, data) if ref in NATIVE else self.fixed.from_bytes(data)

    def encode_column(self, path: str, value) -> bytes:
        """A query parameter encoded the way column `path` is stored."""
        ref = self.meta.leaves.get(path)
        return self.encode_leaf(ref, value, path) if ref else self.dynamic.to_bytes(value)

    def decode_column(self, path: str, data: bytes):
        ref = self.meta.leaves.get(path)
        return self.decode_leaf(ref, data) if ref else self.dynamic.from_bytes(data)

    def key_to_store(self, id_value):
        """The id as the row key's CQL value (typed when the id type has a CQL type, else a blob)."""
        if id_value is None:
            raise MappingError(f"type {self.meta.type_name}: missing id property value ({self.meta.descriptor.id_property})")
        ref = self.meta.key_type
        encoded = self.encode_leaf(ref, id_value, self.meta.descriptor.id_property) if ref != "object" \
            else self.dynamic.to_bytes(id_value)
        if ref in KEY_CQL_TYPES:
            return decode_fixed(ref, encoded) if ref == "float" else id_value
        return encoded

    def key_from_store(self, stored):
        ref = self.meta.key_type
        if ref in KEY_CQL_TYPES:
            return stored
        return self.dynamic.from_bytes(stored) if ref == "object" else self.decode_leaf(ref, stored)

    # -- entry -> columns ------------------------------------------------------------------------

    def to_columns(self, entry, require_id: bool = True) -> tuple[object, dict[str, bytes]]:
        """(id, {column: bytes}) for an entry; MappingError if the id is missing or a value is bad."""
        props = properties_of(entry)
        id_prop = self.meta.descriptor.id_property
        id_value = props.get(id_prop)
        if id_value is None and require_id:
            raise MappingError(f"Data sync operation missing id property value: type {self.meta.type_name} "
                               f"needs property {id_prop!r}")
        cols: dict[str, bytes] = {}
        for name, value in props.items():
            if name == id_prop or value is None:
                continue
            if name in self.meta.nodes:
                if isinstance(value, SpaceDocument):   # a POJO-typed property that arrived as a document
                    value = new_instance(self.registry.class_of(self.meta.nodes[name]), value.properties)
                self._write_node(name, value, 2, cols)
            elif name in self.meta.leaves:
                cols[name] = self.encode_leaf(self.meta.leaves[name], value, name)
            else:
                self._write_dynamic(None, name, value, 1, cols)
        return id_value, cols

    def _write_node(self, path: str, obj, level: int, cols: dict) -> None:
        cls = self.registry.class_of(self.meta.nodes[path])
        if not isinstance(obj, cls):
            raise MappingError(f"type {self.meta.type_name}, property {path}: expected a {cls.__qualname__}, "
                               f"got {type(obj).__name__}")
        before = len(cols)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None:
                continue
            child = f"{path}.{f.name}"
            if child in self.meta.nodes:
                self._write_node(child, value, level + 1, cols)
            elif child in self.meta.leaves:
                cols[child] = self.encode_leaf(self.meta.leaves[child], value, child)
            else:
                self._write_dynamic(path, f.name, value, level, cols)
        if len(cols) == before:
            cols[path] = STUB

    def _write_dynamic(self, parent: str | None, name: str, value, level: int, cols: dict) -> None:
        if "." in name:
            raise MappingError(f"type {self.meta.type_name}: dynamic property {name!r} contains '.', which is "
                               "the nested-path separator; rename it")
        path = f"{parent}.{name}" if parent else name
        if isinstance(value, str) and value.startswith(MARKERS):
            raise MappingError(f"type {self.meta.type_name}, property {path}: string values starting with "
                               f"{', '.join(MARKERS)} are reserved for nested-entry markers")
        ctx = PropertyContext(parent, name, type(value), True, level)
        if level <= MAX_NESTING and is_flattenable(value) and self.filter.should_flatten(ctx):
            if isinstance(value, SpaceDocument):
                marker = DOCUMENT_MARKER + value.type_name
            else:
                marker = OBJECT_MARKER + self.registry.name_of(type(value))
            try:
                cols[path] = self.dynamic.to_bytes(marker)
            except SerializationError as e:
                raise MappingError(f"type {self.meta.type_name}, property {path}: {e}") from None
            for k, v in properties_of(value).items():
                if v is not None:
                    self._write_dynamic(path, k, v, level + 1, cols)
            return
        try:
            cols[path] = self.dynamic.to_bytes(value)
        except SerializationError as e:
            raise MappingError(f"type {self.meta.type_name}, property {path}: {e}") from None

    # -- columns -> entry ------------------------------------------------------------------------

    def from_columns(self, id_value, columns) -> SpaceDocument:
        """The SpaceDocument of a row: `columns` is an iterable of (name, bytes)."""
        root = _Node("root", self.meta.type_name, {self.meta.descriptor.id_property: id_value})
        built: dict[str, _Node] = {}

        def fixed_node(path: str) -> _Node:
            if path not in built:
                parent, _, last = path.rpartition(".")
                owner = fixed_node(parent) if parent in self.meta.nodes else root
                built[path] = owner.props[last] = _Node("obj", self.meta.nodes[path], {})
            return built[path]

        def parent_of(path: str) -> tuple[_Node, str]:
            parent, _, last = path.rpartition(".")
            if not parent:
                return root, last
            if parent in built:
                return built[parent], last
            if parent in self.meta.nodes:
                return fixed_node(parent), last
            raise MappingError(f"Could not find value parent node for column {path!r} of type {self.meta.type_name}")

        for name, data in sorted(columns):
            if name in self.meta.leaves:
                node, last = (fixed_node(name.rpartition(".")[0]), name.rpartition(".")[2]) if "." in name \
                    else (root, name)
                node.props[last] = self.decode_leaf(self.meta.leaves[name], data)
            elif name in self.meta.nodes:
                fixed_node(name)
            else:
                value = self.dynamic.from_bytes(data)
                node, last = parent_of(name)
                if isinstance(value, str) and value.startswith(MARKERS):
                    kind = {DOCUMENT_MARKER: "doc", OBJECT_MARKER: "obj", MAP_MARKER: "map"}[value[:5]]
                    built[name] = node.props[last] = _Node(kind, value[5:], {})
                else:
                    node.props[last] = value
        return root.materialize(self.registry)


class _Node:
    __slots__ = ("kind", "props", "ref")

    def __init__(self, kind: str, ref: str, props: dict):
        self.kind, self.ref, self.props = kind, ref, props

    def materialize(self, registry: ClassRegistry):
        props = {k: v.materialize(registry) if isinstance(v, _Node) else v for k, v in self.props.items()}
        if self.kind in ("root", "doc"):
            return SpaceDocument(self.ref, props)
        if self.kind == "map":
            return props
        return new_instance(registry.class_of(self.ref), props)
