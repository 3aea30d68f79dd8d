"""The replica's write path: one encoding from coordinator to commit log, validation at the
replica, and durability waits that leave the sans-IO node as `Durable` effects."""
from __future__ import annotations

import asyncio
import random
import threading

import msgpack
import pytest

import engine.mutation
import engine.replica_api
import engine.update_check
import engine.partition
import engine.store
import ring.ops.data
import ring.replica
from engine.clock import ManualClock
from engine.commit_log import CommitLog
from engine.store import Store
from ring.client import AsyncCluster
from ring.messages import ClientRequest, Durable, MutationRequest, MutationResponse, Reply, Send
from ring.node import Node, NodeConfig
from ring.runtime.asyncio_tcp import NodeProcess
from ring.runtime.config import NodeSettings
from ring.runtime.durability import DurabilityWaiter
from ring.runtime.sim import Simulation
from tests.ring.test_node import Loop
from tests.ring.test_runtime_smoke import free_port

ME, PEER = "127.0.0.1:9100", "127.0.0.1:9101"


def one_node(tmp_path, sync: str) -> Node:
    store = Store.open(str(tmp_path / "n"), background=False, clock=ManualClock(), commitlog_sync=sync)
    node = Node(NodeConfig(endpoint=ME, host_id="host-0", seeds=[ME]), store, random.Random(0), store.clock)
    node.start(0)
    for op, args in (("create_keyspace", {"name": "ks", "replication": {"class": "SimpleStrategy",
                                                                        "replication_factor": 1}}),
                     ("create_table", {"keyspace": "ks", "name": "kv", "columns": {"k": "int", "v": "text"},
                                       "primary_key": "k"})):
        [reply] = node.submit(0, ClientRequest(1, op, args))
        assert reply.error is None, reply.error
    return node


def payload_of(node, k: int, v: str, ts: int = 1) -> tuple[bytes, bytes]:
    table = node.store.table("ks", "kv")
    key, _, payload = engine.mutation.build_insert_encoded(table, {"k": k, "v": v}, ts, 1, None, 1 << 20)
    return key, payload


def commit_log_payloads(path) -> list[bytes]:
    with CommitLog(str(path / "commitlog")) as log:
        return [p for _, record in log.replay() for _, _, p in msgpack.unpackb(record)]


# -- validation at the replica ---------------------------------------------------------------------

@pytest.mark.parametrize("struct, problem", [
    (b"\xc1 not msgpack", "does not decode"),
    ([None, []], "is not [partition_deletion, rows, range_tombstones]"),
    ([None, [[b"", None, None, [1, 5, b"a"], [0, 5, b""]]], []], "out of order"),
    ([None, [[b"b", None, None], [b"a", None, None]], []], "strictly increasing clustering order"),
    ([None, [[b"", None, None, [0, True, b""]]], []], "cell timestamp True"),
    ([None, [[b"", None, None, [0, -1, b""]]], []], "cell timestamp -1"),
    ([None, [[b"", None, None, [0, 5, None]]], []], "neither live, expiring nor a tombstone"),
    ([[1], [], []], "partition deletion is not"),
    ([None, [], [[b"a", 7, 1, 1]]], "a range tombstone is not"),
])
def test_a_payload_that_does_not_decode_is_an_invalid_request_and_nothing_is_applied(tmp_path, struct, problem):
    node = one_node(tmp_path, "periodic")
    table = node.store.table("ks", "kv")
    payload = struct if isinstance(struct, bytes) else msgpack.packb(struct, use_bin_type=True)
    records = node.store.commit_log.stats["records"]
    [send] = node.step(0, PEER, MutationRequest(7, table.id, b"\x00\x00\x00\x01", payload))
    assert send.to == PEER and send.msg.error.startswith("InvalidRequest: partition update")
    assert problem in send.msg.error
    assert node.store.commit_log.stats["records"] == records
    assert node.store.read_partition(table, b"\x00\x00\x00\x01") is None
    key, good = payload_of(node, 1, "ada")
    [send] = node.step(0, PEER, MutationRequest(8, table.id, key, good))
    assert send.msg.error is None and node.store.get("ks", "kv", {"k": 1})["v"] == "ada"
    node.store.close()


# -- one encoding ----------------------------------------------------------------------------------

def test_a_write_is_encoded_once_and_its_bytes_are_what_each_replica_logs(tmp_path, monkeypatch):
    loop = Loop(tmp_path)
    loop.setup_table(rf=3)
    counts = {"encode": 0, "decode": 0}

    def counting(name, fn):
        def wrapper(*args):
            counts[name] += 1
            return fn(*args)
        return wrapper

    for module in (engine.store, ring.ops.data, ring.replica, engine.partition):
        monkeypatch.setattr(module, "encode_partition", counting("encode", engine.partition.encode_partition))
    monkeypatch.setattr(engine.replica_api, "decode_update_for_apply",
                        counting("decode", engine.update_check.decode_update_for_apply))
    sent = []
    real_run = loop._run

    def run(effects, src):
        sent.extend(e.msg.payload for e in effects if isinstance(e, Send) and isinstance(e.msg, MutationRequest))
        real_run(effects, src)
    loop._run = run
    loop.request(loop.eps[0], "insert", keyspace="ks", table="kv", row={"k": 7, "v": "seven"}, consistency="ALL")
    monkeypatch.undo()
    assert counts == {"encode": 0, "decode": 3}   # built encoded on the coordinator, decoded once per replica
    store = loop.nodes[loop.eps[0]].store
    ts = store.get("ks", "kv", {"k": 7}, writetime=True)["writetime(v)"]
    _, _, expected = engine.mutation.build_insert_encoded(store.table("ks", "kv"), {"k": 7, "v": "seven"}, ts,
                                                          loop.clock.now_s(), None, 1 << 20)
    assert sent == [expected, expected]             # the two remote copies; the local one never leaves
    for i, node in enumerate(loop.nodes.values()):
        node.store.crash()  # a clean close would empty the commit log (everything is flushed)
        assert commit_log_payloads(tmp_path / f"n{i}").count(expected) == 1


# -- durability: the Durable effect ----------------------------------------------------------------

def test_in_periodic_mode_a_replica_acks_at_once(tmp_path):
    node = one_node(tmp_path, "periodic")
    key, payload = payload_of(node, 1, "a")
    [send] = node.step(0, PEER, MutationRequest(3, node.store.table("ks", "kv").id, key, payload))
    assert send == Send(PEER, MutationResponse(3, None))
    node.store.close()


@pytest.mark.parametrize("sync", ["batch", "group"])
def test_in_batch_and_group_modes_the_ack_waits_for_the_driver(tmp_path, sync):
    node = one_node(tmp_path, sync)
    key, payload = payload_of(node, 1, "a")
    [effect] = node.step(0, PEER, MutationRequest(3, node.store.table("ks", "kv").id, key, payload))
    assert type(effect) is Durable and effect.effects == [Send(PEER, MutationResponse(3, None))]
    assert node.store.commit_log._synced < effect.position      # nothing waited for the fsync yet
    node.store.await_durable(effect.position)
    assert node.store.commit_log._synced >= effect.position
    assert node.durable(1, effect) == [Send(PEER, MutationResponse(3, None))]
    assert node.durable(1, effect, "EngineError: commit log sync failed") == \
        [Send(PEER, MutationResponse(3, "EngineError: commit log sync failed"))]
    node.store.close()


def test_the_coordinators_own_ack_counts_only_once_durable(tmp_path):
    node = one_node(tmp_path, "batch")
    effects = node.submit(5, ClientRequest(9, "insert", {"keyspace": "ks", "table": "kv", "row": {"k": 1, "v": "a"}}))
    [durable] = effects                                           # no Reply yet: the local replica is the only one
    assert type(durable) is Durable
    node.store.await_durable(durable.position)
    [reply] = node.durable(6, durable)
    assert type(reply) is Reply and reply.request_id == 9 and reply.error is None
    node.store.close()


def test_a_failed_durability_wait_fails_the_write(tmp_path):
    node = one_node(tmp_path, "batch")
    [durable] = node.submit(5, ClientRequest(9, "insert", {"keyspace": "ks", "table": "kv", "row": {"k": 1, "v": "a"}}))
    [reply] = node.durable(6, durable, "EngineError: commit log sync failed")
    assert type(reply.error).__name__ == "WriteFailure" and "1 failures" in str(reply.error)
    node.store.close()


# -- the drivers -----------------------------------------------------------------------------------

def test_the_waiter_batches_and_runs_off_the_loop(tmp_path):
    store = Store.open(str(tmp_path / "s"), background=False, commitlog_sync="batch")
    store.create_keyspace("ks")
    table = store.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k")
    threads, done = [], []

    def await_durable(position):
        threads.append(threading.current_thread().name)
        store.await_durable(position)

    async def main():
        waiter = DurabilityWaiter(await_durable, lambda effect, error: done.append((effect, error)))
        for k in range(50):
            key, _, payload = engine.mutation.build_insert_encoded(table, {"k": k, "v": "x"}, k + 1, 1, None, 1 << 20)
            waiter.add(Durable(store.apply_mutation(table, key, payload), [k]))
        while len(done) < 50:
            await asyncio.sleep(0.001)
        await waiter.close()
        return waiter

    waiter = asyncio.run(main())
    assert [e.effects for e, _ in done] == [[k] for k in range(50)] and {err for _, err in done} == {None}
    assert store.commit_log._synced >= max(e.position for e, _ in done)
    assert 1 <= waiter.batches < 50 and set(threads) == {"dynatable-durability_0"}
    store.close()


def test_a_closed_commit_log_reports_the_error(tmp_path):
    store = Store.open(str(tmp_path / "s"), background=False, commitlog_sync="batch")
    store.create_keyspace("ks")
    table = store.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k")
    key, _, payload = engine.mutation.build_insert_encoded(table, {"k": 1, "v": "x"}, 1, 1, None, 1 << 20)
    position = store.apply_mutation(table, key, payload)
    store.commit_log.crash()
    done = []

    async def main():
        waiter = DurabilityWaiter(store.await_durable, lambda effect, error: done.append(error))
        waiter.add(Durable(position, []))
        while not done:
            await asyncio.sleep(0.001)
        await waiter.close()

    asyncio.run(main())
    assert done == ["EngineError: commit log is closed"]


def test_the_tcp_runtime_never_waits_for_an_fsync_on_its_loop(tmp_path):
    settings = NodeSettings(data_directory=str(tmp_path / "n1"), port=free_port(), num_tokens=4,
                            commitlog_sync="batch", native_transport_port=free_port())  # not 9042: it may be taken
    process = NodeProcess(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    run = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(30)  # noqa: E731
    try:
        run(process.start())
        calls = []
        real = process.store.commit_log.await_durable

        def spy(position):
            calls.append(threading.current_thread() is thread)
            real(position)
        process.store.commit_log.await_durable = spy

        async def writes():
            cluster = AsyncCluster([settings.endpoint()], timeout_s=10)
            session = await cluster.connect("ks")
            await session.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
            await session.create_table("kv", {"k": "int", "v": "text"}, primary_key="k", keyspace="ks")
            before = len(calls)
            await asyncio.gather(*(session.insert("kv", {"k": k, "v": "x"}) for k in range(40)))
            during = calls[before:]
            rows = [await session.get("kv", {"k": k}) for k in range(40)]
            await cluster.shutdown()
            return during, rows

        during, rows = asyncio.run(writes())
        assert all(r == {"k": k, "v": "x"} for k, r in enumerate(rows))
        assert during and not any(during)          # every wait for the 40 writes ran off the loop
        assert process.durability.waited >= 40 and process.durability.batches <= len(during)
    finally:
        run(process.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_the_simulator_in_batch_mode_keeps_every_acknowledged_write_through_machine_crashes(tmp_path):
    with Simulation(3, durability="batch", root=str(tmp_path / "sim"), sync_interval_ms=3_600_000) as sim:
        sim.run_for(8000)
        sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy",
                                                                     "replication_factor": 3})
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"},
                    primary_key="k")
        sim.run_for(3000)
        for k in range(5):
            sim.request(f"n{k % 3 + 1}", "insert", keyspace="ks", table="kv", row={"k": k, "v": "x"},
                        consistency="ALL")
        for name in ("n1", "n2", "n3"):
            sim.crash(name, lose_unsynced=True)   # the periodic sync never ran: only fsynced acks survive
        for name in ("n1", "n2", "n3"):
            sim.restart(name)
        for name in ("n1", "n2", "n3"):
            assert [sim.local_row(name, "ks", "kv", {"k": k}, writetime=False) for k in range(5)] == \
                [{"k": k, "v": "x"} for k in range(5)]
