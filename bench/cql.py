"""CQL against the own protocol: prepared INSERT and SELECT through cassandra-driver and the same
writes and reads through dynatable's own client, on one 3-node cluster in one run.

3 nodes (separate processes, 127.0.0.1-3), keyspace RF 3, QUORUM, rows of an int key and a 100-byte
blob. CQL: `execute_concurrent_with_args` of a prepared statement (token-aware routing, the driver's
default protocol negotiation: v5 with lz4); own: `ring.client.AsyncCluster` with the same number
of requests in flight. Both tables are fresh; each phase runs once after a 200-row warm-up. The
figure is rows per second of wall time, client and nodes on the same 2 cores.

    python -m bench.cql                     # 5,000 rows, 64 in flight
    python -m bench.cql --rows 20000 --concurrency 128
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time

from bench.harness import print_table, temp_cluster

KEYSPACE = "bench_cql"
VALUE = os.urandom(100)
WARMUP = 200


def cql_phases(cluster, rows: int, concurrency: int) -> dict:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args

    logging.getLogger("cassandra").setLevel(logging.ERROR)
    port = int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    driver = Cluster([nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes], port=port)
    try:
        session = driver.connect()
        session.execute(f"CREATE KEYSPACE {KEYSPACE} WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute(f"CREATE TABLE {KEYSPACE}.cql (k int PRIMARY KEY, v blob)")
        session.execute(f"CREATE TABLE {KEYSPACE}.own (k int PRIMARY KEY, v blob)")
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.cql (k, v) VALUES (?, ?)")
        select = session.prepare(f"SELECT v FROM {KEYSPACE}.cql WHERE k = ?")
        insert.consistency_level = select.consistency_level = ConsistencyLevel.QUORUM
        out = {"protocol": driver.protocol_version}
        for name, statement, args in (("insert", insert, lambda k: (k, VALUE)), ("select", select, lambda k: (k,))):
            execute_concurrent_with_args(session, statement, [args(-k - 1) for k in range(WARMUP)],
                                         concurrency=concurrency)
            t0 = time.perf_counter()
            results = execute_concurrent_with_args(session, statement, [args(k) for k in range(rows)],
                                                   concurrency=concurrency, raise_on_first_error=False)
            out[name] = rows / (time.perf_counter() - t0)
            out[name + "_errors"] = sum(not ok for ok, _ in results)
        out["select_found"] = sum(1 for ok, r in results if ok and r.one() is not None)
        return out
    finally:
        driver.shutdown()


async def own_phases(cluster, rows: int, concurrency: int) -> dict:
    from ring.client import AsyncCluster

    client = AsyncCluster([nh.endpoint for nh in cluster.nodes], timeout_s=12.0)
    session = await client.connect(KEYSPACE)
    gate = asyncio.Semaphore(concurrency)
    out, found, errors = {}, 0, 0

    async def one(op, k):
        nonlocal found, errors
        async with gate:
            try:
                if op == "insert":
                    await session.insert("own", {"k": k, "v": VALUE}, consistency="QUORUM")
                else:
                    row = await session.get("own", {"k": k}, consistency="QUORUM")
                    found += row is not None
            except Exception:  # noqa: BLE001 - counted, reported
                errors += 1

    try:
        for op in ("insert", "select"):
            await asyncio.gather(*(one(op, -k - 1) for k in range(WARMUP)))
            found, errors = 0, 0
            t0 = time.perf_counter()
            await asyncio.gather(*(one(op, k) for k in range(rows)))
            out[op] = rows / (time.perf_counter() - t0)
            out[op + "_errors"] = errors
        out["select_found"] = found
        return out
    finally:
        await client.shutdown()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cql", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args(argv)
    settings = {"num_tokens": 8, "log_level": "WARNING"}
    with temp_cluster(3, name="benchcql", settings=settings) as cluster:
        cql = cql_phases(cluster, args.rows, args.concurrency)
        own = asyncio.run(own_phases(cluster, args.rows, args.concurrency))
    print(f"3 nodes, RF 3, QUORUM, {args.rows} rows, {args.concurrency} in flight; "
          f"cassandra-driver negotiated protocol v{cql['protocol']}")
    table = [["operation", "CQL rows/s", "own rows/s", "CQL / own", "errors (CQL, own)", "found (CQL, own)"]]
    for op in ("insert", "select"):
        table.append([op, f"{cql[op]:,.0f}", f"{own[op]:,.0f}", f"{cql[op] / own[op]:.2f}x",
                      f"{cql[op + '_errors']}, {own[op + '_errors']}",
                      f"{cql['select_found']}, {own['select_found']}" if op == "select" else ""])
    print_table(table)
    return 0 if not any(d[op + "_errors"] for d in (cql, own) for op in ("insert", "select")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
