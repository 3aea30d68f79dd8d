"""The space data source: metadata load, initial load and read-through from the type tables.

* `initial_metadata_load` reads every stored type and returns descriptors super types first.
* `initial_data_load` streams every type's rows (or the type's configured load query) page by
  page: memory holds one page of cells, never a whole table. Given a space partition, only that
  partition's routing share (routing.py): by token range when the type routes by its id.
* `get_by_id` / `get_data_iterator_by_ids` read rows by key (ids in request order, missing skipped).
* `get_data_iterator` answers a template or the SQL subset (query.py): an equality on the id is a
  by-key read; an empty query is a full scan; otherwise one equality on an indexed path is answered
  by the secondary index and every restriction (ranges included) is re-checked on the row. A query
  with no equality on an indexed path is an InvalidRequest. The batch size is a page size: every
  matching row comes back exactly once. An unknown type gives None, as in the original.
Rows are returned as SpaceDocuments; mapping errors (e.g. an unregistered class) raise.
"""
from __future__ import annotations

from itertools import islice

from engine.errors import InvalidRequest
from persistency.backend import Backend
from persistency.mapping import DefaultFlattenedPropertiesFilter, Mapper
from persistency.query import OPERATORS, DataSourceQuery, Restriction, restrictions_of
from persistency.routing import partition_of, routes_by_key, routing_token, token_range
from persistency.serializer import CLASSES
from persistency.sync_endpoint import TypeCatalog, unpack_metadata


def sort_super_types_first(descriptors: list) -> list:
    """Descriptors ordered so that every super type comes before its sub types (stable by name)."""
    by_name = {d.type_name: d for d in descriptors}
    out, done = [], set()

    def visit(d, trail=()):
        if d.type_name in done:
            return
        if d.type_name in trail:
            raise InvalidRequest(f"type hierarchy has a cycle through {d.type_name}")
        parent = by_name.get(d.super_type_name)
        if parent is not None:
            visit(parent, (*trail, d.type_name))
        done.add(d.type_name)
        out.append(d)

    for d in sorted(descriptors, key=lambda d: d.type_name):
        visit(d)
    return out


class SpaceDataSource:
    def __init__(self, client: Backend, batch_limit: int = 10000, fixed_serializer=None, dynamic_serializer=None,
                 initial_load_queries: dict | None = None, registry=CLASSES):
        if not isinstance(batch_limit, int) or batch_limit < 1:
            raise InvalidRequest(f"batch_limit must be a positive integer, got {batch_limit!r}")
        self.client = client
        self.batch_limit = batch_limit
        self.catalog = TypeCatalog(client, fixed_serializer, dynamic_serializer, DefaultFlattenedPropertiesFilter(),
                                   registry)
        self.initial_load_queries = dict(initial_load_queries or {})
        for type_name, q in self.initial_load_queries.items():
            if not isinstance(q, DataSourceQuery) or q.type_name != type_name:
                raise InvalidRequest(f"initial load query for {type_name} must be a DataSourceQuery of that type")
        client.ensure_metadata_table()

    @staticmethod
    def supports_inheritance() -> bool:
        return False

    def initial_metadata_load(self) -> list:
        for _, data in self.client.read_all_metadata():
            self.catalog.put(unpack_metadata(data))
        return sort_super_types_first([m.meta.descriptor for m in self.catalog.mappers.values()])

    def initial_data_load(self, partition_id: int | None = None, partitions: int = 1):
        """Every entry; or, with `partition_id`, only that space partition's routing share (routing.py):
        a type routed by its id is read by the partition's token range only; another type is read
        whole and filtered (as GigaSpaces partitions did)."""
        if partition_id is not None and not (isinstance(partitions, int) and 0 <= partition_id < partitions):
            raise InvalidRequest(f"partition_id must be in 0..{partitions - 1}, got {partition_id!r}")
        whole = partition_id is None or partitions == 1
        for descriptor in sort_super_types_first([m.meta.descriptor for m in self.catalog.mappers.values()]):
            m = self.catalog.mappers[descriptor.type_name]
            query = self.initial_load_queries.get(descriptor.type_name)
            if query is not None:
                docs = self.get_data_iterator(query) or ()
            else:
                share = None if whole or not routes_by_key(m) else token_range(partition_id, partitions)
                docs = (m.from_columns(m.key_from_store(key), cols)
                        for key, cols in self.client.scan_rows(m.meta.cf_name, m.meta.key_column, self.batch_limit,
                                                               share))
                if share is not None:
                    yield from docs
                    continue
            for doc in docs:
                if whole or partition_of(routing_token(m, doc.properties), partitions) == partition_id:
                    yield doc

    def get_by_id(self, type_name: str, id_value):
        m = self.catalog.get(type_name)
        if m is None or id_value is None:
            return None
        cols = self.client.read_row(m.meta.cf_name, m.meta.key_column, m.key_to_store(id_value))
        return m.from_columns(id_value, cols) if cols else None

    def get_data_iterator_by_ids(self, type_name: str, ids):
        m = self.catalog.get(type_name)
        if m is None:
            return iter(())
        return self._by_ids(m, [i for i in ids if i is not None], self.batch_limit)

    def _by_ids(self, m: Mapper, ids: list, page: int, restrictions=()):
        it = iter(ids)
        while chunk := list(islice(it, page)):
            keys = [m.key_to_store(i) for i in chunk]
            for id_value, key, cols in zip(chunk, keys, self.client.read_rows(m.meta.cf_name, m.meta.key_column, keys),
                                           strict=True):
                if cols and _row_matches(m, key, dict(cols), restrictions):
                    yield m.from_columns(id_value, cols)

    def get_data_iterator(self, query: DataSourceQuery):
        m = self.catalog.get(query.type_name)
        if m is None:
            return None
        page = min(self.batch_limit, query.batch_size)
        if query.template is not None:
            id_prop = m.meta.descriptor.id_property
            id_value, cols = m.to_columns(query.template, require_id=False)
            restrictions = [Restriction(path, "=", data) for path, data in cols.items()]
            if id_value is not None:
                restrictions.append(Restriction(id_prop, "=", m.key_to_store(id_value)))
        else:
            restrictions = [_encoded(m, r) for r in restrictions_of(query)]
        return self._query(m, restrictions, page)

    def _query(self, m: Mapper, restrictions: list[Restriction], page: int):
        meta = m.meta
        by_id = [r for r in restrictions if r.path == meta.descriptor.id_property and r.op == "="]
        if by_id:
            return self._by_ids(m, [m.key_from_store(by_id[0].value)], page, restrictions)
        if not restrictions:
            return (m.from_columns(m.key_from_store(k), cols)
                    for k, cols in self.client.scan_rows(meta.cf_name, meta.key_column, page))
        indexed = [r for r in restrictions if r.op == "=" and r.path in meta.indexes]
        if not indexed:
            paths = ", ".join(f"{r.path} {r.op}" for r in restrictions)
            raise InvalidRequest(f"query on {meta.type_name} ({paths}) needs an equality on an indexed property "
                                 f"(indexed: {sorted(meta.indexes) or 'none'}); add an index with on_add_index "
                                 "or declare it in the type descriptor")
        return self._indexed(m, indexed[0], restrictions, page)

    def _indexed(self, m: Mapper, lookup: Restriction, restrictions, page: int):
        meta = m.meta
        for keys in self.client.index_keys(meta.cf_name, meta.key_column, lookup.path, lookup.value, page):
            for key, cols in zip(keys, self.client.read_rows(meta.cf_name, meta.key_column, keys), strict=True):
                if cols and _row_matches(m, key, dict(cols), restrictions):
                    yield m.from_columns(m.key_from_store(key), cols)


def _encoded(m: Mapper, r: Restriction) -> Restriction:
    """A restriction with its parameter encoded like the column (the id: like the row key)."""
    if r.path == m.meta.descriptor.id_property:
        return Restriction(r.path, r.op, m.key_to_store(r.value))
    return Restriction(r.path, r.op, m.encode_column(r.path, r.value))


def _row_matches(m: Mapper, key, cols: dict, restrictions) -> bool:
    for r in restrictions:
        if r.path == m.meta.descriptor.id_property:
            stored, wanted = m.key_from_store(key), m.key_from_store(r.value)
        else:
            raw = cols.get(r.path)
            if raw is None:
                return False
            if r.op == "=":
                if raw != r.value:
                    return False
                continue
            stored, wanted = m.decode_column(r.path, raw), m.decode_column(r.path, r.value)
        try:
            if not OPERATORS[r.op](stored, wanted):
                return False
        except TypeError:
            return False
    return True
