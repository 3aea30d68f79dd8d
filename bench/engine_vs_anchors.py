"""The standard single-node workload (shared/specs/performance.md) on dynatable, LevelDB, SQLite, kevo
and the pure-Python floors (bench/floors.py).

One run, one machine, every engine on the same keys and values, so the ratios mean something on
a noisy 2-vCPU box. For each metric: each engine's figure, the ratio dynatable/LevelDB, the goal
from performance.md and PASS/MISS.

    python -m bench.engine_vs_anchors                     # 1,000,000 keys (several minutes)
    python -m bench.engine_vs_anchors --keys 100000 --json out.json --plot ratios.png

Workload: keys b'user%012d' % i (16 B), 100 B os.urandom values, written in key order; put 1 per
call into a fresh store, put in batches of 1000 into a second store; close, reopen; 200,000 random
hits and 200,000 random misses (b'user%011da', inside the key range); 3 scans of 100,000
consecutive keys with values; bytes on disk after close. Durability at "no fsync per write":
dynatable commit log periodic (background flush and compaction on), LevelDB sync=False with a
10 bits/key bloom filter, SQLite WAL + synchronous=NORMAL, WITHOUT ROWID. Per-write durability
is measured separately: dynatable group commit with 32 writer threads vs periodic sync with the
same 32 threads (goal >= 0.5x).

A dynatable scan is a token-range scan (Store.scan_all, pages of 1000) from a random token,
stopped after 100,000 rows: for us "consecutive" means consecutive in token order, which is
the order a Cassandra-style store keeps.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.anchor_report import (DURABLE_GOAL, DURABLE_THREADS, _fmt, console, evaluate, plot,  # noqa: E402
                                 print_report)
from bench.floors import run_floors  # noqa: E402
from bench.kevo_anchor import available as kevo_available, run_kevo  # noqa: E402
from bench.sqlite_anchor import run_sqlite  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.token import MAX_TOKEN, MIN_TOKEN  # noqa: E402

KS, TABLE = "bench", "kv"
BATCH = 1000
CHUNK = 10_000          # progress is updated once per chunk, outside nothing: its cost is ~0
SCANS = 3
SCAN_ROWS = 100_000
READS = 200_000


def dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except FileNotFoundError:
                pass
    return total


class Workload:
    def __init__(self, n: int, seed: int):
        rng = random.Random(seed)
        self.n = n
        self.keys = [b"user%012d" % i for i in range(n)]
        self.values = [os.urandom(100) for _ in range(n)]
        self.reads = min(READS, max(1000, n // 5))
        self.hits = [self.keys[rng.randrange(n)] for _ in range(self.reads)]
        self.misses = [b"user%011da" % rng.randrange(max(1, n // 10)) for _ in range(self.reads)]
        self.scan_rows = min(SCAN_ROWS, max(1, n // 4))
        # a start key / start token from which at least scan_rows rows follow
        self.scan_starts = [rng.randrange(max(1, n - self.scan_rows)) for _ in range(SCANS)]
        span = MAX_TOKEN - MIN_TOKEN
        room = max(0.0, 1.0 - self.scan_rows / n - 0.05)
        self.scan_tokens = [MIN_TOKEN + int(span * rng.random() * room) for _ in range(SCANS)]
        self.raw_bytes = sum(len(k) for k in self.keys) + 100 * n


class Runner:
    """Times phases and drives one rich progress bar per phase."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def chunked(self, label: str, total: int, work):
        """Call work(lo, hi) over [0, total) in chunks; returns seconds spent in work only."""
        task = self.progress.add_task(label, total=total)
        spent = 0.0
        for lo in range(0, total, CHUNK):
            hi = min(total, lo + CHUNK)
            t0 = time.perf_counter()
            work(lo, hi)
            spent += time.perf_counter() - t0
            self.progress.update(task, completed=hi)
        self.progress.remove_task(task)
        return spent

    def once(self, label: str, fn):
        task = self.progress.add_task(label, total=None)
        t0 = time.perf_counter()
        out = fn()
        spent = time.perf_counter() - t0
        self.progress.remove_task(task)
        return spent, out


# -- dynatable -----------------------------------------------------------------------------------

def _open_store(path: str, **options) -> Store:
    store = Store.open(path, commitlog_sync=options.pop("commitlog_sync", "periodic"), background=True, **options)
    store.create_keyspace(KS)
    store.create_table(KS, TABLE, {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def run_dynatable(w: Workload, root: str, r: Runner) -> dict:
    out = {}
    keys, values = w.keys, w.values
    path = os.path.join(root, "dynatable-single")
    store = _open_store(path)
    insert = store.insert

    def single(lo, hi):
        for i in range(lo, hi):
            insert(KS, TABLE, {"k": keys[i], "v": values[i]})
    out["put_single"] = w.n / r.chunked("dynatable put 1/call", w.n, single)
    # close now so its flush and compactions do not run during the batch phase
    r.once("dynatable close (flush)", store.close)

    bpath = os.path.join(root, "dynatable-batch")
    bstore = _open_store(bpath)

    def batched(lo, hi):
        for b in range(lo, hi, BATCH):
            with bstore.batch() as batch:
                add = batch.insert
                for i in range(b, min(hi, b + BATCH)):
                    add(KS, TABLE, {"k": keys[i], "v": values[i]})
    out["put_batch"] = w.n / r.chunked("dynatable put batch 1000", w.n, batched)
    r.once("dynatable close (batch store)", bstore.close)
    shutil.rmtree(bpath)

    out["disk_bytes"] = dir_bytes(path)
    out["commitlog_bytes"] = dir_bytes(os.path.join(path, "commitlog"))
    out["sstable_bytes"] = dir_bytes(os.path.join(path, "data"))
    _, store = r.once("dynatable reopen", lambda: Store.open(path, commitlog_sync="periodic", background=True))
    out["sstables_at_read"] = next(t["sstable_count"] for t in store.tablestats() if t["table"] == f"{KS}.{TABLE}")
    get = store.get

    def hits(lo, hi):
        for i in range(lo, hi):
            if get(KS, TABLE, {"k": w.hits[i]}) is None:
                raise AssertionError(f"dynatable lost key {w.hits[i]!r}")
    out["get_hit"] = w.reads / r.chunked("dynatable get hit", w.reads, hits)

    def misses(lo, hi):
        for i in range(lo, hi):
            if get(KS, TABLE, {"k": w.misses[i]}) is not None:
                raise AssertionError(f"dynatable found a key never written {w.misses[i]!r}")
    out["get_miss"] = w.reads / r.chunked("dynatable get miss", w.reads, misses)

    def scans():
        rows = 0
        for start in w.scan_tokens:
            n = 0
            for _ in store.scan_all(KS, TABLE, start_token=start, page_size=1000):
                n += 1
                if n == w.scan_rows:
                    break
            assert n == w.scan_rows, f"scan from {start} returned only {n} rows"
            rows += n
        return rows
    spent, rows = r.once("dynatable scan", scans)
    out["scan"] = rows / spent
    store.close()
    shutil.rmtree(path)
    return out


def fdatasync_us(root: str, n: int = 200) -> float:
    """Median fdatasync latency of a 4 KiB append here, now: with one write in flight per writer,
    group commit cannot beat DURABLE_THREADS / this latency."""
    path = os.path.join(root, "fdatasync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    spent = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            spent.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.remove(path)
    return sorted(spent)[n // 2] * 1e6


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def run_durable(w: Workload, root: str, r: Runner) -> dict:
    """Group commit vs periodic sync, each with DURABLE_THREADS writer threads, fresh stores."""
    total = min(100_000, max(DURABLE_THREADS * 100, w.n // 10))
    per = total // DURABLE_THREADS
    out = {"durable_writes": per * DURABLE_THREADS, "durable_threads": DURABLE_THREADS,
           "fdatasync_us": fdatasync_us(root), "loadavg": _loadavg()}
    for mode in ("periodic", "group"):
        path = os.path.join(root, f"dynatable-{mode}")
        store = _open_store(path, commitlog_sync=mode)
        barrier = threading.Barrier(DURABLE_THREADS + 1)
        errors = []

        def writer(t):
            try:
                barrier.wait()
                for i in range(t * per, (t + 1) * per):
                    store.insert(KS, TABLE, {"k": w.keys[i % w.n], "v": w.values[i % w.n]})
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(DURABLE_THREADS)]
        for t in threads:
            t.start()

        def go():
            barrier.wait()
            for t in threads:
                t.join()
        cpu0, csw0 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
        spent, _ = r.once(f"dynatable {mode} sync, {DURABLE_THREADS} writers", go)
        cpu1, csw1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
        if errors:
            raise errors[0]
        n = per * DURABLE_THREADS       # process CPU and context switches per write (all threads)
        out[f"{mode}_cpu_us"] = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / n * 1e6
        out[f"{mode}_csw"] = ((csw1.ru_nvcsw + csw1.ru_nivcsw) - (csw0.ru_nvcsw + csw0.ru_nivcsw)) / n
        out[f"{mode}_32_writers"] = per * DURABLE_THREADS / spent
        out[f"{mode}_syncs"] = store.commit_log.stats["syncs"]
        store.close()
        shutil.rmtree(path)
    return out


# -- LevelDB -------------------------------------------------------------------------------------

def run_leveldb(w: Workload, root: str, r: Runner) -> dict:
    import plyvel
    out = {}
    keys, values = w.keys, w.values
    path = os.path.join(root, "leveldb-single")
    db = plyvel.DB(path, create_if_missing=True, bloom_filter_bits=10)
    put = db.put

    def single(lo, hi):
        for i in range(lo, hi):
            put(keys[i], values[i], sync=False)
    out["put_single"] = w.n / r.chunked("LevelDB put 1/call", w.n, single)
    r.once("LevelDB close", db.close)

    bpath = os.path.join(root, "leveldb-batch")
    bdb = plyvel.DB(bpath, create_if_missing=True, bloom_filter_bits=10)

    def batched(lo, hi):
        for b in range(lo, hi, BATCH):
            with bdb.write_batch(sync=False) as wb:
                for i in range(b, min(hi, b + BATCH)):
                    wb.put(keys[i], values[i])
    out["put_batch"] = w.n / r.chunked("LevelDB put batch 1000", w.n, batched)
    bdb.close()
    shutil.rmtree(bpath)

    out["disk_bytes"] = dir_bytes(path)
    db = plyvel.DB(path, bloom_filter_bits=10)
    get = db.get

    def hits(lo, hi):
        for i in range(lo, hi):
            if get(w.hits[i]) is None:
                raise AssertionError("LevelDB lost a key")
    out["get_hit"] = w.reads / r.chunked("LevelDB get hit", w.reads, hits)

    def misses(lo, hi):
        for i in range(lo, hi):
            if get(w.misses[i]) is not None:
                raise AssertionError("LevelDB found a key never written")
    out["get_miss"] = w.reads / r.chunked("LevelDB get miss", w.reads, misses)

    def scans():
        rows = 0
        for start in w.scan_starts:
            n = 0
            with db.iterator(start=keys[start]) as it:
                for _k, _v in it:
                    n += 1
                    if n == w.scan_rows:
                        break
            rows += n
        return rows
    spent, rows = r.once("LevelDB scan", scans)
    out["scan"] = rows / spent
    db.close()
    shutil.rmtree(path)
    return out


def run_durable_only(w: Workload, root: str, json_path: str | None, t0: float) -> int:
    """--only durable: the group-commit row alone (fdatasync probe, periodic, group)."""
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            dur = run_durable(w, root, Runner(progress))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = dur["group_32_writers"] / dur["periodic_32_writers"]
    console.print(f"durable, {DURABLE_THREADS} writers, {dur['durable_writes']:,} writes each mode: "
                  f"periodic {_fmt('', dur['periodic_32_writers'])}/s, group {_fmt('', dur['group_32_writers'])}/s "
                  f"= {ratio:.2f}x of periodic (goal >= {DURABLE_GOAL}x: "
                  f"{'PASS' if ratio >= DURABLE_GOAL else 'MISS'}); fdatasync {dur['fdatasync_us']:,.0f} us "
                  f"(bound {_fmt('', DURABLE_THREADS / dur['fdatasync_us'] * 1e6)}/s); "
                  f"group syncs {dur.get('group_syncs', 0):,} "
                  f"({dur['durable_writes'] / max(1, dur.get('group_syncs', 0)):.1f} writes per fsync); "
                  f"CPU per write periodic {dur['periodic_cpu_us']:.1f} us / group {dur['group_cpu_us']:.1f} us, "
                  f"context switches per write {dur['periodic_csw']:.2f} / {dur['group_csw']:.2f}; "
                  f"loadavg {dur.get('loadavg', '?')}; total {time.time() - t0:,.0f} s")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"keys": w.n, "durable": dur}, f, indent=2)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000, help="N keys (default 1,000,000)")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="bar chart of ratios vs goals (needs matplotlib)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed at the end)")
    ap.add_argument("--only", choices=["durable"],
                    help="run only one part: durable = group commit vs periodic, 32 writers")
    args = ap.parse_args(argv)
    if args.keys < 1000:
        ap.error("--keys must be at least 1000")
    root = tempfile.mkdtemp(prefix="dt-bench-", dir=args.dir)
    t0 = time.time()
    try:
        console.print(f"generating {args.keys:,} keys and values ...")
        w = Workload(args.keys, args.seed)
        if args.only == "durable":
            return run_durable_only(w, root, args.json, t0)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            r = Runner(progress)
            ours = run_dynatable(w, root, r)
            console.print(f"dynatable done ({time.time() - t0:,.0f} s)")
            ldb = run_leveldb(w, root, r)
            console.print(f"LevelDB done ({time.time() - t0:,.0f} s)")
            sq = run_sqlite(w, root, r)
            console.print(f"SQLite done ({time.time() - t0:,.0f} s)")
            dur = run_durable(w, root, r)
            kv = run_kevo(w, root, r) if kevo_available() else None
            console.print(f"kevo {'done' if kv else 'not installed: pip install --no-deps kevo==0.2.0'} "
                          f"({time.time() - t0:,.0f} s)")
            floor = run_floors(w, root, r)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = evaluate(w, ours, ldb, sq, dur, kv, floor)
    print_report(w, rows, dur, ours)
    console.print(f"total {time.time() - t0:,.0f} s; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"keys": w.n, "reads": w.reads, "scan_rows": w.scan_rows, "raw_bytes": w.raw_bytes,
                       "python": sys.version.split()[0], "cpus": os.cpu_count(),
                       "dynatable": ours, "leveldb": ldb, "sqlite": sq, "kevo": kv, "floor": floor,
                       "durable": dur, "rows": rows},
                      f, indent=2)
    if args.plot:
        plot(rows, args.plot, w.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
