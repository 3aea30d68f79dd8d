"""What a stress run prints and writes: progress lines, the summary, YCSB's format, JSON and CSV.

All pure: each function turns figures (OpStats, interval rows, phase dicts) into text or plain
data. Latency words used everywhere:
- **response time** (the headline): from each operation's intended start; the same as the
  service time in a closed loop, and coordinated-omission corrected at a fixed rate;
- **service time**: from the real send to the answer.
Units: milliseconds in progress lines, summaries, JSON and CSV; microseconds in the YCSB lines
(as YCSB prints them).
"""
from __future__ import annotations

import csv
import io
from dataclasses import fields

from tools.stress.latency import (
    IntervalStats,
    OpStats,
    merge_kinds,
    summarize,
    summarize_samples,
)

PROGRESS_HEADER = (f"{'time s':>7} {'ops':>9} {'op/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
                   f"{'max ms':>8}  errors")
CSV_FIELDS = ("phase", "time_s", "ops", "ops_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms",
              "service_p50_ms", "service_p99_ms", "errors")


def interval_row(phase: str, elapsed_s: float, span_s: float, stats: dict[str, IntervalStats]) -> dict:
    """One progress interval as plain data (the samples are dropped after this)."""
    total = merge_kinds(stats)
    r = summarize_samples(total.response_us)
    s = summarize_samples(total.service_us)
    return {"phase": phase, "time_s": round(elapsed_s, 3), "span_s": round(span_s, 3), "ops": total.ops,
            "ops_per_s": total.ops / span_s if span_s > 0 else 0.0,
            "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"], "max_ms": r["max_ms"],
            "service_p50_ms": s["p50_ms"], "service_p99_ms": s["p99_ms"],
            "errors": dict(total.errors), "ops_by_kind": {k: v.ops for k, v in stats.items()}}


def _ms(v) -> str:
    return "-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _errors(errors: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "0"


def progress_line(row: dict) -> str:
    return (f"{row['time_s']:>7.1f} {row['ops']:>9,} {row['ops_per_s']:>8,.0f} {_ms(row['p50_ms']):>8} "
            f"{_ms(row['p95_ms']):>8} {_ms(row['p99_ms']):>8} {_ms(row['max_ms']):>8}  {_errors(row['errors'])}")


def phase_report(name: str, totals: dict[str, OpStats], elapsed_s: float, rows: list[dict], *,
                 rate: float | None, stopped_by: str, sub_totals: dict[str, OpStats] | None = None,
                 error_log: list | None = None) -> dict:
    """A finished phase as plain data: totals per kind and overall, and its interval rows.
    Parts of operations (`sub_totals`) count in their kind's figures, as YCSB counts a
    read-modify-write's read under READ, but not in the overall figures."""
    def one(s: OpStats) -> dict:
        return {"ops": s.ops, "ops_per_s": s.ops / elapsed_s if elapsed_s > 0 else 0.0,
                "response": summarize(s.response), "service": summarize(s.service),
                "returns": dict(s.returns), "errors": dict(s.errors)}
    per_kind = dict(totals)
    for k, v in (sub_totals or {}).items():
        both = OpStats()
        for part in (per_kind.get(k), v):
            if part is not None:
                both.add(part)
        per_kind[k] = both
    kinds = {k: one(v) for k, v in sorted(per_kind.items())}
    return {"phase": name, "elapsed_s": elapsed_s, "stopped_by": stopped_by, "target_rate": rate,
            "latency": ("response time from each operation's intended start (coordinated-omission corrected)"
                        if rate is not None else "closed loop: response time = service time"),
            "total": one(merge_kinds(totals)), "by_kind": kinds, "intervals": rows,
            "error_log": [list(e) for e in error_log or ()]}


def summary_lines(p: dict) -> list[str]:
    """cassandra-stress's "Results:" block for one phase."""
    kinds = p["by_kind"]

    def per_kind(fmt) -> str:
        parts = [f"{k}: {fmt(v)}" for k, v in kinds.items()]
        return f"  [{', '.join(parts)}]" if len(parts) > 1 else ""

    t = p["total"]
    out = ["Results:", f"Op rate                   : {t['ops_per_s']:>10,.0f} op/s"
           + per_kind(lambda v: f"{v['ops_per_s']:,.0f} op/s")]
    for label, key in (("Latency mean", "mean_ms"), ("Latency median", "p50_ms"), ("Latency 95th percentile", "p95_ms"),
                       ("Latency 99th percentile", "p99_ms"), ("Latency 99.9th percentile", "p999_ms"),
                       ("Latency max", "max_ms")):
        out.append(f"{label:<26}: {_ms(t['response'][key]):>10} ms"
                   + per_kind(lambda v, key=key: f"{_ms(v['response'][key])} ms"))
    if p["target_rate"] is not None:
        sv = t["service"]
        out.append(f"Service time mean/p50/p99/max: {_ms(sv['mean_ms'])} / {_ms(sv['p50_ms'])} / "
                   f"{_ms(sv['p99_ms'])} / {_ms(sv['max_ms'])} ms (from the real send)")
    out.append(f"Total operations          : {t['ops']:>10,}")
    errors = sum(t["errors"].values())
    out.append(f"Total errors              : {errors:>10,}" + (f"  [{_errors(t['errors'])}]" if errors else ""))
    not_found = t["returns"].get("NOT_FOUND", 0)
    if not_found:
        out.append(f"Not found (reads, no row) : {not_found:>10,}")
    secs = int(p["elapsed_s"])
    out.append(f"Total operation time      : {secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d} "
               f"({p['elapsed_s']:.2f} s)")
    out.append(f"Latency measured as       : {p['latency']}"
               + (f"; target {p['target_rate']:,.0f} op/s" if p["target_rate"] is not None else ""))
    return out


def ycsb_lines(p: dict) -> list[str]:
    """YCSB's end-of-run lines; at a target rate, [KIND] is service time and [INTENDED-KIND]
    response time from the intended start (YCSB's measurement.interval=both)."""
    t = p["total"]
    out = [f"[OVERALL], RunTime(ms), {p['elapsed_s'] * 1000:.0f}",
           f"[OVERALL], Throughput(ops/sec), {t['ops_per_s']}"]
    which = [("", "service")] + ([("INTENDED-", "response")] if p["target_rate"] is not None else [])
    for prefix, measure in which:
        for kind, v in p["by_kind"].items():
            s = v[measure]
            name = f"[{prefix}{kind}]"
            out.append(f"{name}, Operations, {s['count']}")
            if s["count"]:
                out.append(f"{name}, AverageLatency(us), {s['mean_ms'] * 1000}")
                out.append(f"{name}, MinLatency(us), {round(s['min_ms'] * 1000)}")
                out.append(f"{name}, MaxLatency(us), {round(s['max_ms'] * 1000)}")
                out.append(f"{name}, 95thPercentileLatency(us), {round(s['p95_ms'] * 1000)}")
                out.append(f"{name}, 99thPercentileLatency(us), {round(s['p99_ms'] * 1000)}")
            if not prefix:
                for status, count in sorted(v["returns"].items()):
                    out.append(f"{name}, Return={status}, {count}")
                errors = sum(v["errors"].values())
                if errors:
                    out.append(f"{name}, Return=ERROR, {errors}")
    return out


def settings_dict(settings) -> dict:
    out = {}
    for f in fields(settings):
        v = getattr(settings, f.name)
        out[f.name] = v if v is None or isinstance(v, (str, int, float, bool, list, dict, tuple)) else str(v)
    return out


JSON_FORMAT_VERSION = 1   # docs/format.md "Stress reports"; bump when a field changes meaning


def to_json(settings, phases: list[dict]) -> dict:
    return {"tool": "dynatable stress", "format_version": JSON_FORMAT_VERSION, "settings": settings_dict(settings),
            "phases": phases}


def to_csv(phases: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for p in phases:
        for row in p["intervals"]:
            w.writerow({**row, "errors": ";".join(f"{k}={v}" for k, v in sorted(row["errors"].items()))})
    return buf.getvalue()
