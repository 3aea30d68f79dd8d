"""The asyncio driver's connection (ring/client/aio.py) against a real node's listener: requests
of one loop iteration leave in one write, timeouts come from one timer per connection, and the
handshake's failures surface as the sync driver's do."""
from __future__ import annotations

import asyncio
import time

import pytest

from ring.client import AsyncCluster, NoHostAvailable, OperationTimedOut
from ring.runtime.frames import AuthenticationError
from tests.ring.test_runtime_smoke import NodeThread, free_port, node  # noqa: F401 - the fixture


def test_requests_of_one_loop_iteration_leave_in_one_write(node):  # noqa: F811
    async def main():
        async with AsyncCluster([node.endpoint]) as cluster:
            session = await cluster.connect()
            conn = cluster._connections[node.endpoint]
            before = conn.writes
            answers = await asyncio.gather(*(session.execute("describe_schema") for _ in range(64)))
            assert answers == [{"tables": []}] * 64
            return conn.writes - before
    assert asyncio.run(main()) == 1


def test_a_timed_out_request_fails_alone_and_the_connection_stays_usable(node):  # noqa: F811
    async def main():
        async with AsyncCluster([node.endpoint], timeout_s=0.3) as cluster:
            session = await cluster.connect()
            conn = cluster._connections[node.endpoint]
            t0 = time.monotonic()
            slow = asyncio.ensure_future(session.execute("slow"))       # never answered
            await asyncio.sleep(0.1)
            cluster.timeout_s = 5.0
            late = asyncio.ensure_future(session.execute("slow"))       # a later, longer deadline
            await asyncio.sleep(0)
            late_id = max(conn.pending)
            with pytest.raises(OperationTimedOut):
                await slow
            waited = time.monotonic() - t0
            assert 0.29 <= waited < 2.0, waited
            assert not late.done()                  # its own deadline is not due yet
            assert await session.execute("describe_schema") == {"tables": []}
            assert not conn.closed and list(conn.pending) == [late_id]
            late.cancel()
            with pytest.raises(asyncio.CancelledError):
                await late
            assert conn.pending == {}
    asyncio.run(main())


def test_handshake_failures_surface_like_the_sync_driver(tmp_path):
    n = NodeThread(tmp_path, cluster_secret="s3cret")
    try:
        async def connect(secret):
            async with AsyncCluster([n.endpoint], cluster_secret=secret) as cluster:
                session = await cluster.connect()
                return await session.execute("describe_schema")
        assert asyncio.run(connect("s3cret")) == {"tables": []}
        with pytest.raises(AuthenticationError, match="wrong or missing cluster_secret"):
            asyncio.run(connect("guess"))
    finally:
        n.stop()
    with pytest.raises(NoHostAvailable, match="cannot connect"):
        asyncio.run(connect_to(f"127.0.0.1:{free_port()}"))


async def connect_to(endpoint):
    async with AsyncCluster([endpoint]) as cluster:
        await cluster.connect()
