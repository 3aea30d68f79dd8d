"""The synchronization endpoint: batches of space operations into the type tables.

Per operation, in order: WRITE upserts the entry's non-null columns (columns it lacks survive);
UPDATE deletes the row at timestamp T and writes the columns at T + 1 (full replace: the deletion
is ordered strictly before the new cells); PARTIAL_UPDATE upserts only the given non-null columns;
REMOVE deletes the row (a missing row is fine). REMOVE_BY_UID and CHANGE are rejected. A batch is
validated whole before anything is sent; then its mutations go out concurrently, ordered by their
timestamps alone. Errors propagate: the mirror retries what a retry can help and parks the rest.
`on_introduce_type` and `on_add_index` are idempotent and safe when many endpoints run them at once:
the table is created before its metadata is written, so metadata never names a missing table.
"""
from __future__ import annotations

import threading
from collections import defaultdict

import msgpack

from engine.errors import InvalidRequest
from persistency.backend import RESERVED_TABLES, Backend, DeleteRow, Put
from persistency.descriptor import IndexType, SpaceTypeDescriptor
from persistency.mapping import (
    ColumnFamilyMetadata,
    DefaultFlattenedPropertiesFilter,
    Mapper,
    build_metadata,
    properties_of,
    type_name_of,
)
from persistency.name_converter import DefaultColumnFamilyNameConverter
from persistency.operation import DataSyncOperation, OperationClock, OperationType
from persistency.serializer import CLASSES


class SynchronizationError(InvalidRequest):
    """An operation cannot be synchronized (unknown type, missing id, unsupported kind). Retrying
    the same operation cannot help."""


def pack_metadata(meta: ColumnFamilyMetadata) -> bytes:
    return msgpack.packb(meta.to_dict(), use_bin_type=True)


def unpack_metadata(data: bytes) -> ColumnFamilyMetadata:
    return ColumnFamilyMetadata.from_dict(msgpack.unpackb(data, raw=False, strict_map_key=False))


class TypeCatalog:
    """Cached type metadata with lazy loads from the metadata table (shared by endpoint and data source)."""

    def __init__(self, client: Backend, fixed_serializer, dynamic_serializer, flatten_filter, registry):
        self.client = client
        self.fixed, self.dynamic, self.filter, self.registry = fixed_serializer, dynamic_serializer, flatten_filter, registry
        self.mappers: dict[str, Mapper] = {}

    def put(self, meta: ColumnFamilyMetadata) -> Mapper:
        m = self.mappers[meta.type_name] = Mapper(meta, self.fixed, self.dynamic, self.filter, self.registry)
        return m

    def get(self, type_name: str) -> Mapper | None:
        m = self.mappers.get(type_name)
        if m is None:
            data = self.client.read_metadata(type_name)
            if data is not None:
                m = self.put(unpack_metadata(data))
        return m


class SpaceSynchronizationEndpoint:
    def __init__(self, client: Backend, fixed_serializer=None, dynamic_serializer=None, flatten_filter=None,
                 name_converter=None, registry=CLASSES):
        self.client = client
        self.name_converter = name_converter or DefaultColumnFamilyNameConverter()
        self.catalog = TypeCatalog(client, fixed_serializer, dynamic_serializer,
                                   flatten_filter or DefaultFlattenedPropertiesFilter(), registry)
        self.clock = OperationClock()
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        client.ensure_metadata_table()

    # -- types -----------------------------------------------------------------------------------

    def on_introduce_type(self, descriptor: SpaceTypeDescriptor) -> None:
        with self._locks[descriptor.type_name]:
            if descriptor.type_name in self.catalog.mappers:
                return
            cf_name = self.name_converter.to_column_family_name(descriptor.type_name)
            if cf_name in RESERVED_TABLES:
                raise SynchronizationError(f"type {descriptor.type_name} maps to reserved table {cf_name}; "
                                           "configure a name_converter")
            meta = build_metadata(descriptor, self.catalog.filter, cf_name, self.catalog.registry)
            stored = self.client.read_metadata(descriptor.type_name)
            if stored is not None:
                meta.indexes |= unpack_metadata(stored).indexes
            else:
                self._check_collision(meta)
            self.client.ensure_table(cf_name, meta.key_column, meta.key_cql_type)
            if meta.indexes:
                self.client.create_index(cf_name)
            self.client.write_metadata(descriptor.type_name, pack_metadata(meta))
            self.catalog.put(meta)

    def _check_collision(self, meta: ColumnFamilyMetadata) -> None:
        for type_name, data in self.client.read_all_metadata():
            other = unpack_metadata(data)
            if other.cf_name == meta.cf_name and type_name != meta.type_name:
                raise SynchronizationError(f"types {type_name} and {meta.type_name} both map to table "
                                           f"{meta.cf_name}; configure a name_converter that tells them apart")

    def on_add_index(self, type_name: str, indexes: dict) -> None:
        """Index `{path: IndexType}` (NONE ignored; the id never). Works before and after data exists."""
        with self._locks[type_name]:
            m = self._mapper(type_name)
            meta = m.meta
            new = {p for p, kind in indexes.items() if IndexType(kind) is not IndexType.NONE
                   and p != meta.descriptor.id_property} - meta.indexes
            if not new:
                return
            self.client.create_index(meta.cf_name)
            meta.indexes |= new
            self.client.write_metadata(type_name, pack_metadata(meta))

    def _mapper(self, type_name: str) -> Mapper:
        m = self.catalog.get(type_name)
        if m is None:
            raise SynchronizationError(f"Could not find column family for type name: {type_name}; introduce the "
                                       "type first (on_introduce_type)")
        return m

    # -- operations ------------------------------------------------------------------------------

    def on_operations_batch_synchronization(self, batch) -> None:
        self.client.apply(self.mutations(batch.operations))

    def after_operations_batch_synchronization(self, batch) -> None:
        """Called after a batch succeeded. Nothing to do; override to observe."""

    def on_transaction_synchronization(self, transaction) -> None:
        self.client.apply(self.mutations(transaction.operations))

    def after_transaction_synchronization(self, transaction) -> None:
        """Called after a transaction succeeded. Nothing to do; override to observe."""

    def mutations(self, operations: list[DataSyncOperation]) -> list:
        """Every mutation of `operations`, or an error before any is sent."""
        out: list = []
        for op in operations:
            kind = OperationType(op.operation_type)
            if kind not in (OperationType.WRITE, OperationType.UPDATE, OperationType.PARTIAL_UPDATE,
                            OperationType.REMOVE):
                raise SynchronizationError(f"operation type {kind.value} is not supported by this endpoint; "
                                           "send WRITE, UPDATE, PARTIAL_UPDATE or REMOVE")
            m = self._mapper(type_name_of(op.document, self.catalog.registry))
            ts = op.timestamp_us or self.clock.next()
            cf, key_col = m.meta.cf_name, m.meta.key_column
            if kind is OperationType.REMOVE:
                key = m.key_to_store(properties_of(op.document).get(m.meta.descriptor.id_property))
                out.append(DeleteRow(cf, key_col, key, ts))
                continue
            id_value, cols = m.to_columns(op.document)
            key = m.key_to_store(id_value)
            if kind is OperationType.UPDATE:
                out.append(DeleteRow(cf, key_col, key, ts))
                ts += 1
            out.extend(Put(cf, key_col, key, name, value, ts) for name, value in cols.items())
        return out
