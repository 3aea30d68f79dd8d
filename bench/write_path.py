"""Write-path cost of one store in CPU time: put 1 per call and put in batches of 1000.

The workload of bench/engine_vs_anchors.py's put rows (keys b'user%012d' % i written in key
order, 100-byte os.urandom blob values, table {k blob, v blob} PRIMARY KEY k, commit log
periodic), each kind into its own fresh store opened with `background=False`, so no flusher or
compactor thread of ours shares the clock. Next to the wall rate it reports the rate in this
process's CPU time (`time.process_time`), which other people's load on the shared machine moves
far less than the wall rate (it still moves with cache and frequency contention).

`--compare DIR` runs this script alternately on the engine in DIR (e.g. a frozen copy of main:
`git archive main | tar -x -C /tmp/base`) and on this tree, ROUNDS times each, each in a fresh
process, and prints the median (min-max) of every figure and the ratio this tree / DIR.

  python -m bench.write_path --keys 100000
  python -m bench.write_path --keys 100000 --compare /tmp/base --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FIGURES = ("single_cpu", "batch_cpu", "single_wall", "batch_wall")
KS, TABLE, BATCH = "bench", "kv", 1000


def _open(path: str):
    from engine.store import Store  # from sys.path: this tree, or the --compare copy
    store = Store.open(path, commitlog_sync="periodic", background=False)
    store.create_keyspace(KS)
    store.create_table(KS, TABLE, {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def measure(n: int, root: str) -> dict:
    keys = [b"user%012d" % i for i in range(n)]
    values = [os.urandom(100) for _ in range(n)]
    out = {}

    store = _open(os.path.join(root, "single"))
    insert = store.insert
    c0, w0 = time.process_time(), time.perf_counter()
    for k, v in zip(keys, values):
        insert(KS, TABLE, {"k": k, "v": v})
    out["single_cpu"] = n / (time.process_time() - c0)
    out["single_wall"] = n / (time.perf_counter() - w0)
    store.close()

    store = _open(os.path.join(root, "batch"))
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


def _child(tree: str, args) -> dict:
    cmd = [sys.executable, "-m", "bench.write_path", "--keys", str(args.keys), "--json-line"]
    env = dict(os.environ, PYTHONPATH=tree)
    res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs) / 1000:.1f}k ({min(xs) / 1000:.1f}-{max(xs) / 1000:.1f})"


def compare(args) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = os.path.abspath(args.compare)
    if base != here:  # the same harness on both sides
        os.makedirs(os.path.join(base, "bench"), exist_ok=True)
        shutil.copy(os.path.abspath(__file__), os.path.join(base, "bench", "write_path.py"))
    runs: dict[str, list[dict]] = {base: [], here: []}
    for r in range(args.rounds):
        for tree in (base, here):
            runs[tree].append(_child(tree, args))
            print(f"round {r + 1} {tree}: " + ", ".join(
                f"{k} {runs[tree][-1][k] / 1000:.1f}k" for k in FIGURES), flush=True)
    loads = [x["load_avg_1m"] for rs in runs.values() for x in rs]
    print(f"\n{args.keys} keys, {args.rounds} rounds alternated, load average {min(loads):.1f}-{max(loads):.1f}; "
          "puts per second, median (min-max); ratio = medians, tree / base")
    for k in FIGURES:
        b = [x[k] for x in runs[base]]
        t = [x[k] for x in runs[here]]
        print(f"{k:11s} base {_med(b):24s} tree {_med(t):24s} ratio {statistics.median(t) / statistics.median(b):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--compare", metavar="DIR", help="alternate with the engine in DIR")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json-line", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return
    with tempfile.TemporaryDirectory(prefix="write_path-") as root:
        out = measure(args.keys, root)
    if args.json_line:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:12s} {v:,.1f}")


if __name__ == "__main__":
    main()
