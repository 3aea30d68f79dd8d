"""Persistency benchmark: mirror (write-behind) throughput into a 3-node cluster and initial-load
throughput, with documents of 5 fixed and 3 dynamic properties (8 columns each).

    python -m bench.persistency [--documents 20000] [--load-documents 100000] [--batch-size 100]

Starts its own 3-node cluster (RF 3, the persistency at QUORUM) in a temporary directory.
1. Mirror: one writer enqueues `--documents` WRITE operations as fast as it can; we time the
   enqueues (the space's cost: serialize + append to the log) and the whole run until the mirror's
   flush returns (every operation delivered and acknowledged), in batches of `--batch-size`.
2. Initial load: `--load-documents` documents are written through the endpoint, then a fresh data
   source's `initial_data_load()` is timed to the last document (pages of `--batch-limit`).
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
from persistency.native_backend import DynatableClient
from persistency.sync_endpoint import SpaceSynchronizationEndpoint
from tools.cluster import LocalCluster

TYPE = SpaceTypeDescriptor("bench.Reading", "id", fixed_properties={
    "id": "long", "sensor": "string", "value": "double", "count": "int", "at": "datetime", "price": "decimal"})


def document(i: int) -> SpaceDocument:
    return SpaceDocument("bench.Reading", {
        "id": i, "sensor": f"sensor-{i % 1000}", "value": i * 0.5, "count": i % 1000,
        "at": dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i), "price": decimal.Decimal(i) / 100,   # 5 fixed
        "unit": "celsius", "ok": i % 2 == 0, "tags": ["a", i % 7]})                                   # 3 dynamic


def bench_mirror(client: DynatableClient, log_dir: str, n: int, batch_size: int) -> dict:
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


def bench_load(client: DynatableClient, reader: DynatableClient, n: int, batch_limit: int) -> dict:
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
        endpoint.on_operations_batch_synchronization(OperationsBatchData(ops))
    written = time.perf_counter() - t0
    source = SpaceDataSource(reader, batch_limit=batch_limit)
    t0 = time.perf_counter()
    source.initial_metadata_load()
    count = sum(1 for d in source.initial_data_load() if d.type_name == "bench.Loaded")
    loaded = time.perf_counter() - t0
    assert count == n, f"loaded {count} of {n}"
    return {"documents": n, "write_s": written, "load_s": loaded, "load_per_s": n / loaded, "write_per_s": n / written}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=20_000)
    p.add_argument("--load-documents", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=100, help="mirror batch size (GigaSpaces' default 100)")
    p.add_argument("--batch-limit", type=int, default=10_000, help="data source page size (the original's default)")
    args = p.parse_args(argv)
    console = Console()
    root = tempfile.mkdtemp(prefix="dynatable-bench-persistency-")
    cluster = LocalCluster.create("bench", n=3, root=root, settings={"log_level": "WARNING"})
    try:
        cluster.start(timeout_s=60)
        admin = cluster.client()
        admin.connect().create_keyspace("bench", {"class": "SimpleStrategy", "replication_factor": 3})
        admin.shutdown()
        with DynatableClient(cluster.contact_points(), "bench") as client, \
                DynatableClient(cluster.contact_points(), "bench") as reader:
            m = bench_mirror(client, f"{root}/mirror-log", args.documents, args.batch_size)
            load = bench_load(client, reader, args.load_documents, args.batch_limit)
        table = Table(title="persistency: 3 nodes, RF 3, QUORUM; 5 fixed + 3 dynamic properties per document")
        for col in ("measure", "documents", "seconds", "documents/s"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        table.add_row(f"mirror enqueue (space side, batch {args.batch_size})", str(m["documents"]),
                      f"{m['enqueue_s']:.2f}", f"{m['enqueue_per_s']:,.0f}")
        table.add_row("mirror end to end (enqueue to last ack)", str(m["documents"]), f"{m['total_s']:.2f}",
                      f"{m['delivered_per_s']:,.0f}")
        table.add_row("endpoint batches of 2000 (load set-up)", str(load["documents"]), f"{load['write_s']:.2f}",
                      f"{load['write_per_s']:,.0f}")
        table.add_row(f"initial load (pages of {args.batch_limit})", str(load["documents"]), f"{load['load_s']:.2f}",
                      f"{load['load_per_s']:,.0f}")
        console.print(table)
        console.print(f"mirror: {m['batches']} batches, {m['retries']} retries")
    finally:
        cluster.remove()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
