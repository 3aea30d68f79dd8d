"""ring/runtime/event_trace.py and scheduling.py: the node's timeline of stalls, and its thread scheduling.

A real store, a real asyncio loop and the real collector: a callback that computes for 30 ms
must show up as a loop stall charged to the loop's own CPU, one that sleeps as a stall without
it, a collection as a gc event, a flush as a flush, and the analysis of bench/latency_timeline.py
must tie requests in flight during those events to them.
"""
from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time

from bench import latency_timeline
from engine.store import Store
from ring.runtime import scheduling
from ring.runtime.event_trace import FILE_NAME, open_trace, read_trace
from ring.runtime.gc_inspector import GcInspector


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_trace_records_loop_stalls_by_cause_gc_pauses_and_flushes(tmp_path):
    store = Store.open(str(tmp_path / "db"), commitlog_sync="periodic")
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "int", "v": "blob"}, primary_key="k")
    for i in range(2000):
        store.insert("ks", "kv", {"k": i, "v": b"x" * 100})
    trace = open_trace(str(tmp_path), store)
    inspector = GcInspector()
    inspector.listener = trace.gc_pause
    marks = {}

    async def main():
        trace.start(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        marks["busy"] = time.monotonic()
        _busy(0.03)                       # the loop's own thread computes: a stall charged to the loop
        await asyncio.sleep(0.05)
        marks["sleep"] = time.monotonic()
        time.sleep(0.03)                  # the loop's thread blocked without CPU
        await asyncio.sleep(0.05)
        for _ in range(3):
            gc.collect()
        flusher = threading.Thread(target=store.flush)
        marks["flush"] = time.monotonic()
        flusher.start()
        while flusher.is_alive():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.1)          # the next poll sees the flush end
    try:
        asyncio.run(main())
    finally:
        inspector.close()
        trace.close()
        store.close()
    events = read_trace(str(tmp_path / FILE_NAME))
    stalls = [e for e in events if e["kind"] == "stall" and e["ms"] >= 20]
    busy = [e for e in stalls if abs(e["t"] - marks["busy"]) < 0.01]
    slept = [e for e in stalls if abs(e["t"] - marks["sleep"]) < 0.01]
    assert busy and busy[0]["loop_cpu_ms"] >= 20, stalls       # (its wall time may be longer: load)
    assert slept and slept[0]["loop_cpu_ms"] < 10 and slept[0]["other_cpu_ms"] < 10, stalls
    assert latency_timeline.classify(slept[0]) in ("stall:blocked", "stall:wait")
    gcs = [e for e in events if e["kind"] == "gc"]
    assert any(e["gen"] == 2 for e in gcs) and all(0 < e["cpu_ms"] <= e["ms"] + 1 for e in gcs), gcs
    flushes = [e for e in events if e["kind"] == "flush"]
    assert len(flushes) == 1 and flushes[0]["t"] >= marks["flush"] - 0.001, events


def test_the_analysis_ties_slow_requests_to_the_events_they_overlapped():
    events = [[{"t": 10.0, "kind": "flush", "ms": 500.0},
               {"t": 20.0, "kind": "stall", "ms": 50.0, "loop_cpu_ms": 0.1, "other_cpu_ms": 45.0, "run_delay_ms": 0}],
              [{"t": 30.0, "kind": "gc", "ms": 40.0, "gen": 2}]]
    fast = [(float(t) / 10, 0.0, 0.002) for t in range(0, 400)]          # 2 ms each, every 0.1 s
    slow = [(10.1, 0.0, 0.2), (19.99, 0.0, 0.06), (30.01, 0.003, 0.05)]   # in a flush, a GIL stall, a gc
    stall = {"kind": "stall", "ms": 30.0, "loop_cpu_ms": 2.0, "other_cpu_ms": 1.0, "run_delay_ms": 3.0}
    assert latency_timeline.classify(stall) == "stall:blocked"
    assert latency_timeline.classify({**stall, "run_delay_ms": 12.0}) == "stall:wait"
    assert latency_timeline.classify({**stall, "loop_cpu_ms": 14.0, "run_delay_ms": 12.0}) == "stall:loop"
    assert latency_timeline.classify({**stall, "other_cpu_ms": 25.0}) == "stall:gil"
    result = latency_timeline.analyze({"phases": {"write_half": {"samples": sorted(fast + slow)}},
                                       "node_events": events})["write_half"]
    kinds = result["kinds"]
    assert result["over_10ms"] == 3
    assert kinds["flush"]["slow_10ms"] == 1 / 3 and kinds["stall:gil"]["slow_10ms"] == 1 / 3
    assert kinds["gc"]["slow_10ms"] == 1 / 3 and kinds["client-lag"]["slow_10ms"] == 1 / 3
    assert kinds["flush"]["all"] == 6 / 403             # 5 fast ones (10.0 .. 10.4) and the slow one
    assert result["nodes"][0]["flush"] == {"count": 1, "total_ms": 500.0, "max_ms": 500.0}
    assert latency_timeline.report_lines({"write_half": result})[0].startswith("write_half: 403 requests")


def test_scheduling_sets_the_switch_interval_and_nices_only_the_background_threads():
    before = sys.getswitchinterval()
    stop = threading.Event()
    flush = threading.Thread(target=stop.wait, name="dynatable-flush")
    other = threading.Thread(target=stop.wait, name="dynatable-durability_0")
    flush.start()
    other.start()
    try:
        applied = scheduling.apply(0.5, 7)
        assert abs(sys.getswitchinterval() - 0.0005) < 1e-9 and applied["niced"] == ["dynatable-flush"]
        assert os.getpriority(os.PRIO_PROCESS, flush.native_id) == 7
        assert os.getpriority(os.PRIO_PROCESS, other.native_id) == os.getpriority(os.PRIO_PROCESS, 0) != 7
        assert scheduling.apply(5.0)["niced"] == []
    finally:
        stop.set()
        flush.join()
        other.join()
        sys.setswitchinterval(before)
