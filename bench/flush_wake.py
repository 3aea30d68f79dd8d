"""How long a node's event loop takes to answer while its store flushes a memtable, per GIL switch
interval and flush-thread niceness (ring/runtime/scheduling.py).

The cluster trace (`bench.cluster_quorum --timeline`) showed write latency at half of peak going
from ~5 ms to hundreds of ms while the replicas flushed. This isolates the mechanism in two
processes: a server process holds a store whose memtable has `--rows` rows (100-byte values,
the cluster bench's rows), and answers each 8-byte request on its asyncio loop after one
`store.insert` (a replica's apply); a client process sends `--rate` requests per second on a
fixed schedule and measures each answer from its intended send time. After `--lead` seconds
the server queues its memtable to the store's real flusher thread (`memtable_full`, what a
writer past the threshold calls); the client keeps going until `--tail` s after the flush ended. Reported
per configuration: latency p50/p99/max during the flush and outside it, the flush's wall time,
and the server's CPU seconds over the run.

    python -m bench.flush_wake --configs 5:0,0.5:0,5:10,0.5:10 --rounds 3
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

KS, TABLE = "bench", "kv"
MSG = struct.Struct("<dQ")          # intended send time, request number


def serve(rows: int, switch_ms: float, nice: int, root: str) -> None:
    from engine.store import Store
    from ring.runtime import scheduling
    store = Store.open(root, commitlog_sync="periodic", memtable_flush_threshold_bytes=1 << 40)
    store.create_keyspace(KS)
    store.create_table(KS, TABLE, {"k": "int", "v": "blob"}, primary_key="k")
    value = os.urandom(100)
    for i in range(rows):
        store.insert(KS, TABLE, {"k": i, "v": value})
    scheduling.apply(switch_ms, nice)
    cfs = store.cfs[store.table(KS, TABLE).id]
    state = {"next": rows, "flush_started": None, "flush_ended": None}

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buf = transport, b""

        def data_received(self, data):
            self.buf += data
            out = []
            while len(self.buf) >= MSG.size:
                msg, self.buf = self.buf[:MSG.size], self.buf[MSG.size:]
                store.insert(KS, TABLE, {"k": state["next"], "v": value})
                state["next"] += 1
                out.append(msg)
            self.transport.write(b"".join(out))

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)     # "flush"
        assert line.strip() == "flush"
        cpu0 = time.process_time()
        state["flush_started"] = time.monotonic()
        store.options["memtable_flush_threshold_bytes"] = 1      # what a writer does past the threshold:
        store.background.memtable_full()                         # queue the memtable to the flusher thread
        store.options["memtable_flush_threshold_bytes"] = 1 << 40
        while cfs.flushing:
            await asyncio.sleep(0.005)
        state["flush_ended"] = time.monotonic()
        print(json.dumps({"flush_started": state["flush_started"], "flush_ended": state["flush_ended"],
                          "cpu_s": time.process_time() - cpu0}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)     # "stop"
        server.close()

    asyncio.run(main())
    store.close()


async def drive(port: int, rate: float, seconds: float, out: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def read():
        while True:
            data = await reader.readexactly(MSG.size)
            intended, _ = MSG.unpack(data)
            out.append((intended, time.perf_counter() - intended))

    task = asyncio.ensure_future(read())
    t0, interval, i = time.perf_counter(), 1.0 / rate, 0
    while True:
        intended = t0 + i * interval
        if intended >= t0 + seconds:
            break
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(MSG.pack(intended, i))
        i += 1
    await asyncio.sleep(0.5)
    task.cancel()
    writer.close()


def one(rows: int, switch_ms: float, nice: int, rate: float, lead: float, tail: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="flush_wake-") as root:
        proc = subprocess.Popen([sys.executable, "-m", "bench.flush_wake", "--serve", str(rows), str(switch_ms),
                                 str(nice), root], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = json.loads(proc.stdout.readline())["port"]
        samples: list = []

        async def run():
            driver = asyncio.ensure_future(drive(port, rate, 600, samples))
            await asyncio.sleep(lead)
            proc.stdin.write("flush\n")
            proc.stdin.flush()
            info = json.loads(await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline))
            await asyncio.sleep(tail)
            driver.cancel()
            return info

        info = asyncio.run(run())
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.wait(60)
    lo, hi = info["flush_started"], info["flush_ended"]
    during = [lat for t, lat in samples if lo <= t < hi]
    outside = [lat for t, lat in samples if t < lo or t >= hi]
    q = lambda xs, p: 1000 * sorted(xs)[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")
    return {"switch_ms": switch_ms, "nice": nice, "flush_s": hi - lo, "server_cpu_s": info["cpu_s"],
            "during_p50": q(during, 50), "during_p99": q(during, 99), "during_max": 1000 * max(during, default=0),
            "outside_p50": q(outside, 50), "outside_p99": q(outside, 99), "n_during": len(during),
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=150_000, help="rows in the memtable when it is flushed")
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    ap.add_argument("--configs", default="5:0,0.5:0", help="switch_interval_ms:nice,... (alternated)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lead", type=float, default=1.0)
    ap.add_argument("--tail", type=float, default=1.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    configs = [(float(a), int(b)) for a, b in (c.split(":") for c in args.configs.split(","))]
    results = []
    for r in range(args.rounds):
        for switch_ms, nice in configs:
            res = one(args.rows, switch_ms, nice, args.rate, args.lead, args.tail)
            results.append(res)
            print(f"round {r + 1} switch {switch_ms:g} ms nice {nice}: flush {res['flush_s']:.2f} s, "
                  f"during p50/p99/max {res['during_p50']:.2f}/{res['during_p99']:.2f}/{res['during_max']:.1f} ms "
                  f"(n {res['n_during']}), outside p50/p99 {res['outside_p50']:.2f}/{res['outside_p99']:.2f} ms, "
                  f"server CPU {res['server_cpu_s']:.2f} s, load {res['load']:.1f}", flush=True)
    print("\nmedian (min-max) over rounds:")
    for switch_ms, nice in configs:
        rs = [x for x in results if x["switch_ms"] == switch_ms and x["nice"] == nice]
        fmt = lambda k, d=2: (f"{statistics.median(x[k] for x in rs):.{d}f} "
                              f"({min(x[k] for x in rs):.{d}f}-{max(x[k] for x in rs):.{d}f})")
        print(f"  switch {switch_ms:g} ms nice {nice}: during p99 {fmt('during_p99')} ms, max {fmt('during_max', 1)}"
              f" ms, p50 {fmt('during_p50')} ms; outside p99 {fmt('outside_p99')} ms; flush {fmt('flush_s')} s; "
              f"server CPU {fmt('server_cpu_s')} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
