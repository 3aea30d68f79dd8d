"""What a user sees from one real node process (`python -m ring.runtime.asyncio_tcp`) when a
request is wrong (issue 19, items 1-3): an NTS map naming an unknown datacenter, a CREATE of
something that exists, and a value over max_frame_bytes, refused by the client before sending
and, when only the node's limit is lower, answered by the node with the limit before it closes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.errors import AlreadyExists, InvalidRequest
from ring.client import Cluster
from ring.errors import ProtocolError
from ring.runtime.config import NodeSettings, dump
from tests.ring.test_runtime_smoke import _wait_listening, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_LIMIT = 1 << 20     # the node's max_frame_bytes; the client keeps the default 16 MiB


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node")
    port = free_port()
    cfg = tmp / "node.toml"
    cfg.write_text(dump(NodeSettings(port=port, data_directory=str(tmp / "data"), num_tokens=4,
                                     max_frame_bytes=NODE_LIMIT,
                                     native_transport_port=free_port())))  # not 9042: it may be taken
    proc = subprocess.Popen([sys.executable, "-m", "ring.runtime.asyncio_tcp", "--config", str(cfg)],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        _wait_listening(proc, port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_nts_with_an_unknown_datacenter_is_refused_naming_the_known_ones(endpoint):
    with Cluster([endpoint], timeout_s=10) as cluster:
        session = cluster.connect()
        with pytest.raises(InvalidRequest) as e:
            session.create_keyspace("shop", {"class": "NetworkTopologyStrategy", "dc1": 3})
        assert str(e.value) == ("Unrecognized strategy option {dc1} passed to NetworkTopologyStrategy for "
                                "keyspace shop; known datacenters: datacenter1")
        session.create_keyspace("shop", {"class": "NetworkTopologyStrategy", "datacenter1": 1})
        session.create_table("orders", {"id": "int", "total": "decimal"}, primary_key="id", keyspace="shop")
        session.insert("orders", {"id": 1, "total": 950}, keyspace="shop")  # it has a replica now
        assert session.get("orders", {"id": 1}, keyspace="shop")["id"] == 1


def test_create_of_an_existing_table_or_keyspace_is_already_exists(endpoint):
    with Cluster([endpoint], timeout_s=10) as cluster:
        session = cluster.connect()
        session.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
        session.create_table("t", {"k": "int", "v": "text"}, primary_key="k", keyspace="ks")
        with pytest.raises(AlreadyExists, match="Cannot add already existing table ks.t; pass if_not_exists") as e:
            session.create_table("t", {"k": "int", "other": "int"}, primary_key="k", keyspace="ks")
        assert (e.value.keyspace, e.value.table) == ("ks", "t")
        with pytest.raises(AlreadyExists, match="keyspace ks"):
            session.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
        session.create_table("t", {"k": "int", "other": "int"}, primary_key="k", keyspace="ks", if_not_exists=True)
        session.create_keyspace("ks", if_not_exists=True)
        session.insert("t", {"k": 1, "v": "kept"}, keyspace="ks")  # the first schema stays
        assert session.get("t", {"k": 1}, keyspace="ks") == {"k": 1, "v": "kept"}


def test_a_value_over_max_frame_bytes(endpoint):
    with Cluster([endpoint], timeout_s=10) as cluster:
        session = cluster.connect()
        session.create_keyspace("blobs", {"class": "SimpleStrategy", "replication_factor": 1}, if_not_exists=True)
        session.create_table("b", {"k": "int", "v": "blob"}, primary_key="k", keyspace="blobs", if_not_exists=True)
        with pytest.raises(InvalidRequest, match=r"Request is too big: insert of \d+ bytes exceeds "
                                                 r"max_frame_bytes=16777216 \(16 MiB\); nothing was sent"):
            session.insert("b", {"k": 1, "v": b"x" * (20 << 20)}, keyspace="blobs")   # the client's own limit
        with pytest.raises(ProtocolError, match=r"exceeds max_frame_bytes=1048576 \(1 MiB\)"):
            session.insert("b", {"k": 2, "v": b"x" * (15 << 20)}, keyspace="blobs")   # the node's lower limit
        session.insert("b", {"k": 3, "v": b"x" * 1000}, keyspace="blobs")             # a new connection serves
        assert session.get("b", {"k": 3}, keyspace="blobs")["v"] == b"x" * 1000
        assert session.get("b", {"k": 1}, keyspace="blobs") is None
