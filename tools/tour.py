"""`dynatable tour`: the engine's life in one run, printed step by step.

Writes rows, flushes them to an SSTable, deletes and overwrites some, compacts, crashes the store
without closing it (so the last writes live only in the commit log), reopens it (replay), and
reads everything back, checking each row. Works in a temporary directory unless --dir is given.
"""
from __future__ import annotations

import shutil
import tempfile
import time

from rich.console import Console
from rich.table import Table as RichTable

from engine.store import Store


def run_tour(directory: str | None = None, rows: int = 20_000, console: Console | None = None) -> bool:
    console = console or Console()
    own_dir = directory is None
    path = directory or tempfile.mkdtemp(prefix="dynatable-tour-")
    step = 0

    def say(msg: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold cyan]{step:>2}.[/] {msg}")

    try:
        say(f"Opening a store in {path} (commit log sync: group, so every write is fsynced before it is acknowledged)")
        store = Store.open(path, commitlog_sync="group", background=False)
        store.create_keyspace("tour")
        store.create_table("tour", "users", {"id": "int", "name": "text", "visits": "bigint"}, primary_key="id")
        store.create_table("tour", "events", {"user": "int", "at": "timestamp", "what": "text"},
                           primary_key=("user", "at"), clustering_order={"at": "DESC"})

        t0 = time.perf_counter()
        with console.status("writing rows..."):
            for start in range(0, rows, 1000):
                with store.batch() as b:
                    for i in range(start, min(start + 1000, rows)):
                        b.insert("tour", "users", {"id": i, "name": f"user-{i}", "visits": i % 7})
        elapsed = time.perf_counter() - t0
        say(f"Wrote {rows:,} rows to tour.users in batches of 1,000 ({rows / elapsed:,.0f} rows/s)")
        for minute in range(5):
            store.insert("tour", "events", {"user": 1, "at": 1_700_000_000_000 + minute * 60_000, "what": f"click {minute}"})
        say("Wrote 5 events into one wide partition of tour.events (clustering: at DESC)")

        store.flush()
        say(f"Flushed memtables: {_sstables(store)} SSTable(s) on disk")

        for i in range(0, rows, 10):
            store.delete("tour", "users", {"id": i})
        store.insert("tour", "users", {"id": 1, "name": "ada", "visits": 100})
        store.insert("tour", "users", {"id": 3, "name": "short-lived", "visits": 1}, ttl=3600)
        store.delete("tour", "events", {"user": 1}, start=(1_700_000_000_000 + 4 * 60_000,),
                     end=(1_700_000_000_000 + 3 * 60_000,))
        store.flush()
        say(f"Deleted every 10th user (row tombstones), overwrote user 1, deleted a range of events, "
            f"flushed again: {_sstables(store)} SSTables")

        done = store.compact("tour", "users")
        say(f"Major compaction of tour.users ran {done} task(s): {_sstables(store, 'users')} SSTable left "
            "(tombstones are kept until gc_grace_seconds = 10 days have passed)")

        for i in range(rows, rows + 500):
            store.insert("tour", "users", {"id": i, "name": f"late-{i}", "visits": 0})
        store.crash()
        say("Wrote 500 more rows, then crashed the store without closing it: they exist only in the commit log")

        store = Store.open(path, commitlog_sync="group", background=False)
        say(f"Reopened: replayed {store.replayed:,} mutations from the commit log and flushed them")

        problems = 0
        for i in range(rows + 500):
            row = store.get("tour", "users", {"id": i})
            if i < rows and i % 10 == 0:
                expected = None
            elif i == 1:
                expected = {"id": 1, "name": "ada", "visits": 100}
            elif i == 3:
                expected = {"id": 3, "name": "short-lived", "visits": 1}
            elif i < rows:
                expected = {"id": i, "name": f"user-{i}", "visits": i % 7}
            else:
                expected = {"id": i, "name": f"late-{i}", "visits": 0}
            problems += row != expected
        events = store.select("tour", "events", {"user": 1})
        problems += [e["what"] for e in events] != ["click 2", "click 1", "click 0"]
        scanned = sum(1 for _ in store.scan_all("tour", "users", page_size=5000))
        problems += scanned != rows + 500 - rows // 10
        say(f"Read back {rows + 500:,} users by key and scanned {scanned:,} live rows in token order; "
            f"events newest first: {[e['what'] for e in events]}; mismatches: {problems}")

        stats = RichTable(title="nodetool tablestats (the tour's store)")
        for col in ("Table", "SSTables", "Space used (bytes)", "Flushes since open", "Compactions since open", "Key cache hit rate"):
            stats.add_column(col)
        for s in store.tablestats():
            rate = s["key_cache_hit_rate"]
            stats.add_row(s["table"], str(s["sstable_count"]), f"{s['space_used_bytes']:,}", str(s["flushes"]),
                          str(s["compactions"]), "-" if rate is None else f"{rate:.1%}")
        console.print(stats)
        store.close()
        verdict = "[bold green]OK[/]: everything acknowledged survived the crash" if problems == 0 else \
            f"[bold red]FAILED[/]: {problems} mismatches"
        console.print(verdict)
        return problems == 0
    finally:
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)


def _sstables(store: Store, table: str | None = None) -> int:
    return sum(s["sstable_count"] for s in store.tablestats()
               if table is None or s["table"].split(".", 1)[1] == table)


if __name__ == "__main__":
    raise SystemExit(0 if run_tour() else 1)
