"""CQL against the own protocol: prepared INSERT and SELECT through cassandra-driver and the same
writes and reads through dynatable's own client, on one 3-node cluster in one run.

3 nodes (separate processes, 127.0.0.1-3), keyspace RF 3, QUORUM, rows of an int key and a 100-byte
blob. CQL: `execute_concurrent_with_args` of a prepared statement (token-aware routing;
`--protocol`, default 4, and `--compression`, default none, choose the CQL framing;
`--routing`, default shuffled: TokenAwarePolicy over DCAwareRoundRobinPolicy with the replicas
shuffled, as the own client does; `primary`: the driver's default, always the first replica, so
each node coordinates its primary vnode ranges' share; `--row-factory`, default `dict_factory`:
rows as dicts, the shape the own client returns; the driver's default `named_tuple_factory`
builds a namedtuple class for every response, ~40 us of client CPU each); own: `ring.client.AsyncCluster` with the same number of requests in flight. `--client acsylla`
(bench/cql_acsylla.py: the C/C++ DataStax driver under asyncio, prepared statements, v4, token-aware
shuffled, QUORUM, the same depth) or `--client both` runs a second CQL client and reports each
against own: its small client CPU tells the node's CQL cost apart from cassandra-driver's.
`--client-gc freeze` runs gc.collect() and gc.freeze() in this process before the phases (the
driver's and the own client's long-lived objects leave the collector's generations). Both tables
are fresh; each phase runs after a 200-row warm-up. Per phase:

- **peak** (closed loop, `--seconds`, in calls of 1000 requests; each peak starts once the nodes
  are quiet, `cql_meter.quiesce`: under 0.15 CPU-s/s together, at most 15 s, so that no side is
  charged the flushes and compactions of the phase before it; JSON `quiesce_s`): rows per second of wall time,
  client and nodes on the same 2 cores; the select phase reads the keys the insert phase wrote;
  node CPU (utime + stime of the three node processes and their flush workers) and client CPU
  (this process: the driver's threads and the own client's loop) per 1000 operations;
- **half of peak** (open loop, `--half-seconds`): requests started on a fixed schedule at half the
  phase's peak, latency measured from each request's *intended* start (coordinated omission
  corrected), into an HdrHistogram (1 us .. 60 s, 3 digits): p50 / p95 / p99 / max;
- **SELECT rounds** (`--rounds N`, after the above): N more peak SELECT phases per side on the
  same tables, CQL and own alternating (CQL first in odd rounds, own first in even ones), each
  after the nodes are quiet (under 0.15 CPU-s/s, flushes and compactions done): the two sides
  share the machine's drifts; the median ratio and its range. `--same-rate` runs the own open
  loop at the CQL one's rate, and each open loop reports node CPU per operation, so the node's
  work per operation compares at the same throughput; `--metrics` reports (JSON
  `metrics_per_op`) every node gauge that changed during a peak phase, per operation;
- **node CPU by callback** (`--node-cpu DIR`): the nodes load bench/node_probe/sitecustomize.py and
  time each asyncio callback by kind (a socket read by protocol and role, a flush...), the epoll
  wait and a few entry points inside them (the coordinator's `Node.submit`, a peer message's
  `Node.step`, the CQL and own-protocol front ends) in thread CPU, so a preempted node is not
  charged; per peak phase, CPU us per op, three nodes summed (JSON `node_cpu_us_per_op_by_callback`).
  The same coordinator code costing more in one phase than in another is the machine, not the protocol;
- **parse and prepare cost** per statement (microseconds, `ring.cql.parser.parse` and
  `ring.cql.prepare.prepare` in this process against an embedded store's schema).

    python -m bench.cql                     # 5 s per peak, 64 in flight, 5 s at half of peak
    python -m bench.cql --seconds 10 --concurrency 128 --row-factory named_tuple --json cql.json
    python -m bench.cql --protocol 5 --compression lz4 --client-gc freeze
    python -m bench.cql --seconds 4 --half-seconds 2 --rounds 3 --metrics --json cql.json
    python -m bench.cql --seconds 5 --half-seconds 2 --client both --rounds 2   # acsylla a third side
    python -m bench.cql --seconds 5 --half-seconds 0 --client acsylla --node-cpu /tmp/node-cpu
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import threading
import time
import timeit
import tomllib

from hdrh.histogram import HdrHistogram

from bench.cql_meter import (CHUNK, HIST_MAX_US, KEYSPACE, WARMUP, Meter, asyncio_phases, make_driver, metrics_cluster,
                              metrics_url, percentiles, quiesce)
from bench.harness import machine, print_table, temp_cluster

VALUE = os.urandom(100)
STATEMENTS = (                       # the parse / prepare figures
    "SELECT v FROM bench_cql.kv WHERE k = ?",
    "INSERT INTO bench_cql.kv (k, v) VALUES (?, ?)",
    "UPDATE bench_cql.wide USING TTL 60 SET a = ?, b = ? WHERE p = ? AND c = ?",
    "SELECT p, c, a, writetime(a) FROM bench_cql.wide WHERE p = ? AND c >= ? AND c < ? "
    "ORDER BY c DESC LIMIT 100",
    "DELETE FROM bench_cql.wide WHERE p = 1 AND c = 2",
)


def cql_phases(cluster, pids, seconds: float, concurrency: int, half_s: float, row_factory: str,
               protocol: int = 4, compression: str = "none", routing: str = "shuffled") -> dict:
    from cassandra import ConsistencyLevel
    from cassandra.concurrent import execute_concurrent_with_args

    driver = make_driver(cluster, row_factory, protocol, compression, routing)
    try:
        session = driver.connect()
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.cql (k, v) VALUES (?, ?)")
        select = session.prepare(f"SELECT v FROM {KEYSPACE}.cql WHERE k = ?")
        insert.consistency_level = select.consistency_level = ConsistencyLevel.QUORUM
        out, written = {"protocol": driver.protocol_version, "compression": compression, "routing": routing}, 0
        for name, statement, args in (("insert", insert, lambda k: (k, VALUE)),
                                      ("select", select, lambda k: (k % written,))):
            execute_concurrent_with_args(session, statement, [args(-k - 1) for k in range(WARMUP)],
                                         concurrency=concurrency)
            quiet_s = quiesce(pids)                 # the previous phase's flushes are not ours
            meter, n, errors, found = Meter(pids, f"cql_{name}"), 0, 0, 0
            while time.perf_counter() - meter.t0 < seconds:
                results = execute_concurrent_with_args(session, statement, [args(k) for k in range(n, n + CHUNK)],
                                                       concurrency=concurrency, raise_on_first_error=False)
                n += CHUNK
                errors += sum(not ok for ok, _ in results)
                found += sum(1 for ok, r in results if ok and r.one() is not None)
            out[name] = dict(meter.done(n), errors=errors, quiesce_s=quiet_s)
            if name == "select":
                out[name]["found"] = found
            written = written or n
            meter = Meter(pids)
            half = cql_open_loop(session, statement, args, written, out[name]["ops_s"] / 2, half_s)
            out[name]["half"] = dict(half, node_cpu_ms_per_op=meter.done(max(1, half["count"]))["node_cpu_ms_per_op"])
        out["written"] = written
        return out
    finally:
        driver.shutdown()


def create_schema(cluster) -> None:
    """The keyspace (RF 3) and one fresh table per client: cql (cassandra-driver), acsylla, own."""
    driver = make_driver(cluster, "dict", 4, "none", "shuffled")
    try:
        session = driver.connect()
        session.execute(f"CREATE KEYSPACE {KEYSPACE} WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        for table in ("cql", "acsylla", "own"):
            session.execute(f"CREATE TABLE {KEYSPACE}.{table} (k int PRIMARY KEY, v blob)")
    finally:
        driver.shutdown()


def cql_open_loop(session, statement, args, keys: int, rate: float, seconds: float) -> dict:
    """`rate` requests/s for `seconds`, each timed from its intended start (driver callbacks)."""
    hist, lock, state = HdrHistogram(1, HIST_MAX_US, 3), threading.Lock(), {"left": 0, "errors": 0}
    finished = threading.Event()

    def settle(due, error):
        with lock:
            if error:
                state["errors"] += 1
            else:
                hist.record_value(max(1, int((time.perf_counter() - due) * 1e6)))
            state["left"] -= 1
            if state["left"] == 0 and state.get("issued"):
                finished.set()

    interval, n = 1.0 / rate, 0
    t0 = time.perf_counter()
    while True:
        due = t0 + n * interval
        if due - t0 >= seconds:
            break
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        with lock:
            state["left"] += 1
        future = session.execute_async(statement, args(n % keys))
        future.add_callbacks(lambda _, due=due: settle(due, False), lambda _, due=due: settle(due, True))
        n += 1
    with lock:
        state["issued"] = True
        if state["left"] == 0:
            finished.set()
    finished.wait(60)
    return dict(percentiles(hist, state["errors"]), rate=rate)


async def own_phases(cluster, pids, seconds: float, concurrency: int, half_s: float,
                     same_rate: dict | None = None) -> dict:
    from ring.client import AsyncCluster

    client = AsyncCluster([nh.endpoint for nh in cluster.nodes], timeout_s=12.0)
    session = await client.connect(KEYSPACE)

    async def call(op, k, written):
        if op == "insert":
            return await session.insert("own", {"k": k, "v": VALUE}, consistency="QUORUM")
        return await session.get("own", {"k": k % written}, consistency="QUORUM")

    try:
        return await asyncio_phases(pids, "own", call, seconds, concurrency, half_s, same_rate)
    finally:
        await client.shutdown()


def parse_prepare_costs(number: int = 2000) -> dict:
    """Microseconds per parse and per prepare (no cache) of each of STATEMENTS."""
    from engine.store import Store
    from ring.cql.parser import parse
    from ring.cql.prepare import prepare

    with tempfile.TemporaryDirectory(prefix="bench-cql-") as d:
        store = Store.open(d)
        try:
            store.create_keyspace(KEYSPACE)
            store.create_table(KEYSPACE, "kv", {"k": "int", "v": "blob"}, ["k"])
            store.create_table(KEYSPACE, "wide", {"p": "int", "c": "int", "a": "text", "b": "bigint"},
                               (["p"], "c"))
            out = {}
            for q in STATEMENTS:
                prepare(q, None, store.keyspaces)                   # checks it prepares at all
                out[q] = {"parse_us": min(timeit.repeat(lambda: parse(q), number=number, repeat=3)) / number * 1e6,
                          "prepare_us": min(timeit.repeat(lambda: prepare(q, None, store.keyspaces), number=number,
                                                          repeat=3)) / number * 1e6}
            return out
        finally:
            store.close()


def report(clients: dict, own: dict, costs: dict) -> None:
    """`clients`: {"cassandra-driver" or "acsylla": that client's phases}, each against `own`."""
    table = [["CQL client", "operation", "CQL rows/s", "own rows/s", "CQL / own", "node CPU ms/op (CQL, own)",
              "node CPU CQL / own", "client CPU ms/op (CQL, own)", "errors (CQL, own)"]]
    for name, cql in clients.items():
        for op in ("insert", "select"):
            c, o = cql[op], own[op]
            table.append([name, op, f"{c['ops_s']:,.0f}", f"{o['ops_s']:,.0f}", f"{c['ops_s'] / o['ops_s']:.2f}x",
                          f"{c['node_cpu_ms_per_op']:.3f}, {o['node_cpu_ms_per_op']:.3f}",
                          f"{c['node_cpu_ms_per_op'] / o['node_cpu_ms_per_op']:.2f}x",
                          f"{c['client_cpu_ms_per_op']:.3f}, {o['client_cpu_ms_per_op']:.3f}",
                          f"{c['errors']}, {o['errors']}"])
    print_table(table)
    print()
    table = [["half of peak", "rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "node CPU ms/op"]]
    for who, d in [*clients.items(), ("own", own)]:
        for op in ("insert", "select"):
            h = d[op]["half"]
            table.append([f"{who} {op}", f"{h['rate']:,.0f}", f"{h['p50_ms']:.2f}", f"{h['p95_ms']:.2f}",
                          f"{h['p99_ms']:.2f}", f"{h['max_ms']:.1f}", str(h["errors"]), f"{h['node_cpu_ms_per_op']:.3f}"])
    print_table(table)
    print()
    table = [["statement", "parse us", "prepare us (parse included)"]]
    for q, c in costs.items():
        table.append([q if len(q) < 60 else q[:57] + "...", f"{c['parse_us']:.0f}", f"{c['prepare_us']:.0f}"])
    print_table(table)


def report_node_cpu(phases: dict) -> None:
    """--node-cpu: node CPU us per op by loop callback (and calls per op), one column per peak phase."""
    by = {name: p["node_cpu_us_per_op_by_callback"] for name, p in phases.items()
          if "node_cpu_us_per_op_by_callback" in p}
    kinds = sorted({k for d in by.values() for k in d}, key=lambda k: -max(d.get(k, [0])[0] for d in by.values()))
    table = [["node CPU us per op, 3 nodes (calls per op)", *by]]
    for kind in kinds:
        if max(d.get(kind, [0])[0] for d in by.values()) >= 0.5:
            table.append([kind, *(f"{d[kind][0]:.1f} ({d[kind][1]:.3f})" if kind in d else "" for d in by.values())])
    print_table(table)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cql", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="closed-loop seconds per peak phase")
    ap.add_argument("--row-factory", choices=("dict", "tuple", "named_tuple"), default="dict",
                    help="the driver's row factory (dict: rows shaped as the own client's; named_tuple: "
                         "the driver's default, which builds a namedtuple class per response)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--cql-concurrency", type=int, default=0,
                    help="requests in flight for the CQL side only (default: --concurrency); cassandra-driver keeps "
                         "fewer of them at the nodes than the own client (--metrics shows the depth)")
    ap.add_argument("--protocol", type=int, choices=(4, 5), default=4, help="the CQL protocol version the driver uses")
    ap.add_argument("--compression", choices=("none", "lz4"), default="none", help="CQL frame compression")
    ap.add_argument("--routing", choices=("shuffled", "primary"), default="shuffled",
                    help="the driver's TokenAwarePolicy: shuffled replicas (as the own client) or always the "
                         "primary replica (cassandra-driver's default, shuffle_replicas=False)")
    ap.add_argument("--client-gc", choices=("default", "freeze"), default="default",
                    help="freeze: gc.collect() then gc.freeze() in this (client) process after the setup")
    ap.add_argument("--half-seconds", type=float, default=5.0, help="open-loop seconds at half of peak (0: skip)")
    ap.add_argument("--same-rate", action="store_true",
                    help="the own open loop runs at the CQL one's rate (half of the CQL peak), so node CPU per "
                         "operation compares at the same throughput")
    ap.add_argument("--rounds", type=int, default=0,
                    help="then N more peak SELECT phases per side, alternating CQL / own, each after the nodes "
                         "are quiet; their median ratio")
    ap.add_argument("--swap-tables", action="store_true",
                    help="in the --rounds, CQL reads the own client's table and the own client the CQL one")
    ap.add_argument("--client", choices=("cassandra-driver", "acsylla", "both"), default="cassandra-driver",
                    help="the CQL client(s): cassandra-driver (pure-Python event loop), acsylla (the C/C++ driver "
                         "under asyncio; bench/cql_acsylla.py), or both in turn; each reported against own")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--py-spy", metavar="DIR", help="py-spy node 1 during each peak phase into DIR/<phase>.txt")
    ap.add_argument("--node-cpu", metavar="DIR",
                    help="the nodes time their loop callbacks in thread CPU (bench/node_probe, dumps in DIR); each "
                         "peak phase reports CPU us per op by callback, the three nodes summed")
    ap.add_argument("--metrics", action="store_true",
                    help="nodes export /metrics; each phase reports (JSON) the changed node gauges per operation")
    ap.add_argument("--node-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a node setting (TOML value), e.g. gc_young_threshold=0; repeatable")
    args = ap.parse_args(argv)
    if args.rounds and args.client == "acsylla":
        ap.error("--rounds run cassandra-driver (and acsylla with --client both) against own: use "
                 "--client cassandra-driver or both")
    if args.swap_tables and args.client != "cassandra-driver":
        ap.error("--swap-tables swaps the cassandra-driver and own tables: use --client cassandra-driver")
    settings = {"num_tokens": 8, "log_level": "WARNING"}
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)
        Meter.PY_SPY = args.py_spy
    if args.node_cpu:
        os.makedirs(args.node_cpu, exist_ok=True)
        Meter.NODE_CPU = os.path.abspath(args.node_cpu)
        probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_probe")
        os.environ["DYNATABLE_NODE_CPU_DIR"] = Meter.NODE_CPU       # the node processes inherit both
        os.environ["PYTHONPATH"] = probe + os.pathsep + os.environ.get("PYTHONPATH", "")
    for item in args.node_setting:
        key, _, value = item.partition("=")
        settings[key] = tomllib.loads(f"v = {value}")["v"]
    with (metrics_cluster(settings) if args.metrics else temp_cluster(3, name="benchcql", settings=settings)) as cluster:
        pids = [nh.pid for nh in cluster.nodes]
        if args.metrics:
            Meter.METRICS = [metrics_url(nh) for nh in cluster.nodes]
        if args.client_gc == "freeze":
            gc.collect()
            gc.freeze()
        create_schema(cluster)
        clients, in_flight = {}, args.cql_concurrency or args.concurrency
        if args.client in ("cassandra-driver", "both"):
            clients["cassandra-driver"] = cql_phases(cluster, pids, args.seconds, in_flight, args.half_seconds,
                                                     args.row_factory, args.protocol, args.compression, args.routing)
        if args.client in ("acsylla", "both"):
            from bench.cql_acsylla import acsylla_phases
            clients["acsylla"] = acsylla_phases(cluster, pids, "acsylla", VALUE, args.seconds, in_flight,
                                                args.half_seconds)
        first = next(iter(clients.values()))
        same = {op: first[op]["half"]["rate"] for op in ("insert", "select")} if args.same_rate else None
        own = asyncio.run(own_phases(cluster, pids, args.seconds, args.concurrency, args.half_seconds, same))
        from bench.cql_rounds import report_rounds, select_rounds
        written = {"own": own["written"], **{("cql" if name == "cassandra-driver" else name): c["written"]
                                             for name, c in clients.items()}}
        rounds = select_rounds(cluster, pids, args.rounds, args.seconds, (in_flight, args.concurrency), written,
                               (args.row_factory, args.protocol, args.compression, args.routing),
                               args.swap_tables, Meter, acsylla="acsylla" in clients) if args.rounds else []
    costs = parse_prepare_costs()
    print(f"3 nodes, RF 3, QUORUM, {args.seconds:g} s per peak, {args.concurrency} in flight (CQL {in_flight}); "
          f"clients {', '.join(clients)}; cassandra-driver protocol v{args.protocol}, compression {args.compression}, "
          f"routing {args.routing}, row factory {args.row_factory}, client GC {args.client_gc} (acsylla: v4, none, "
          f"shuffled); load average {os.getloadavg()[0]:.2f} at the end")
    report(clients, own, costs)
    if rounds:
        print()
        report_rounds(rounds)
    if args.node_cpu:
        print()
        report_node_cpu({f"{name} {op}": side[op] for name, side in (*clients.items(), ("own", own))
                         for op in ("insert", "select")})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "args": vars(args), "cql": clients.get("cassandra-driver"),
                       "acsylla": clients.get("acsylla"), "own": own, "parse_prepare": costs,
                       "select_rounds": rounds}, f, indent=1)
    return 0 if not any(d[op]["errors"] or d[op]["half"]["errors"] for d in (*clients.values(), own)
                        for op in ("insert", "select")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
