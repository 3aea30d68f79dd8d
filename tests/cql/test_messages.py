"""Request bodies decoded from cassandra-driver's encoder; response bodies decoded by its decoder."""
from dataclasses import replace

import pytest
from cassandra import ConsistencyLevel as CL, WriteType
from cassandra.protocol import (
    AuthResponseMessage, BatchMessage, ExecuteMessage, PrepareMessage, QueryMessage, RegisterMessage,
    StartupMessage,
)
from cassandra.query import BatchType as DriverBatchType
from hypothesis import given, strategies as st

from ring import errors as ring_errors
from ring.cql.frame import decode_header
from ring.cql.notation import UNSET, Consistency, ProtocolException
from ring.cql.requests import (
    Batch, BatchStatement, BatchType, Execute, Prepare, Query, QueryParameters, Register,
    decode_request,
)
from ring.cql.responses import (
    AlreadyExists, Authenticate, Error, ErrorCode, ReadFailure, ReadTimeout, SchemaChange, StatusChange,
    TopologyChange, Unavailable, Unprepared, WriteFailure, WriteTimeout, error_for,
)
from ring.cql.result import ColumnSpec, Prepared, Rows, RowsMetadata, SchemaChangeResult, SetKeyspace, Void
from ring.cql.types import parse_type
from tests.cql.driver import decode_one, request_bytes

from cassandra.marshal import int32_pack
from cassandra.query import _UNSET_VALUE as DRIVER_UNSET


def ours(msg, version):
    frame = request_bytes(msg, 3, version)
    header = decode_header(frame)
    return decode_request(header.opcode, frame[9:], version, stream=header.stream)


@pytest.mark.parametrize("version", [4, 5])
def test_query_with_every_parameter(version):
    kw = {"keyspace": "ks"} if version == 5 else {}
    msg = QueryMessage("SELECT * FROM t WHERE k = ?", CL.LOCAL_QUORUM, serial_consistency_level=CL.LOCAL_SERIAL,
                       fetch_size=100, paging_state=b"\x01\x02", timestamp=1795274658022548, **kw)
    msg.query_params = [int32_pack(7), None, DRIVER_UNSET]
    q = ours(msg, version)
    p = q.parameters
    assert q.query == "SELECT * FROM t WHERE k = ?" and q.stream == 3
    assert p.consistency is Consistency.LOCAL_QUORUM and p.serial_consistency is Consistency.LOCAL_SERIAL
    assert p.values == (int32_pack(7), None, UNSET) and p.page_size == 100 and p.paging_state == b"\x01\x02"
    assert p.timestamp == 1795274658022548 and p.keyspace == (kw.get("keyspace"))


@pytest.mark.parametrize("version", [4, 5])
def test_execute_prepare_batch_register_startup_auth(version):
    e = ours(ExecuteMessage(b"\xab" * 16, [b"x"], CL.QUORUM, skip_meta=True, result_metadata_id=b"\xcd" * 16), version)
    assert isinstance(e, Execute) and e.query_id == b"\xab" * 16 and e.parameters.values == (b"x",)
    assert e.result_metadata_id == (b"\xcd" * 16 if version == 5 else None)
    p = ours(PrepareMessage("INSERT INTO t (k) VALUES (?)", keyspace="ks" if version == 5 else None), version)
    assert isinstance(p, Prepare) and p.keyspace == ("ks" if version == 5 else None)
    b = ours(BatchMessage(DriverBatchType.UNLOGGED, [(False, "INSERT 1", [b"a", None]), (True, b"\x01\x02", [])],
                          CL.TWO, serial_consistency_level=CL.SERIAL, timestamp=99), version)
    assert b == Batch(stream=3, batch_type=BatchType.UNLOGGED, consistency=Consistency.TWO, timestamp=99,
                      serial_consistency=Consistency.SERIAL,
                      statements=(BatchStatement("INSERT 1", (b"a", None)), BatchStatement(b"\x01\x02", ())))
    r = ours(RegisterMessage(["TOPOLOGY_CHANGE", "SCHEMA_CHANGE"]), version)
    assert r == Register(stream=3, event_types=("TOPOLOGY_CHANGE", "SCHEMA_CHANGE"))
    s = ours(StartupMessage("3.4.5", {"COMPRESSION": "lz4", "DRIVER_NAME": "x"}), version)
    assert s.options == {"CQL_VERSION": "3.4.5", "COMPRESSION": "lz4", "DRIVER_NAME": "x"}
    assert ours(AuthResponseMessage(b"\x00cassandra\x00cassandra"), version).token == b"\x00cassandra\x00cassandra"


values = st.one_of(st.binary(max_size=8), st.none(), st.just(UNSET))
params = st.builds(
    QueryParameters, consistency=st.sampled_from(Consistency), values=st.lists(values, max_size=4).map(tuple),
    skip_metadata=st.booleans(), page_size=st.none() | st.integers(1, 2**31 - 1),
    paging_state=st.none() | st.binary(max_size=8), serial_consistency=st.none() | st.sampled_from(Consistency),
    timestamp=st.none() | st.integers(-2**63, 2**63 - 1), keyspace=st.none() | st.text(max_size=5),
    now_in_seconds=st.none() | st.integers(-2**31, 2**31 - 1))


@given(params, st.text(max_size=30), st.booleans())
def test_request_round_trips(p, text, named):
    if named:
        p = replace(p, names=tuple(f"n{i}" for i in range(len(p.values))))
    for version in (4, 5):
        if version == 4:
            p = replace(p, keyspace=None, now_in_seconds=None)
        expected = replace(p, has_values=bool(p.values) or p.names is not None)
        metadata_id = b"m" if version == 5 else None
        for request in (Query(query=text, parameters=p),
                        Execute(query_id=b"id", parameters=p, result_metadata_id=metadata_id)):
            got = decode_request(request.opcode, request.encode_body(version), version)
            assert got == replace(request, parameters=expected)


@pytest.mark.parametrize("body, why", [
    (b"\x00\x00\x00\x05abc", "truncated"), (b"\x00\x00\x00\x00\x00\x99\x00", "consistency"),
    (b"\x00\x00\x00\x00\x00\x01\x80", "does not define"), (b"\x00\x00\x00\x00\x00\x01\x04\x00\x00\x00\x00", "page size"),
    (b"\x00\x00\x00\x00\x00\x01\x00\x00", "unexpected bytes"), (b"\x00\x00\x00\x02\xff\xfe\x00\x01\x00", "UTF-8"),
])
def test_malformed_query_bodies(body, why):
    with pytest.raises(ProtocolException) as e:
        decode_request(0x07, body, 4)
    assert why in e.value.message and not e.value.fatal


def test_response_opcodes_are_not_requests():
    with pytest.raises(ProtocolException, match="RESULT is not a request"):
        decode_request(0x08, b"", 4)


# -- responses, decoded by the driver -----------------------------------------------------

from ring.cql.connection import Connection


def encode(response, version):
    conn = Connection(versions=(version,))
    conn.version = version
    return conn.send(response, 5)


COLS = (ColumnSpec("ks", "t", "k", parse_type("int")), ColumnSpec("ks", "t", "v", parse_type("list<text>")))


@pytest.mark.parametrize("version", [4, 5])
def test_rows_with_global_spec_and_paging_state(version):
    rows = Rows.from_values(RowsMetadata(COLS, paging_state=b"\x07\x08"), [[1, ["a", "b"]], [2, None]])
    msg = decode_one(encode(rows, version))
    assert msg.column_names == ["k", "v"] and msg.parsed_rows == [(1, ["a", "b"]), (2, None)]
    assert msg.paging_state == b"\x07\x08" and msg.column_metadata[0][:2] == ("ks", "t")


def test_rows_without_global_spec_and_without_metadata():
    mixed = (ColumnSpec("a", "t1", "x", parse_type("int")), ColumnSpec("b", "t2", "y", parse_type("text")))
    msg = decode_one(encode(Rows.from_values(RowsMetadata(mixed), [[1, "z"]]), 4))
    assert [c[:3] for c in msg.column_metadata] == [("a", "t1", "x"), ("b", "t2", "y")] and msg.parsed_rows == [(1, "z")]
    bare = Rows.from_values(RowsMetadata(COLS, no_metadata=True), [[3, ["q"]]])
    prepared_metadata = decode_one(encode(Rows(RowsMetadata(COLS)), 4)).column_metadata
    msg = decode_one(encode(bare, 4), result_metadata=prepared_metadata)
    assert msg.parsed_rows == [(3, ["q"])]


@pytest.mark.parametrize("version", [4, 5])
def test_prepared_carries_pk_indexes_and_metadata_id(version):
    prepared = Prepared(query_id=b"\x01" * 16, bind=COLS, pk_indexes=(0,), result_metadata=RowsMetadata(COLS),
                        result_metadata_id=b"\x02" * 16)
    msg = decode_one(encode(prepared, version))
    assert msg.query_id == b"\x01" * 16 and msg.pk_indexes == [0]
    assert [c.name for c in msg.bind_metadata] == ["k", "v"] and msg.bind_metadata[0].keyspace_name == "ks"
    assert [c[2] for c in msg.column_metadata] == ["k", "v"]
    assert msg.result_metadata_id == (b"\x02" * 16 if version == 5 else None)


def test_void_set_keyspace_schema_change():
    assert decode_one(encode(Void(), 4)).kind == 1
    assert decode_one(encode(SetKeyspace("shop"), 4)).new_keyspace == "shop"
    msg = decode_one(encode(SchemaChangeResult(SchemaChange("CREATED", "TABLE", "ks", "t")), 4))
    assert msg.schema_change_event == {"target_type": "TABLE", "change_type": "CREATED", "keyspace": "ks", "table": "t"}
    msg = decode_one(encode(SchemaChangeResult(SchemaChange("DROPPED", "FUNCTION", "ks", "f", ("int",))), 5))
    assert msg.schema_change_event["function"].argument_types == ["int"]


def test_events_and_supported_and_authenticate():
    conn = Connection(versions=(4,))
    conn.version = 4
    for event, args in [(TopologyChange("NEW_NODE", "127.0.0.2", 9042), {"change_type": "NEW_NODE", "address": ("127.0.0.2", 9042)}),
                        (StatusChange("DOWN", "::1", 9042), {"change_type": "DOWN", "address": ("::1", 9042)}),
                        (SchemaChange("UPDATED", "KEYSPACE", "ks"), {"target_type": "KEYSPACE", "change_type": "UPDATED", "keyspace": "ks"})]:
        msg = decode_one(conn.send(event, -1))
        assert msg.event_args == args
    msg = decode_one(conn.send(conn.supported(), 1))
    assert msg.cql_versions == ["3.4.5"] and msg.options["COMPRESSION"] == ["lz4"]
    assert decode_one(conn.send(Authenticate("org.apache.cassandra.auth.PasswordAuthenticator"), 1)).authenticator.endswith("Authenticator")


@pytest.mark.parametrize("version", [4, 5])
def test_errors_become_the_drivers_exceptions(version):
    from cassandra import (AlreadyExists as DAlreadyExists, ReadFailure as DReadFailure, ReadTimeout as DReadTimeout,
                           Unavailable as DUnavailable, WriteFailure as DWriteFailure, WriteTimeout as DWriteTimeout)
    cases = [
        (Unavailable(message="m", consistency=Consistency.QUORUM, required=2, alive=1), DUnavailable,
         {"consistency": CL.QUORUM, "required_replicas": 2, "alive_replicas": 1}),
        (WriteTimeout(message="m", consistency=Consistency.ALL, received=1, block_for=3, write_type="BATCH_LOG"),
         DWriteTimeout, {"received_responses": 1, "required_responses": 3, "write_type": WriteType.BATCH_LOG}),
        (ReadTimeout(message="m", consistency=Consistency.ONE, received=0, block_for=1, data_present=True),
         DReadTimeout, {"received_responses": 0, "required_responses": 1, "data_retrieved": True}),
        (ReadFailure(message="m", received=1, block_for=2, failures={"127.0.0.3": 1}, data_present=False),
         DReadFailure, {"failures": 1}),
        (WriteFailure(message="m", received=1, block_for=2, failures={"127.0.0.3": 0}, write_type="SIMPLE"),
         DWriteFailure, {"failures": 1, "write_type": WriteType.SIMPLE}),
        (AlreadyExists(message="m", keyspace="ks", table="t"), DAlreadyExists, {"keyspace": "ks", "table": "t"}),
    ]
    for error, driver_class, expected in cases:
        exc = decode_one(encode(error, version)).to_exception()
        assert isinstance(exc, driver_class), (error, exc)
        for key, value in expected.items():
            got = getattr(exc, key) if hasattr(exc, key) else exc.info[key]
            assert got == value, (key, got, value)
    unprepared = decode_one(encode(Unprepared(message="gone", query_id=b"\x09" * 16), version))
    assert unprepared.info == b"\x09" * 16 and unprepared.code == 0x2500
    for code in (ErrorCode.SYNTAX_ERROR, ErrorCode.INVALID, ErrorCode.OVERLOADED, ErrorCode.SERVER_ERROR,
                 ErrorCode.PROTOCOL_ERROR):
        msg = decode_one(encode(Error(code, "why"), version))
        assert msg.code == code and msg.message == "why"


def test_error_for_maps_the_ring_errors():
    assert error_for(ring_errors.UnavailableError(Consistency.QUORUM, 2, 1)) == Unavailable(
        message=str(ring_errors.UnavailableError(Consistency.QUORUM, 2, 1)), consistency=Consistency.QUORUM,
        required=2, alive=1)
    wt = error_for(ring_errors.WriteTimeout(Consistency.ALL, 1, 3, "BATCH"))
    assert isinstance(wt, WriteTimeout) and wt.write_type == "BATCH" and wt.block_for == 3
    rt = error_for(ring_errors.ReadTimeout(Consistency.ONE, 0, 1, True))
    assert isinstance(rt, ReadTimeout) and rt.data_present
    assert error_for(ring_errors.OverloadedError()).code is ErrorCode.OVERLOADED
    assert error_for(ring_errors.InvalidRequest("bad")).code is ErrorCode.INVALID
    assert error_for(RuntimeError("boom")).code is ErrorCode.SERVER_ERROR
