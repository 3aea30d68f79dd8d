"""Histogram bookkeeping and the output formats: progress lines, summary, YCSB lines, JSON, CSV."""
import csv
import io
import json
import random
import re

from tools.stress.latency import OpStats, Recorder, summarize, summarize_samples
from tools.stress.report import (
    CSV_FIELDS,
    interval_row,
    phase_report,
    progress_line,
    summary_lines,
    to_csv,
    to_json,
    ycsb_lines,
)
from tools.stress.settings import parse


def recorded(seed=1, n=2000, rate=None):
    """A recorder with known samples: WRITE service 1..20 ms, response = service + lateness."""
    rng = random.Random(seed)
    rec, intervals, samples = Recorder(), [], {"service": [], "response": []}
    for i in range(n):
        start = i * 0.001
        service = rng.uniform(0.001, 0.020)
        late = rng.uniform(0, 0.010) if rate else 0.0
        kind = "WRITE" if i % 4 else "READ"
        rec.record(kind, start - late, start, start + service, "NOT_FOUND" if i % 50 == 0 else "OK")
        samples["service"].append(int(service * 1e6))
        samples["response"].append(int((service + late) * 1e6))
        if i % 500 == 499:
            intervals.append(rec.take_interval())
    rec.record_error("WRITE", "WriteTimeout")
    intervals.append(rec.take_interval())
    return rec, intervals, samples


def test_intervals_add_up_to_the_totals():
    rec, intervals, _ = recorded(rate=1000)
    assert sum(s.ops for iv in intervals for s in iv.values()) == 2000
    assert sum(s.ops for s in rec.totals.values()) == 2000
    assert rec.totals["WRITE"].errors == {"WriteTimeout": 1} and intervals[-1]["WRITE"].errors == {"WriteTimeout": 1}
    assert rec.totals["READ"].returns["NOT_FOUND"] == 20


def test_histogram_and_exact_percentiles_agree():
    rec, _, samples = recorded(rate=1000)
    merged = OpStats()
    for s in rec.totals.values():
        merged.add(s)
    for measure in ("service", "response"):
        h, exact = summarize(getattr(merged, measure)), summarize_samples(samples[measure])
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"):
            assert abs(h[key] - exact[key]) <= 0.001 * exact[key] + 0.001, (measure, key, h[key], exact[key])
    assert summarize(merged.response)["p99_ms"] > summarize(merged.service)["p99_ms"]   # lateness counted


def test_encoded_totals_merge_across_processes():
    a, _, _ = recorded(seed=1)
    b, _, _ = recorded(seed=2)
    merged = OpStats.decode(a.totals["WRITE"].encode())
    merged.add(OpStats.decode(b.totals["WRITE"].encode()))
    assert merged.ops == a.totals["WRITE"].ops + b.totals["WRITE"].ops
    assert merged.errors == {"WriteTimeout": 2}
    assert summarize(merged.service)["max_ms"] == max(summarize(a.totals["WRITE"].service)["max_ms"],
                                                      summarize(b.totals["WRITE"].service)["max_ms"])


def test_samples_percentile_is_nearest_rank():
    s = summarize_samples(list(range(1000, 101_000, 1000)))        # 1..100 ms
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"], s["min_ms"]) == (50.0, 95.0, 99.0, 100.0, 1.0)
    assert summarize_samples([])["p50_ms"] is None


def phase(rate=None):
    rec, intervals, _ = recorded(rate=rate)
    rows = [interval_row("write", 0.5 * (i + 1), 0.5, iv) for i, iv in enumerate(intervals)]
    return phase_report("write", rec.totals, 2.0, rows, rate=rate, stopped_by="n")


def test_progress_line_and_summary():
    p = phase()
    line = progress_line(p["intervals"][0])
    assert re.match(r"^\s+0\.5\s+500\s+1,000\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0$", line), line
    assert "WriteTimeout=1" in progress_line(p["intervals"][-1])
    text = "\n".join(summary_lines(p))
    assert "Op rate                   :      1,000 op/s  [READ: 250 op/s, WRITE: 750 op/s]" in text
    assert "Total errors              :          1  [WriteTimeout=1]" in text
    assert "closed loop" in text and "Service time" not in text
    fixed = "\n".join(summary_lines(phase(rate=1000)))
    assert "intended start" in fixed and "Service time mean/p50/p99/max" in fixed


def test_ycsb_lines_have_ycsbs_shape():
    p = phase()
    lines = ycsb_lines(p)
    assert lines[0] == "[OVERALL], RunTime(ms), 2000" and lines[1].startswith("[OVERALL], Throughput(ops/sec), 1000")
    shape = re.compile(r"^\[[A-Z-]+\], [A-Za-z0-9()=_/]+, -?[0-9.]+$")
    assert all(shape.match(ln) for ln in lines), lines
    for name in ("Operations", "AverageLatency(us)", "MinLatency(us)", "MaxLatency(us)",
                 "95thPercentileLatency(us)", "99thPercentileLatency(us)", "Return=OK", "Return=ERROR"):
        assert any(ln.startswith(f"[WRITE], {name}, ") for ln in lines), name
    assert "[READ], Return=NOT_FOUND, 20" in lines
    p99 = next(ln for ln in lines if ln.startswith("[WRITE], 99thPercentileLatency(us)"))
    assert abs(int(p99.rsplit(", ", 1)[1]) / 1000 - p["by_kind"]["WRITE"]["service"]["p99_ms"]) < 0.01
    assert not any("INTENDED" in ln for ln in lines)
    assert any(ln.startswith("[INTENDED-WRITE], 95thPercentileLatency(us), ") for ln in ycsb_lines(phase(rate=1000)))


def test_json_and_csv_carry_every_interval():
    p = phase(rate=1000)
    s = parse(["write", "n=2000", "-rate", "fixed=1000/s", "--json", "x.json"])
    doc = json.loads(json.dumps(to_json(s, [p])))
    assert doc["settings"]["rate"] == 1000.0 and doc["settings"]["population"] == "seq(1..2000)"
    assert doc["tool"] == "dynatable stress" and doc["format_version"] == 1
    ph = doc["phases"][0]
    assert ph["total"]["ops"] == 2000 and ph["by_kind"]["READ"]["returns"]["NOT_FOUND"] == 20
    assert ph["total"]["response"]["p99_ms"] >= ph["total"]["service"]["p99_ms"]
    rows = list(csv.DictReader(io.StringIO(to_csv([p]))))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == len(p["intervals"]) == 5
    assert sum(int(r["ops"]) for r in rows) == 2000 and rows[-1]["errors"] == "WriteTimeout=1"
