"""The point lane on every framing cassandra-driver offers, through a real 3-node cluster
(test_driver_cluster.py's): prepared point INSERTs and SELECTs, 32 in flight per call, on protocol
v4 with and without lz4 frames and v5 segments with and without lz4 (in v5 the answers of one
flush share a segment, ring/cql/segment.py `encode_frames`). Every row read back is the one
written, and a missing row is an empty result."""
from __future__ import annotations

import pytest
from cassandra.concurrent import execute_concurrent_with_args

from tests.cql.test_driver_cluster import cluster, driver_cluster  # noqa: F401 - the module's cluster fixture

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("version, compression", [(4, False), (4, "lz4"), (5, False), (5, "lz4")])
def test_pipelined_point_statements_on_every_framing(cluster, version, compression):  # noqa: F811
    dc = driver_cluster(cluster, protocol_version=version, compression=compression)
    try:
        s = dc.connect()
        s.execute("CREATE KEYSPACE IF NOT EXISTS framing WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        s.execute("CREATE TABLE IF NOT EXISTS framing.t (k int, c int, v blob, PRIMARY KEY (k, c))")
        insert = s.prepare("INSERT INTO framing.t (k, c, v) VALUES (?, ?, ?)")
        select = s.prepare("SELECT v FROM framing.t WHERE k = ? AND c = ?")
        base = version * 10_000 + (1000 if compression else 0)
        rows = [(base + i, i % 3, bytes([i % 256]) * (i % 40)) for i in range(150)]
        assert all(ok for ok, _ in execute_concurrent_with_args(s, insert, rows, concurrency=32))
        got = execute_concurrent_with_args(s, select, [(k, c) for k, c, _ in rows] + [(base + 999, 0)],
                                           concurrency=32)
        assert [[r.v for r in result] for _, result in got] == [[v] for _, _, v in rows] + [[]]
    finally:
        dc.shutdown()
