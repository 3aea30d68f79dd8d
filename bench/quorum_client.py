"""The client process of bench/cluster_quorum.py: one `AsyncSession` that runs one phase (closed
loop at `inflight` requests, or the open loop at a fixed rate paced by `pacing`) and reports its
operations, errors, latencies (HdrHistogram, encoded), CPU and loop wake-ups over the measured
window only. Latency in the open loop is measured from each request's intended start time
(coordinated-omission correction): request n's intended start is exactly t0 + n / rate."""
from __future__ import annotations

import asyncio
import math
import os
import random
import time

from hdrh.histogram import HdrHistogram

KEYSPACE = "bench"
TABLE = "kv"
VALUE_BYTES = 100
KEY_STRIDE = 10_000_000          # client process p writes keys p*KEY_STRIDE + n
HIST_MAX_US = 60_000_000


def new_hist() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, 3)


def sleeps(pid: int | str = "self") -> int:
    """Voluntary context switches of a process's main thread (its event loop): the times it
    blocked (in epoll_wait, mostly) and was woken again. /proc/<pid>/status counts the main
    thread only."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


def pacing(i: int, t0: float, interval: float, now: float, t_end: float, tick: float) -> tuple[int, float | None]:
    """The open loop's schedule: request n's intended start is exactly t0 + n * interval. Given
    that requests before i have been started, returns (j, wake): requests i .. j-1 are due at
    `now` (intended <= now, and before t_end), and the pacer wakes next at `wake`: request j's
    intended time (tick 0) or the first tick boundary t0 + k * tick at or after it; None once
    request j's intended time is past t_end (the schedule is done)."""
    j = i
    while (intended := t0 + j * interval) <= now and intended < t_end:
        j += 1
    if intended >= t_end:
        return j, None
    return j, intended if not tick else t0 + math.ceil((intended - t0) / tick) * tick


async def worker_main(contact_points, cluster_name, proc_index, phase, seconds, warmup, inflight, rate, keys_written,
                       barrier, timeline=False, tick_ms=0.0) -> dict:
    from ring.client import AsyncCluster
    cluster = AsyncCluster(contact_points, timeout_s=12.0, cluster_name=cluster_name)
    session = await cluster.connect(KEYSPACE)
    rng = random.Random(proc_index * 7919 + len(phase))
    value = os.urandom(VALUE_BYTES)
    base = proc_index * KEY_STRIDE
    writing = phase.startswith("write")
    next_key = keys_written.get(proc_index, 0) if writing else 0
    readable = [(p * KEY_STRIDE, n) for p, n in keys_written.items() if n > 0]

    def op():
        nonlocal next_key
        if writing:
            k = base + next_key
            next_key += 1
            return session.insert(TABLE, {"k": k, "v": value}, consistency="QUORUM")
        p_base, n = readable[rng.randrange(len(readable))]
        return session.get(TABLE, {"k": p_base + rng.randrange(n)}, consistency="QUORUM")

    # one request per node so every connection is open before the clock starts
    for _ in range(8):
        await op()
    latencies: list[int] = []          # us; into the histogram after the window (its record_value
    errors: dict[str, int] = {}        # costs ~3-6 us, which the client's CPU figure would include)
    samples: list[tuple] = []          # --timeline: (intended, started - intended, latency) per request
    timeline = timeline and rate is not None     # open-loop phases only
    done = 0
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, barrier.wait)
    t0 = time.perf_counter()
    t_begin, t_end = t0 + warmup, t0 + warmup + seconds
    cpu_marks: list[tuple] = []         # (CPU, loop sleeps) at t_begin and t_end: the measured window only
    for at in (t_begin, t_end):
        loop.call_later(at - t0, lambda: cpu_marks.append((time.process_time(), sleeps())))

    async def timed(intended: float, count_if) -> None:
        nonlocal done
        started = time.perf_counter() if timeline else 0.0
        try:
            await op()
        except Exception as e:  # noqa: BLE001 - every failure is counted, none is fatal
            if count_if(intended, time.perf_counter()):
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            return
        now = time.perf_counter()
        if count_if(intended, now):
            latencies.append(int((now - intended) * 1e6))
            done += 1
            if timeline:
                samples.append((intended, started - intended, now - intended))

    if rate is None:                     # closed loop: `inflight` loops back to back
        def in_window(_intended, finished):
            return t_begin <= finished < t_end

        async def closed() -> None:
            while time.perf_counter() < t_end:
                await timed(time.perf_counter(), in_window)
        await asyncio.gather(*(closed() for _ in range(inflight)))
    else:                                # open loop at `rate` ops/s, latency from the intended time
        def in_window(intended, _finished):
            return t_begin <= intended < t_end

        tasks: set = set()
        paced = loop.create_future()
        interval = 1.0 / rate
        tick = tick_ms / 1000.0
        i = 0

        def pace() -> None:
            """Start every request whose intended time has come (`pacing`), then sleep until the next tick."""
            nonlocal i
            now = time.perf_counter()
            j, wake = pacing(i, t0, interval, now, t_end, tick)
            for n in range(i, j):
                task = loop.create_task(timed(t0 + n * interval, in_window))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i = j
            if wake is None:
                paced.set_result(None)
            else:
                loop.call_later(wake - now, pace)
        pace()
        await paced
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    window = seconds
    while len(cpu_marks) < 2:           # a closed loop may finish a hair before t_end's callback
        await asyncio.sleep(max(0.0, t_end - time.perf_counter()) + 0.001)
    cpu = cpu_marks[1][0] - cpu_marks[0][0]
    wakeups = cpu_marks[1][1] - cpu_marks[0][1]
    await cluster.shutdown()
    hist = new_hist()
    for us in latencies:
        hist.record_value(max(1, us))
    return {"proc": proc_index, "ops": done, "seconds": window, "errors": errors, "cpu_s": cpu, "wakeups": wakeups,
            "hist": hist.encode(), "next_key": next_key if writing else None, "samples": samples}


def worker(args, out) -> None:
    try:
        out.put(asyncio.run(worker_main(*args)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out.put({"proc": args[2], "failed": f"{type(e).__name__}: {e}"})
