"""Topology-change benchmark (issue 4): how long a bootstrap and a decommission take, and how
fast streaming moves data, on a real local cluster.

One run: a 3-node cluster (RF 3, `ring_delay_ms` 2000, 16 vnodes), `--rows` rows of 100-byte
values loaded at ONE (64 requests in flight, one asyncio client), every node flushed; then
`cluster add` (a 4th node bootstraps: ring delay, BOOT, ring delay, streaming, NORMAL) and
`cluster decommission node1`. For each: wall time (including the two ring delays each change
waits for gossip), the time spent streaming (the nodes' own stream sessions; for a
decommission, the slowest of the gainers, which stream in parallel), partitions and bytes
streamed, and the streaming rate. Then a check: every row reads back at
QUORUM from the final ring.

    python -m bench.topology --rows 100000 --json topology.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time

from rich.console import Console
from rich.table import Table

RING_DELAY_MS = 2000
VALUE = b"x" * 100


async def _load(contact_points, rows: int, console: Console) -> None:
    from ring.client import AsyncCluster
    cluster = AsyncCluster(contact_points, timeout_s=12.0)
    session = await cluster.connect("bench")
    sem = asyncio.Semaphore(64)

    async def one(k):
        async with sem:
            await session.insert("kv", {"k": k, "v": VALUE}, consistency="ONE")

    started = time.perf_counter()
    for lo in range(0, rows, 10_000):
        await asyncio.gather(*(one(k) for k in range(lo, min(rows, lo + 10_000))))
        console.print(f"  loaded {min(rows, lo + 10_000):,} rows ({time.perf_counter() - started:.0f} s)")
    await cluster.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    console = Console()
    from tools.cluster import LocalCluster
    root = tempfile.mkdtemp(prefix="dynatable-bench-topology-")
    settings = {"ring_delay_ms": RING_DELAY_MS, "gossip_interval_ms": 500}
    results = {"rows": args.rows, "ring_delay_ms": RING_DELAY_MS}
    with LocalCluster.create("topo", n=3, root=root, settings=settings) as cluster:
        cluster.progress = lambda m: console.print(f"  {m}")
        try:
            cluster.start(timeout_s=60)
            client = cluster.client()
            s = client.connect()
            s.create_keyspace("bench", {"class": "SimpleStrategy", "replication_factor": 3})
            s.create_table("kv", {"k": "int", "v": "blob"}, primary_key="k", keyspace="bench")
            client.shutdown()
            console.print(f"loading {args.rows:,} rows at ONE ...")
            asyncio.run(_load(cluster.contact_points(), args.rows, console))
            for nh in cluster.nodes:
                cluster.ask(nh, "flush", timeout_s=120)

            console.print("bootstrap: cluster add ...")
            t0 = time.perf_counter()
            added = cluster.add(timeout_s=1800)
            took = time.perf_counter() - t0
            joined = next(op for op in cluster.ask(added, "netstats")["operations"] if op["operation"] == "bootstrap")
            results["bootstrap"] = {"seconds": took, "partitions": joined["partitions"], "bytes": joined["bytes"],
                                    "ranges": joined["ranges"], "stream_s": joined["stream_ms"] / 1000}

            console.print("decommission node1 ...")
            t0 = time.perf_counter()
            summary = cluster.decommission(cluster.nodes[0], timeout_s=1800)
            took = time.perf_counter() - t0
            results["decommission"] = {"seconds": took, "partitions": summary["partitions"],
                                       "bytes": summary["bytes"], "ranges": summary["ranges"],
                                       "stream_s": summary["stream_ms"] / 1000}

            console.print("checking every row at QUORUM ...")
            client = cluster.client()
            s = client.connect("bench")
            client.refresh_metadata()
            missing = sum(1 for k in range(0, args.rows, max(1, args.rows // 5000))
                          if (s.get("kv", {"k": k}, consistency="QUORUM") or {}).get("v") != VALUE)
            client.shutdown()
            results["sampled_rows_missing"] = missing
        finally:
            cluster.remove()

    table = Table(title=f"topology changes, {args.rows:,} rows x RF 3 on 3 nodes (ring_delay {RING_DELAY_MS} ms)")
    for col in ("change", "wall time", "of which streaming", "partitions streamed", "bytes streamed",
                "streaming rate"):
        table.add_column(col)
    for name in ("bootstrap", "decommission"):
        r = results[name]
        r["partitions_per_s"] = r["partitions"] / max(0.001, r["stream_s"])
        table.add_row(name, f"{r['seconds']:.1f} s", f"{r['stream_s']:.1f} s", f"{r['partitions']:,}",
                      f"{r['bytes'] / 1e6:.1f} MB", f"{r['partitions_per_s']:,.0f} partitions/s")
    console.print(table)
    console.print(f"rows missing at QUORUM afterwards (sample of {min(args.rows, 5000):,}): "
                  f"{results['sampled_rows_missing']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if results["sampled_rows_missing"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
