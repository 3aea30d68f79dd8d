"""Secondary-index benchmark: what a local index costs and what it buys, on one embedded Store.

One table `users(id int PRIMARY KEY, city text, age int, name text)`; N rows with `--cities`
distinct cities (uniform) and ages 0..89. Measured, in this order:

1. insert throughput without an index, then (after `create_index` on city) with one: the write
   path overhead of maintaining the index;
2. `create_index` on the existing rows: the background build, rows indexed per second;
3. close and reopen: the rebuild from disk (the index is derived, never written to disk);
4. memory an index holds (tracemalloc delta around building one on `name`, ~10-byte values),
   bytes per entry;
5. an equality query (one city, N / cities rows) paged by 1,000 against a full scan filtered in
   Python; a range query on age (a narrow band) the same way.

    python -m bench.secondary_index --rows 200000 --json secondary_index.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import tracemalloc

from rich.console import Console
from rich.table import Table

from engine.errors import IndexNotReady
from engine.store import Store


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def load(store: Store, first: int, count: int, cities: int) -> None:
    for i in range(first, first + count):
        store.insert("ks", "users", {"id": i, "city": f"city{i % cities}", "age": i % 90, "name": f"user {i}"})


def wait_ready(store: Store, name: str) -> None:
    """Until index `name` (users_<column>_idx) serves a query (IndexNotReady while it builds)."""
    column = name.split("_")[1]
    probe = {"city": "city0", "age": 0, "name": "user 0"}[column]
    while True:
        try:
            store.index_query("ks", "users", [(column, "=", probe)], page_size=1)
            return
        except IndexNotReady:
            time.sleep(0.01)


def run(rows: int, cities: int) -> dict:
    directory = tempfile.mkdtemp(prefix="dynatable-bench-2i-")
    out: dict = {"rows": rows, "cities": cities}
    try:
        store = Store.open(directory)
        store.create_keyspace("ks")
        store.create_table("ks", "users", {"id": "int", "city": "text", "age": "int", "name": "text"},
                           primary_key="id")
        half = rows // 2
        _, t = timed(lambda: load(store, 0, half, cities))
        out["insert_no_index_per_s"] = half / t
        _, t = timed(lambda: (store.create_index("ks", "users", "city"), wait_ready(store, "users_city_idx")))
        out["build_rows_per_s"] = half / t
        tracemalloc.start()  # slows what it watches: only around a second, untimed build
        before = tracemalloc.get_traced_memory()[0]
        store.create_index("ks", "users", "name")
        wait_ready(store, "users_name_idx")
        out["name_index_bytes_per_entry"] = (tracemalloc.get_traced_memory()[0] - before) / half
        tracemalloc.stop()
        store.drop_index("ks", "users_name_idx")
        _, t = timed(lambda: load(store, half, rows - half, cities))
        out["insert_with_index_per_s"] = (rows - half) / t
        store.create_index("ks", "users", "age")
        wait_ready(store, "users_age_idx")
        store.close()
        store, t = timed(lambda: Store.open(directory))
        out["open_s"] = t
        _, t = timed(lambda: (wait_ready(store, "users_city_idx"), wait_ready(store, "users_age_idx")))
        out["rebuild_two_indexes_s"] = out["open_s"] + t
        where = [("city", "=", "city7")]
        got, t = timed(lambda: list(store.index_query_all("ks", "users", where, page_size=1000)))
        out["equality_rows"], out["equality_query_s"] = len(got), t
        scanned, t = timed(lambda: [r for r in store.scan_all("ks", "users") if r["city"] == "city7"])
        out["equality_scan_filter_s"] = t
        assert sorted(r["id"] for r in got) == sorted(r["id"] for r in scanned)
        band = [("age", ">=", 40), ("age", "<", 42)]
        got, t = timed(lambda: list(store.index_query_all("ks", "users", band, page_size=1000)))
        out["range_rows"], out["range_query_s"] = len(got), t
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cities", type=int, default=1000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    out = run(args.rows, args.cities)
    table = Table(title=f"secondary index, {args.rows:,} rows, {args.cities} cities")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in out.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
