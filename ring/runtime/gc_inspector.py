"""The node process's garbage collector: tuned once after startup, every pause measured.

CPython's cyclic collector runs on the thread that allocates, so every collection is a pause of
the node's event loop: a young (generation 0) collection walks the objects allocated since the
last one, a full (generation 2) collection walks every tracked object the process holds, the
memtables' partitions included (~1 object per row: 100-200 ms at 200,000 rows on this machine
kind). Two measures, applied by `tune(young_threshold)` once the node has started:

- `gc.collect()` then `gc.freeze()`: what startup built (modules, schema, ring, the store's
  indexes and caches) moves to the permanent generation and is never walked again;
- the young threshold goes from Python's 700 to `young_threshold` allocations (the node's
  request path allocates a few hundred objects per operation, nearly all freed by reference
  counting): fewer collections, so fewer promotions and fewer full collections. Measured
  (bench/README.md): 10 s of QUORUM writes on 3 nodes took 3 full collections (262-333 ms of
  pauses, the longest 112-127 ms) with Python's settings, none with 5,000.

`GcInspector` (Cassandra's name for the same job) counts every collection per generation and
its pause (`gc.callbacks`), for the metrics, and logs a pause of at least `log_threshold_ms` at
INFO (Cassandra's gc_log_threshold, 200 ms); a `listener` (the event trace) hears every pause
with the CPU its thread spent in it (a pause longer than its CPU waited for a CPU).
`young_threshold` 0 leaves the collector as Python
sets it (docs/operations.md, "Garbage collection").
"""
from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("dynatable.gc")

OLDER_THRESHOLDS = (10, 10)       # Python's: generation 1 every 10 young collections, generation 2 every 10 of those


def tune(young_threshold: int) -> None:
    """Freeze what startup built and raise the young threshold; 0 changes nothing."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *OLDER_THRESHOLDS)


class GcInspector:
    """Collections and pauses per generation, from gc.callbacks; `close()` unhooks it."""

    def __init__(self, log_threshold_ms: float = 200.0, clock=time.perf_counter):
        self.log_threshold_ms = log_threshold_ms
        self.clock = clock
        self.collections = [0, 0, 0]
        self.pause_ms = [0.0, 0.0, 0.0]           # summed per generation
        self.pause_max_ms = 0.0
        self._started: float | None = None
        self._started_cpu = 0.0
        self.listener = None                      # listener(ms, generation, cpu_ms) after every collection
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = self.clock()
            if self.listener is not None:
                self._started_cpu = time.thread_time()
            return
        if self._started is None:
            return
        ms = (self.clock() - self._started) * 1000
        self._started = None
        generation = info["generation"]
        self.collections[generation] += 1
        self.pause_ms[generation] += ms
        if ms > self.pause_max_ms:
            self.pause_max_ms = ms
        if self.listener is not None:
            self.listener(ms, generation, (time.thread_time() - self._started_cpu) * 1000)
        if ms >= self.log_threshold_ms:
            log.info("GC generation %d paused the loop %.0f ms (%d collected, %d uncollectable)", generation, ms,
                     info.get("collected", 0), info.get("uncollectable", 0))

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {"gc_pause_max_ms": round(self.pause_max_ms, 3)}
        for g in range(3):
            out[f"gc_collections_gen{g}"] = self.collections[g]
            out[f"gc_pause_ms_gen{g}"] = round(self.pause_ms[g], 3)
        return out
