"""Persistency benchmark: mirror (write-behind) throughput into a 3-node cluster and initial-load
throughput, with documents of 5 fixed and 3 dynamic properties (8 columns each), on each backend.

    python -m bench.persistency [--documents 20000] [--load-documents 100000] [--batch-size 100]
                                [--backends native,cql] [--partitions 4] [--concurrency 4]

Starts its own 3-node cluster (RF 3, the persistency at QUORUM) in a temporary directory; the
backends are the native client and CQL (cassandra-driver) to the same nodes, one after the other.
1. Mirror: one writer enqueues `--documents` WRITE operations as fast as it can; we time the
   enqueues (the space's cost: serialize + append to the log) and the whole run until the mirror's
   flush returns (every operation delivered and acknowledged), in batches of `--batch-size`.
2. Initial load: `--load-documents` documents are written through the endpoint, then a fresh
   space of `--partitions` partitions is started twice on the same data, timed to the last entry:
   sequentially (`start(parallel=False)`, one scan of everything: the loader before issue 15)
   and partitioned (each partition loads its token range, `--concurrency` at once).
"""
from __future__ import annotations

import argparse
import datetime as dt
import decimal
import shutil
import tempfile
import time

from rich.console import Console
from rich.table import Table

from persistency.data_source import SpaceDataSource
from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.mirror import Mirror
from persistency.operation import DataSyncOperation, OperationsBatchData, OperationType
from persistency.backend import StoreUnavailable
from persistency.config import CassandraConfig, open_backend
from persistency.space import Space
from persistency.sync_endpoint import SpaceSynchronizationEndpoint
from ring.errors import RequestError
from tools.cluster import LocalCluster

TYPE = SpaceTypeDescriptor("bench.Reading", "id", fixed_properties={
    "id": "long", "sensor": "string", "value": "double", "count": "int", "at": "datetime", "price": "decimal"})


def document(i: int) -> SpaceDocument:
    return SpaceDocument("bench.Reading", {
        "id": i, "sensor": f"sensor-{i % 1000}", "value": i * 0.5, "count": i % 1000,
        "at": dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i), "price": decimal.Decimal(i) / 100,   # 5 fixed
        "unit": "celsius", "ok": i % 2 == 0, "tags": ["a", i % 7]})                                   # 3 dynamic


def bench_mirror(client, log_dir: str, n: int, batch_size: int) -> dict:
    endpoint = SpaceSynchronizationEndpoint(client)
    endpoint.on_introduce_type(TYPE)
    mirror = Mirror(endpoint, log_dir, batch_size=batch_size)
    docs = [document(i) for i in range(n)]
    t0 = time.perf_counter()
    for d in docs:
        mirror.enqueue(OperationType.WRITE, d)
    enqueued = time.perf_counter() - t0
    assert mirror.flush(timeout_s=3600)
    total = time.perf_counter() - t0
    metrics = dict(mirror.metrics)
    mirror.close()
    return {"documents": n, "enqueue_s": enqueued, "total_s": total, "enqueue_per_s": n / enqueued,
            "delivered_per_s": n / total, "batches": metrics["batches"], "retries": metrics["retries"]}


def bench_load(client, reader, n: int, batch_limit: int, partitions: int, concurrency: int) -> dict:
    endpoint = SpaceSynchronizationEndpoint(client)
    load_type = SpaceTypeDescriptor("bench.Loaded", "id", fixed_properties=TYPE.fixed_properties)
    endpoint.on_introduce_type(load_type)
    t0 = time.perf_counter()
    for start in range(0, n, 2000):
        ops = []
        for i in range(start, min(n, start + 2000)):
            d = document(i)
            d.type_name = "bench.Loaded"
            ops.append(DataSyncOperation(OperationType.WRITE, d))
        for attempt in range(5):   # a loaded machine times writes out now and then: retry, as the mirror would
            try:
                endpoint.on_operations_batch_synchronization(OperationsBatchData(ops))
                break
            except (StoreUnavailable, RequestError):
                if attempt == 4:
                    raise
    out = {"documents": n, "write_s": time.perf_counter() - t0}
    for name, kw in (("sequential", {"parallel": False}), ("partitioned", {"concurrency": concurrency})):
        space = Space("bench", data_source=SpaceDataSource(reader, batch_limit=batch_limit), partitions=partitions)
        t0 = time.perf_counter()
        count = space.start(**kw)
        out[f"{name}_s"] = time.perf_counter() - t0
        assert count == n and space.count("bench.Loaded") == n, f"{name}: loaded {count} of {n}"
    return out


def config_of(cluster: LocalCluster, backend: str, keyspace: str) -> CassandraConfig:
    """A fresh keyspace (RF 3) and the backend's configuration for it."""
    admin = cluster.client()
    admin.connect().create_keyspace(keyspace, {"class": "SimpleStrategy", "replication_factor": 3})
    admin.shutdown()
    if backend == "native":
        return CassandraConfig(tuple(cluster.contact_points()), keyspace, backend="native")
    hosts = tuple(nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes)
    return CassandraConfig(hosts, keyspace, port=int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1]), backend="cql")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=20_000)
    p.add_argument("--load-documents", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=100, help="mirror batch size (GigaSpaces' default 100)")
    p.add_argument("--batch-limit", type=int, default=10_000, help="data source page size (the original's default)")
    p.add_argument("--backends", default="native,cql", help="comma-separated: native, cql")
    p.add_argument("--partitions", type=int, default=4, help="space partitions for the initial load")
    p.add_argument("--concurrency", type=int, default=4, help="partitions loading at once")
    args = p.parse_args(argv)
    console = Console()
    root = tempfile.mkdtemp(prefix="dynatable-bench-persistency-")
    cluster = LocalCluster.create("bench", n=3, root=root, settings={"log_level": "WARNING"})
    try:
        cluster.start(timeout_s=60)
        for backend in args.backends.split(","):
            table = Table(title=f"persistency, {backend} backend: 3 nodes, RF 3, QUORUM; 5 fixed + 3 dynamic "
                                "properties per document")
            for col in ("backend", "measure", "documents", "seconds", "documents/s"):
                table.add_column(col, justify="left" if col in ("backend", "measure") else "right")
            with open_backend(config_of(cluster, backend, f"mirror_{backend}")) as client:
                m = bench_mirror(client, f"{root}/mirror-log-{backend}", args.documents, args.batch_size)
            config = config_of(cluster, backend, f"load_{backend}")
            with open_backend(config) as client, open_backend(config) as reader:
                load = bench_load(client, reader, args.load_documents, args.batch_limit, args.partitions,
                                  args.concurrency)
            n = load["documents"]
            table.add_row(backend, f"mirror enqueue (space side, batch {args.batch_size})", str(m["documents"]),
                          f"{m['enqueue_s']:.2f}", f"{m['enqueue_per_s']:,.0f}")
            table.add_row(backend, "mirror end to end (enqueue to last ack)", str(m["documents"]),
                          f"{m['total_s']:.2f}", f"{m['delivered_per_s']:,.0f}")
            table.add_row(backend, "endpoint batches of 2000 (load set-up)", str(n), f"{load['write_s']:.2f}",
                          f"{n / load['write_s']:,.0f}")
            table.add_row(backend, f"initial load, sequential (pages of {args.batch_limit})", str(n),
                          f"{load['sequential_s']:.2f}", f"{n / load['sequential_s']:,.0f}")
            table.add_row(backend, f"initial load, {args.partitions} partitions by token range, "
                          f"{args.concurrency} at once", str(n), f"{load['partitioned_s']:.2f}",
                          f"{n / load['partitioned_s']:,.0f}")
            console.print(table)
            console.print(f"{backend}: mirror {m['batches']} batches, {m['retries']} retries; partitioned load "
                          f"{load['sequential_s'] / load['partitioned_s']:.2f}x the sequential one")
    finally:
        cluster.remove()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
