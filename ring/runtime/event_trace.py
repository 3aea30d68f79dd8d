"""A node's timeline of what can stall its event loop, for latency forensics (`event_trace = true`).

Off by default; on, the node appends JSON lines to `<data_directory>/events.jsonl` (flushed once a
second and at stop). Every `t` is CLOCK_MONOTONIC seconds (`time.monotonic()`; `time.perf_counter()`
reads the same clock on Linux), so a client's per-request timestamps on the same host line up
with it. Kinds:

- `stall`: the loop's heartbeat (a timer every `HEARTBEAT_S`) ran `ms` late (at least
  `STALL_MS`), from `t`. Beside it, over the beat: `loop_cpu_ms`, the CPU of the loop's own
  thread; `other_cpu_ms`, of the process's other threads (flush, compaction, commit-log sync,
  durability); `run_delay_ms`, the time the loop's thread was runnable but waiting for a CPU
  (/proc/thread-self/schedstat; -1 where the kernel does not keep it). Which one is near `ms`
  says why: the loop ran a long callback (or a collection), another thread held the GIL, the
  machine had no free CPU; none of them: the thread was blocked (a page fault, a system call);
- `gc`: a collection of generation `gen` paused the thread that allocated for `ms`, from `t`, of
  which `cpu_ms` on a CPU (only pauses of at least `GC_MS`; all are counted in the gc_* metrics);
- `flush`, `compaction`: a memtable was being flushed / a compaction ran over [`t`, `t` + `ms`]
  (polled every `POLL_S`: edges are that coarse);
- `segment`, `sync`: the commit log created a segment (a roll) / finished an fsync since the last
  poll, at `t`.

The heartbeat costs ~1,000 timer callbacks a second, so it is a tool for a benchmark run
(`bench.cluster_quorum --timeline`), not for production. Invariants: the trace never raises into
the loop (a write error turns it off, logged once); events are written in the order they ended.
"""
from __future__ import annotations

import json
import logging
import os
import time

log = logging.getLogger("dynatable.runtime")

HEARTBEAT_S = 0.001
STALL_MS = 2.0
GC_MS = 0.5
POLL_S = 0.02
FILE_NAME = "events.jsonl"


class EventTrace:
    """Started on the loop with `start(loop)`; `gc_pause` is the GcInspector's listener."""

    def __init__(self, path: str, store):
        self.path = path
        self.store = store
        self._lines: list[str] = []
        self._file = open(path, "a", buffering=1 << 16)
        self._loop = None
        self._handle = None
        self._due = 0.0
        self._cpu = (0.0, 0.0, 0.0)             # (thread, process CPU, thread run delay) s at the last beat
        self._schedstat = -1                    # fd of the loop thread's /proc/thread-self/schedstat
        self._next_poll = 0.0
        self._open: dict[str, float] = {}       # kind -> start of the flush/compaction now running
        self._log_counts = (0, 0)               # commit log (segments created, syncs)
        self._next_write = 0.0

    def start(self, loop) -> None:
        self._loop = loop
        try:
            self._schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._schedstat = -1
        self._cpu = self._cpu_now()
        self._log_counts = self._commit_log_counts()
        self._arm(time.monotonic())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._schedstat >= 0:
            os.close(self._schedstat)
            self._schedstat = -1
        now = time.monotonic()
        for kind, t in self._open.items():
            self._event(kind, t, (now - t) * 1000)
        self._open = {}
        self._write()
        self._file.close()

    # -- events -------------------------------------------------------------------------------

    def _event(self, kind: str, t: float, ms: float, **extra) -> None:
        self._lines.append(json.dumps({"t": round(t, 6), "kind": kind, "ms": round(ms, 3), **extra}))

    def gc_pause(self, ms: float, generation: int, cpu_ms: float) -> None:
        if ms >= GC_MS:
            self._event("gc", time.monotonic() - ms / 1000, ms, gen=generation, cpu_ms=round(cpu_ms, 3))

    def _arm(self, now: float) -> None:
        self._due = now + HEARTBEAT_S
        self._handle = self._loop.call_at(self._loop.time() + HEARTBEAT_S, self._beat)

    def _cpu_now(self) -> tuple[float, float, float]:
        delay = -1.0
        if self._schedstat >= 0:
            try:
                delay = int(os.pread(self._schedstat, 128, 0).split()[1]) / 1e9
            except (OSError, ValueError, IndexError):
                delay = -1.0
        return time.thread_time(), time.process_time(), delay

    def _beat(self) -> None:
        now = time.monotonic()
        cpu = self._cpu_now()
        late_ms = (now - self._due) * 1000
        if late_ms >= STALL_MS:
            last = self._cpu
            loop_cpu = cpu[0] - last[0]
            other_cpu = (cpu[1] - last[1]) - loop_cpu
            delay = cpu[2] - last[2] if cpu[2] >= 0 and last[2] >= 0 else -0.001
            self._event("stall", self._due, late_ms, loop_cpu_ms=round(loop_cpu * 1000, 3),
                        other_cpu_ms=round(max(0.0, other_cpu) * 1000, 3), run_delay_ms=round(delay * 1000, 3))
        self._cpu = cpu
        if now >= self._next_poll:
            self._next_poll = now + POLL_S
            self._poll(now)
        if now >= self._next_write:
            self._next_write = now + 1.0
            self._write()
        self._arm(now)

    def _poll(self, now: float) -> None:
        try:
            tables = list(self.store.cfs.values())
            running = {"flush": any(c.flushing for c in tables),
                       "compaction": any(c.compactions_running for c in tables)}
            counts = self._commit_log_counts()
        except Exception:   # a table dropped mid-iteration: the next poll sees it
            return
        for kind, on in running.items():
            if on and kind not in self._open:
                self._open[kind] = now
            elif not on and kind in self._open:
                t = self._open.pop(kind)
                self._event(kind, t, (now - t) * 1000)
        for kind, n, before in zip(("segment", "sync"), counts, self._log_counts):
            if n != before:
                self._event(kind, now, 0.0, count=n - before)
        self._log_counts = counts

    def _commit_log_counts(self) -> tuple[int, int]:
        stats = self.store.commit_log.stats
        return stats["segments_created"], stats["syncs"]

    def _write(self) -> None:
        if not self._lines or self._file.closed:
            return
        lines, self._lines = self._lines, []
        try:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        except OSError as e:
            log.error("event trace %s: %r; tracing stops", self.path, e)
            self._file.close()


def open_trace(data_directory: str, store) -> EventTrace:
    return EventTrace(os.path.join(data_directory, FILE_NAME), store)


def read_trace(path: str) -> list[dict]:
    """The events of one node's trace file, in file order (a torn last line is skipped)."""
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
