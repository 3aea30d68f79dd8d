"""SQLite (WAL, synchronous=NORMAL, WITHOUT ROWID), an anchor of performance.md, on the standard workload."""
from __future__ import annotations

import os
import shutil
import sqlite3

BATCH = 1000


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: one transaction per statement
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
    return conn


def run_sqlite(w, root: str, r) -> dict:
    out = {}
    keys, values = w.keys, w.values
    os.makedirs(os.path.join(root, "sqlite"))
    path = os.path.join(root, "sqlite", "single.db")
    conn = _sqlite(path)
    ex = conn.execute
    sql = "INSERT OR REPLACE INTO kv VALUES (?, ?)"

    def single(lo, hi):
        for i in range(lo, hi):
            ex(sql, (keys[i], values[i]))
    out["put_single"] = w.n / r.chunked("SQLite put 1/call", w.n, single)
    r.once("SQLite close", conn.close)

    bpath = os.path.join(root, "sqlite", "batch.db")
    bconn = _sqlite(bpath)

    def batched(lo, hi):
        for b in range(lo, hi, BATCH):
            bconn.execute("BEGIN")
            bconn.executemany(sql, zip(keys[b:min(hi, b + BATCH)], values[b:min(hi, b + BATCH)]))
            bconn.execute("COMMIT")
    out["put_batch"] = w.n / r.chunked("SQLite put batch 1000", w.n, batched)
    bconn.close()

    out["disk_bytes"] = sum(os.path.getsize(os.path.join(root, "sqlite", f))
                            for f in os.listdir(os.path.join(root, "sqlite")) if f.startswith("single.db"))
    conn = _sqlite(path)
    cur = conn.cursor()
    q = "SELECT v FROM kv WHERE k = ?"

    def hits(lo, hi):
        for i in range(lo, hi):
            if cur.execute(q, (w.hits[i],)).fetchone() is None:
                raise AssertionError("SQLite lost a key")
    out["get_hit"] = w.reads / r.chunked("SQLite get hit", w.reads, hits)

    def misses(lo, hi):
        for i in range(lo, hi):
            if cur.execute(q, (w.misses[i],)).fetchone() is not None:
                raise AssertionError("SQLite found a key never written")
    out["get_miss"] = w.reads / r.chunked("SQLite get miss", w.reads, misses)

    def scans():
        rows = 0
        for start in w.scan_starts:
            n = 0
            for _k, _v in conn.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?",
                                       (keys[start], w.scan_rows)):
                n += 1
            rows += n
        return rows
    spent, rows = r.once("SQLite scan", scans)
    out["scan"] = rows / spent
    conn.close()
    shutil.rmtree(os.path.join(root, "sqlite"))
    return out
