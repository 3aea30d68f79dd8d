"""The Python client: token-aware, a blocking `Cluster`/`Session` and an asyncio twin.

    from ring.client import Cluster
    with Cluster(["127.0.0.1:9100"]) as cluster:
        session = cluster.connect("ks")
        session.insert("users", {"id": 1, "name": "ada"}, consistency="QUORUM")

One core, two thin drivers:
  protocol.py  sans-IO: request ids, frames, the retry/failover rules, error mapping, and
               `ClientCore`, whose request flows yield Send/Pause effects (no sockets, no clock)
  metadata.py  ring and schema as last seen; routing (which node gets a keyspace/key)
  session.py   the Session API, each method one (op, args) request
  sync.py      Cluster/Session: blocking sockets and a lock per connection
  aio.py       AsyncCluster/AsyncSession: pipelined asyncio streams
Wire format: docs/format.md (wire). The names below are the package's public API.
"""
from ring.client.aio import AsyncCluster, AsyncSession
from ring.client.metadata import DEFAULT_PORT, KEYED_OPS, NOT_OWNING, ClusterMetadata, normalize_endpoint
from ring.client.protocol import (HANDSHAKE_TIMEOUT_S, READ_OPS, REFRESH_INTERVAL_S, SCHEMA_AGREEMENT_POLL_S,
                                  SCHEMA_AGREEMENT_WAIT_S, SCHEMA_OPS, UNREACHABLE, ClientCore, ConnectionLost,
                                  ConnectionRefused, NoHostAvailable, OperationTimedOut, answer_of)
from ring.client.session import SessionAPI, level_name, scan_result
from ring.client.sync import Cluster, Session

__all__ = [
    "AsyncCluster", "AsyncSession", "ClientCore", "Cluster", "ClusterMetadata", "ConnectionLost",
    "ConnectionRefused", "DEFAULT_PORT", "HANDSHAKE_TIMEOUT_S", "KEYED_OPS", "NOT_OWNING", "NoHostAvailable",
    "OperationTimedOut", "READ_OPS", "REFRESH_INTERVAL_S", "SCHEMA_AGREEMENT_POLL_S", "SCHEMA_AGREEMENT_WAIT_S",
    "SCHEMA_OPS", "Session", "SessionAPI", "UNREACHABLE", "answer_of", "level_name", "normalize_endpoint",
    "scan_result",
]
