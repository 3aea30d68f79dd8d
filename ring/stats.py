"""A node's metrics: counters, and per (op, consistency level) request latency histograms.

Rule: stats.py counts; it decides nothing. `Metrics.begin` notes a measured client request when
the node accepts it, `Metrics.observe` closes it when its `Reply` leaves the node (latency =
virtual or monotonic `now_ms` difference; an error is counted by its class name). Counters are a
plain dict so handlers count through `Context.count(name)` and `nodetool info` prints them as is.
Exported by the TCP runtime as Prometheus gauges and histograms (docs/operations.md).
"""
from __future__ import annotations

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
MEASURED_OPS = frozenset({"insert", "delete", "get", "select", "scan", "index_query"})


class RequestStats:
    """Per (op, consistency level): count, errors by type, and a latency histogram (ms buckets)."""

    __slots__ = ("count", "errors", "sum_ms", "buckets")

    def __init__(self):
        self.count = 0
        self.errors: dict[str, int] = {}
        self.sum_ms = 0
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)

    def observe(self, latency_ms: int, error: BaseException | None) -> None:
        self.count += 1
        self.sum_ms += latency_ms
        i = 0
        while i < len(LATENCY_BUCKETS_MS) and latency_ms > LATENCY_BUCKETS_MS[i]:
            i += 1
        self.buckets[i] += 1
        if error is not None:
            name = type(error).__name__
            self.errors[name] = self.errors.get(name, 0) + 1


class Metrics:
    """The node's counters and request histograms; `in_flight` maps a request id to its start."""

    def __init__(self):
        self.counters: dict[str, int] = {
            "writes": 0, "reads": 0, "scans": 0, "unavailable": 0, "write_timeouts": 0, "read_timeouts": 0,
            "digest_mismatches": 0, "read_repairs": 0, "speculative_retries": 0, "replica_mutations": 0,
            "replica_reads": 0}
        self.requests: dict[tuple[str, str], RequestStats] = {}
        self.in_flight: dict[int, tuple[int, str, str]] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def begin(self, request_id: int, now_ms: int, op: str, level: str) -> None:
        if op in MEASURED_OPS:
            self.in_flight[request_id] = (now_ms, op, level)

    def observe(self, request_id: int, now_ms: int, error: BaseException | None) -> None:
        started = self.in_flight.pop(request_id, None)
        if started is None:
            return
        at, op, level = started
        stats = self.requests.get((op, level))
        if stats is None:
            stats = self.requests[(op, level)] = RequestStats()
        stats.observe(now_ms - at, error)

    def snapshot(self, *, pending_requests: int, live_peers: int, gossip_rounds: int, hint_stats: dict,
                 hints_pending: int, tablestats: list[dict]) -> dict:
        """The flat dict `nodetool info` shows under "metrics" (and the runtime exports)."""
        out = dict(self.counters)
        out["pending_requests"] = pending_requests
        out["live_peers"] = live_peers
        out["gossip_rounds"] = gossip_rounds
        out.update(hint_stats)
        out["requests"] = {f"{op}_{level}": {"count": st.count, "errors": sum(st.errors.values())}
                           for (op, level), st in sorted(self.requests.items())}
        out["hints_pending"] = hints_pending
        for s in tablestats:
            out["memtable_bytes"] = out.get("memtable_bytes", 0) + s["memtable_bytes"]
            out["sstable_count"] = out.get("sstable_count", 0) + s["sstable_count"]
            out["pending_compactions"] = out.get("pending_compactions", 0) + s["compacting"]
        return out
