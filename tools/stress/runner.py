"""The load driver: N concurrent workers in one asyncio loop, closed loop or on a fixed schedule.

- **closed loop** (no rate): `threads` workers, each sends its next operation as soon as the
  previous one answered; the intended start of an operation is its real start;
- **fixed rate** (`throttle=` / `fixed=` / YCSB `-target`): operation i is *intended* to start
  at t0 + i / rate, whatever the answers do; a free worker takes the next operation, waits for its
  intended time if that is still ahead, and sends it. When every worker is busy the schedule
  runs ahead of the sends, and each late operation's response time (from its intended start)
  shows the stall: coordinated-omission correction, as wrk2 and cassandra-stress `fixed=` do.

The run stops after `n` operations or when `duration` has passed (operations in flight then
finish and are counted). Every failure is counted by exception class name, none stops the run,
except `InvalidRequest` (the request itself is wrong: retrying cannot help), which ends the run
and is raised. `on_interval(elapsed_s, stats)` is called once per `interval_s` with the
operations finished in that interval, and once at the end for the rest.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from tools.stress.latency import OpStats, Recorder


@dataclass
class RunResult:
    totals: dict[str, OpStats]
    sub_totals: dict[str, OpStats]      # parts of operations, by kind (YCSB's read-modify-write)
    elapsed_s: float
    stopped_by: str                    # "n", "duration" or "error"
    error: BaseException | None = None
    error_log: list = field(default_factory=list)   # (sent at s, kind, error) of the first errors


async def run_load(workload, *, threads: int, n: int | None, duration_s: float | None, rate: float | None,
                   seed: int | None = None, on_interval=None, interval_s: float = 1.0) -> RunResult:
    """Drive `workload` (set up already: next_op(rng) -> (kind, coroutine function returning a status))."""
    assert n is not None or duration_s is not None
    recorder = Recorder()
    workload.recorder = recorder
    counter = itertools.count()
    clock = time.perf_counter
    t0 = clock()
    t_end = t0 + duration_s if duration_s is not None else float("inf")
    fatal: list[BaseException] = []

    async def worker(w: int) -> None:
        rng = random.Random(None if seed is None else seed * 1_000_003 + w)
        while not fatal:
            i = next(counter)
            if n is not None and i >= n:
                return
            if rate is None:
                if clock() >= t_end:
                    return
                intended = None
            else:
                intended = t0 + i / rate
                if intended >= t_end:
                    return
                delay = intended - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            kind, op = workload.next_op(rng)
            started = clock()
            try:
                status = await op()
            except InvalidRequest as e:
                fatal.append(e)
                return
            except Exception as e:  # noqa: BLE001 - every failure is counted, by kind
                recorder.record_error(kind, type(e).__name__, started - t0)
                continue
            recorder.record(kind, started if intended is None else intended, started, clock(), status)

    async def reporter() -> None:
        tick = 1
        while True:
            await asyncio.sleep(max(0.0, t0 + tick * interval_s - clock()))
            if on_interval is not None:
                on_interval(clock() - t0, recorder.take_interval())
            tick += 1

    report_task = asyncio.ensure_future(reporter())
    try:
        await asyncio.gather(*(worker(w) for w in range(threads)))
    finally:
        report_task.cancel()
        try:
            await report_task
        except asyncio.CancelledError:
            pass
    elapsed = clock() - t0
    last = recorder.take_interval()
    if on_interval is not None and any(s.ops or s.errors for s in last.values()):
        on_interval(elapsed, last)
    if fatal:
        return RunResult(recorder.totals, recorder.sub_totals, elapsed, "error", fatal[0], recorder.error_log)
    return RunResult(recorder.totals, recorder.sub_totals, elapsed, "n" if n is not None else "duration",
                     error_log=recorder.error_log)
