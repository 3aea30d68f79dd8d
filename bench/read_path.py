"""Read-path cost of one store in CPU time: get hit, get miss and scan after reopen.

The machine these benchmarks run on is shared, so wall-clock rates move with other people's load
(bench/README.md: hit rates of 27-38k/s within one hour). This script reports, next to the wall
rate, the rate in this process's CPU time (`time.process_time`): the reads run on a store
reopened with `background=False`, so no flusher or compactor thread of ours shares that clock
and other processes' load moves it far less (it still moves with cache and frequency contention).

One run: write N keys (random blob keys of --key-bytes bytes, default 16; 100-byte blob values)
with background threads, close, reopen without them, then HITS random hits, HITS misses (keys of
the same length never written) and SCANS scans of 1000 rows (default 400). The key length matters: a key whose
len % 16 tail holds a byte >= 0x80 takes Cassandra's sign-extension rule in engine/token.py.

`--compare DIR` runs this script alternately on the engine in DIR (e.g. a frozen copy of main:
`git archive main | tar -x -C /tmp/base`) and on this tree, ROUNDS times each, each in a fresh
process, and prints the median (min-max) of every figure and the ratio this tree / DIR.

  python -m bench.read_path --keys 100000
  python -m bench.read_path --keys 100000 --compare /tmp/base --rounds 3
  python -m bench.read_path --keys 1000000 --store-cache /tmp/rp --compare /tmp/base --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time

FIGURES = ("hit_cpu", "miss_cpu", "scan_cpu", "hit_wall", "miss_wall", "scan_wall")


def measure(n: int, key_bytes: int, hits: int, scans: int, seed: int, root: str,
            store_cache: str | None = None) -> dict:
    from engine.store import Store  # from sys.path: this tree, or the --compare copy

    rnd = random.Random(seed)
    keys = list(dict.fromkeys(rnd.randbytes(key_bytes) for _ in range(n)))
    n = len(keys)
    path = os.path.join(root, "store")
    saved = store_cache and os.path.join(store_cache, f"read_path-{n}-{key_bytes}-{seed}")
    if saved and os.path.isdir(saved):  # the same bytes the write phase below would produce
        shutil.copytree(saved, path)
        for _ in range(n):
            rnd.randbytes(100)  # the values' draws: the reads below draw the same keys
    else:
        store = Store.open(path, commitlog_sync="periodic", background=True)
        store.create_keyspace("ks")
        store.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
        for k in keys:
            store.insert("ks", "t", {"k": k, "v": rnd.randbytes(100)})
        store.close()
        if saved:
            shutil.copytree(path, saved + ".tmp")
            os.rename(saved + ".tmp", saved)
    store = Store.open(path, commitlog_sync="periodic", background=False)
    sstables = next(t["sstable_count"] for t in store.tablestats() if t["table"] == "ks.t")
    hit_keys = [keys[rnd.randrange(n)] for _ in range(hits)]
    written = set(keys)
    miss_keys = [k for k in (rnd.randbytes(key_bytes) for _ in range(2 * hits))
                 if k not in written][:hits]
    starts = [rnd.randrange(-2**63, 2**63 - 2**60) for _ in range(scans)]
    get = store.get

    def hit():
        for k in hit_keys:
            if get("ks", "t", {"k": k}) is None:
                raise AssertionError(f"lost key {k!r}")
        return hits

    def miss():
        for k in miss_keys:
            if get("ks", "t", {"k": k}) is not None:
                raise AssertionError(f"found a key never written {k!r}")
        return hits

    def scan():
        rows = 0
        for start in starts:
            for i, _ in enumerate(store.scan_all("ks", "t", start_token=start, page_size=1000)):
                if i == 999:
                    break
            rows += i + 1
        return rows

    out = {}
    for name, fn in (("hit", hit), ("miss", miss), ("scan", scan)):
        c0, w0 = time.process_time(), time.perf_counter()
        done = fn()
        out[f"{name}_cpu"] = done / (time.process_time() - c0)
        out[f"{name}_wall"] = done / (time.perf_counter() - w0)
    store.close()
    out["sstables"] = sstables
    out["load_avg_1m"] = os.getloadavg()[0]
    return out


def compare(args) -> None:
    from bench.tree_compare import HERE, alternate, load_range, print_ratios
    child = ["--keys", str(args.keys), "--key-bytes", str(args.key_bytes), "--hits", str(args.hits),
             "--scans", str(args.scans), "--seed", str(args.seed)]
    if args.store_cache:
        child += ["--store-cache", os.path.abspath(args.store_cache)]
    base, runs = alternate(__file__, "bench.read_path", child, args.compare, args.rounds, FIGURES)
    print("sstables read: base", sorted({x["sstables"] for x in runs[base]}), "tree",
          sorted({x["sstables"] for x in runs[HERE]}))
    print(f"\n{args.keys} keys of {args.key_bytes} bytes, {args.rounds} rounds alternated, load average "
          f"{load_range(runs)}; rates per second, median (min-max); ratio = medians, tree / base")
    print_ratios(base, runs, FIGURES, 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--key-bytes", type=int, default=16)
    ap.add_argument("--hits", type=int, default=50_000, help="gets of each kind per run")
    ap.add_argument("--scans", type=int, default=400,
                    help="scans of 1000 rows per run (50 was ~130 ms of CPU: one collection moved it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--store-cache", metavar="DIR",
                    help="write the store once into DIR and reuse a copy of it in every later run (read-side "
                         "comparisons at 1M keys; the write format must be the same on both sides)")
    ap.add_argument("--compare", metavar="DIR", help="alternate with the engine in DIR")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json-line", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return
    with tempfile.TemporaryDirectory(prefix="read_path-") as root:
        out = measure(args.keys, args.key_bytes, args.hits, args.scans, args.seed, root, args.store_cache)
    if args.json_line:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:12s} {v:,.1f}")


if __name__ == "__main__":
    main()
