"""What bench/cql.py, bench/cql_acsylla.py and bench/cql_rounds.py share: the keyspace and batch
sizes, the driver as the bench configures it, a cluster whose nodes export /metrics, the phases
of an asyncio client (`asyncio_phases`), and `Meter`, which measures one phase:
wall time, node CPU (utime + stime of the node processes and their flush workers) and client CPU
per operation, optionally every node gauge that changed and a py-spy profile of node 1. A phase's figures are the differences between `Meter()` and `Meter.done(ops)`.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

from hdrh.histogram import HdrHistogram

from bench.harness import cpu_seconds

KEYSPACE = "bench_cql"
WARMUP = 200
CHUNK = 1000                         # closed-loop requests per execute_concurrent / gather call
HIST_MAX_US = 60_000_000


def percentiles(hist: HdrHistogram, errors: int) -> dict:
    return {"p50_ms": hist.get_value_at_percentile(50) / 1000, "p95_ms": hist.get_value_at_percentile(95) / 1000,
            "p99_ms": hist.get_value_at_percentile(99) / 1000, "max_ms": hist.get_max_value() / 1000,
            "count": hist.get_total_count(), "errors": errors}


async def asyncio_phases(pids, prefix: str, call, seconds: float, concurrency: int, half_s: float,
                         same_rate: dict | None = None) -> dict:
    """insert, then select, for an asyncio client: the warm-up, the closed-loop peak (`concurrency`
    in flight, Meter named prefix_op) and the open loop at half of the peak (or at `same_rate[op]`)
    timed from each request's intended start. `call(op, k, written)` makes one request and returns
    the row (None: not found); select reads key k % written."""
    gate = asyncio.Semaphore(concurrency)
    out, counts, written = {}, {"found": 0, "errors": 0}, 0

    async def one(op, k):
        async with gate:
            try:
                row = await call(op, k, written)     # awaited first: `counts[...] += await` would lose updates
                counts["found"] += row is not None
            except Exception:  # noqa: BLE001 - counted, reported
                counts["errors"] += 1

    async def timed(op, k, due, hist, errors):
        try:
            await call(op, k, written)
            hist.record_value(max(1, int((time.perf_counter() - due) * 1e6)))
        except Exception:  # noqa: BLE001 - counted, reported
            errors.append(1)

    for op in ("insert", "select"):
        await asyncio.gather(*(one(op, -k - 1) for k in range(WARMUP)))
        counts.update(found=0, errors=0)
        quiet_s = await asyncio.to_thread(quiesce, pids)      # the previous phase's flushes are not ours
        meter, n = Meter(pids, f"{prefix}_{op}"), 0
        while time.perf_counter() - meter.t0 < seconds:
            await asyncio.gather(*(one(op, k) for k in range(n, n + CHUNK)))
            n += CHUNK
        out[op] = dict(meter.done(n), errors=counts["errors"], quiesce_s=quiet_s)
        if op == "select":
            out[op]["found"] = counts["found"]
        written = written or n
        rate = same_rate[op] if same_rate else out[op]["ops_s"] / 2
        meter = Meter(pids)
        hist, errors, tasks, n = HdrHistogram(1, HIST_MAX_US, 3), [], [], 0
        t0 = time.perf_counter()
        while n / rate < half_s:
            due = t0 + n / rate
            ahead = due - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.ensure_future(timed(op, n, due, hist, errors)))
            n += 1
        await asyncio.gather(*tasks)
        out[op]["half"] = dict(percentiles(hist, len(errors)), rate=rate,
                               node_cpu_ms_per_op=meter.done(max(1, n))["node_cpu_ms_per_op"])
    out["written"] = written
    return out


def quiesce(pids, busy: float = 0.15, limit_s: float = 15.0) -> float:
    """Wait (at most `limit_s`) until the nodes use under `busy` CPU-seconds per second together
    (flushes and compactions of the previous phase done); the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        c0 = sum(cpu_seconds(p) for p in pids)
        time.sleep(0.5)
        if (sum(cpu_seconds(p) for p in pids) - c0) / 0.5 < busy:
            break
    return time.perf_counter() - t0


class Meter:
    """Wall time, node CPU and this process's CPU over one phase; with `PY_SPY` set (--py-spy DIR),
    py-spy samples node 1 during the phase into DIR/<name>.txt (collapsed stacks)."""

    PY_SPY: str | None = None
    NODE_CPU: str | None = None         # --node-cpu DIR: the nodes run bench/node_probe (SIGUSR1 / SIGUSR2)
    METRICS: list[str] = []             # --metrics: each node's http://address:port/metrics

    def __init__(self, pids, name: str = ""):
        self.pids = pids
        self.spy = None
        if self.PY_SPY and name:
            exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
            exe = exe if os.path.exists(exe) else shutil.which("py-spy") or exe   # else on PATH
            self.spy = subprocess.Popen([exe, "record", "--pid", str(pids[0]), "--rate", "200", "--nonblocking",
                                         "--format", "raw", "--output", os.path.join(self.PY_SPY, name + ".txt")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.name = name
        if self.NODE_CPU and name:
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
        self.each0, self.metrics0 = self._each(), self._metrics()
        self.in_flight: list[float] = []        # with METRICS: the nodes' requests in flight, summed, once a second
        self.polling = threading.Event()
        if self.METRICS:
            threading.Thread(target=self._poll_in_flight, daemon=True).start()
        self.t0, self.nodes0, self.own0 = time.perf_counter(), sum(self.each0), time.process_time()
        self.stime0 = self._system()

    def _nodes(self) -> float:
        return sum(self._each())

    def _system(self) -> float:
        """stime of the node processes (kernel CPU: sockets, epoll, fsync), seconds."""
        total = 0.0
        for pid in self.pids:
            with open(f"/proc/{pid}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[12]) / os.sysconf("SC_CLK_TCK")
        return total

    def _each(self) -> list[float]:
        return [cpu_seconds(pid) for pid in self.pids]

    def _metrics(self) -> dict[str, float]:
        """The node gauges summed over the nodes (`dynatable_*` lines of each /metrics), when scraped."""
        from urllib.request import urlopen
        out: dict[str, float] = {}
        for url in self.METRICS:
            with urlopen(url, timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("dynatable_") and " " in line:
                        name, _, value = line.rpartition(" ")
                        out[name] = out.get(name, 0.0) + float(value)
        return out

    def _poll_in_flight(self) -> None:
        while not self.polling.wait(1.0):
            self.in_flight.append(self._metrics().get("dynatable_client_requests_in_flight", 0.0))

    def done(self, ops: int) -> dict:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            self.spy.wait(60)
        wall = time.perf_counter() - self.t0
        probed = self._node_cpu(ops) if self.NODE_CPU and self.name else None
        each = [round((b - a) * 1000 / ops, 4) for a, b in zip(self.each0, self._each())]
        self.polling.set()
        if self.METRICS:
            time.sleep(1.2)             # the node snapshots its gauges once a second
            m1 = self._metrics()
            changed = {k: round((v - self.metrics0.get(k, 0.0)) / ops, 4) for k, v in m1.items()
                       if v != self.metrics0.get(k, 0.0) and "_bucket" not in k}
        else:
            changed = {}
        in_flight = sum(self.in_flight) / len(self.in_flight) if self.in_flight else None
        return {"metrics_per_op": changed, "node_requests_in_flight": in_flight, "ops_s": ops / wall,
                "node_cpu_ms_per_op": (self._nodes() - self.nodes0) * 1000 / ops, "node_cpu_ms_per_op_each": each,
                "node_sys_cpu_ms_per_op": (self._system() - self.stime0) * 1000 / ops,
                "client_cpu_ms_per_op": (time.process_time() - self.own0) * 1000 / ops,
                **({"node_cpu_us_per_op_by_callback": probed} if probed else {})}

    def _node_cpu(self, ops: int) -> dict:
        """--node-cpu: {kind: [CPU us per op, calls per op]}, the three nodes summed (bench/node_probe)."""
        with open(os.path.join(self.NODE_CPU, "phase"), "w") as f:
            f.write(self.name)
        for pid in self.pids:
            os.kill(pid, signal.SIGUSR2)
        total, cpu, calls = 0.0, collections.Counter(), collections.Counter()
        for pid in self.pids:
            path = os.path.join(self.NODE_CPU, f"{pid}-{self.name}.json")
            for _ in range(100):
                if os.path.exists(path):
                    break
                time.sleep(0.05)
            time.sleep(0.05)
            with open(path) as f:
                dump = json.load(f)
            total += dump["total"]
            cpu.update(dump["acc"])
            calls.update(dump["cnt"])
        callbacks = sum(v for k, v in cpu.items() if not k.startswith(" "))
        out = {"total": [total, 0], "loop (the rest)": [total - callbacks, 0], **{k: [v, calls[k]] for k, v in cpu.items()}}
        return {k: [round(v * 1e6 / ops, 2), round(n / ops, 3)] for k, (v, n) in out.items()}


@contextlib.contextmanager
def metrics_cluster(settings: dict):
    """temp_cluster's 3 nodes, each with a Prometheus /metrics port (LocalCluster metrics=True)."""
    from tools.cluster import LocalCluster
    where = tempfile.mkdtemp(prefix="dynatable-bench-")
    cluster = None
    try:
        cluster = LocalCluster.create("benchcql", n=3, root=where, settings=settings, metrics=True)
        cluster.start(timeout_s=120)
        yield cluster
    finally:
        if cluster is not None:
            cluster.remove()
        shutil.rmtree(where, ignore_errors=True)


def metrics_url(nh) -> str:
    with open(nh.config_path, "rb") as f:
        conf = tomllib.load(f)
    return f"http://{nh.endpoint.rsplit(':', 1)[0]}:{conf['metrics_port']}/metrics"


def make_driver(cluster, row_factory: str, protocol: int, compression: str, routing: str):
    from cassandra import query
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    logging.getLogger("cassandra").setLevel(logging.ERROR)
    port = int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(), shuffle_replicas=routing == "shuffled")
    return Cluster([nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes], port=port,
                   protocol_version=protocol, compression=False if compression == "none" else compression,
                   execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
                       load_balancing_policy=policy, row_factory=getattr(query, row_factory + "_factory"))})
