"""Slow requests lined up with what the nodes were doing: `bench.cluster_quorum --timeline FILE.json`.

Input (what cluster_quorum writes with `--timeline`): per phase the client samples
`(intended, started - intended, latency)` in seconds on CLOCK_MONOTONIC (each client process's
`time.perf_counter()`), and per node the events of its `event_trace` (ring/runtime/event_trace.py,
`time.monotonic()`, the same clock). Output, per phase:

- per event kind: the share of all requests that were in flight ([intended, intended + latency])
  while some node had such an event, the share of the slow ones (latency >= the phase's p99, and
  >= 10 ms), their ratio ("lift": > 1 means that kind goes with the tail), and the p99 of the
  requests in flight during that kind of event. Kinds: `gc`,
  `flush`, `compaction`, `segment` / `sync` (a commit-log roll / fsync, known to within the
  trace's poll), `stall:loop` (the loop thread was busy: a long callback), `stall:gil` (another
  thread of the node held the GIL), `stall:wait` (the loop's thread waited for a CPU): the
  largest of the three, if it explains a third of the stall; else `stall:blocked` (blocked in
  the kernel, or on a GIL holder that itself waited for a CPU); `client-lag` is a request whose
  client started it >= 2 ms after its intended time (the client process was late);
- the events of each node in the window (count, total and longest ms per kind);
- `--plot FILE.png`: latency against time with every node's events underneath.

    python -m bench.latency_timeline /tmp/t.json --plot /tmp/t.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

SLOW_MS = 10.0
CLIENT_LAG_S = 0.002
POLL_S = 0.02                 # the trace's poll of flushes and segments: their edges are this coarse
KINDS = ("gc", "flush", "compaction", "segment", "sync", "stall:loop", "stall:gil", "stall:wait", "stall:blocked",
         "client-lag")


def classify(event: dict) -> str:
    kind = event["kind"]
    if kind != "stall":
        return kind
    shares = {"stall:loop": event.get("loop_cpu_ms", 0.0), "stall:gil": event.get("other_cpu_ms", 0.0),
              "stall:wait": event.get("run_delay_ms", 0.0)}
    cause = max(shares, key=shares.get)           # the largest of the three, if it explains a third
    return cause if shares[cause] >= event["ms"] / 3 else "stall:blocked"


def intervals(events: list[dict]) -> list[tuple[float, float, str]]:
    out = []
    for e in events:
        kind = classify(e)
        start, end = e["t"], e["t"] + e["ms"] / 1000
        if kind in ("segment", "sync"):
            start, end = e["t"] - POLL_S, e["t"]
        out.append((start, end, kind))
    return out


def merged(spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    spans = sorted(spans)
    starts, ends = [], []
    for s, e in spans:
        if starts and s <= ends[-1]:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    return np.array(starts), np.array(ends)


def overlapping(a: np.ndarray, b: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean per request [a, b]: does it overlap one of the merged, sorted spans?"""
    if len(starts) == 0:
        return np.zeros(len(a), dtype=bool)
    idx = np.searchsorted(starts, b, side="left") - 1
    ok = idx >= 0
    return ok & (ends[np.maximum(idx, 0)] > a)


def analyze_phase(samples: list, node_events: list[list[dict]]) -> dict:
    arr = np.array(samples, dtype=float).reshape(-1, 3)
    a, lag, lat = arr[:, 0], arr[:, 1], arr[:, 2]
    b = a + lat
    lo, hi = float(a.min()), float(b.max())
    p99 = float(np.percentile(lat, 99))
    slow_p99 = lat >= p99
    slow_10 = lat >= SLOW_MS / 1000
    per_kind: dict[str, list] = {k: [] for k in KINDS}
    per_node = []
    for events in node_events:
        summary: dict[str, list] = {}
        for s, e, kind in intervals(events):
            if e < lo or s > hi:
                continue
            per_kind[kind].append((s, e))
            st = summary.setdefault(kind, [0, 0.0, 0.0])
            st[0] += 1
            st[1] += (e - s) * 1000
            st[2] = max(st[2], (e - s) * 1000)
        per_node.append({k: {"count": v[0], "total_ms": round(v[1], 1), "max_ms": round(v[2], 1)}
                         for k, v in sorted(summary.items())})
    rows = {}
    for kind in KINDS:
        hit = lag >= CLIENT_LAG_S if kind == "client-lag" else overlapping(a, b, *merged(per_kind[kind]))
        share_all = float(hit.mean())
        share_p99 = float(hit[slow_p99].mean()) if slow_p99.any() else 0.0
        share_10 = float(hit[slow_10].mean()) if slow_10.any() else None
        rows[kind] = {"all": share_all, "slow_p99": share_p99, "slow_10ms": share_10,
                      "lift_p99": share_p99 / share_all if share_all else None,
                      "p99_ms_in_flight": float(np.percentile(lat[hit], 99)) * 1000 if hit.any() else None}
    return {"requests": len(lat), "window_s": hi - lo, "p50_ms": float(np.percentile(lat, 50)) * 1000,
            "p99_ms": p99 * 1000, "max_ms": float(lat.max()) * 1000, "over_10ms": int(slow_10.sum()),
            "client_lag_p99_ms": float(np.percentile(lag, 99)) * 1000, "kinds": rows, "nodes": per_node}


def analyze(timeline: dict) -> dict:
    return {name: analyze_phase(ph["samples"], timeline["node_events"])
            for name, ph in timeline["phases"].items() if ph["samples"]}


def report_lines(result: dict) -> list[str]:
    out = []
    pct = lambda x: "-" if x is None else f"{100 * x:5.1f}%"
    for name, r in result.items():
        out.append(f"{name}: {r['requests']:,} requests over {r['window_s']:.1f} s, p50 {r['p50_ms']:.2f} ms, "
                   f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, {r['over_10ms']} over {SLOW_MS:g} ms; "
                   f"client start lag p99 {r['client_lag_p99_ms']:.2f} ms")
        out.append(f"  {'in flight during':<14} {'all':>7} {'>= p99':>7} {'>= 10ms':>8} {'lift':>6} {'their p99':>10}")
        for kind, k in r["kinds"].items():
            lift = "-" if k["lift_p99"] is None else f"{k['lift_p99']:.1f}x"
            p99 = "-" if k["p99_ms_in_flight"] is None else f"{k['p99_ms_in_flight']:.1f} ms"
            out.append(f"  {kind:<14} {pct(k['all']):>7} {pct(k['slow_p99']):>7} {pct(k['slow_10ms']):>8} {lift:>6}"
                       f" {p99:>10}")
        for i, node in enumerate(r["nodes"], 1):
            parts = [f"{k} {v['count']}x {v['total_ms']:.0f} ms (max {v['max_ms']:.1f})" for k, v in node.items()]
            out.append(f"  node {i}: " + ("; ".join(parts) or "no events"))
    return out


COLORS = {"gc": "tab:purple", "flush": "tab:orange", "compaction": "tab:brown", "segment": "black",
          "sync": "tab:cyan", "stall:loop": "tab:red", "stall:gil": "tab:olive", "stall:wait": "tab:gray",
          "stall:blocked": "tab:blue"}


def plot(timeline: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    phases = [(n, p) for n, p in timeline["phases"].items() if p["samples"]]
    nodes = timeline["node_events"]
    fig, axes = plt.subplots(2, len(phases), figsize=(7 * len(phases), 6.5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex="col")
    for col, (name, ph) in enumerate(phases):
        arr = np.array(ph["samples"], dtype=float).reshape(-1, 3)
        t0 = arr[:, 0].min()
        top, bottom = axes[0][col], axes[1][col]
        top.scatter(arr[:, 0] - t0, arr[:, 2] * 1000, s=1, alpha=0.4)
        top.axhline(SLOW_MS, color="black", linestyle="--", linewidth=0.8)
        top.set_yscale("log")
        top.set_ylabel("latency ms (from intended start)")
        top.set_title(name)
        hi = (arr[:, 0] + arr[:, 2]).max()
        for row, events in enumerate(nodes):
            for s, e, kind in intervals(events):
                if e < t0 or s > hi:
                    continue
                bottom.broken_barh([(s - t0, max(e - s, 0.002))], (row - 0.4, 0.8), color=COLORS.get(kind, "k"))
        bottom.set_yticks(range(len(nodes)), [f"node {i + 1}" for i in range(len(nodes))])
        bottom.set_xlabel("seconds")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
        top.legend(handles, [f"node event: {k}" for k in COLORS], fontsize=6, ncol=3, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def save(phases: dict, data_dirs: list[str], path: str, plot_path: str | None = None) -> None:
    """cluster_quorum's phases (their "samples" are taken out) and every node's trace into `path`,
    then the analysis printed (and plotted)."""
    from ring.runtime.event_trace import FILE_NAME, read_trace
    timeline = {"phases": {name: {"samples": p.pop("samples", [])} for name, p in phases.items()},
                "node_events": [read_trace(os.path.join(d, FILE_NAME)) for d in data_dirs]}
    timeline["phases"] = {k: v for k, v in timeline["phases"].items() if k.endswith("_half")}
    with open(path, "w") as f:
        json.dump(timeline, f)
    print(f"\ntimeline (wrote {path}):")
    print("\n".join(report_lines(analyze(timeline))), flush=True)
    if plot_path:
        plot(timeline, plot_path)
        print(f"wrote {plot_path}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("timeline", help="the --timeline file of bench.cluster_quorum")
    ap.add_argument("--plot", metavar="FILE.png", default=None)
    args = ap.parse_args(argv)
    with open(args.timeline) as f:
        timeline = json.load(f)
    print("\n".join(report_lines(analyze(timeline))))
    if args.plot:
        plot(timeline, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
