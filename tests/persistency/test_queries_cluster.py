"""Template and SQL queries answered through the secondary index, against a real 3-node cluster:
the original's scenarios 1, 2, 3, 12, 13 and 29 (indexes at introduction, after introduction and
after data exists; nested paths; every primitive type; pages of every size)."""
import dataclasses
import datetime as dt
import uuid

import pytest

from engine.errors import InvalidRequest
from persistency.data_source import SpaceDataSource
from persistency.descriptor import IndexType, SpaceDocument, SpaceTypeDescriptor
from persistency.operation import DataSyncOperation, OperationsBatchData, OperationType
from persistency.query import DataSourceQuery
from persistency.serializer import register_class
from persistency.sync_endpoint import SpaceSynchronizationEndpoint

pytestmark = pytest.mark.slow
BASIC = IndexType.BASIC


@register_class
@dataclasses.dataclass
class Pojo4:
    date_property: dt.datetime = None
    name: str = None


@register_class
@dataclasses.dataclass
class Pojo3:
    pojo4_1: Pojo4 = None
    age: int = None


class HarnessFilter:
    def should_flatten(self, ctx):
        return ctx.current_nesting_level <= 10


def write(endpoint, *docs):
    endpoint.on_operations_batch_synchronization(
        OperationsBatchData([DataSyncOperation(OperationType.WRITE, d) for d in docs]))


def template(source, type_name, batch_size=1000, **props):
    return list(source.get_data_iterator(DataSourceQuery(type_name, SpaceDocument(type_name, props),
                                                         batch_size=batch_size)))


def sql(source, type_name, query, *params, batch_size=1000):
    return list(source.get_data_iterator(DataSourceQuery(type_name, sql=query, params=params, batch_size=batch_size)))


def test_template_queries_on_indexed_fixed_and_dynamic_properties(make_client):
    endpoint, source = SpaceSynchronizationEndpoint(make_client()), SpaceDataSource(make_client())
    endpoint.on_introduce_type(SpaceTypeDescriptor(
        "TestColumnFamily", "keyColumn", fixed_properties={"keyColumn": "uuid", "longColumn": "long",
                                                           "stringColumn": "string", "floatColumn": "float"},
        indexes={"stringColumn": BASIC, "floatColumn": BASIC}))
    endpoint.on_add_index("TestColumnFamily", {"longColumn": BASIC})
    endpoint.on_add_index("TestColumnFamily", {"longColumn": BASIC})   # again: a no-op
    values = {"i": 3333, "d": dt.datetime(1970, 1, 1, 0, 0, 1, 234000), "f": 3434.6, "b": True, "raw": b"\x7b",
              "c": "a", "big": 2 ** 70}
    endpoint.on_add_index("TestColumnFamily", {k: BASIC for k in values})   # dynamic paths, before any write
    key = uuid.uuid4()
    doc = SpaceDocument("TestColumnFamily", {"keyColumn": key, "longColumn": 7, "stringColumn": "s",
                                             "floatColumn": 1.5, **values})
    other = SpaceDocument("TestColumnFamily", {"keyColumn": uuid.uuid4(), "longColumn": 8, "stringColumn": "s",
                                               "floatColumn": 2.5, "i": 1, "b": False})
    write(endpoint, doc, other)
    source.initial_metadata_load()
    assert template(source, "TestColumnFamily", longColumn=7) == [doc]
    assert template(source, "TestColumnFamily", stringColumn="s", longColumn=7) == [doc]
    assert template(source, "TestColumnFamily", keyColumn=key, stringColumn="s") == [doc]
    assert template(source, "TestColumnFamily", floatColumn=1.5) == [doc]          # a 32-bit float
    assert len(template(source, "TestColumnFamily", stringColumn="s")) == 2
    for name, value in values.items():                                            # every primitive type
        assert template(source, "TestColumnFamily", **{name: value}) == [doc], name
    assert template(source, "TestColumnFamily", i=3333, b=True, c="a") == [doc]
    assert template(source, "TestColumnFamily", i=3333, b=False) == []
    assert template(source, "TestColumnFamily", longColumn=99) == []


def test_sql_equalities_ranges_and_nested_paths_with_indexes_added_at_three_moments(make_client):
    endpoint = SpaceSynchronizationEndpoint(make_client(), flatten_filter=HarnessFilter())
    source = SpaceDataSource(make_client())
    endpoint.on_introduce_type(SpaceTypeDescriptor(
        "Nested", "id", fixed_properties={"id": "long", "a": "int", "b": "string", "pojoInsidePojo": Pojo3},
        indexes={"a": BASIC, "pojoInsidePojo.pojo4_1.date_property": BASIC}))
    endpoint.on_add_index("Nested", {"documentInsideDocument.spaceDocument.booleanProperty": BASIC})
    docs = []
    for i in range(12):
        docs.append(SpaceDocument("Nested", {
            "id": i, "a": i % 3, "b": f"b{i}",
            "pojoInsidePojo": Pojo3(Pojo4(dt.datetime(2020, 1, 1 + i), f"n{i}"), i),
            "documentInsideDocument": SpaceDocument("Outer", {"spaceDocument": SpaceDocument(
                "Inner", {"booleanProperty": i == 5, "n": i})}),
            **({"pojoWithNulls": Pojo3(age=i)} if i % 2 else {})}))
    write(endpoint, *docs)
    endpoint.on_add_index("Nested", {"b": BASIC, "pojoInsidePojo.age": BASIC})   # after data exists
    source.initial_metadata_load()
    assert sql(source, "Nested", "b = ?", "b4") == [docs[4]]
    assert sql(source, "Nested", "a = ? AND b = ?", 1, "b4") == [docs[4]]
    assert sql(source, "Nested", "a = ? AND b = ? AND id = ? AND pojoInsidePojo.age = ?", 1, "b4", 4, 4) == [docs[4]]
    assert sql(source, "Nested", "pojoInsidePojo.pojo4_1.date_property = ?", dt.datetime(2020, 1, 8)) == [docs[7]]
    assert sql(source, "Nested", "documentInsideDocument.spaceDocument.booleanProperty = ?", True) == [docs[5]]
    got = sql(source, "Nested", "a = ? AND pojoInsidePojo.age > ? AND pojoInsidePojo.age <= ?", 0, 3, 9)
    assert sorted(d["id"] for d in got) == [6, 9]
    assert got[0]["pojoInsidePojo"] == docs[got[0]["id"]]["pojoInsidePojo"]   # a POJO again, nested and all
    for page in (1, 2, 3, 4, 5):   # a page size, not a cap: every match exactly once
        assert sorted(d["id"] for d in sql(source, "Nested", "a = ?", 2, batch_size=page)) == [2, 5, 8, 11]
    with pytest.raises(InvalidRequest, match="indexed property"):
        sql(source, "Nested", "pojoInsidePojo.pojo4_1.name = ?", "n1")           # not indexed
    with pytest.raises(InvalidRequest, match="indexed property"):
        sql(source, "Nested", "a > ?", 1)                                        # a range alone


def test_stale_index_entries_never_surface(make_client):
    endpoint, source = SpaceSynchronizationEndpoint(make_client()), SpaceDataSource(make_client())
    endpoint.on_introduce_type(SpaceTypeDescriptor("Moving", "id", fixed_properties={"id": "long", "state": "string"},
                                                   indexes={"state": BASIC}))
    write(endpoint, *[SpaceDocument("Moving", {"id": i, "state": "new"}) for i in range(5)])
    endpoint.on_operations_batch_synchronization(OperationsBatchData(
        [DataSyncOperation(OperationType.UPDATE, SpaceDocument("Moving", {"id": 1, "state": "done"})),
         DataSyncOperation(OperationType.REMOVE, SpaceDocument("Moving", {"id": 2})),
         DataSyncOperation(OperationType.PARTIAL_UPDATE, SpaceDocument("Moving", {"id": 3, "state": "done"}))]))
    source.initial_metadata_load()
    assert sorted(d["id"] for d in sql(source, "Moving", "state = ?", "new")) == [0, 4]
    assert sorted(d["id"] for d in sql(source, "Moving", "state = ?", "done")) == [1, 3]
