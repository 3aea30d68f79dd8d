"""Scale-out: 3, 4 and 6 nodes with RF 3, QUORUM writes and reads; node CPU per operation and throughput.

specs/performance.md goal: "scale-out: CPU time per operation per node, 3 -> 6 nodes, RF 3: flat
within 20%". With RF 3 every operation is written to (or read from a quorum of) 3 replicas
whatever the cluster size, so a node of an n-node cluster takes part in 3/n of the operations:
its CPU seconds per 1000 *cluster* operations fall as 3/n when nothing else grows. The figure the
goal judges is therefore the CPU per 1000 operations **the node takes part in**:
`cpu_node * n / (RF * ops) * 1000`, equivalently the whole cluster's CPU per operation / RF. Flat
means no per-node cost grows with the cluster (gossip to more peers, more connections, ring
lookups over more tokens). Both figures are printed.

One cluster size at a time, each in its own temporary root:
1. start n nodes (default node settings: 16 vnodes, gossip every second), keyspace1 with
   SimpleStrategy RF 3 (created by the first `dynatable stress` run, as a user would);
2. idle CPU of each node over `--idle` seconds (gossip and timers, no load);
3. warm-up: `dynatable stress write duration=WARMUP cl=QUORUM -rate threads=T` (not counted);
4. peak: `dynatable stress write duration=S cl=QUORUM -rate threads=T` then `read` of the written
   keys (`-pop dist=uniform(1..K)`), closed loop;
5. matched: the same at a fixed rate of `--matched-rate` x n / 3 ops/s, so every node carries the
   same replica load at every cluster size (at peak, a node of 6 carries about half the load of a
   node of 3, batches less per socket write and wake-up, and pays more CPU per operation: that
   is load, not cluster size, and the matched phases separate the two);
each phase with node CPU (utime + stime, flush workers included: bench.harness.cpu_seconds)
sampled around the run and the client's own CPU (this process) to show whether it saturated.

The load runs in this process: one asyncio loop, T concurrent requests (closed loop), the same
code as `dynatable stress`. The machine has 2 vCPUs; 6 node processes share them, so throughput
cannot grow with n here: the claim tested is the per-node work, not throughput scaling.

    python -m bench.cluster_scaling                          # 3, 4, 6 nodes, 10 s per phase: ~3 min
    python -m bench.cluster_scaling --sizes 3,6 --seconds 5 --json out.json --plot scaling.png
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from bench.harness import cpu_seconds, machine, print_table, stress, temp_cluster

RF = 3
GOAL_RATIO = 1.2
PHASES = ("write", "read", "write_matched", "read_matched")


def measure(cluster, argv: list[str]) -> dict:
    pids = [nh.pid for nh in cluster.nodes]
    cpu0 = [cpu_seconds(p) for p in pids]
    me0, t0 = time.process_time(), time.perf_counter()
    phase = stress(argv, cluster, quiet=True)[0]
    wall = time.perf_counter() - t0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0)]
    ops = phase["total"]["ops"]
    n = len(pids)
    return {"ops": ops, "ops_per_s": phase["total"]["ops_per_s"], "errors": phase["total"]["errors"],
            "p50_ms": phase["total"]["response"]["p50_ms"], "p99_ms": phase["total"]["response"]["p99_ms"],
            "wall_s": wall, "node_cpu_s": cpu, "node_util": [c / wall for c in cpu],
            "cpu_s_per_1000_ops": [1000 * c / ops for c in cpu],
            "cpu_s_per_1000_replica_ops": [1000 * c * n / (RF * ops) for c in cpu],
            "cluster_cpu_s_per_1000_ops": 1000 * sum(cpu) / ops,
            "client_util": (time.process_time() - me0) / wall}


def run_size(n: int, args) -> dict:
    print(f"\n== {n} nodes, RF {RF} ==", flush=True)
    with temp_cluster(n, name=f"scale{n}", root=args.root) as cluster:
        common = ["cl=QUORUM", "-rate", f"threads={args.threads}", "-schema", f"replication(factor={RF})",
                  "-seed", "1"]
        stress(["write", "n=100", *common], cluster, quiet=True)          # creates keyspace1.standard1
        pids = [nh.pid for nh in cluster.nodes]
        cpu0 = [cpu_seconds(p) for p in pids]
        time.sleep(args.idle)
        idle = [(cpu_seconds(p) - c) / args.idle for p, c in zip(pids, cpu0)]
        print(f"idle CPU per node: {', '.join(f'{u:.1%}' for u in idle)}", flush=True)
        stress(["write", f"duration={args.warmup}s", *common, "-pop", "seq=1000001..2000000"], cluster, quiet=True)
        out = {"nodes": n, "idle_util": idle}
        out["write"] = measure(cluster, ["write", f"duration={args.seconds}s", *common])
        keys = max(100, out["write"]["ops"])
        reads = ["-pop", f"dist=uniform(1..{keys})"]
        out["read"] = measure(cluster, ["read", f"duration={args.seconds}s", *common, *reads])
        if args.matched_rate:
            rate = args.matched_rate * n / RF          # the same replica load per node at every size
            fixed = ["-rate", f"threads={args.threads}", f"fixed={rate:g}/s"]
            out["write_matched"] = measure(cluster, ["write", f"duration={args.seconds}s", *common, *fixed,
                                                     "-pop", "seq=2000001..3000000"])
            out["read_matched"] = measure(cluster, ["read", f"duration={args.seconds}s", *common, *fixed, *reads])
    return out


def mean(xs):
    return sum(xs) / len(xs)


def report(sizes: list[dict]) -> list[list[str]]:
    rows = [["nodes", "phase", "ops/s", "p50/p99 ms", "errors", "CPU s/1000 ops per node (mean)",
             "per 1000 ops it takes part in", "cluster CPU s/1000 ops", "node util (mean)", "client util",
             "idle util/node"]]
    for r in sizes:
        for ph in (ph for ph in PHASES if ph in r):
            p = r[ph]
            rows.append([str(r["nodes"]), ph, f"{p['ops_per_s']:,.0f}", f"{p['p50_ms']:.1f}/{p['p99_ms']:.1f}",
                         str(sum(p["errors"].values())), f"{mean(p['cpu_s_per_1000_ops']):.3f}",
                         f"{mean(p['cpu_s_per_1000_replica_ops']):.3f}", f"{p['cluster_cpu_s_per_1000_ops']:.3f}",
                         f"{mean(p['node_util']):.0%}", f"{p['client_util']:.0%}", f"{mean(r['idle_util']):.1%}"])
    return rows


def verdicts(sizes: list[dict]) -> list[dict]:
    base = sizes[0]
    out = []
    for r in sizes[1:]:
        for ph in (ph for ph in PHASES if ph in r):
            a = mean(base[ph]["cpu_s_per_1000_replica_ops"])
            b = mean(r[ph]["cpu_s_per_1000_replica_ops"])
            out.append({"phase": ph, "from": base["nodes"], "to": r["nodes"], "ratio": b / a,
                        "result": "PASS" if b / a <= GOAL_RATIO else "MISS"})
    return out


def plot(sizes: list[dict], path: str) -> None:
    from tools.stress.plot import require_matplotlib
    plt = require_matplotlib()
    ns = [r["nodes"] for r in sizes]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    colors = {"write": "tab:blue", "read": "tab:orange", "write_matched": "tab:green", "read_matched": "tab:red"}
    for ph in (ph for ph in PHASES if ph in sizes[0]):
        color = colors[ph]
        ax1.plot(ns, [mean(r[ph]["cpu_s_per_1000_replica_ops"]) for r in sizes], "o-", color=color,
                 label=f"{ph}: per 1000 ops the node takes part in")
        ax2.plot(ns, [r[ph]["ops_per_s"] for r in sizes], "o-", color=color, label=f"QUORUM {ph}")
        ax1.axhline(mean(sizes[0][ph]["cpu_s_per_1000_replica_ops"]) * GOAL_RATIO, color=color, linestyle=":",
                    linewidth=0.8, label=(f"dotted: goal, <= {GOAL_RATIO}x the {sizes[0]['nodes']}-node figure"
                                          if ph == "write" else None))
    ax1.set_xlabel("nodes (RF 3)")
    ax1.set_ylabel("node CPU s per 1000 ops (mean over nodes)")
    ax1.set_xticks(ns)
    ax1.legend(fontsize=7)
    ax1.set_ylim(bottom=0)
    ax2.set_xlabel("nodes (RF 3)")
    ax2.set_ylabel("throughput (ops/s)")
    ax2.set_xticks(ns)
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    fig.suptitle("dynatable scale-out on one 2-vCPU machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3,4,6", help="cluster sizes, RF 3 each (default 3,4,6)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    ap.add_argument("--warmup", type=float, default=3.0, help="uncounted write seconds first (default 3)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measurement (default 3)")
    ap.add_argument("--threads", type=int, default=64, help="requests in flight (default 64)")
    ap.add_argument("--matched-rate", type=float, default=600.0,
                    help="also run at a fixed rate of R x nodes / 3 ops/s, the same load per node at every "
                         "size (default 600; 0 = skip)")
    ap.add_argument("--root", default=None, help="where the temporary clusters go")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="FILE.png: CPU per op and throughput by cluster size")
    args = ap.parse_args(argv)
    if args.plot:
        from tools.stress.plot import require_matplotlib
        require_matplotlib()
    res = {"machine": machine(), "config": vars(args), "sizes": []}
    for n in (int(x) for x in args.sizes.split(",")):
        res["sizes"].append(run_size(n, args))
    res["verdicts"] = verdicts(res["sizes"])
    print()
    print_table(report(res["sizes"]))
    print()
    for v in res["verdicts"]:
        print(f"{v['phase']}: CPU per 1000 ops a node takes part in, {v['from']} -> {v['to']} nodes: "
              f"{v['ratio']:.2f}x (goal <= {GOAL_RATIO}x) {v['result']}")
    res["machine"]["loadavg_at_end"] = machine()["loadavg"]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        plot(res["sizes"], args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
