"""The listener's client_* counters (ring/runtime/listener.py) against a real node: every socket
read of a client connection counts in `client_reads`, the one that completes the hello included."""
from __future__ import annotations

import asyncio

from ring.client import Cluster
from ring.runtime import frames
from tests.ring.test_runtime_smoke import node, raw_client, read_payloads  # noqa: F401 - the fixture


def test_the_read_completing_the_hello_is_a_client_read(node):  # noqa: F811
    stats = node.process.stats
    before = stats["client_reads"]
    with raw_client(node.endpoint) as sock:            # the hello, in one write, nothing after it
        (payload,) = read_payloads(sock)
        assert frames.decode_handshake(payload, ("ready",))[0] == "ready"
        node.run(asyncio.sleep(0))                    # the loop is past that data_received
        assert stats["client_reads"] - before == 1
    with Cluster([node.endpoint], timeout_s=2) as cluster:
        session = cluster.connect()
        reads, writes = stats["client_reads"], stats["client_writes"]
        session.execute("describe_schema")
        node.run(asyncio.sleep(0))
        assert (stats["client_reads"] - reads, stats["client_writes"] - writes) == (1, 1)
