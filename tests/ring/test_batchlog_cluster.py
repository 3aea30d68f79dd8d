"""Real processes: a LOGGED batch whose coordinator is killed (SIGKILL) between its batchlog write
and its mutations is applied in full by the other nodes' batchlog replay.

Three nodes (127.0.0.1-3, CQL on 9042), RF 3, commitlog_sync=batch (an acknowledged batchlog write
is on disk). Every node runs with the injected fault `batchlog_coordinator_dies` (ring/faults.py):
a logged batch's coordinator goes silent once its batchlog write is acknowledged; only n1
coordinates here (the driver's whitelist). The driver times out; no row of the batch exists on
the others (the replay waits 2 x write_request_timeout_ms); n1 is killed with SIGKILL; within
seconds every row is readable at QUORUM from n2, and the replay counter says who replayed it.
"""
from __future__ import annotations

import time

import pytest

from cassandra import ConsistencyLevel, OperationTimedOut, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING",
            "commitlog_sync": "batch", "write_request_timeout_ms": 2000, "batchlog_replay_interval_ms": 500,
            "canary_mutant": "batchlog_coordinator_dies"}
KEYS = range(6)


def session_on(c: LocalCluster, index: int, timeout_s: float):
    host, port = c.nodes[index].cql_endpoint.rsplit(":", 1)
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]),
                               retry_policy=FallthroughRetryPolicy(), consistency_level=ConsistencyLevel.QUORUM,
                               request_timeout=timeout_s)
    dc = Cluster([host], port=int(port), execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return dc, dc.connect()


def test_a_killed_coordinator_has_its_logged_batch_replayed(tmp_path):
    c = LocalCluster.create("batchlog", n=3, root=str(tmp_path), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        dc1, s1 = session_on(c, 0, timeout_s=1.0)
        s1.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
                   timeout=20)
        s1.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)", timeout=20)
        s1.execute("CREATE TABLE ks.u (k int PRIMARY KEY, w int)", timeout=20)
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        for k in KEYS:
            batch.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (%s, %s)"), (k, f"v{k}"))
        batch.add(SimpleStatement("INSERT INTO ks.u (k, w) VALUES (%s, %s)"), (7, 70))
        with pytest.raises((OperationTimedOut, WriteTimeout)):
            s1.execute(batch)                             # n1 wrote the batchlog, then went silent
        dc1.shutdown()
        dc2, s2 = session_on(c, 1, timeout_s=10.0)
        one = ConsistencyLevel.ONE
        early = [r.k for r in s2.execute(SimpleStatement("SELECT k FROM ks.t", consistency_level=one))]
        assert early == []                                # nothing applied before the replay: not half
        c.kill(0)                                         # SIGKILL: the coordinator is gone
        deadline, rows = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            rows = sorted((r.k, r.v) for r in s2.execute("SELECT k, v FROM ks.t"))
            if len(rows) == len(KEYS):
                break
            time.sleep(0.5)
        assert rows == [(k, f"v{k}") for k in KEYS]
        assert [tuple(r) for r in s2.execute("SELECT k, w FROM ks.u")] == [(7, 70)]
        replayed = [c.ask(c.nodes[i], "info")["metrics"].get("batchlog_replayed", 0) for i in (1, 2)]
        assert sum(replayed) >= 1, replayed
        dc2.shutdown()
    c.remove()
