"""ring/cql/server.py, sans-IO, with cassandra-driver's own codec as the client: handshake,
REGISTER and pushed EVENTs, the connection and request limits, and the ring events rule."""
from __future__ import annotations

from cassandra.protocol import (ErrorMessage, EventMessage, OptionsMessage, QueryMessage, ReadyMessage,
                                RegisterMessage, StartupMessage, SupportedMessage)

from ring.cql.responses import SchemaChange, StatusChange, TopologyChange
from ring.cql.server import NativeServer, ring_events, schema_events
from tests.cql.driver import decode_responses, request_bytes

STARTUP = StartupMessage(cqlversion="3.4.5", options={})


def messages(data: bytes):
    return [msg for _, msg in decode_responses(data)]


def ready_connection(server, version=4):
    conn = server.connect()
    out = conn.receive_data(request_bytes(OptionsMessage(), 0, version) + request_bytes(STARTUP, 1, version)
                            + request_bytes(RegisterMessage(["SCHEMA_CHANGE", "STATUS_CHANGE"]), 2, version))
    got = messages(out.data)
    assert [type(m) for m in got] == [SupportedMessage, ReadyMessage, ReadyMessage] and not out.close
    assert got[0].stream_id == 0 and got[2].stream_id == 2
    return conn


def test_handshake_register_and_events_go_to_registered_connections_only():
    server = NativeServer(node=None)
    registered = ready_connection(server)
    plain = server.connect()
    plain.receive_data(request_bytes(STARTUP, 1, 4))
    pushed = server.push(SchemaChange("CREATED", "TABLE", "ks", "t"))
    assert [c for c, _ in pushed] == [registered]
    (event,) = messages(pushed[0][1])
    assert isinstance(event, EventMessage) and event.stream_id == -1
    assert event.event_type == "SCHEMA_CHANGE" and event.event_args["table"] == "t"
    assert [c for c, _ in server.push(TopologyChange("NEW_NODE", "127.0.0.2", 9042))] == []


def test_too_many_connections_are_answered_overloaded_and_closed():
    server = NativeServer(node=None, max_connections=1)
    ready_connection(server)
    extra = server.connect()
    out = extra.receive_data(request_bytes(OptionsMessage(), 5, 4))
    (error,) = messages(out.data)
    assert isinstance(error, ErrorMessage) and error.code == 0x1001 and "Too many connections" in error.message
    assert out.close and server.refused_connections == 1 and len(server.connections) == 1


def test_oversized_frame_is_refused_and_the_connection_serves_on():
    server = NativeServer(node=None, max_frame_bytes=1024)
    conn = ready_connection(server)
    out = conn.receive_data(request_bytes(QueryMessage("SELECT '" + "x" * 4000 + "'", 1), 7, 4)
                            + request_bytes(OptionsMessage(), 8, 4))
    error, supported = messages(out.data)
    assert error.code == 0x000A and "Request is too big" in error.message and error.stream_id == 7
    assert isinstance(supported, SupportedMessage) and supported.stream_id == 8 and not out.close


def test_ring_events_report_joins_leaves_and_liveness_flips():
    before = {"127.0.0.1:9042": (True, True), "127.0.0.2:9042": (True, True)}
    after = {"127.0.0.1:9042": (True, True), "127.0.0.2:9042": (False, True), "127.0.0.3:9042": (True, True)}
    assert ring_events(before, after) == [StatusChange("DOWN", "127.0.0.2", 9042),
                                          TopologyChange("NEW_NODE", "127.0.0.3", 9042),
                                          StatusChange("UP", "127.0.0.3", 9042)]
    assert ring_events(after, {"127.0.0.1:9042": (True, True)}) == [
        TopologyChange("REMOVED_NODE", "127.0.0.2", 9042), TopologyChange("REMOVED_NODE", "127.0.0.3", 9042)]
    assert ring_events(after, after) == []
    server = NativeServer(node=None)
    assert server.observe_ring(before) == [] and server.observe_ring(after) == ring_events(before, after)


def test_schema_events_report_created_updated_dropped_and_a_dropped_keyspace_once():
    before = {("ks", ""): "rf1", ("ks", "t"): "v1", ("gone", ""): "rf1", ("gone", "x"): "v1"}
    after = {("ks", ""): "rf3", ("ks", "t"): "v1", ("ks", "t2"): "v1"}
    assert schema_events(before, after) == [SchemaChange("DROPPED", "KEYSPACE", "gone"),
                                            SchemaChange("UPDATED", "KEYSPACE", "ks"),
                                            SchemaChange("CREATED", "TABLE", "ks", "t2")]
    assert schema_events(after, {("ks", ""): "rf3", ("ks", "t2"): "v1"}) == [SchemaChange("DROPPED", "TABLE", "ks", "t")]
    server = NativeServer(node=None)
    assert server.observe_schema(before) == [] and server.observe_schema(after) == schema_events(before, after)
