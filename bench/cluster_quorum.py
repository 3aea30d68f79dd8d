"""3-node cluster, RF 3: QUORUM write and read throughput and latency, against the asyncio ping-pong anchor.

specs/performance.md goals (ratios in one run):
- "3-node cluster, RF 3, QUORUM writes (and reads) on loopback >= 0.3x the asyncio 32-connection
  message rate" (stretch 0.5x);
- "cluster p99 latency at half of peak throughput <= 10 ms".

What one run does:
1. the anchor (bench/pingpong_anchor.py): asyncio echo server process + 32 client connections in
   another process, ~100-byte length-prefixed ping-pong; round trips/s. Measured before the
   cluster starts, so the two never share the CPU;
2. a local 3-node cluster (tools/cluster LocalCluster) in a temporary root; keyspace
   `bench` (SimpleStrategy, RF 3), table `kv (k int PRIMARY KEY, v blob)`, 100-byte values;
3. peak, closed loop: `--clients` client processes (spawned), each an `AsyncSession` with
   `--inflight` requests in flight, token-aware (any of the 3 replicas coordinates);
   QUORUM inserts of fresh keys, then QUORUM gets of keys written in step 3;
4. half of each measured peak, open loop (fixed rate): request i of a client process has the
   intended start time t0 + i / rate, whatever the answers do, and its latency is measured from
   that intended time (coordinated-omission correction; a stalled cluster shows up as latency, not
   as fewer samples). Each client process starts requests from one timer callback (`pacing`, bench/quorum_client.py)
   that wakes at the next request's intended time (`--tick-ms T`: at the first T-ms tick at or
   after it, the wait counted in the latency; measured: no CPU saving) and starts every request
   then due. The open-loop phases run `--half-clients` processes (default 1; the peak's
   `--clients` split the same rate finer, each process then sends ~one request per wake-up and
   the clients' CPU per op at half of peak is 2.5-3x; bench/README.md, "Issue 18, session 9,
   clu_half");
5. CPU seconds per 1000 ops of each node process (utime + stime, its flush worker included:
   bench.harness.cpu_seconds) per phase,
   and of the client processes (process CPU between the window's start and end, warm-up and drain
   excluded); loop wake-ups per op (voluntary context switches of each process's main thread);
6. the cluster is removed at the end, always (also on Ctrl-C or an error).

Event loop: `--event-loop auto|uvloop|asyncio` is the nodes' `event_loop` setting (auto = uvloop
where importable). The anchor runs on the same loop as the nodes (the uvloop twin of the ping-pong
when the nodes run uvloop), so the ratio compares like with like; with uvloop the asyncio anchor is
measured too and printed for reference.

`--count-syscalls`: the nodes serve Prometheus metrics; per phase the bench reads each node's peer
link counters (`peer_frames_sent` / `peer_writes`: internode frames per transport write, and the
inbound `peer_frames_received` / `peer_reads`) and attaches `strace -c -f` to node 1 for the
measured window (syscalls per operation by name). strace slows node 1 down: the throughput and
latency figures of such a run are not comparable with a run without it.

`--timeline FILE.json` (with `--timeline-plot FILE.png`): the nodes run with `event_trace = true`
and every half-of-peak request's intended time and latency is lined up with their loop stalls,
GC pauses, flushes and compactions (bench/latency_timeline.py). `--setting KEY=VALUE` sets a node
setting on every node (e.g. a small memtable_flush_threshold_bytes puts flushes in the phases).

Latencies go into HdrHistogram (1 us .. 60 s, 3 significant digits); each phase has a warm-up
(`--warmup` s) whose operations are not counted. Errors (timeouts, overload) are counted per phase.

    python -m bench.cluster_quorum                       # --seconds 10 per phase, 4 client processes
    python -m bench.cluster_quorum --seconds 5 --json out.json
    python -m bench.cluster_quorum --commitlog-sync batch   # every ack after its fsync
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import threading
import time


from bench.harness import cpu_seconds, print_table
from bench.quorum_client import KEYSPACE, TABLE, new_hist, sleeps, worker
from bench.syscall_counts import COUNTERS, scrape_counters, start_strace, stop_strace

GOAL_RATIO, STRETCH_RATIO, GOAL_P99_MS = 0.3, 0.5, 10.0


def run_phase(contact_points, cluster_name, phase, clients, seconds, warmup, inflight, rate, keys_written, node_pids,
              metrics_urls=None, timeline=False, tick_ms=0.0) -> dict:
    """One phase over `clients` spawned processes; `rate` None = closed loop, else total ops/s.
    With `metrics_urls` (--count-syscalls): counters per node and strace -c of node 1."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    out = ctx.Queue()
    per_proc_rate = None if rate is None else rate / clients
    procs = [ctx.Process(target=worker, daemon=True,
                         args=((contact_points, cluster_name, p, phase, seconds, warmup, inflight, per_proc_rate,
                                keys_written, barrier, timeline, tick_ms), out))
             for p in range(clients)]
    for pr in procs:
        pr.start()
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        for pr in procs:
            pr.kill()
        failures = []
        while not out.empty():
            failures.append(out.get())
        raise RuntimeError(f"{phase}: client processes did not start: {failures}")
    time.sleep(warmup)
    strace = None
    if metrics_urls:
        counters0 = scrape_counters(metrics_urls)
        strace_path = tempfile.mktemp(prefix="strace-", suffix=".txt")
        strace = start_strace(node_pids[0], strace_path)
    cpu0 = {pid: cpu_seconds(pid) for pid in node_pids}
    sleeps0 = {pid: sleeps(pid) for pid in node_pids}
    t0 = time.perf_counter()
    time.sleep(seconds)
    cpu1 = {pid: cpu_seconds(pid) for pid in node_pids}
    sleeps1 = {pid: sleeps(pid) for pid in node_pids}
    wall = time.perf_counter() - t0
    if metrics_urls:
        strace_out = stop_strace(strace, strace_path, 1)
        time.sleep(1.1)                 # the next snapshot of the counters
        counters1 = scrape_counters(metrics_urls)
    results = [out.get(timeout=warmup + seconds + 120) for _ in procs]
    for pr in procs:
        pr.join(10)
    failed = [r["failed"] for r in results if "failed" in r]
    if failed:
        raise RuntimeError(f"{phase}: client process failed: {failed}")
    hist = new_hist()
    errors: dict[str, int] = {}
    for r in results:
        hist.decode_and_add(r["hist"])
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ops = sum(r["ops"] for r in results)
    throughput = ops / seconds
    node_cpu = [cpu1[pid] - cpu0[pid] for pid in node_pids]
    q = lambda p: hist.get_value_at_percentile(p) / 1000.0
    io = {}
    if metrics_urls:
        deltas = [{k: c1[k] - c0[k] for k in COUNTERS} for c0, c1 in zip(counters0, counters1)]
        io = {"counters": deltas,
              "frames_per_write": [d["peer_frames_sent"] / d["peer_writes"] if d["peer_writes"] else None
                                   for d in deltas],
              "frames_per_read": [d["peer_frames_received"] / d["peer_reads"] if d["peer_reads"] else None
                                  for d in deltas],
              "node1_syscalls_per_op": {k: v / ops for k, v in strace_out.items()} if ops else {}}
    if timeline:
        io["samples"] = sorted(s for r in results for s in r["samples"])
    return {**io,
        "phase": phase, "clients": clients, "inflight_per_client": inflight if rate is None else None,
        "target_rate": rate, "ops": ops, "seconds": seconds, "ops_per_s": throughput, "errors": errors,
        "p50_ms": q(50), "p95_ms": q(95), "p99_ms": q(99), "max_ms": hist.get_max_value() / 1000.0,
        "mean_ms": hist.get_mean_value() / 1000.0,
        "node_cpu_s": node_cpu, "node_cpu_util": [c / wall for c in node_cpu],
        "node_cpu_s_per_1000_ops": [1000 * c / ops if ops else None for c in node_cpu],
        "client_cpu_s_per_1000_ops": 1000 * sum(r["cpu_s"] for r in results) / ops if ops else None,
        "node_wakeups_per_op": [(sleeps1[pid] - sleeps0[pid]) / ops if ops else None for pid in node_pids],
        "client_wakeups_per_op": sum(r["wakeups"] for r in results) / ops if ops else None,
        "client_cpu_util": sum(r["cpu_s"] for r in results) / seconds,
        "keys_written": {r["proc"]: r["next_key"] for r in results if r["next_key"] is not None},
    }


# -- report --------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(res: dict) -> list[list[str]]:
    anchor = res["anchor_msgs_per_s"]
    ph = res["phases"]
    rows = [["metric", "ours", "anchor", "ratio", "goal", "result"]]
    loop = res.get("event_loop", "asyncio")
    rows.append(["event loop (nodes and anchor)", loop, "", "", "", "info"])
    if loop != "asyncio" and "anchor_asyncio_msgs_per_s" in res:
        rows.append(["asyncio anchor (reference)", "", f"{res['anchor_asyncio_msgs_per_s']:,.0f} msgs/s",
                     f"{anchor / res['anchor_asyncio_msgs_per_s']:.2f}x", "", "info"])
    for name, key in (("QUORUM write ops/s (peak)", "write_peak"), ("QUORUM read ops/s (peak)", "read_peak")):
        ours = ph[key]["ops_per_s"]
        ratio = ours / anchor
        result = verdict(ratio >= GOAL_RATIO) + (" (stretch)" if ratio >= STRETCH_RATIO else "")
        rows.append([name, f"{ours:,.0f}", f"{anchor:,.0f} msgs/s", f"{ratio:.2f}x",
                     f">= {GOAL_RATIO}x (stretch {STRETCH_RATIO}x)", result])
    for key, label in (("write_peak", "write"), ("read_peak", "read")):
        p = ph[key]
        rows.append([f"{label} latency at peak p50/p95/p99/max ms",
                     f"{p['p50_ms']:.2f}/{p['p95_ms']:.2f}/{p['p99_ms']:.2f}/{p['max_ms']:.1f}", "", "", "", "info"])
    for key, label in (("write_half", "write"), ("read_half", "read")):
        p = ph[key]
        rows.append([f"{label} p99 at half of peak ({p['target_rate']:,.0f}/s -> {p['ops_per_s']:,.0f}/s)",
                     f"{p['p99_ms']:.2f} ms", "", "", f"<= {GOAL_P99_MS:g} ms", verdict(p["p99_ms"] <= GOAL_P99_MS)])
        rows.append([f"{label} latency at half p50/p95/max ms",
                     f"{p['p50_ms']:.2f}/{p['p95_ms']:.2f}/{p['max_ms']:.1f}", "", "", "", "info"])
    for key in ("write_peak", "read_peak", "write_half", "read_half"):
        p = ph[key]
        per = "/".join(f"{c:.3f}" for c in p["node_cpu_s_per_1000_ops"])
        util = "/".join(f"{u:.0%}" for u in p["node_cpu_util"])
        rows.append([f"node CPU s per 1000 ops, {key} (n1/n2/n3; util)", f"{per} ({util})", "", "", "", "info"])
        rows.append([f"client CPU s per 1000 ops, {key} (all clients; util)",
                     f"{p['client_cpu_s_per_1000_ops']:.3f} ({p['client_cpu_util']:.0%})", "", "", "", "info"])
        rows.append([f"loop wake-ups per op, {key} (n1/n2/n3; all clients)",
                     "/".join(f"{w:.2f}" for w in p["node_wakeups_per_op"]) + f"; {p['client_wakeups_per_op']:.2f}",
                     "", "", "", "info"])
    for key, p in ph.items():
        if "frames_per_write" in p:
            fmt = lambda xs: "/".join("-" if x is None else f"{x:.1f}" for x in xs)
            rows.append([f"internode frames per write / per read, {key} (n1/n2/n3)",
                         f"{fmt(p['frames_per_write'])} / {fmt(p['frames_per_read'])}", "", "", "", "info"])
            top = list(p["node1_syscalls_per_op"].items())[:6]
            rows.append([f"node 1 syscalls per op, {key} (strace -c)",
                         ", ".join(f"{k} {v:.2f}" for k, v in top) or "strace not available", "", "", "", "info"])
    errs = {k: p["errors"] for k, p in ph.items() if p["errors"]}
    rows.append(["errors (timeouts, overload, ...)", json.dumps(errs) if errs else "none", "", "", "", "info"])
    return rows


# -- main ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each phase (default 2)")
    ap.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--inflight", type=int, default=32, help="requests in flight per client process at peak")
    ap.add_argument("--anchor-seconds", type=float, default=None, help="ping-pong seconds (default --seconds)")
    ap.add_argument("--root", default=None, help="where the cluster's temporary root goes")
    ap.add_argument("--json", default=None, help="write every figure to this file")
    ap.add_argument("--plot", metavar="FILE.png", default=None,
                    help="throughput against the anchor and p99 at half of peak against the goal (matplotlib)")
    ap.add_argument("--commitlog-sync", choices=("periodic", "batch", "group"), default="periodic",
                    help="the nodes' commitlog_sync (default periodic; batch/group ack after fsync)")
    ap.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                    help="the nodes' event_loop setting; the anchor runs on the same loop (default auto)")
    ap.add_argument("--tick-ms", type=float, default=0.0,
                    help="open loop: each client process starts its due requests on a tick of this many ms "
                         "(0 = a wake-up at each request's intended time); latency is still measured from "
                         "each request's own intended time (default 0: a 1- or 2-ms tick measured no CPU saving)")
    ap.add_argument("--half-clients", type=int, default=1,
                    help="client processes of the open-loop (half of peak) phases (default 1; 0 = --clients)")
    ap.add_argument("--count-syscalls", action="store_true",
                    help="per phase: internode frames per write/read (node counters) and strace -c of node 1")
    ap.add_argument("--half-rates", metavar="W,R", default=None,
                    help="fixed open-loop rates (writes/s,reads/s) instead of half of each measured peak: "
                         "compares latency of two trees at the same load")
    ap.add_argument("--setting", metavar="KEY=VALUE", action="append", default=[],
                    help="a node setting for every node (node.toml key; VALUE read as JSON, else a string), "
                         "e.g. --setting memtable_flush_threshold_bytes=16777216 to put flushes in every phase")
    ap.add_argument("--timeline", metavar="FILE.json", default=None,
                    help="nodes write an event trace (event_trace = true); every request's intended time and "
                         "latency and every node's loop stalls, GC pauses, flushes are saved here and lined up "
                         "(bench/latency_timeline.py); the heartbeat costs the nodes ~1-2%% CPU")
    ap.add_argument("--timeline-plot", metavar="FILE.png", default=None,
                    help="with --timeline: latency against time above each node's events")
    ap.add_argument("--keep-running", type=float, default=0.0,
                    help="after the phases, keep a closed-loop load going this many seconds (for a profiler)")
    ap.add_argument("--keep-running-op", choices=("write", "read"), default="write",
                    help="what --keep-running sends: QUORUM writes (default) or QUORUM reads of written keys")
    args = ap.parse_args(argv)

    from bench.pingpong_anchor import measure_pingpong
    from ring.runtime.config import event_loop_runner
    from tools.cluster import LocalCluster

    loop_name = event_loop_runner(args.event_loop)[0]
    res = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "loadavg_at_start": os.getloadavg()},
           "config": vars(args), "event_loop": loop_name, "phases": {}}
    anchor_seconds = args.anchor_seconds or args.seconds
    for name in dict.fromkeys((loop_name, "asyncio")):     # the nodes' loop first; asyncio for reference
        print(f"anchor: {name} ping-pong, 32 connections, {anchor_seconds:g} s ...", flush=True)
        res[f"anchor_{name}_msgs_per_s"] = measure_pingpong(anchor_seconds, event_loop=name)
        print(f"  {res[f'anchor_{name}_msgs_per_s']:,.0f} msgs/s", flush=True)
    res["anchor_msgs_per_s"] = res[f"anchor_{loop_name}_msgs_per_s"]   # ratios: same loop on both sides
    settings = {"commitlog_sync": args.commitlog_sync, "event_loop": args.event_loop}
    for item in args.setting:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    if args.timeline:
        settings["event_trace"] = True

    root = tempfile.mkdtemp(prefix="dynatable-bench-", dir=args.root)
    cluster = None
    try:
        print(f"starting a 3-node cluster in {root} ...", flush=True)
        cluster = LocalCluster.create("bench", n=3, root=root, settings=settings,
                                     metrics=args.count_syscalls)
        cluster.start()
        contact_points = list(cluster.contact_points())
        cluster_name = cluster.setting("cluster_name", cluster.name)
        node_pids = [node.pid for node in cluster.nodes]
        client = cluster.client()
        try:
            session = client.connect()
            session.create_keyspace(KEYSPACE, {"class": "SimpleStrategy", "replication_factor": 3})
            session.create_table(TABLE, {"k": "int", "v": "blob"}, primary_key="k", keyspace=KEYSPACE)
        finally:
            client.shutdown()
        cluster.wait_until_converged(timeout_s=60)  # schema agreement before the clients connect
        print(f"  nodes {contact_points}, pids {node_pids}", flush=True)

        common = {"contact_points": contact_points, "cluster_name": cluster_name, "clients": args.clients,
                  "seconds": args.seconds, "warmup": args.warmup, "inflight": args.inflight,
                  "node_pids": node_pids, "timeline": bool(args.timeline), "tick_ms": args.tick_ms}
        if args.count_syscalls:
            from ring.runtime.config import load as load_settings
            common["metrics_urls"] = []
            for node in cluster.nodes:
                ns = load_settings(node.config_path)
                common["metrics_urls"].append(f"http://{ns.listen_address}:{ns.metrics_port}/metrics")
        keys: dict[int, int] = {}

        def phase(name, rate=None):
            clients = args.clients if rate is None or not args.half_clients else args.half_clients
            print(f"{name}: {clients} client processes, "
                  + (f"{args.inflight} in flight each" if rate is None else f"fixed rate {rate:,.0f}/s")
                  + f", {args.warmup:g} s warm-up + {args.seconds:g} s ...", flush=True)
            p = run_phase(phase=name, rate=rate, keys_written=keys, **{**common, "clients": clients})
            res["phases"][name] = p
            print(f"  {p['ops_per_s']:,.0f} ops/s, p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms, "
                  f"max {p['max_ms']:.1f} ms, errors {p['errors'] or 0}", flush=True)
            return p

        p = phase("write_peak")
        keys.update(p["keys_written"])
        phase("read_peak")
        if args.half_rates:
            write_rate, read_rate = (float(x) for x in args.half_rates.split(","))
        else:
            write_rate = res["phases"]["write_peak"]["ops_per_s"] / 2
            read_rate = res["phases"]["read_peak"]["ops_per_s"] / 2
        p = phase("write_half", rate=write_rate)
        keys.update(p["keys_written"])
        phase("read_half", rate=read_rate)
        if args.timeline:
            time.sleep(1.2)             # the traces are written once a second
            from bench import latency_timeline
            latency_timeline.save(res["phases"], [node.data_dir for node in cluster.nodes], args.timeline,
                                  args.timeline_plot)
        if args.keep_running:
            print(f"extra {args.keep_running_op} load for {args.keep_running:g} s (node pids {node_pids}) ...",
                  flush=True)
            run_phase(phase=f"{args.keep_running_op}_extra", rate=None, keys_written=keys,
                      **{**common, "seconds": args.keep_running, "warmup": 0.0})
    finally:
        if cluster is not None:
            try:
                cluster.remove()
            except Exception as e:  # noqa: BLE001
                print(f"cluster.remove() failed: {e}", file=sys.stderr)

        shutil.rmtree(root, ignore_errors=True)

    res["machine"]["loadavg_at_end"] = os.getloadavg()
    rows = report(res)
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**res, "table": rows}, f, indent=2)
        print(f"\nwrote {args.json}")
    if args.plot:
        plot(res, args.plot)
        print(f"wrote {args.plot}")
    return 0


def plot(res: dict, path: str) -> None:
    """Left: QUORUM ops/s at peak as a fraction of the ping-pong anchor, with the goal and the
    stretch goal. Right: p50 and p99 at half of peak, with the 10-ms p99 goal."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    anchor, phases = res["anchor_msgs_per_s"], res["phases"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    names = ["write_peak", "read_peak"]
    ratios = [phases[n]["ops_per_s"] / anchor for n in names]
    left.bar(["writes", "reads"], ratios, color=["tab:green" if r >= GOAL_RATIO else "tab:red" for r in ratios])
    left.axhline(GOAL_RATIO, color="black", linestyle="--", label=f"goal {GOAL_RATIO}x")
    left.axhline(STRETCH_RATIO, color="grey", linestyle=":", label=f"stretch {STRETCH_RATIO}x")
    for i, (n, r) in enumerate(zip(names, ratios)):
        left.annotate(f"{phases[n]['ops_per_s']:,.0f}/s", (i, r), ha="center", va="bottom")
    left.set_ylabel(f"QUORUM ops/s / anchor ({anchor:,.0f} msgs/s)")
    left.set_title("peak throughput, 3 nodes, RF 3")
    left.legend()
    halves = ["write_half", "read_half"]
    xs = range(len(halves))
    right.bar([x - 0.2 for x in xs], [phases[n]["p50_ms"] for n in halves], width=0.4, label="p50")
    right.bar([x + 0.2 for x in xs], [phases[n]["p99_ms"] for n in halves], width=0.4, label="p99")
    right.axhline(GOAL_P99_MS, color="black", linestyle="--", label=f"p99 goal {GOAL_P99_MS:g} ms")
    right.set_xticks(list(xs), ["writes", "reads"])
    right.set_ylabel("latency at half of peak (ms, coordinated-omission corrected)")
    right.set_title("latency at half of peak")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
