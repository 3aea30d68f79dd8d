"""A scan's CPU per row next to its pure-Python floor, measured alternately in one process.

The scan is engine_vs_anchors' (Store.scan_all from a random token, pages of 1000, stopped after
--rows rows, --scans times) on a store reopened with `background=False`. The floor is the least
any pure-Python scan of these rows must do once the bytes are in memory: for the same rows,
already read, checked and decoded into per-block (keys, payloads) lists and already in token
order, unpack each payload and make its row dict, yielded through one chain to the same
consuming loop. What the engine does beyond the floor is reading and checking blocks, computing
tokens, merging the SSTables and paging.

  python -m bench.scan_floor --store-cache /tmp/rp     # the store bench.read_path --keys 1000000 wrote
"""
from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import statistics
import tempfile
import time
from itertools import chain

import msgpack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store-cache", required=True, metavar="DIR",
                    help="a directory bench.read_path --store-cache filled (its first store is used)")
    ap.add_argument("--scans", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from engine.store import Store
    from engine.token import MIN_TOKEN

    saved = sorted(glob.glob(os.path.join(args.store_cache, "read_path-*")))
    if not saved:
        raise SystemExit(f"no read_path store in {args.store_cache}")
    with tempfile.TemporaryDirectory(prefix="scan_floor-") as root:
        path = os.path.join(root, "store")
        shutil.copytree(saved[0], path)
        store = Store.open(path, commitlog_sync="periodic", background=False)
        ks, table = "ks", "t"
        rnd = random.Random(5)
        starts = [MIN_TOKEN + int(2**64 * rnd.random() * 0.85) for _ in range(args.scans)]

        def engine() -> int:
            rows = 0
            for start in starts:
                n = 0
                for _ in store.scan_all(ks, table, start_token=start, page_size=1000):
                    n += 1
                    if n == args.rows:
                        break
                rows += n
            return rows

        cfs = store.cfs[store.table(ks, table).id]
        blocks = []  # the same rows, in order, as (keys, payloads) runs of ~30 (a block's size)
        for start in starts:
            n = 0
            for toks, keys, payloads, _ in cfs.scan_blocks((start + 1, b""), None):
                for i in range(0, len(keys), 30):
                    blocks.append((list(keys[i:i + 30]), list(payloads[i:i + 30])))
                n += len(keys)
                if n >= args.rows:
                    break
        unpackb = msgpack.unpackb

        def pages():
            for keys, payloads in blocks:
                yield [{"k": k, "v": v} for k, (_, _, v) in zip(keys, map(unpackb, payloads))]

        def floor() -> int:
            n = 0
            for _ in chain.from_iterable(pages()):
                n += 1
            return n

        engine()
        floor()
        spent = {"engine": [], "floor": []}
        for _ in range(args.rounds):
            for name, fn in (("engine", engine), ("floor", floor)):
                c0 = time.process_time()
                rows = fn()
                spent[name].append((time.process_time() - c0) / rows * 1e9)
        store.close()
    print(f"{args.scans} scans of {args.rows} rows, {args.rounds} rounds alternated, load average "
          f"{os.getloadavg()[0]:.1f}; CPU ns per row, median (min-max)")
    for name, xs in spent.items():
        print(f"{name:7s} {statistics.median(xs):6.0f} ({min(xs):.0f}-{max(xs):.0f})")
    print(f"engine / floor: {statistics.median(spent['engine']) / statistics.median(spent['floor']):.2f}")


if __name__ == "__main__":
    main()
