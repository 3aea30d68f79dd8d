"""Lightweight transactions on a real 3-node cluster: CAS beside plain QUORUM writes, in one run.

Issue 20's benchmark. Goal: uncontended CAS >= 0.25x plain QUORUM writes (a CAS is four round
trips, prepare+read, propose, commit, plus the client's; a plain write one).

What one run does:
1. a local 3-node cluster (tools/cluster LocalCluster) in a temporary root, keyspace `bench`
   (SimpleStrategy, RF 3), table `kv (k int PRIMARY KEY, v int)`;
2. three phases, each `--clients` (32) closed-loop clients (coroutines of one AsyncSession in
   this process, token-aware), `--warmup` s uncounted then `--seconds` s measured:
   - `quorum_write`: plain QUORUM inserts of fresh keys;
   - `cas_uncontended`: `insert(if_not_exists=True)` of fresh keys, SERIAL / commit QUORUM;
   - `cas_contended`: 10 hot keys; each client compare-and-sets a random hot key from the value it
     last saw (`update(if_={"v": seen})`), learning the current value from a refusal;
3. for the CAS phases, Paxos round trips per operation from the nodes' counters (`nodetool info`
   metrics `paxos_round_trips` and `cas_writes`, summed over the 3 nodes, warm-up included):
   every exchange the coordinator has with the participants (prepare, propose, finishing or
   repairing a commit found in progress, the commit);
4. the cluster is removed at the end, always.

    python -m bench.lwt                        # 8 s per phase, 32 clients
    python -m bench.lwt --seconds 4 --json out.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

from hdrh.histogram import HdrHistogram

from bench.harness import machine, print_table, temp_cluster

KEYSPACE, TABLE = "bench", "kv"
HOT_KEYS = 10
GOAL_RATIO = 0.25


def node_counters(cluster) -> dict:
    """paxos_round_trips and cas_writes, summed over the nodes (each node's `info` metrics)."""
    from tools.nodetool import NodeProbe
    total = {"paxos_round_trips": 0, "cas_writes": 0}
    for host in cluster.contact_points():
        with NodeProbe(host, cluster_name=cluster.setting("cluster_name", cluster.name),
                       cluster_secret=cluster.setting("cluster_secret", "")) as probe:
            metrics = probe.call("info")["metrics"]
        for name in total:
            total[name] += metrics.get(name, 0)
    return total


async def run_phase(session, phase: str, clients: int, warmup: float, seconds: float, base_key: int) -> dict:
    hist = HdrHistogram(1, 60_000_000, 3)
    counts = {"ops": 0, "all_ops": 0, "applied": 0, "not_applied": 0}
    errors: dict[str, int] = {}
    t0 = time.perf_counter()
    t_begin, t_end = t0 + warmup, t0 + warmup + seconds

    async def client(c: int) -> None:
        rng = random.Random(c)
        seen = {k: 0 for k in range(HOT_KEYS)}
        n = 0
        while time.perf_counter() < t_end:
            n += 1
            key = base_key + c * 1_000_000 + n
            start = time.perf_counter()
            try:
                if phase == "quorum_write":
                    result = await session.insert(TABLE, {"k": key, "v": n}, consistency="QUORUM")
                elif phase == "cas_uncontended":
                    result = await session.insert(TABLE, {"k": key, "v": n}, consistency="QUORUM",
                                                  if_not_exists=True)
                else:
                    hot = rng.randrange(HOT_KEYS)
                    new = c * 1_000_000 + n
                    result = await session.update(TABLE, {"k": hot}, {"v": new}, consistency="QUORUM",
                                                  if_={"v": seen[hot]})
                    seen[hot] = new if result["applied"] else result.get("v")
            except Exception as e:  # noqa: BLE001 - counted, never fatal
                if time.perf_counter() >= t_begin:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue
            done = time.perf_counter()
            counts["all_ops"] += 1
            if t_begin <= done < t_end:
                counts["ops"] += 1
                hist.record_value(max(1, int((done - start) * 1e6)))
                if isinstance(result, dict) and "applied" in result:
                    counts["applied" if result["applied"] else "not_applied"] += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    q = lambda p: hist.get_value_at_percentile(p) / 1000.0
    return {"phase": phase, "clients": clients, **counts, "ops_per_s": counts["ops"] / seconds,
            "p50_ms": q(50), "p99_ms": q(99), "max_ms": hist.get_max_value() / 1000.0, "errors": errors}


async def run_all(cluster, args) -> dict:
    from ring.client import AsyncCluster
    client = AsyncCluster(cluster.contact_points(), timeout_s=15.0,
                          cluster_name=cluster.setting("cluster_name", cluster.name))
    session = await client.connect()
    await session.create_keyspace(KEYSPACE, {"class": "SimpleStrategy", "replication_factor": 3})
    await session.create_table(TABLE, {"k": "int", "v": "int"}, primary_key="k", keyspace=KEYSPACE)
    await asyncio.get_running_loop().run_in_executor(None, lambda: cluster.wait_until_converged(timeout_s=60))
    await client.shutdown()
    client = AsyncCluster(cluster.contact_points(), timeout_s=15.0,
                          cluster_name=cluster.setting("cluster_name", cluster.name))
    session = await client.connect(KEYSPACE)
    for k in range(HOT_KEYS):
        await session.insert(TABLE, {"k": k, "v": 0}, consistency="QUORUM")
    phases = {}
    for i, phase in enumerate(("quorum_write", "cas_uncontended", "cas_contended")):
        print(f"{phase}: {args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s ...", flush=True)
        before = node_counters(cluster)
        p = await run_phase(session, phase, args.clients, args.warmup, args.seconds, (i + 1) * 100_000_000)
        after = node_counters(cluster)
        if phase != "quorum_write":
            cas = after["cas_writes"] - before["cas_writes"]
            p["paxos_round_trips_per_op"] = (after["paxos_round_trips"] - before["paxos_round_trips"]) / cas \
                if cas else None
        phases[phase] = p
        print(f"  {p['ops_per_s']:,.0f} ops/s, p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms, "
              f"applied {p['applied']}, not applied {p['not_applied']}, errors {p['errors'] or 0}"
              + (f", {p['paxos_round_trips_per_op']:.2f} Paxos round trips/op"
                 if p.get("paxos_round_trips_per_op") is not None else ""), flush=True)
    await client.shutdown()
    return phases


def report(phases: dict) -> list[list[str]]:
    plain = phases["quorum_write"]["ops_per_s"]
    rows = [["phase", "ops/s", "vs QUORUM write", "p50 ms", "p99 ms", "round trips/op", "applied/not", "errors"]]
    for name, p in phases.items():
        rt = p.get("paxos_round_trips_per_op")
        rows.append([name, f"{p['ops_per_s']:,.0f}", f"{p['ops_per_s'] / plain:.2f}x" if plain else "-",
                     f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", "1 (write)" if name == "quorum_write" else
                     (f"{rt:.2f}" if rt is not None else "-"),
                     "-" if name == "quorum_write" else f"{p['applied']}/{p['not_applied']}",
                     json.dumps(p["errors"]) if p["errors"] else "0"])
    ratio = phases["cas_uncontended"]["ops_per_s"] / plain if plain else 0.0
    rows.append(["goal: uncontended CAS >= 0.25x QUORUM writes", f"{ratio:.2f}x", "PASS" if ratio >= GOAL_RATIO
                 else "MISS", "", "", "", "", ""])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase (default 8)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before each phase (default 1)")
    ap.add_argument("--clients", type=int, default=32, help="closed-loop clients (default 32)")
    ap.add_argument("--commitlog-sync", choices=("periodic", "batch", "group"), default="periodic",
                    help="the nodes' commitlog_sync (default periodic; batch/group: every promise fsynced)")
    ap.add_argument("--json", default=None, help="write every figure to this file")
    args = ap.parse_args(argv)
    res = {"machine": machine(), "config": vars(args)}
    with temp_cluster(3, name="benchlwt", settings={"commitlog_sync": args.commitlog_sync}) as cluster:
        print(f"3-node cluster up: {cluster.contact_points()}", flush=True)
        res["phases"] = asyncio.run(run_all(cluster, args))
    rows = report(res["phases"])
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**res, "table": rows}, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
