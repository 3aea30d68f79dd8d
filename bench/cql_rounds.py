"""The alternating SELECT rounds of bench/cql.py (`--rounds N`): CQL and own peak SELECT phases
on the same cluster, CQL first in odd rounds and own first in even ones, each started after the
nodes are quiet (flushes and compactions of the previous phase done), so both sides share the
machine's drifts; reported as the median ratio and its range. `--swap-tables` makes each side
read the other's table (the cost then follows the protocol, not the data)."""
from __future__ import annotations

import asyncio
import os
import time

from bench.cql_meter import CHUNK, KEYSPACE, WARMUP, Meter, make_driver, quiesce
from bench.harness import print_table


def select_rounds(cluster, pids, rounds: int, seconds: float, concurrency: tuple[int, int], keys: dict, driver_args,
                  swap: bool = False, meter_class=Meter, acsylla: bool = False) -> list:
    """`rounds` pairs of peak SELECT phases, CQL and own alternating (CQL first in even rounds, own
    first in odd ones), each after the nodes are quiet: the two sides share the machine's drifts.
    `concurrency`: (CQL, own) requests in flight. `meter_class`: the Meter whose METRICS / PY_SPY main() set (bench.cql runs as __main__).
    `swap`: CQL reads the table the own client wrote and the own client the CQL one (both read the
    first min(written) keys), to tell the protocol's cost from the data's. `acsylla`: a third side,
    acsylla reading its own table (keys["acsylla"]) in the own client's loop; the order is
    cassandra-driver, acsylla, own in odd rounds and the reverse in even ones."""
    from cassandra import ConsistencyLevel
    from cassandra.concurrent import execute_concurrent_with_args
    from ring.client import AsyncCluster

    tables = ("own", "cql") if swap else ("cql", "own")
    if swap:
        keys = dict.fromkeys(keys, min(keys.values()))
    driver = make_driver(cluster, *driver_args)
    loop = asyncio.new_event_loop()
    client = AsyncCluster([nh.endpoint for nh in cluster.nodes], timeout_s=12.0)
    closers: list = []
    try:
        session = driver.connect()
        select = session.prepare(f"SELECT v FROM {KEYSPACE}.{tables[0]} WHERE k = ?")
        select.consistency_level = ConsistencyLevel.QUORUM
        own = loop.run_until_complete(client.connect(KEYSPACE))
        cql_in_flight, own_in_flight = concurrency
        gate = asyncio.Semaphore(own_in_flight)

        async def get(k):
            async with gate:
                return await own.get(tables[1], {"k": k % keys["own"]}, consistency="QUORUM")

        async def own_chunk(n):
            return await asyncio.gather(*(get(k) for k in range(n, n + CHUNK)), return_exceptions=True)

        def cql_phase(name):
            meter, n, errors = meter_class(pids, name), 0, 0
            while time.perf_counter() - meter.t0 < seconds:
                results = execute_concurrent_with_args(session, select, [(k % keys["cql"],) for k in range(n, n + CHUNK)],
                                                       concurrency=cql_in_flight, raise_on_first_error=False)
                n += CHUNK
                errors += sum(not ok for ok, _ in results)
            return dict(meter.done(n), errors=errors)

        def own_phase(name):
            meter, n, errors = meter_class(pids, name), 0, 0
            while time.perf_counter() - meter.t0 < seconds:
                results = loop.run_until_complete(own_chunk(n))
                n += CHUNK
                errors += sum(isinstance(r, BaseException) for r in results)
            return dict(meter.done(n), errors=errors)

        phases = {"cql": cql_phase}
        if acsylla:
            from bench.cql_acsylla import select_chunks
            acs_chunk, acs_close = loop.run_until_complete(select_chunks(cluster, "acsylla", keys["acsylla"],
                                                                         cql_in_flight))
            closers.append(lambda: loop.run_until_complete(acs_close()))

            def acsylla_phase(name):
                meter, n, errors = meter_class(pids, name), 0, 0
                while time.perf_counter() - meter.t0 < seconds:
                    errors += loop.run_until_complete(acs_chunk(n, CHUNK))
                    n += CHUNK
                return dict(meter.done(n), errors=errors)
            phases["acsylla"] = acsylla_phase
            loop.run_until_complete(acs_chunk(0, WARMUP))
        phases["own"] = own_phase
        execute_concurrent_with_args(session, select, [(k,) for k in range(WARMUP)], concurrency=cql_in_flight)
        loop.run_until_complete(own_chunk(0))
        out = []
        sides = list(phases)
        for r in range(rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            row = {"order": ", ".join(order).replace("cql", "CQL")}
            for side in order:
                row[side + "_quiesce_s"] = quiesce(pids)
                row[side] = phases[side](f"round{r + 1}_{side}_select")
            row["load"] = os.getloadavg()[0]
            out.append(row)
        return out
    finally:
        for close in closers:
            close()
        loop.run_until_complete(client.shutdown())
        loop.run_until_complete(asyncio.sleep(0.2))        # the connections' read loops end
        loop.close()
        driver.shutdown()


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def report_rounds(rounds: list) -> None:
    clients = [c for c in ("cql", "acsylla") if c in rounds[0]]
    name = {"cql": "cassandra-driver", "acsylla": "acsylla"}
    table = [["SELECT round", "client", "order", "CQL rows/s", "own rows/s", "CQL / own", "node CPU ms/op (CQL, own)",
              "node CPU CQL / own", "client CPU ms/op (CQL, own)", "load"]]
    for i, r in enumerate(rounds):
        o = r["own"]
        for client in clients:
            c = r[client]
            table.append([str(i + 1), name[client], r["order"], f"{c['ops_s']:,.0f}", f"{o['ops_s']:,.0f}",
                          f"{c['ops_s'] / o['ops_s']:.2f}x", f"{c['node_cpu_ms_per_op']:.3f}, {o['node_cpu_ms_per_op']:.3f}",
                          f"{c['node_cpu_ms_per_op'] / o['node_cpu_ms_per_op']:.2f}x",
                          f"{c['client_cpu_ms_per_op']:.3f}, {o['client_cpu_ms_per_op']:.3f}", f"{r['load']:.1f}"])
    print_table(table)
    for i, r in enumerate(rounds):
        if r["own"].get("node_requests_in_flight") is not None:
            print(f"round {i + 1}: requests in flight at the nodes (summed, sampled once a second): " + ", ".join(
                f"{name.get(side, side)} {r[side]['node_requests_in_flight']:.1f}" for side in clients + ["own"]))
    for client in clients:
        speed = [r[client]["ops_s"] / r["own"]["ops_s"] for r in rounds]
        cpu = [r[client]["node_cpu_ms_per_op"] / r["own"]["node_cpu_ms_per_op"] for r in rounds]
        print(f"median of {len(rounds)}, {name[client]}: SELECT CQL / own rows/s {median(speed):.2f}x "
              f"[{min(speed):.2f}-{max(speed):.2f}], node CPU per op CQL / own {median(cpu):.2f}x "
              f"[{min(cpu):.2f}-{max(cpu):.2f}]")
