"""Write-path cost of one store in CPU time: put 1 per call and put in batches of 1000.

The workload of bench/engine_vs_anchors.py's put rows (keys b'user%012d' % i written in key
order, 100-byte os.urandom blob values, table {k blob, v blob} PRIMARY KEY k, commit log
periodic), each kind into its own fresh store opened with `background=False`, so no flusher or
compactor thread of ours shares the clock: a full memtable (64 MiB, ~310k of these rows) is
flushed by the writer, inside the timed loop, so at --keys 1000000 each kind pays 3 flushes
(`--no-flush`: none in the loop, the put path alone; the store flushes at close, untimed).
`--background` opens the stores as bench/engine_vs_anchors.py does (flusher and compactor
threads; compactions then run too, and their CPU counts: process_time covers every thread).
Next to the wall rate it reports the rate in this process's CPU time (`time.process_time`),
which other people's load on the shared machine moves far less than the wall rate (it still
moves with cache and frequency contention).

`--compare DIR` runs this script alternately on the engine in DIR (e.g. a frozen copy of main:
`git archive main | tar -x -C /tmp/base`) and on this tree, ROUNDS times each, each in a fresh
process, and prints the median (min-max) of every figure and the ratio this tree / DIR.

  python -m bench.write_path --keys 100000
  python -m bench.write_path --keys 100000 --compare /tmp/base --rounds 3
  python -m bench.write_path --keys 1000000 --compare /tmp/base --rounds 3   # with 3 flushes each
  python -m bench.write_path --keys 300000 --no-flush --compare /tmp/base     # the put path alone
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

FIGURES = ("single_cpu", "batch_cpu", "single_wall", "batch_wall")
KS, TABLE, BATCH = "bench", "kv", 1000


def _open(path: str, background: bool = False, flush: bool = True):
    from engine.store import Store  # from sys.path: this tree, or the --compare copy
    extra = {} if flush else {"memtable_flush_threshold_bytes": 1 << 40}
    store = Store.open(path, commitlog_sync="periodic", background=background, **extra)
    store.create_keyspace(KS)
    store.create_table(KS, TABLE, {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def measure(n: int, root: str, background: bool = False, flush: bool = True) -> dict:
    keys = [b"user%012d" % i for i in range(n)]
    values = [os.urandom(100) for _ in range(n)]
    out = {}

    store = _open(os.path.join(root, "single"), background, flush)
    insert = store.insert
    c0, w0 = time.process_time(), time.perf_counter()
    for k, v in zip(keys, values):
        insert(KS, TABLE, {"k": k, "v": v})
    out["single_cpu"] = n / (time.process_time() - c0)
    out["single_wall"] = n / (time.perf_counter() - w0)
    store.close()

    store = _open(os.path.join(root, "batch"), background, flush)
    c0, w0 = time.process_time(), time.perf_counter()
    for b in range(0, n, BATCH):
        with store.batch() as batch:
            add = batch.insert
            for i in range(b, min(n, b + BATCH)):
                add(KS, TABLE, {"k": keys[i], "v": values[i]})
    out["batch_cpu"] = n / (time.process_time() - c0)
    out["batch_wall"] = n / (time.perf_counter() - w0)
    store.close()
    out["load_avg_1m"] = os.getloadavg()[0]
    return out


def compare(args) -> None:
    from bench.tree_compare import alternate, load_range, print_ratios
    extra = (["--background"] if args.background else []) + (["--no-flush"] if args.no_flush else [])
    base, runs = alternate(__file__, "bench.write_path", ["--keys", str(args.keys), *extra], args.compare,
                           args.rounds, FIGURES)
    print(f"\n{args.keys} keys, {args.rounds} rounds alternated, load average {load_range(runs)}; "
          "puts per second, median (min-max); ratio = medians, tree / base")
    print_ratios(base, runs, FIGURES, 11)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--compare", metavar="DIR", help="alternate with the engine in DIR")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--background", action="store_true", help="flusher and compactor threads on")
    ap.add_argument("--no-flush", action="store_true",
                    help="no memtable flush inside the timed loops: the put path alone (flushed at close)")
    ap.add_argument("--json-line", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return
    with tempfile.TemporaryDirectory(prefix="write_path-") as root:
        out = measure(args.keys, root, args.background, not args.no_flush)
    if args.json_line:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:12s} {v:,.1f}")


if __name__ == "__main__":
    main()
