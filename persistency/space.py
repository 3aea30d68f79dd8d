"""An in-process space: typed entries (SpaceDocuments or registered dataclass objects) by type and
id, routed into `partitions` by the routing property (the id by default; routing.py: the token
ring cut into equal ranges), persisted write-behind.

Every change goes to the mirror first and is applied in memory only once the mirror accepted it
(a change the mirror refuses, e.g. an unregistered class, leaves the space as it was): `write` sends WRITE for a new id
and UPDATE (full replace) for an existing one, as GigaSpaces' write does; `update` UPDATE;
`partial_update` PARTIAL_UPDATE with only the changed properties; `take` REMOVE. `start` loads the
metadata and then every entry through the data source, each partition its own share in parallel
(nothing of that goes back to the mirror);
`read_by_id` reads through on a miss and keeps what it found. Template and SQL reads run on memory
(everything is loaded at start: GigaSpaces' ALL_IN_CACHE policy). Entries are copied in and out,
so callers never share state with the space.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from engine.errors import InvalidRequest
from persistency.descriptor import SpaceTypeDescriptor
from persistency.document import SpaceDocument
from persistency.dynamic_serializer import DEFAULT_DYNAMIC
from persistency.mapping import (
    DefaultFlattenedPropertiesFilter,
    Mapper,
    build_metadata,
    properties_of,
    type_name_of,
)
from persistency.operation import OperationType
from persistency.query import (
    DataSourceQuery,
    matches,
    parse_sql,
    restrictions_of,
)
from persistency.routing import partition_of, routing_token
from persistency.serializer import CLASSES, new_instance

PROGRESS_EVERY = 1000


class EntryNotInSpace(InvalidRequest):
    """update / partial_update of an id the space does not hold (and the data source does not have)."""


class Space:
    def __init__(self, name: str = "space", *, mirror=None, data_source=None, partitions: int = 1,
                 registry=CLASSES):
        if not isinstance(partitions, int) or not 1 <= partitions <= 1024:
            raise InvalidRequest(f"partitions must be an integer from 1 to 1024, got {partitions!r}")
        self.name = name
        self.mirror, self.data_source, self.registry = mirror, data_source, registry
        self.types: dict[str, SpaceTypeDescriptor] = {}
        self.partitions: list[dict[str, dict[bytes, object]]] = [{} for _ in range(partitions)]
        self._mappers: dict[str, Mapper] = {}
        self._lock = threading.RLock()

    # -- life ------------------------------------------------------------------------------------

    def start(self, *, parallel: bool = True, concurrency: int = 4, progress=None) -> int:
        """Load metadata, then data through the data source; returns how many entries were loaded.

        parallel (the default): each partition loads its own routing share (by token range when the
        type routes by its id), at most `concurrency` partitions at once; `progress(partition,
        loaded, done)` is called every PROGRESS_EVERY entries of a partition and when it is done.
        parallel=False: one sequential load of everything (the loader before issue 15)."""
        if self.data_source is None:
            return 0
        if not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequest(f"concurrency must be a positive integer, got {concurrency!r}")
        for d in self.data_source.initial_metadata_load():
            self.types[d.type_name] = d
        if not parallel:
            return self._load(None, progress)
        n = len(self.partitions)
        with ThreadPoolExecutor(max_workers=min(concurrency, n), thread_name_prefix="space-load") as pool:
            return sum(pool.map(lambda i: self._load(i, progress), range(n)))

    def _load(self, partition: int | None, progress) -> int:
        loaded = 0
        docs = self.data_source.initial_data_load() if partition is None else \
            self.data_source.initial_data_load(partition, len(self.partitions))
        for doc in docs:
            entry = self._entry(doc)
            with self._lock:
                self._put(entry)
            loaded += 1
            if progress is not None and loaded % PROGRESS_EVERY == 0:
                progress(partition, loaded, False)
        if progress is not None:
            progress(partition, loaded, True)
        return loaded

    def close(self, timeout_s: float = 300.0) -> bool:
        """Flush the mirror (within the timeout) and stop it."""
        return self.mirror.close(timeout_s) if self.mirror is not None else True

    def register_type(self, descriptor: SpaceTypeDescriptor) -> None:
        with self._lock:
            if self.mirror is not None:
                self.mirror.endpoint.on_introduce_type(descriptor)
            self.types[descriptor.type_name] = descriptor

    # -- internals -------------------------------------------------------------------------------

    def _descriptor(self, type_name: str) -> SpaceTypeDescriptor:
        d = self.types.get(type_name)
        if d is None:
            raise InvalidRequest(f"type {type_name} is not registered in space {self.name}; call register_type first")
        return d

    def _key(self, value) -> bytes:
        return DEFAULT_DYNAMIC.to_bytes(value)

    def _mapper(self, d: SpaceTypeDescriptor) -> Mapper:
        m = self._mappers.get(d.type_name)
        if m is None or m.meta.descriptor is not d:
            m = self._mappers[d.type_name] = Mapper(build_metadata(d, DefaultFlattenedPropertiesFilter(), d.type_name,
                                                                   self.registry), registry=self.registry)
        return m

    def _partition(self, d: SpaceTypeDescriptor, props: dict) -> dict:
        """The entry's partition by its routing token (routing.py), the token its share is loaded by."""
        t = routing_token(self._mapper(d), props)
        return self.partitions[partition_of(t, len(self.partitions))].setdefault(d.type_name, {})

    def _find(self, type_name: str, id_value):
        key = self._key(id_value)
        for part in self.partitions:
            entry = part.get(type_name, {}).get(key)
            if entry is not None:
                return entry
        return None

    def _put(self, entry) -> None:
        d = self._descriptor(type_name_of(entry, self.registry))
        props = properties_of(entry)
        self._partition(d, props)[self._key(props[d.id_property])] = entry

    def _remove(self, entry) -> None:
        d = self._descriptor(type_name_of(entry, self.registry))
        props = properties_of(entry)
        self._partition(d, props).pop(self._key(props[d.id_property]), None)

    def _entry(self, doc: SpaceDocument):
        """A loaded document as the type's object when the descriptor names a registered class."""
        d = self.types.get(doc.type_name)
        if d is not None and d.object_class:
            return new_instance(self.registry.class_of(d.object_class), doc.properties)
        return doc

    def _send(self, kind: OperationType, entry) -> None:
        if self.mirror is not None:
            self.mirror.enqueue(kind, entry)

    # -- operations ------------------------------------------------------------------------------

    def write(self, entry):
        """Write (insert or fully replace) an entry; returns a copy with its id (auto-generated ids)."""
        d = self._descriptor(type_name_of(entry, self.registry))
        entry = copy.deepcopy(entry)
        props = properties_of(entry)
        if props.get(d.id_property) is None:
            if not d.auto_generate_id:
                raise InvalidRequest(f"entry of type {d.type_name} has no id ({d.id_property}); set it or declare "
                                     "auto_generate_id=True")
            _set(entry, d.id_property, uuid.uuid4().hex)
        with self._lock:
            existing = self._find(d.type_name, props_id(entry, d))
            self._send(OperationType.UPDATE if existing is not None else OperationType.WRITE, entry)
            if existing is not None:     # the mirror accepted it: now the space changes
                self._remove(existing)
            self._put(entry)
        return copy.deepcopy(entry)

    def read_by_id(self, type_name: str, id_value):
        with self._lock:
            entry = self._find(type_name, id_value)
            if entry is None and self.data_source is not None and type_name in self.types:
                doc = self.data_source.get_by_id(type_name, id_value)
                if doc is not None:
                    entry = self._entry(doc)
                    self._put(entry)
            return copy.deepcopy(entry)

    def read(self, template):
        found = self.read_multiple(template, max_entries=1)
        return found[0] if found else None

    def read_multiple(self, template_or_type, sql: str | None = None, params=(), max_entries: int | None = None):
        """Entries matching a template (SpaceDocument or dataclass with None as wildcard), or
        `read_multiple(type_name, "a = ? AND b.c > ?", params)`."""
        if isinstance(template_or_type, str):
            type_name = template_or_type
            restrictions = parse_sql(sql or "", params)
        else:
            type_name = type_name_of(template_or_type, self.registry)
            restrictions = restrictions_of(DataSourceQuery(type_name, SpaceDocument(
                type_name, properties_of(template_or_type))))
        d = self._descriptor(type_name)
        if len(restrictions) == 1 and restrictions[0].path == d.id_property and restrictions[0].op == "=":
            entry = self.read_by_id(type_name, restrictions[0].value)
            return [entry] if entry is not None else []
        out = []
        with self._lock:
            for part in self.partitions:
                for entry in part.get(type_name, {}).values():
                    if matches(entry, restrictions):
                        out.append(copy.deepcopy(entry))
                        if max_entries is not None and len(out) >= max_entries:
                            return out
        return out

    def take(self, template):
        with self._lock:
            entry = self.read(template)
            if entry is not None:
                self._send(OperationType.REMOVE, entry)
                self._remove(entry)
            return entry

    def update(self, entry):
        d = self._descriptor(type_name_of(entry, self.registry))
        with self._lock:
            if self.read_by_id(d.type_name, props_id(entry, d)) is None:
                raise EntryNotInSpace(f"no {d.type_name} with id {props_id(entry, d)!r} to update; use write")
            return self.write(entry)

    def partial_update(self, type_name: str, id_value, changes: dict):
        """Set the given properties (None values are ignored, as in the original); returns the entry."""
        d = self._descriptor(type_name)
        changes = {k: copy.deepcopy(v) for k, v in changes.items() if v is not None and k != d.id_property}
        with self._lock:
            if self.read_by_id(type_name, id_value) is None:
                raise EntryNotInSpace(f"no {type_name} with id {id_value!r} to update")
            entry = self._find(type_name, id_value)
            changed = copy.deepcopy(entry)
            for k, v in changes.items():
                _set(changed, k, v)
            self._send(OperationType.PARTIAL_UPDATE, SpaceDocument(type_name, {d.id_property: id_value, **changes}))
            self._remove(entry)
            self._put(changed)
            return copy.deepcopy(changed)

    def count(self, type_name: str) -> int:
        with self._lock:
            return sum(len(part.get(type_name, {})) for part in self.partitions)


def props_id(entry, d: SpaceTypeDescriptor):
    return properties_of(entry).get(d.id_property)


def _set(entry, name: str, value) -> None:
    if isinstance(entry, SpaceDocument):
        entry.properties[name] = value
    elif name in {f.name for f in dataclasses.fields(entry)}:
        object.__setattr__(entry, name, value)
    else:
        raise InvalidRequest(f"{type(entry).__qualname__} has no property {name!r}")
