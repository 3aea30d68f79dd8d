"""The endpoint and the data source against a real 3-node cluster: the original's scenarios
(section 5 of the spec) and rules of section 2 that need a store."""
import dataclasses
import datetime as dt
import decimal
import uuid

import pytest

from engine.errors import InvalidRequest
from persistency.config import open_backend
from persistency.data_source import SpaceDataSource, sort_super_types_first
from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.mapping import MappingError
from persistency.operation import (
    DataSyncOperation,
    OperationsBatchData,
    OperationType,
    TransactionData,
)
from persistency.query import DataSourceQuery
from persistency.serializer import register_class
from persistency.sync_endpoint import SpaceSynchronizationEndpoint, SynchronizationError

pytestmark = pytest.mark.slow

W, U, P, R = OperationType.WRITE, OperationType.UPDATE, OperationType.PARTIAL_UPDATE, OperationType.REMOVE


@register_class
@dataclasses.dataclass
class Pojo1:
    name: str = None


@register_class
@dataclasses.dataclass
class Pojo2:
    name: str = None
    age: int = None
    uid: uuid.UUID = None


@register_class
@dataclasses.dataclass
class Primitives:
    flag: bool = None
    small: int = None
    ratio: float = None
    data: bytes = None
    ints: list = None
    floats: tuple = None


class HarnessFilter:
    def should_flatten(self, ctx):
        return ctx.current_nesting_level <= 10


def batch(*ops):
    return OperationsBatchData([DataSyncOperation(kind, doc) for kind, doc in ops])


def ids_of(docs, prop="id"):
    return sorted(d[prop] for d in docs)


@pytest.fixture
def pair(make_client):
    """(endpoint, data source) on separate clients, default serializers."""
    return SpaceSynchronizationEndpoint(make_client()), SpaceDataSource(make_client())


def simple_type(name="TestType", **kw):
    return SpaceTypeDescriptor(name, "id", fixed_properties={"id": "long", "some_prop": "long"}, **kw)


def test_basic_round_trip_with_dynamic_types(pair):
    endpoint, source = pair
    desc = SpaceTypeDescriptor("TestColumnFamily", "keyColumn",
                               fixed_properties={"keyColumn": "uuid", "longColumn": "long", "stringColumn": "string",
                                                 "bigintColumn": "bigint", "bigDecimalColumn": "decimal"})
    endpoint.on_introduce_type(desc)
    key = uuid.uuid4()
    doc = SpaceDocument("TestColumnFamily", {
        "keyColumn": key, "longColumn": 2 ** 40, "stringColumn": "s", "bigintColumn": 2 ** 100,
        "bigDecimalColumn": decimal.Decimal("12.340"), "dynInt": 3333, "dynDate": dt.datetime(1970, 1, 1, 0, 0, 1, 234000),
        "dynFloat": 3434.6, "dynDouble": 123.5, "dynBool": True, "dynBytes": b"\x7b", "dynChar": "a"})
    endpoint.on_operations_batch_synchronization(batch((W, doc)))
    assert [d.type_name for d in source.initial_metadata_load()] == ["TestColumnFamily"]
    loaded = list(source.initial_data_load())
    assert loaded == [doc]
    assert all(type(loaded[0][k]) is type(v) for k, v in doc.properties.items())
    assert source.get_by_id("TestColumnFamily", key) == doc
    assert source.get_by_id("TestColumnFamily", uuid.uuid4()) is None
    assert source.get_by_id("NoSuchType", key) is None
    for template in ({}, {"keyColumn": key}):
        assert list(source.get_data_iterator(DataSourceQuery("TestColumnFamily", SpaceDocument("x", template)))) == [doc]
    assert source.get_data_iterator(DataSourceQuery("NoSuchType", sql="", params=())) is None


def test_write_remove_rewrite_across_batches(pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    source.initial_metadata_load()

    def doc(i):
        return SpaceDocument("TestType", {"id": i, "some_prop": i})

    def loaded():
        docs = list(source.initial_data_load())
        assert all(d["some_prop"] == d["id"] for d in docs)
        return ids_of(docs)

    endpoint.on_operations_batch_synchronization(batch((W, doc(1)), (W, doc(2)), (W, doc(3))))
    assert loaded() == [1, 2, 3]
    endpoint.on_operations_batch_synchronization(batch((R, doc(1))))
    assert loaded() == [2, 3]
    endpoint.on_operations_batch_synchronization(batch(*[(W, doc(i)) for i in (1, 2, 3, 4)]))
    assert loaded() == [1, 2, 3, 4]
    endpoint.on_operations_batch_synchronization(batch((W, doc(1)), (R, doc(2)), (W, doc(3)), (W, doc(5)), (R, doc(6))))
    assert loaded() == [1, 3, 4, 5]
    # per key, in batch order: write-then-remove leaves nothing, remove-then-write the new value
    endpoint.on_transaction_synchronization(TransactionData([DataSyncOperation(W, doc(7)), DataSyncOperation(R, doc(7)),
                                                             DataSyncOperation(R, doc(8)), DataSyncOperation(W, doc(8))]))
    assert loaded() == [1, 3, 4, 5, 8]


def test_update_replaces_partial_update_merges_write_upserts_and_replay_is_idempotent(pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    t = "TestType"
    first = [DataSyncOperation(W, SpaceDocument(t, {"id": 1, "some_prop": 1, "a": "x", "b": "y"}), timestamp_us=1_000)]
    endpoint.on_operations_batch_synchronization(OperationsBatchData(first))
    endpoint.on_operations_batch_synchronization(batch((W, SpaceDocument(t, {"id": 1, "c": "z"}))))
    assert source.get_by_id(t, 1).properties == {"id": 1, "some_prop": 1, "a": "x", "b": "y", "c": "z"}
    endpoint.on_operations_batch_synchronization(batch((P, SpaceDocument(t, {"id": 1, "a": "x2", "b": None}))))
    assert source.get_by_id(t, 1).properties == {"id": 1, "some_prop": 1, "a": "x2", "b": "y", "c": "z"}
    ops = [DataSyncOperation(U, SpaceDocument(t, {"id": 1, "b": "only"}), timestamp_us=endpoint.clock.next()),
           DataSyncOperation(W, SpaceDocument(t, {"id": 2, "some_prop": 2}), timestamp_us=endpoint.clock.next())]
    endpoint.on_operations_batch_synchronization(OperationsBatchData(ops))
    state = sorted((d["id"], sorted(d.properties.items())) for d in source.initial_data_load())
    assert source.get_by_id(t, 1).properties == {"id": 1, "b": "only"}
    endpoint.on_operations_batch_synchronization(OperationsBatchData(ops))   # at-least-once: a replay
    endpoint.on_operations_batch_synchronization(OperationsBatchData(first))  # an old one, even
    assert sorted((d["id"], sorted(d.properties.items())) for d in source.initial_data_load()) == state


def test_errors_missing_id_unknown_type_unsupported_kind_and_nothing_applied(backend_agnostic, pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    good = (W, SpaceDocument("TestType", {"id": 10, "some_prop": 1}))
    with pytest.raises(MappingError, match="missing id property value"):
        endpoint.on_operations_batch_synchronization(batch(good, (W, SpaceDocument("TestType", {"some_prop": 1}))))
    with pytest.raises(SynchronizationError, match="Could not find column family for type name: Nope"):
        endpoint.on_operations_batch_synchronization(batch(good, (W, SpaceDocument("Nope", {"id": 1}))))
    for kind in (OperationType.REMOVE_BY_UID, OperationType.CHANGE):
        with pytest.raises(SynchronizationError, match="not supported"):
            endpoint.on_operations_batch_synchronization(batch(good, (kind, SpaceDocument("TestType", {"id": 1}))))
    with pytest.raises(MappingError, match="out of range"):
        endpoint.on_operations_batch_synchronization(batch(good, (W, SpaceDocument("TestType", {"id": 2 ** 64}))))
    assert source.get_by_id("TestType", 10) is None   # a bad batch sends nothing


def test_read_by_ids_skips_missing_and_keeps_request_order(pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    endpoint.on_operations_batch_synchronization(batch(*[(W, SpaceDocument("TestType", {"id": i, "some_prop": i}))
                                                         for i in (1, 2, 3)]))
    got = list(source.get_data_iterator_by_ids("TestType", [3, 0, 1, 2]))
    assert [d["id"] for d in got] == [3, 1, 2] and [d["some_prop"] for d in got] == [3, 1, 2]
    assert list(source.get_data_iterator_by_ids("Unknown", [1])) == []


def test_pojo_id_and_properties_added_later(make_client):
    endpoint = SpaceSynchronizationEndpoint(make_client(), flatten_filter=HarnessFilter())
    source = SpaceDataSource(make_client())
    endpoint.on_introduce_type(SpaceTypeDescriptor("PojoKeyed", "id", fixed_properties={"id": Pojo2}))
    key = Pojo2("n", 3, uuid.uuid4())
    endpoint.on_operations_batch_synchronization(batch((W, SpaceDocument("PojoKeyed", {"id": key, "some_prop": True}))))
    assert source.get_by_id("PojoKeyed", key).properties == {"id": key, "some_prop": True}
    endpoint.on_operations_batch_synchronization(batch((W, SpaceDocument("PojoKeyed", {"id": key, "new_prop": 2,
                                                                                        "pojo": Pojo1("123")}))))
    got = source.get_by_id("PojoKeyed", key)
    assert got.properties == {"id": key, "some_prop": True, "new_prop": 2, "pojo": Pojo1("123")}
    assert type(got["pojo"]) is Pojo1   # a POJO, not a document
    source.initial_metadata_load()
    assert list(source.initial_data_load()) == [got]


def test_id_only_entry_is_not_persisted(pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    endpoint.on_operations_batch_synchronization(batch((W, SpaceDocument("TestType", {"id": 1}))))
    source.initial_metadata_load()
    assert source.get_by_id("TestType", 1) is None and list(source.initial_data_load()) == []


def test_many_types_small_pages_and_every_row_once(make_client):
    endpoint = SpaceSynchronizationEndpoint(make_client())
    source = SpaceDataSource(make_client(), batch_limit=10)
    types = {"LongKeyed": "long", "UuidKeyed": "uuid", "StringKeyed": "string"}
    for name, id_type in types.items():
        endpoint.on_introduce_type(SpaceTypeDescriptor(name, "id", fixed_properties={"id": id_type}))
    written = {name: set() for name in types}
    n = 0
    for _ in range(6):
        ops = []
        for _ in range(20):
            n += 1
            for name, id_type in types.items():
                key = {"long": n, "uuid": uuid.UUID(int=n), "string": f"k{n}"}[id_type]
                written[name].add(key)
                ops.append((W, SpaceDocument(name, {"id": key, "v": n, "w": "x" * (n % 3)})))
        endpoint.on_operations_batch_synchronization(batch(*ops))
    source.initial_metadata_load()
    loaded = list(source.initial_data_load())
    assert len(loaded) == 3 * 120
    for name in types:
        assert {d["id"] for d in loaded if d.type_name == name} == written[name]
    for page in (1, 2, 3, 9, 11):
        q = DataSourceQuery("LongKeyed", SpaceDocument("LongKeyed", {}), batch_size=page)
        assert sorted(d["id"] for d in source.get_data_iterator(q)) == sorted(written["LongKeyed"])


def test_pojo_with_primitives_and_arrays(pair):
    endpoint, source = pair
    endpoint.on_introduce_type(SpaceTypeDescriptor("WithPrims", "id", fixed_properties={"id": "int", "fixed": Primitives}))
    value = Primitives(True, 7, 1.25, b"\x00\xff", [1, 2, 3], (0.5, 1.5))
    doc = SpaceDocument("WithPrims", {"id": 1, "fixed": value, "dynamic": value})
    endpoint.on_operations_batch_synchronization(batch((W, doc)))
    source.initial_metadata_load()
    assert list(source.initial_data_load()) == [doc]


def test_type_descriptor_round_trip_and_hierarchy_order(backend_agnostic, make_client):
    endpoint = SpaceSynchronizationEndpoint(make_client())
    parents = {"d4": "d1", "d7": "d4", "d5": "d2", "d6": "d2", "d8": "d5", "d9": "d8", "d10": "d8"}
    full = SpaceTypeDescriptor("d9", "id", routing_property="r", super_type_name="d8",
                               fixed_properties={"id": "uuid", "p": Pojo2, "doc": SpaceDocument, "n": "decimal"},
                               indexes={"n": "NONE"}, auto_generate_id=True, supports_optimistic_locking=True,
                               fifo_support="ALL", fifo_grouping_property="p.name", fifo_grouping_indexes=("n",),
                               storage_type="BINARY", replicable=False, object_class="x.Y")
    for i in (10, 8, 7, 6, 5, 4, 3, 2, 1):
        endpoint.on_introduce_type(SpaceTypeDescriptor(f"d{i}", "id", super_type_name=parents.get(f"d{i}")))
    endpoint.on_introduce_type(full)
    endpoint.on_introduce_type(full)   # twice: a no-op
    loaded = SpaceDataSource(make_client()).initial_metadata_load()
    names = [d.type_name for d in loaded]
    assert sorted(names) == sorted(f"d{i}" for i in range(1, 11))
    for child, parent in parents.items():
        assert names.index(parent) < names.index(child)
    assert next(d for d in loaded if d.type_name == "d9") == full
    again = [d.type_name for d in sort_super_types_first(loaded[::-1])]
    assert all(again.index(parent) < again.index(child) for child, parent in parents.items())


def test_declarative_configuration_and_client_rules(make_config, make_client):
    client = make_client(read_consistency="QUORUM", write_consistency="ONE", gc_grace_seconds=864000)
    endpoint = SpaceSynchronizationEndpoint(client)
    source = SpaceDataSource(make_client(), batch_limit=100)
    endpoint.on_introduce_type(simple_type("Configured"))
    doc = SpaceDocument("Configured", {"id": 5, "some_prop": 6})
    endpoint.on_operations_batch_synchronization(batch((W, doc)))
    source.initial_metadata_load()
    assert list(source.initial_data_load()) == [doc]
    with pytest.raises(InvalidRequest, match="ANY"):
        make_client(read_consistency="ANY")
    with pytest.raises(InvalidRequest, match="does not exist"):
        open_backend(dataclasses.replace(make_config(), keyspace_name="no_such_keyspace"))
    with pytest.raises(InvalidRequest, match="gc_grace_seconds"):
        make_client(gc_grace_seconds=-1)
    client.close()
    client.close()   # idempotent


def test_unsupported_queries_fail_loudly(backend_agnostic, pair):
    endpoint, source = pair
    endpoint.on_introduce_type(simple_type())
    endpoint.on_operations_batch_synchronization(batch((W, SpaceDocument("TestType", {"id": 1, "some_prop": 1}))))
    for sql, params in (("some_prop = ?", (1,)), ("some_prop > ?", (0,)), ("id = ? OR some_prop = ?", (1, 1)),
                        ("some_prop = 1", ()), ("some_prop != ?", (1,))):
        with pytest.raises(InvalidRequest):
            list(source.get_data_iterator(DataSourceQuery("TestType", sql=sql, params=params)))
    got = source.get_data_iterator(DataSourceQuery("TestType", sql="id = ? AND some_prop >= ?", params=(1, 1)))
    assert [d["id"] for d in got] == [1]
    got = source.get_data_iterator(DataSourceQuery("TestType", sql="id = ? AND some_prop > ?", params=(1, 1)))
    assert list(got) == []


def test_colliding_type_names_are_detected(backend_agnostic, pair):
    endpoint, _ = pair
    endpoint.on_introduce_type(simple_type("a.b"))
    with pytest.raises(SynchronizationError, match="both map to table a_b"):
        endpoint.on_introduce_type(simple_type("a$b"))
