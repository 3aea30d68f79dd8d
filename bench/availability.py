"""Fault behaviour under load: kill one node of three during a QUORUM stress run, then restart it.

specs/performance.md and issue 7: with RF 3 at QUORUM, once the failure detector has convicted
the dead node, no request fails (goal: zero errors after conviction); the run shows what happens
before that, and how long the cluster takes to be whole again after the restart.

One run:
1. a 3-node local cluster in a temporary root with **default node settings** (phi_convict_threshold
   8, gossip every second: what a user runs); keyspace1 (RF 3) loaded with `--keys` rows at QUORUM;
2. `dynatable stress mixed ratio(write=1,read=1) cl=QUORUM -rate threads=T fixed=R/s` for
   before + down + after seconds (fixed rate, so latency is measured from each operation's
   intended start and a stall cannot hide; reads pick loaded keys uniformly);
3. at `--before` s node3 is killed with SIGKILL; the live nodes' view is polled until both see it
   Down (conviction); at kill + `--down` s node3 is started again and awaited until every node
   sees every node Up;
4. the figures: errors by kind per window the failed request was *sent* in (before the kill,
   kill -> conviction, conviction -> restart, restart -> end); detection time; restart time;
   throughput and p99 per second; after the restart, the time until the cluster completes 90% of
   the target rate again, and until the fixed-rate backlog has drained.

    python -m bench.availability --plot availability.png     # ~70 s
    python -m bench.availability --before 5 --down 15 --after 10 --rate 500
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time

from bench.harness import machine, stress, temp_cluster

VICTIM = "node3"


class Timeline(threading.Thread):
    """Kills and restarts the victim on schedule; event times are absolute perf_counter values."""

    def __init__(self, cluster, before_s: float, down_s: float):
        super().__init__(daemon=True)
        self.cluster, self.before_s, self.down_s = cluster, before_s, down_s
        self.t0: float | None = None
        self.started = threading.Event()
        self.events: dict[str, float] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.started.wait()
            time.sleep(max(0.0, self.t0 + self.before_s - time.perf_counter()))
            self.events["kill"] = time.perf_counter()
            self.cluster.kill(VICTIM)
            observers = [nh for nh in self.cluster.nodes if nh.name != VICTIM]
            self.cluster.wait_for_down(VICTIM, observer=observers, timeout_s=self.down_s + 60)
            self.events["convicted"] = time.perf_counter()
            time.sleep(max(0.0, self.events["kill"] + self.down_s - time.perf_counter()))
            self.events["restart"] = time.perf_counter()
            self.cluster.start([VICTIM], wait=True, timeout_s=120)
            self.events["up"] = time.perf_counter()
        except BaseException as e:  # noqa: BLE001 - reported by main
            self.error = e

    def on_row(self, row: dict) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter() - row["time_s"]
            self.started.set()


def windows(phase: dict, ev: dict[str, float]) -> dict[str, dict]:
    """Per window: operations finished in it (by interval end) and errors of the requests **sent**
    in it (the error log's send times: a read sent just before the conviction fails 5 s later,
    after it, and belongs to the window it was sent in)."""
    bounds = [("before kill", float("-inf"), ev["kill"]), ("kill -> convicted", ev["kill"], ev["convicted"]),
              ("convicted -> restart", ev["convicted"], ev["restart"]), ("restart -> end", ev["restart"], float("inf"))]
    out = {}
    for name, lo, hi in bounds:
        errors: dict[str, int] = {}
        for sent, _kind, error in phase["error_log"]:
            if lo <= sent < hi:
                errors[error] = errors.get(error, 0) + 1
        ops = sum(r["ops"] for r in phase["intervals"] if lo < r["time_s"] <= hi)
        out[name] = {"seconds": hi - lo if abs(hi - lo) != float("inf") else None, "ops": ops, "errors": errors}
    return out


def settled_after(rows: list[dict], ok, since: float) -> float | None:
    """Seconds after `since` until `ok(row)` holds for 3 intervals in a row (to the start of the first)."""
    after = [r for r in rows if r["time_s"] > since]
    for i, r in enumerate(after):
        window = after[i:i + 3]
        if len(window) == 3 and all(ok(x) for x in window):
            return r["time_s"] - r["span_s"] - since
    return None


def recovery(rows: list[dict], ev: dict[str, float], rate: float) -> dict:
    """Detection and restart times; after the restart, when the cluster again completed at least
    90% of the target rate (it is catching up on the backlog then, so more is better), and when
    that backlog had drained (response p99, from the intended start, under twice its pre-kill
    median)."""
    base = [r for r in rows if 1.0 < r["time_s"] <= ev["kill"] and r["p99_ms"] is not None]
    xs = sorted(r["p99_ms"] for r in base)
    base_p99 = xs[len(xs) // 2] if xs else None
    return {"baseline_ops_per_s": sum(r["ops_per_s"] for r in base) / len(base) if base else None,
            "baseline_p99_ms": base_p99, "detection_s": ev["convicted"] - ev["kill"],
            "restart_to_up_s": ev["up"] - ev["restart"],
            "restart_to_throughput_back_s": settled_after(rows, lambda r: r["ops_per_s"] >= 0.9 * rate, ev["restart"]),
            "restart_to_backlog_drained_s": settled_after(
                rows, lambda r: r["p99_ms"] is not None and r["p99_ms"] <= 2 * base_p99, ev["restart"])
            if base_p99 else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=float, default=10.0, help="seconds of load before the kill (default 10)")
    ap.add_argument("--down", type=float, default=35.0, help="seconds from the kill to the restart (default 35; "
                    "conviction takes ~20 s at the default phi_convict_threshold 8)")
    ap.add_argument("--after", type=float, default=20.0, help="seconds of load after the restart (default 20)")
    ap.add_argument("--rate", type=float, default=1000.0, help="fixed rate, ops/s (default 1000)")
    ap.add_argument("--threads", type=int, default=64, help="requests in flight at most (default 64)")
    ap.add_argument("--keys", type=int, default=10_000, help="rows loaded before the run (default 10,000)")
    ap.add_argument("--root", default=None)
    ap.add_argument("--keep-logs", default=None, help="copy the node logs into this directory before cleaning up")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="FILE.png: throughput, errors and latency over time, events marked")
    args = ap.parse_args(argv)
    if args.plot:
        from tools.stress.plot import require_matplotlib
        require_matplotlib()
    res = {"machine": machine(), "config": vars(args)}
    with temp_cluster(3, name="avail", root=args.root) as cluster:
        schema = ["-schema", "replication(factor=3)", "-seed", "1"]
        stress(["write", f"n={args.keys}", "cl=QUORUM", "-rate", "threads=64", *schema], cluster, quiet=True)
        timeline = Timeline(cluster, args.before, args.down)
        timeline.start()
        total = args.before + args.down + args.after
        phases = stress(["mixed", "ratio(write=1,read=1)", f"duration={total}s", "cl=QUORUM", "-rate",
                         f"threads={args.threads}", f"fixed={args.rate}/s", "-pop", f"dist=uniform(1..{args.keys})",
                         *schema], cluster, on_row=timeline.on_row)
        timeline.join(timeout=180)
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for nh in cluster.nodes:
                shutil.copy(nh.log_path, os.path.join(args.keep_logs, f"{nh.name}.log"))
        if timeline.error is not None or "up" not in timeline.events:
            print(f"the kill/restart timeline failed: {timeline.error!r}", file=sys.stderr)
            return 1
    ev = {k: v - timeline.t0 for k, v in timeline.events.items()}
    rows = phases[0]["intervals"]
    res.update({"events_s": ev, "windows": windows(phases[0], ev), "recovery": recovery(rows, ev, args.rate),
                "phase": phases[0]})
    after_conviction = sum(sum(res["windows"][w]["errors"].values())
                           for w in ("convicted -> restart", "restart -> end"))
    res["errors_after_conviction"] = after_conviction
    print("\nevents (s from the start of the load): " + ", ".join(f"{k} {v:.1f}" for k, v in ev.items()))
    for name, w in res["windows"].items():
        print(f"  {name:<22} {w['ops']:>7,} ops  errors: {w['errors'] or 0}")
    rec = res["recovery"]
    print(f"detection (kill -> both live nodes see node3 Down): {rec['detection_s']:.1f} s")
    def secs(v):
        return f"{v:.1f} s" if v is not None else "not within the run"
    print(f"restart -> every node sees every node Up: {rec['restart_to_up_s']:.1f} s; -> at least 90% of the "
          f"target rate again: {secs(rec['restart_to_throughput_back_s'])}; -> backlog drained (response p99 under "
          f"2x its pre-kill {rec['baseline_p99_ms']:.1f} ms): {secs(rec['restart_to_backlog_drained_s'])}")
    print(f"errors after conviction: {after_conviction} (goal 0) {'PASS' if after_conviction == 0 else 'MISS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        from tools.stress.plot import plot_timeline
        plot_timeline(phases, args.plot, f"3 nodes, RF 3, QUORUM mixed 1:1 at {args.rate:,.0f}/s: node3 killed "
                      "and restarted", events=[(v, k) for k, v in ev.items()])
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
