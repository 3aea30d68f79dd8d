"""The space with its mirror and data source against a real 3-node cluster: a restart loads
everything back, read-through, poison operations parked, a node down during synchronization
(QUORUM, RF 3) and a SIGKILLed space process lose nothing."""
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys

import pytest

from engine.errors import InvalidRequest
from persistency.data_source import SpaceDataSource
from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.dynamic_serializer import DynamicPropertyValueSerializer
from persistency.mirror import Mirror
from persistency.operation import DataSyncOperation, OperationsBatchData, OperationType
from persistency.serializer import register_class
from persistency.space import EntryNotInSpace, Space
from persistency.sync_endpoint import SpaceSynchronizationEndpoint

pytestmark = pytest.mark.slow


@register_class
@dataclasses.dataclass
class Address:
    street: str = None
    number: int = None


@register_class
@dataclasses.dataclass
class Customer:
    id: int = None
    name: str = None
    region: str = None
    address: Address = None
    tags: list = None


def make_space(make_client, log_dir, **mirror_kw):
    mirror = Mirror(SpaceSynchronizationEndpoint(make_client()), str(log_dir), **mirror_kw)
    return Space("test", mirror=mirror, data_source=SpaceDataSource(make_client(), batch_limit=50), partitions=3)


def test_space_round_trip_through_a_restart(make_client, tmp_path):
    space = make_space(make_client, tmp_path / "log", batch_size=20, interval_ms=100)
    space.register_type(SpaceTypeDescriptor.of_class(Customer, "id", routing_property="region"))
    space.register_type(SpaceTypeDescriptor("Order", "id", fixed_properties={"id": "string", "total": "decimal"}))
    for i in range(60):
        space.write(Customer(i, f"c{i}", ["eu", "us"][i % 2], Address(f"s{i}", i), [i, "x"]))
        space.write(SpaceDocument("Order", {"id": f"o{i}", "customer": i, "placed": dt.datetime(2024, 1, 1, i % 24),
                                            "lines": SpaceDocument("Lines", {"n": i})}))
    space.write(Customer(0, "renamed", "eu"))                    # a full replace: address and tags gone
    space.update(Customer(2, "updated", "eu", Address("u", 2)))
    space.partial_update(Customer.__module__ + ".Customer", 4, {"name": "partial"})
    space.take(SpaceDocument("Order", {"id": "o5"}))
    with pytest.raises(EntryNotInSpace):
        space.update(Customer(999, "ghost"))
    with pytest.raises(InvalidRequest, match="not registered"):
        space.write(SpaceDocument("Unknown", {"id": 1}))
    expected_customers = {c.id: c for c in space.read_multiple(Customer())}
    expected_orders = {o["id"]: o for o in space.read_multiple(SpaceDocument("Order", {}))}
    assert len(expected_customers) == 60 and len(expected_orders) == 59
    assert space.read(Customer(id=0)) == Customer(0, "renamed", "eu")
    assert space.close()

    again = make_space(make_client, tmp_path / "log2")
    assert again.start() == 119
    assert {c.id: c for c in again.read_multiple(Customer())} == expected_customers
    assert {o["id"]: o for o in again.read_multiple(SpaceDocument("Order", {}))} == expected_orders
    assert again.read_by_id(Customer.__module__ + ".Customer", 4).name == "partial"
    assert sorted(c.id for c in again.read_multiple(Customer.__module__ + ".Customer", "region = ? AND id < ?",
                                                    ("us", 10))) == [1, 3, 5, 7, 9]
    got = sorted(c.id for c in again.read_multiple(Customer.__module__ + ".Customer", "region = ? AND address.number < ?",
                                                   ("us", 10)))
    assert got == [1, 3, 5, 7, 9]
    again.close()

    cold = make_space(make_client, tmp_path / "log3")   # not started: reads through by id
    cold.types = dict(again.types)
    assert cold.read_by_id("Order", "o7") == expected_orders["o7"] and cold.count("Order") == 1
    assert cold.read_by_id("Order", "o5") is None
    cold.close()


class PickySerializer(DynamicPropertyValueSerializer):
    """A user serializer with a bug: a TypeError for one value (issue 15, bug 3)."""

    def to_bytes(self, value):
        if value == "unencodable":
            raise TypeError("PickySerializer cannot encode this")
        return super().to_bytes(value)


def test_poison_operations_are_parked_and_the_rest_delivered(make_client, tmp_path):
    client = make_client()
    endpoint = SpaceSynchronizationEndpoint(client, dynamic_serializer=PickySerializer())
    endpoint.on_introduce_type(SpaceTypeDescriptor("Good", "id", fixed_properties={"id": "long"}))
    mirror = Mirror(endpoint, str(tmp_path), batch_size=10, interval_ms=50)
    for i in range(9):
        mirror.enqueue(OperationType.WRITE, SpaceDocument("Good", {"id": i, "v": i}))
        if i == 4:
            mirror.enqueue(OperationType.WRITE, SpaceDocument("NeverIntroduced", {"id": 1}))
        if i == 6:
            mirror.enqueue(OperationType.WRITE, SpaceDocument("Good", {"id": 100, "v": "unencodable"}))
    assert mirror.flush(timeout_s=60)
    assert mirror.metrics["parked"] == 2 and mirror.metrics["delivered"] == 11 and mirror.metrics["retries"] == 0
    assert mirror.close(timeout_s=60)
    parked = sorted(client.dead_letters(), key=lambda p: p["type_name"])
    assert [p["type_name"] for p in parked] == ["Good", "NeverIntroduced"]
    assert "Could not find column family" in parked[1]["error"]
    assert parked[0]["error"] == "TypeError: PickySerializer cannot encode this"
    source = SpaceDataSource(make_client(), dynamic_serializer=PickySerializer())
    assert sorted(d["id"] for d in source.get_data_iterator_by_ids("Good", range(9))) == list(range(9))


def test_a_node_down_during_synchronization_loses_nothing(cluster, make_client, tmp_path):
    space = make_space(make_client, tmp_path, batch_size=25, interval_ms=100, retry_initial_ms=50)
    space.register_type(SpaceTypeDescriptor("Reading", "id", fixed_properties={"id": "long", "value": "double"}))
    for i in range(100):
        space.write(SpaceDocument("Reading", {"id": i, "value": i / 2}))
    victim = cluster.nodes[2]
    cluster.kill(victim)
    try:
        for i in range(100, 300):
            space.write(SpaceDocument("Reading", {"id": i, "value": i / 2, "late": True}))
        assert space.close(timeout_s=120)
        source = SpaceDataSource(make_client())   # QUORUM reads: 2 of the 3 replicas
        source.initial_metadata_load()
        loaded = {d["id"]: d for d in source.initial_data_load()}
        assert sorted(loaded) == list(range(300)) and loaded[250]["late"] is True
    finally:
        cluster.start([victim])
        cluster.wait_for_up(victim)


def test_a_killed_space_process_loses_no_logged_operation(make_config, make_client, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    script = os.path.join(os.path.dirname(__file__), "crash_writer.py")
    config = make_config()
    args = [config.backend, ",".join(config.host_list()), str(config.port or "-"), config.keyspace_name]
    proc = subprocess.Popen([sys.executable, script, *args, str(tmp_path), "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("written 200 pending 202"), line + proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    source = SpaceDataSource(make_client())
    assert source.get_by_id("Crashed", 3) is None                  # nothing was sent before the kill
    mirror = Mirror(SpaceSynchronizationEndpoint(make_client()), str(tmp_path), interval_ms=10)
    assert mirror.metrics["resumed"] == 202
    assert mirror.close(timeout_s=60)
    source.initial_metadata_load()
    loaded = {d["id"]: d for d in source.initial_data_load()}
    assert sorted(loaded) == [0] + list(range(2, 200))
    assert loaded[0]["tag"] == "partial" and loaded[199].properties == {"id": 199, "n": 199, "tag": "t199"}


def test_each_partition_loads_its_own_share_in_parallel(make_client, tmp_path):
    endpoint = SpaceSynchronizationEndpoint(make_client())
    by_id = SpaceTypeDescriptor("ById", "id", fixed_properties={"id": "long"})
    by_region = SpaceTypeDescriptor("ByRegion", "id", fixed_properties={"id": "string"}, routing_property="region")
    for d in (by_id, by_region):
        endpoint.on_introduce_type(d)
    ops = [DataSyncOperation(OperationType.WRITE, SpaceDocument("ById", {"id": i, "v": i})) for i in range(150)]
    ops += [DataSyncOperation(OperationType.WRITE, SpaceDocument("ByRegion", {"id": f"r{i}", "region": f"z{i % 7}"}))
            for i in range(40)]
    endpoint.on_operations_batch_synchronization(OperationsBatchData(ops))
    source = SpaceDataSource(make_client(), batch_limit=30)
    source.initial_metadata_load()
    everything = {(d.type_name, d["id"]) for d in source.initial_data_load()}
    assert len(everything) == 190
    shares = [[(d.type_name, d["id"]) for d in source.initial_data_load(i, 4)] for i in range(4)]
    assert sorted(k for share in shares for k in share) == sorted(everything)      # disjoint, complete
    assert all(len(share) > 10 for share in shares)

    seen = []
    space = Space("loader", data_source=source, partitions=4)
    assert space.start(concurrency=2, progress=lambda *a: seen.append(a)) == 190
    assert sorted(p for p, _, done in seen if done) == [0, 1, 2, 3]
    for i, share in enumerate(shares):   # what partition i loaded is what it holds
        held = {(t, k) for t, entries in space.partitions[i].items() for k in
                (space.read_by_id(t, e["id"])["id"] for e in entries.values())}
        assert held == set(share)
    sequential = Space("loader", data_source=source, partitions=4)
    assert sequential.start(parallel=False) == 190
    assert [{t: set(es) for t, es in p.items()} for p in sequential.partitions] == \
        [{t: set(es) for t, es in p.items()} for p in space.partitions]
