"""The report of bench/engine_vs_anchors.py: the goals of shared/specs/performance.md, one row per
metric (each engine's figure, the ratio dynatable/LevelDB, the ratios to kevo and to the pure-Python
floor, PASS/MISS), the rich table and the optional bar chart.

A row's `result` is PASS when its ratio meets the goal (for bytes on disk: at most DISK_GOAL times the
raw payload; for group commit: at least DURABLE_GOAL times the own periodic-sync rate).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table as RichTable

if TYPE_CHECKING:
    from bench.engine_vs_anchors import Workload

DURABLE_THREADS = 32

# (metric, goal ratio, stretch ratio, "higher" = more is better) from performance.md
GOALS = {
    "put_single": (0.5, 1.0),
    "put_batch": (0.5, 1.0),
    "get_hit": (0.4, 0.5),
    "get_miss": (1.0, 1.5),
    "scan": (0.35, 0.5),
}
DISK_GOAL = 1.1          # bytes on disk <= 1.1x the raw payload (keys + values)
DURABLE_GOAL = 0.5       # group commit, 32 writers >= 0.5x own periodic-sync rate
LABELS = {
    "put_single": "put, 1 per call (ops/s)",
    "put_batch": "put, batches of 1000 (ops/s)",
    "get_hit": "get hit after reopen (ops/s)",
    "get_miss": "get miss, bloom (ops/s)",
    "scan": "scan (keys/s)",
    "disk_bytes": "bytes on disk after close",
}

console = Console(width=None if sys.stdout.isatty() else 150)


def _ratio(a, b):
    return None if a is None or not b else a / b


def evaluate(w: Workload, ours: dict, ldb: dict, sq: dict, dur: dict, kv: dict | None = None,
             floor: dict | None = None) -> list[dict]:
    kv, floor = kv or {}, floor or {}
    rows = []
    for m, (goal, stretch) in GOALS.items():
        ratio = ours[m] / ldb[m]
        rows.append({"metric": m, "label": LABELS[m], "dynatable": ours[m], "leveldb": ldb[m],
                     "sqlite": sq[m], "ratio": ratio, "goal": f">= {goal}x LevelDB",
                     "goal_ratio": goal, "stretch_ratio": stretch,
                     "result": "PASS" if ratio >= goal else "MISS",
                     "stretch": ratio >= stretch, "kevo": kv.get(m), "floor": floor.get(m),
                     "vs_kevo": _ratio(ours[m], kv.get(m)), "vs_floor": _ratio(ours[m], floor.get(m))})
    raw_ratio = ours["disk_bytes"] / w.raw_bytes
    rows.append({"metric": "disk_bytes", "label": LABELS["disk_bytes"], "dynatable": ours["disk_bytes"],
                 "leveldb": ldb["disk_bytes"], "sqlite": sq["disk_bytes"],
                 "ratio": ours["disk_bytes"] / ldb["disk_bytes"], "raw_ratio": raw_ratio,
                 "kevo": kv.get("disk_bytes"), "vs_kevo": _ratio(ours["disk_bytes"], kv.get("disk_bytes")),
                 "goal": f"<= {DISK_GOAL}x raw payload", "goal_ratio": DISK_GOAL,
                 "result": "PASS" if raw_ratio <= DISK_GOAL else "MISS"})
    d_ratio = dur["group_32_writers"] / dur["periodic_32_writers"]
    rows.append({"metric": "durable_group", "label": f"group commit, {DURABLE_THREADS} writers (ops/s)",
                 "dynatable": dur["group_32_writers"], "leveldb": None, "sqlite": None,
                 "baseline": dur["periodic_32_writers"], "ratio": d_ratio,
                 "goal": f">= {DURABLE_GOAL}x own periodic", "goal_ratio": DURABLE_GOAL,
                 "result": "PASS" if d_ratio >= DURABLE_GOAL else "MISS"})
    return rows


def _fmt(metric: str, v) -> str:
    if v is None:
        return "—"
    if metric == "disk_bytes":
        return f"{v / 1e6:,.1f} MB"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    return f"{v / 1e3:,.1f}k"


def print_report(w: Workload, rows: list[dict], dur: dict, extra: dict) -> None:
    t = RichTable(title=f"dynatable vs anchors — {w.n:,} keys, one run")
    for col in ("metric", "dynatable", "LevelDB", "SQLite", "kevo", "floor", "ratio", "vs kevo", "vs floor",
                "goal", "result"):
        t.add_column(col, justify="left" if col in ("metric", "goal") else "right")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x"
        if row["metric"] == "disk_bytes":
            ratio += f" ({row['raw_ratio']:.2f}x raw)"
        if row["metric"] == "durable_group":
            ratio += " of periodic"
        style = "green" if row["result"] == "PASS" else "red"
        m = row["metric"]
        vk, vf = row.get("vs_kevo"), row.get("vs_floor")
        t.add_row(row["label"], _fmt(m, row["dynatable"]), _fmt(m, row["leveldb"]), _fmt(m, row["sqlite"]),
                  _fmt(m, row.get("kevo")), _fmt(m, row.get("floor")), ratio,
                  "—" if vk is None else f"{vk:.2f}x", "—" if vf is None else f"{vf:.2f}x",
                  row["goal"], f"[{style}]{row['result']}[/]")
    console.print(t)
    console.print(f"raw payload {w.raw_bytes / 1e6:,.1f} MB; dynatable SSTables at read time: "
                  f"{extra['sstables_at_read']}; durable: periodic {_fmt('', dur['periodic_32_writers'])}/s vs "
                  f"group {_fmt('', dur['group_32_writers'])}/s with {DURABLE_THREADS} writer threads "
                  f"(fdatasync {dur['fdatasync_us']:,.0f} us: at most "
                  f"{_fmt('', DURABLE_THREADS / dur['fdatasync_us'] * 1e6)}/s), "
                  f"{dur['durable_writes']:,} writes in all; dynatable on disk: {extra['sstable_bytes'] / 1e6:,.1f} MB "
                  f"SSTables + {extra['commitlog_bytes'] / 1e6:,.1f} MB commit log")


def plot(rows: list[dict], path: str, n: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["metric"] for r in rows]
    ratios = [r["raw_ratio"] if r["metric"] == "disk_bytes" else r["ratio"] for r in rows]
    goals = [r["goal_ratio"] for r in rows]
    colors = ["tab:green" if r["result"] == "PASS" else "tab:red" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = range(len(rows))
    ax.bar(xs, ratios, color=colors, label="dynatable ratio")
    ax.scatter(xs, goals, marker="_", s=900, color="black", zorder=3, label="goal")
    ax.set_xticks(list(xs), names, rotation=20)
    ax.set_ylabel("ratio")
    ax.set_xlabel("vs LevelDB; disk_bytes vs raw payload (lower is better); durable_group vs own periodic")
    ax.set_title(f"dynatable vs goals, {n:,} keys, one run (green PASS, red MISS)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)

