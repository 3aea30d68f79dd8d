"""Prometheus `/metrics` of one node process (`metrics_port`; 0 = off).

Every gauge comes from a snapshot taken on the event loop once a second (`snapshot()`), so the
HTTP server's thread never reads the node's state while the loop changes it. Gauges are named
`dynatable_<name>`: the node's own metrics flattened with `_`, the runtime's connection, peer
link and durability counts, and its counters (`stats`); beside them, per op and consistency
level, a request latency histogram (seconds) and error counts by type (docs/operations.md).
"""
from __future__ import annotations

import logging

log = logging.getLogger("dynatable.runtime")


class MetricsHttp:
    def __init__(self, process):
        self.process = process
        self.snapshot_values: dict[str, float] = {}
        self._server = None

    def snapshot(self) -> None:
        p = self.process
        values: dict[str, float] = {}
        try:
            node_metrics = p.node.metrics() if hasattr(p.node, "metrics") else {}
        except Exception:
            log.exception("node.metrics() failed")
            node_metrics = {}
        _flatten(node_metrics, "", values)
        values.update({**p.listener.metrics(), **p.peers.metrics(),
                       "client_requests_in_flight": p.requests_in_flight(),
                       "durability_waits": p.durability.batches, "durable_acks": p.durability.waited,
                       **{k: v for k, v in p.stats.items()}})
        for extra in p.extra_metrics:
            values.update(extra())
        self.snapshot_values = values

    def start(self, address: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.core import GaugeMetricFamily
        owner = self

        class Collector:
            def collect(self):
                for name, value in sorted(owner.snapshot_values.items()):
                    yield GaugeMetricFamily(f"dynatable_{name}", name, value=value)
                yield from _request_histograms(owner.process.node)

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector())
        self.snapshot()
        started = start_http_server(port, addr=address, registry=registry)
        self._server = started[0] if isinstance(started, tuple) else None

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()


def _request_histograms(node):
    """Per op and consistency level: a latency histogram (seconds) and error counts by type."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
    from ring.stats import LATENCY_BUCKETS_MS
    stats = dict(getattr(node, "request_stats", {}))
    latency = HistogramMetricFamily("dynatable_request_latency_seconds",
                                    "coordinator request latency by op and consistency level",
                                    labels=["op", "consistency"])
    errors = CounterMetricFamily("dynatable_request_errors", "coordinator request errors by type",
                                 labels=["op", "consistency", "error"])
    for (op, level), st in sorted(stats.items()):
        cumulative, buckets = 0, []
        for bound, n in zip([*LATENCY_BUCKETS_MS, float("inf")], st.buckets):
            cumulative += n
            buckets.append((str(bound / 1000) if bound != float("inf") else "+Inf", cumulative))
        latency.add_metric([op, level], buckets, st.sum_ms / 1000)
        for name, n in sorted(st.errors.items()):
            errors.add_metric([op, level, name], n)
    yield latency
    yield errors


def _flatten(obj: dict, prefix: str, out: dict) -> None:
    for key, value in obj.items():
        name = prefix + "".join(c if c.isalnum() else "_" for c in str(key))
        if isinstance(value, dict):
            _flatten(value, name + "_", out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
