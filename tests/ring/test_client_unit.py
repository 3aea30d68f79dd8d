"""The client's pure parts: error dicts, request building, routing and frames (the request flows
of ClientCore and the drivers' glue: test_client_flows.py)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import errors as engine_errors
from engine.mutation import partition_key_bytes
from engine.schema import make_table
from engine.token import token as token_of
from ring import errors as ring_errors
from ring.client import (ClusterMetadata, SessionAPI, normalize_endpoint)
from ring.client.protocol import ReplyReader, encode_request, refusal_of
from ring.consistency import ConsistencyLevel as CL
from ring.messages import ClientRequest, ClientResponse, encode, packb, unpackb
from ring.runtime.frames import (ERROR_CLASSES, AuthenticationError, ServerError, encode_frame, error_from_wire,
                                 error_to_wire, split_endpoint)

EXAMPLES = [
    ring_errors.UnavailableError(CL.QUORUM, 2, 1),
    ring_errors.RepairFailure("repair of ks.t failed: replica(s) [x] of range (1, 2] are down"),
    ring_errors.TruncateError("no answer from 127.0.0.3:7000 in 10000 ms"),
    ring_errors.UnavailableError(CL.LOCAL_QUORUM, 2, 0, dc="dc2"),
    ring_errors.WriteTimeout(CL.QUORUM, 1, 2, "BATCH"),
    ring_errors.ReadTimeout(CL.ALL, 2, 3, data_present=True),
    ring_errors.RequestTimeout("timed out"),
    ring_errors.OverloadedError("too many hints in flight"),
    ring_errors.ReadFailure(CL.QUORUM, 1, 1, 2),
    ring_errors.WriteFailure(CL.ONE, 0, 1, 1),
    ring_errors.RequestFailure(CL.ONE, 0, 1, 1),
    ring_errors.ProtocolError("frame checksum mismatch"),
    ring_errors.ConfigurationError("unknown host"),
    ring_errors.RequestError("generic"),
    ring_errors.AuthenticationFailed("Provided username x and/or password are incorrect"),
    ring_errors.Unauthorized("You have not logged in"),
    engine_errors.InvalidRequest("table 'ks.t' does not exist"),
    engine_errors.AlreadyExists("ks", "t"),
    engine_errors.TombstoneOverwhelmingError(100_001, 100_000, "ks.t partition 00"),
    engine_errors.CorruptionError("/data/ks/t/1-Data.db", 4096, "block checksum mismatch"),
    engine_errors.StoreClosedError("store at /data is closed; open it again"),
    engine_errors.IndexNotReady("index t_v_idx on ks.t.v is still building (10 rows indexed so far); retry shortly"),
    engine_errors.EngineError("engine"),
    AuthenticationError(),
    ServerError("KeyError: 'x'"),
]


def fields_of(exc) -> dict:
    return {k: v for k, v in vars(exc).items() if not k.startswith("_")}


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda e: type(e).__name__)
def test_error_round_trip(exc):
    wire = unpackb(packb(error_to_wire(exc)))  # through msgpack, as on the wire
    back = error_from_wire(wire)
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert fields_of(back) == fields_of(exc)
    assert back.retryable == exc.retryable


def test_every_error_class_has_an_example():
    covered = {type(e).__name__ for e in EXAMPLES}
    missing = {name for name, cls in ERROR_CLASSES.items() if name not in covered}
    assert not missing, f"add examples for {sorted(missing)}"


def test_level_travels_by_name():
    wire = error_to_wire(ring_errors.UnavailableError(CL.QUORUM, 2, 1))
    assert wire == {"type": "UnavailableError", "message": wire["message"], "level": "QUORUM",
                    "required": 2, "alive": 1, "dc": None}
    assert error_from_wire(wire).level is CL.QUORUM


def test_foreign_exception_becomes_server_error():
    wire = error_to_wire(KeyError("x"))
    assert wire == {"type": "ServerError", "message": "KeyError: 'x'"}
    assert isinstance(error_from_wire(wire), ServerError)


def test_unknown_type_becomes_request_error():
    e = error_from_wire({"type": "FancyNewError", "message": "m", "x": 1})
    assert type(e) is ring_errors.RequestError and str(e) == "FancyNewError: m"


# -- request building ---------------------------------------------------------------------------

class Recorder(SessionAPI):
    keyspace = "ks"

    def _run(self, op, args, post=None):
        return op, args


def test_requests_use_the_store_parameter_names():
    s = Recorder()
    assert s.insert("t", {"id": 1}, ttl=5, consistency=CL.QUORUM) == ("insert", {
        "keyspace": "ks", "table": "t", "consistency": "QUORUM", "row": {"id": 1}, "ttl": 5, "timestamp": None})
    op, args = s.select("t", {"id": 1}, start=(1,), limit=3, reverse=True, keyspace="other", consistency="local_one")
    assert op == "select" and args["keyspace"] == "other" and args["consistency"] == "LOCAL_ONE"
    assert {k: args[k] for k in ("key", "start", "end", "limit", "reverse")} == {
        "key": {"id": 1}, "start": (1,), "end": None, "limit": 3, "reverse": True}
    assert s.delete("t", {"id": 1}, columns=["v"])[1]["columns"] == ["v"]
    assert s.get("t", {"id": 1})[1] == {"keyspace": "ks", "table": "t", "consistency": "ONE", "key": {"id": 1},
                                        "columns": None, "writetime": False}
    assert s.scan("t", page_size=10)[1]["page_size"] == 10
    assert s.create_keyspace("ks2")[1] == {"name": "ks2", "if_not_exists": False,
                                           "replication": {"class": "SimpleStrategy", "replication_factor": 1}}
    assert s.create_table("t2", {"id": "int"}, "id")[1]["keyspace"] == "ks"
    assert s.drop_table("t2") == ("drop_table", {"keyspace": "ks", "name": "t2"})
    assert s.execute("flush", keyspace="ks") == ("flush", {"keyspace": "ks"})


def test_missing_keyspace_is_a_clear_error():
    s = Recorder()
    s.keyspace = None
    with pytest.raises(engine_errors.InvalidRequest, match="no keyspace"):
        s.get("t", {"id": 1})


def test_endpoints_are_normalized():
    assert normalize_endpoint("10.0.0.1") == "10.0.0.1:9100"
    assert normalize_endpoint("10.0.0.1:9200") == "10.0.0.1:9200"
    assert normalize_endpoint("::1") == "[::1]:9100"
    assert split_endpoint("10.0.0.1:9200") == ("10.0.0.1", 9200)
    assert split_endpoint(normalize_endpoint("::1")) == ("::1", 9100)


# -- routing ------------------------------------------------------------------------------------

TABLE = make_table("ks", "t", {"id": "int", "v": "text"}, primary_key="id")
EPS = ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100", "10.0.0.4:9100"]


def ring_answer(rf_options, dcs=("dc1", "dc1", "dc2", "dc2"), status=("UP",) * 4):
    tokens = [[-6 * 10**18, 2 * 10**18], [-3 * 10**18, 5 * 10**18], [0, 8 * 10**18], [-9 * 10**18, 10**18]]
    return {"endpoints": {ep: {"datacenter": dc, "rack": "r1", "status": st, "tokens": toks}
                          for ep, dc, st, toks in zip(EPS, dcs, status, tokens)},
            "keyspaces": {"ks": rf_options}}


def metadata(rf_options=None, **kw) -> ClusterMetadata:
    md = ClusterMetadata(["10.0.0.9"])
    md.update_ring(ring_answer(rf_options or {"class": "SimpleStrategy", "replication_factor": 2}, **kw))
    md.update_schema({"tables": [TABLE.to_dict()]})
    return md


def walk_replicas(md: ClusterMetadata, token: int, rf: int) -> list[str]:
    """Independent oracle: owners of the ring tokens clockwise from the first >= token."""
    owned = sorted((t, ep) for ep, info in md.endpoints.items() for t in info["tokens"])
    start = next((i for i, (t, _) in enumerate(owned) if t >= token), 0)
    out: list[str] = []
    for k in range(len(owned)):
        ep = owned[(start + k) % len(owned)][1]
        if ep not in out:
            out.append(ep)
    return out[:rf]


@given(st.integers(-2**31, 2**31 - 1))
def test_replicas_follow_the_ring(key):
    md = metadata()
    tok = token_of(partition_key_bytes(TABLE, {"id": key}))
    assert md.replicas("ks", "t", {"id": key}) == walk_replicas(md, tok, 2)


def test_plan_puts_replicas_first_then_the_rest():
    md = metadata()
    key = {"id": 42}
    replicas = md.replicas("ks", "t", key)
    plan = md.query_plan("get", {"keyspace": "ks", "table": "t", "key": key}, random.Random(1))
    assert sorted(plan[:2]) == sorted(replicas)
    assert sorted(plan[2:4]) == sorted(set(EPS) - set(replicas))
    assert plan[4:] == ["10.0.0.9:9100"]  # the contact point, last


def test_replicas_are_shuffled_to_spread_load():
    md = metadata()
    args = {"keyspace": "ks", "table": "t", "row": {"id": 7, "v": "x"}}
    firsts = {md.query_plan("insert", args, random.Random(seed))[0] for seed in range(20)}
    assert firsts == set(md.replicas("ks", "t", {"id": 7}))


def test_down_replica_goes_last():
    key = {"id": 42}
    first, second = metadata().replicas("ks", "t", key)
    status = tuple("DOWN" if ep == first else "UP" for ep in EPS)
    md = metadata(status=status)
    plan = md.query_plan("get", {"keyspace": "ks", "table": "t", "key": key}, random.Random(0))
    assert plan[0] == second and plan[-2] == first


def test_a_refresh_replaces_the_derived_routing():
    md, key = metadata(), {"id": 42}
    first, _ = md.replicas("ks", "t", key)
    md.update_ring(ring_answer({"class": "SimpleStrategy", "replication_factor": 3},
                               status=tuple("DOWN" if ep == first else "UP" for ep in EPS)))
    assert len(md.replicas("ks", "t", key)) == 3 and first not in md.live_endpoints()
    assert md.query_plan("get", {"keyspace": "ks", "table": "t", "key": key}, random.Random(0))[-2] == first
    md.update_schema({"tables": [TABLE.to_dict()], "keyspaces": {"other": {"class": "SimpleStrategy",
                                                                           "replication_factor": 1}}})
    assert len(md.replicas("ks", "t", key)) == 3


def test_network_topology_and_local_dc():
    md = metadata({"class": "NetworkTopologyStrategy", "dc1": 1, "dc2": 1})
    key = {"id": 5}
    replicas = md.replicas("ks", "t", key)
    assert sorted(md.snitch.datacenter(ep) for ep in replicas) == ["dc1", "dc2"]
    for seed in range(5):
        plan = md.query_plan("get", {"keyspace": "ks", "table": "t", "key": key}, random.Random(seed), local_dc="dc2")
        assert md.snitch.datacenter(plan[0]) == "dc2" and plan[0] in replicas


def test_unroutable_requests_go_anywhere():
    md = metadata()
    for op, args in [("get", {"keyspace": "ks", "table": "nope", "key": {"id": 1}}),
                     ("get", {"keyspace": "ks", "table": "t", "key": {"wrong": 1}}),
                     ("scan", {"keyspace": "ks", "table": "t"}),
                     ("describe_ring", {})]:
        plan = md.query_plan(op, args, random.Random(0))
        assert sorted(plan[:4]) == sorted(EPS) and plan[4:] == ["10.0.0.9:9100"]


def test_before_metadata_only_contact_points():
    md = ClusterMetadata(["a:1", "b:2"])
    assert md.query_plan("get", {"keyspace": "ks", "table": "t", "key": {"id": 1}}, random.Random(0)) == ["a:1", "b:2"]


# -- frames -------------------------------------------------------------------------------------

def test_reply_reader_takes_bytes_in_any_pieces_and_skips_non_replies():
    wire = b"".join([encode_frame(encode(ClientRequest(9, "get", {}))),       # not an answer: skipped
                     encode_request(ClientResponse(1, {"a": 1}, None)),
                     encode_request(ClientResponse(2, None, {"type": "RequestError", "message": "m"}))])
    reader, got = ReplyReader(), []
    for i in range(len(wire)):
        reader.feed(wire[i:i + 1])
        while (reply := reader.next_reply()) is not None:
            got.append(reply)
    assert got == [ClientResponse(1, {"a": 1}, None), ClientResponse(2, None, {"type": "RequestError", "message": "m"})]
    assert reader.next_reply() is None


def test_only_an_error_answer_with_id_zero_refuses_the_connection():
    refused = refusal_of(ClientResponse(0, None, error_to_wire(AuthenticationError())))
    assert isinstance(refused, AuthenticationError)
    assert refusal_of(ClientResponse(3, None, error_to_wire(AuthenticationError()))) is None
    assert refusal_of(ClientResponse(0, "ok", None)) is None
