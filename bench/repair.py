"""Repair benchmark (issue 4): a table where one of three replicas misses a fraction of the rows.

Three simulated nodes (SimpleStrategy RF 3, so every node replicates everything) get the same N
rows written straight into their local stores with the same timestamps (so equal rows are equal
bytes); one replica misses `--missing` of them. Then, in one run:

1. a repair with differences: wall time, rows and bytes streamed against the bytes that differ
   (goal: streamed <= 5x differing), and a check that the stale replica now holds every row;
2. a repair with no differences: its cost (time, partitions validated per second).

The repair runs in virtual time inside one process: its wall time is the CPU cost of the
validation scans, the Merkle comparison and the streaming, without network latency.

    python -m bench.repair --rows 1000000 --json repair.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from engine.partition import encode_partition
from ring.runtime.sim import Simulation

TS = 1_700_000_000_000_000


def load(sim: Simulation, rows: int, missing: set[int], value: bytes, console: Console) -> int:
    """Write the rows into every replica's store; returns the bytes of the partitions n3 misses."""
    differing = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading 3 replicas", total=rows * 3)
        for name, sn in sim.nodes.items():
            store = sn.store
            for start in range(0, rows, 1000):
                with store.batch() as b:
                    for k in range(start, min(start + 1000, rows)):
                        if name == "n3" and k in missing:
                            continue
                        b.insert("ks", "kv", {"k": k, "v": value}, timestamp=TS + k)
                progress.advance(task, 1000)
            store.flush()
    table = sim.nodes["n1"].store.table("ks", "kv")
    from engine.mutation import build_insert, partition_key_bytes
    for k in missing:
        key, update = build_insert(table, {"k": k, "v": value}, TS + k, 0, None, 1 << 20)
        differing += len(partition_key_bytes(table, {"k": k})) + len(encode_partition(update))
    return differing


def repair(sim: Simulation) -> dict:
    """nodetool repair on n1, waiting as long as it takes in virtual time."""
    reply = sim.wait(sim.submit("n1", "repair", keyspace="ks", table="kv"), timeout_ms=24 * 3600 * 1000)
    if reply.error is not None:
        raise reply.error
    sim.run_for(1000)
    return reply.result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--missing", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    console = Console()
    rng = random.Random(args.seed)
    missing = set(rng.sample(range(args.rows), int(args.rows * args.missing)))
    value = os.urandom(100)
    with Simulation(args.seed, node_options={"gossip_interval_ms": 500}) as sim:
        sim.run_for(4000)
        sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "bigint", "v": "blob"},
                    primary_key="k")
        sim.run_for(2000)
        t0 = time.perf_counter()
        differing = load(sim, args.rows, missing, value, console)
        console.print(f"loaded {args.rows:,} rows x 3 replicas ({len(missing):,} missing on n3) in "
                      f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        first = repair(sim)
        repair_s = time.perf_counter() - t0
        sample = sorted(missing)[:1000]
        healed = sum(sim.local_row("n3", "ks", "kv", {"k": k}, writetime=False) is not None for k in sample)
        t0 = time.perf_counter()
        second = repair(sim)
        clean_s = time.perf_counter() - t0
    ratio = first["bytes_streamed"] / max(1, differing)
    figures = {
        "rows": args.rows, "missing_rows": len(missing), "repair_seconds": repair_s,
        "rows_streamed": first["rows_streamed"], "bytes_streamed": first["bytes_streamed"],
        "bytes_differing": differing, "streamed_over_differing": ratio,
        "ranges_compared": first["ranges_compared"], "leaf_ranges_out_of_sync": first["leaf_ranges_out_of_sync"],
        "healed_sample": f"{healed}/{len(sample)}", "clean_repair_seconds": clean_s,
        "clean_partitions_validated_per_s": second["partitions_validated"] / max(clean_s, 1e-9),
        "clean_out_of_sync": second["ranges_out_of_sync"],
    }
    table = Table(title=f"repair of {args.rows:,} rows, one replica missing {args.missing:.0%}")
    for col in ("metric", "value", "goal", "result"):
        table.add_column(col)
    table.add_row("repair time (virtual network)", f"{repair_s:.1f} s", "", "info")
    table.add_row("rows streamed / missing", f"{first['rows_streamed']:,} / {len(missing):,}", "", "info")
    table.add_row("bytes streamed / differing", f"{first['bytes_streamed']:,} / {differing:,}", "", "info")
    table.add_row("streamed / differing", f"{ratio:.2f}x", "<= 5x", "PASS" if ratio <= 5 else "MISS")
    table.add_row("stale replica healed (sample)", f"{healed}/{len(sample)}", "all", "PASS" if healed == len(sample) else "MISS")
    table.add_row("repair with no differences", f"{clean_s:.1f} s, {figures['clean_partitions_validated_per_s']:,.0f} "
                  "partitions validated/s", "0 out of sync",
                  "PASS" if second["ranges_out_of_sync"] == 0 and second["rows_streamed"] == 0 else "MISS")
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
