"""bench/cql.py's second CQL client: acsylla 1.2.0 (Python over the C/C++ DataStax driver, asyncio
front end, its own I/O thread in C++), `--client acsylla` or `--client both`.

The same workload as the cassandra-driver phases: prepared `INSERT INTO bench_cql.<table> (k, v)
VALUES (?, ?)` and `SELECT v FROM bench_cql.<table> WHERE k = ?` at QUORUM, token-aware with the
replicas shuffled (acsylla's default, as the own client routes), protocol v4, no compression, the
same requests in flight (an asyncio.Semaphore around `session.execute`, closed loop in calls of
CHUNK requests), the same 200-row warm-up; then an open loop at half of the phase's peak with
latency from each request's intended start. The table is created by the caller. acsylla needs one
CQL port for all nodes (node N on 127.0.0.N, as LocalCluster lays them out).

A C++ driver keeps the Python client's CPU small, so CQL / own with acsylla shows the node's CQL
cost apart from cassandra-driver's client CPU. Client CPU (`process_time`) counts acsylla's I/O
thread too.
"""
from __future__ import annotations

import asyncio

from bench.cql_meter import KEYSPACE, asyncio_phases


def connect_args(cluster) -> tuple[list[str], int]:
    hosts = [nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes]
    ports = {int(nh.cql_endpoint.rsplit(":", 1)[1]) for nh in cluster.nodes}
    if len(ports) != 1:
        raise SystemExit(f"acsylla needs one CQL port for every node, the cluster has {sorted(ports)}")
    return hosts, ports.pop()


def acsylla_phases(cluster, pids, table: str, value: bytes, seconds: float, concurrency: int,
                   half_s: float) -> dict:
    """{"insert": {...}, "select": {...}, "written": n, ...} as cql_phases returns them."""
    return asyncio.run(_phases(cluster, pids, table, value, seconds, concurrency, half_s))


async def _phases(cluster, pids, table, value, seconds, concurrency, half_s) -> dict:
    import acsylla

    hosts, port = connect_args(cluster)
    client = acsylla.create_cluster(hosts, port=port, protocol_version=4, connect_timeout=10, request_timeout=12,
                                    consistency=acsylla.Consistency.QUORUM, token_aware_routing=True,
                                    token_aware_routing_shuffle_replicas=True, log_level="error")
    session = await client.create_session(keyspace=KEYSPACE)
    try:
        insert = await session.create_prepared(f"INSERT INTO {KEYSPACE}.{table} (k, v) VALUES (?, ?)")
        select = await session.create_prepared(f"SELECT v FROM {KEYSPACE}.{table} WHERE k = ?")
        quorum = acsylla.Consistency.QUORUM

        async def call(op, k, written):
            if op == "insert":
                return await session.execute(insert.bind([k, value], consistency=quorum))
            return (await session.execute(select.bind([k % written], consistency=quorum))).first()

        out = await asyncio_phases(pids, "acsylla", call, seconds, concurrency, half_s)
        return dict(out, protocol=4, compression="none", routing="shuffled", client="acsylla")
    finally:
        await session.close()


async def select_chunks(cluster, table: str, keys: int, concurrency: int):
    """For bench/cql_rounds.py, in the running loop: (chunk(n, count) -> errors, close()) where
    chunk runs `count` prepared QUORUM SELECTs of keys n.. (mod `keys`), `concurrency` in flight."""
    import acsylla

    hosts, port = connect_args(cluster)
    client = acsylla.create_cluster(hosts, port=port, protocol_version=4, connect_timeout=10, request_timeout=12,
                                    consistency=acsylla.Consistency.QUORUM, log_level="error")
    session = await client.create_session(keyspace=KEYSPACE)
    select = await session.create_prepared(f"SELECT v FROM {KEYSPACE}.{table} WHERE k = ?")
    gate = asyncio.Semaphore(concurrency)

    async def one(k) -> int:
        async with gate:
            try:
                await session.execute(select.bind([k % keys], consistency=acsylla.Consistency.QUORUM))
                return 0
            except Exception:  # noqa: BLE001 - counted, reported
                return 1

    async def chunk(n: int, count: int) -> int:
        return sum(await asyncio.gather(*(one(k) for k in range(n, n + count))))

    return chunk, session.close
