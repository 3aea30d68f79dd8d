"""A real cassandra-driver Cluster negotiates and connects through `Connection` over a real socket.

The server here is test scaffolding, not the node's CQL server (that comes with the node
redesign): an asyncio loop in a thread that answers OPTIONS, STARTUP, REGISTER, USE and the
control connection's system.local / system.peers* queries with one fixed row. It proves the wire
layer: version negotiation as the driver walks DSE_V2 -> DSE_V1 -> 5 -> 4, lz4 in v4 frames and
v5 segments, and pipelined streams.
"""
import asyncio
import threading
import uuid

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy

from ring.cql.connection import Connection
from ring.cql.requests import Options, Query, Register, Startup
from ring.cql.responses import Error, ErrorCode, Ready
from ring.cql.result import ColumnSpec, Rows, RowsMetadata, SetKeyspace
from ring.cql.types import parse_type

LOCAL = [("key", "text", "local"), ("cluster_name", "text", "dynatable test"),
         ("data_center", "text", "datacenter1"), ("rack", "text", "rack1"),
         ("partitioner", "text", "org.apache.cassandra.dht.Murmur3Partitioner"),
         ("release_version", "text", "4.0.11"), ("cql_version", "text", "3.4.5"),
         ("host_id", "uuid", uuid.UUID(int=1)), ("schema_version", "uuid", uuid.UUID(int=2)),
         ("tokens", "set<text>", frozenset({"0"})), ("rpc_address", "inet", "127.0.0.1"),
         ("broadcast_address", "inet", "127.0.0.1"), ("listen_address", "inet", "127.0.0.1")]
PEERS = [("peer", "inet"), ("peer_port", "int"), ("data_center", "text"), ("rack", "text"),
         ("host_id", "uuid"), ("tokens", "set<text>"), ("native_address", "inet"), ("native_port", "int"),
         ("rpc_address", "inet"), ("release_version", "text"), ("schema_version", "uuid")]


def answer(event, conn):
    if isinstance(event, Options):
        return conn.supported()
    if isinstance(event, (Startup, Register)):
        return Ready()
    assert isinstance(event, Query), event
    text = event.query.lower()
    if text.startswith("use "):
        return SetKeyspace(event.query.split()[1].strip('"'))
    if "from system.local" in text:
        meta = RowsMetadata(tuple(ColumnSpec("system", "local", n, parse_type(t)) for n, t, _ in LOCAL))
        return Rows.from_values(meta, [[v for _, _, v in LOCAL]])
    if "from system.peers" in text:
        table = text.split("from system.")[1].split()[0]
        return Rows(RowsMetadata(tuple(ColumnSpec("system", table, n, parse_type(t)) for n, t in PEERS)))
    return Error(ErrorCode.INVALID, f"this test server only serves system.local, not {event.query!r}")


class Server:
    """One asyncio loop in a thread; records each refusal and each connection's (version, compression)."""

    def __init__(self, versions=(4, 5)):
        self.versions = versions
        self.started: list[tuple[int, str | None]] = []
        self.refused: list[str] = []
        self.handlers: set[asyncio.Task] = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        self.handlers.add(asyncio.current_task())
        conn = Connection(versions=self.versions)
        try:
            while not conn.closed and (data := await reader.read(65536)):
                events = conn.receive_data(data)
                while events:
                    event = events.pop(0)
                    if hasattr(event, "error"):
                        self.refused.append(event.error.message)
                        writer.write(conn.send(event.error, event.stream))
                        continue
                    writer.write(conn.send(answer(event, conn), event.stream))
                    if isinstance(event, Startup):
                        self.started.append((conn.version, conn.compression))
                        events += conn.receive_data(b"")
                await writer.drain()
        finally:
            writer.close()

    async def _shutdown(self):
        self.server.close()
        await self.server.wait_closed()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(request):
    s = Server(getattr(request, "param", (4, 5)))
    yield s
    s.stop()


def connect(server, **kw):
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.1"]))
    cluster = Cluster(["127.0.0.1"], port=server.port, schema_metadata_enabled=False, connect_timeout=5,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, control_connection_timeout=5, **kw)
    session = cluster.connect()
    return cluster, session


def test_default_negotiation_walks_down_to_v5(server):
    cluster, session = connect(server)
    try:
        assert cluster.protocol_version == 5
        assert session.execute("SELECT release_version FROM system.local").one().release_version == "4.0.11"
        futures = [session.execute_async("SELECT release_version FROM system.local") for _ in range(20)]
        assert {f.result().one().release_version for f in futures} == {"4.0.11"}
    finally:
        cluster.shutdown()
    assert [m.split(";")[0] for m in server.refused] == [
        "Invalid or unsupported protocol version (66)", "Invalid or unsupported protocol version (65)"]
    assert set(server.started) == {(5, "lz4")}


@pytest.mark.parametrize("server", [(4,)], indirect=True)
def test_v4_only_server_makes_the_driver_step_down_to_4(server):
    cluster, session = connect(server)
    try:
        assert cluster.protocol_version == 4
        assert session.execute("SELECT release_version FROM system.local").one().release_version == "4.0.11"
    finally:
        cluster.shutdown()
    assert len(server.refused) == 3 and set(server.started) == {(4, "lz4")}


@pytest.mark.parametrize("version, compression", [(4, False), (4, True), (5, False), (5, "lz4")])
def test_explicit_versions_with_and_without_lz4(server, version, compression):
    cluster, session = connect(server, protocol_version=version, compression=compression)
    try:
        rows = session.execute("SELECT release_version, tokens, host_id FROM system.local")
        row = rows.one()
        assert row.release_version == "4.0.11" and set(row.tokens) == {"0"} and row.host_id == uuid.UUID(int=1)
        with pytest.raises(Exception, match="only serves system.local"):
            session.execute("SELECT * FROM shop.orders")
    finally:
        cluster.shutdown()
    expected = "lz4" if compression else None
    assert server.refused == [] and set(server.started) == {(version, expected)}
