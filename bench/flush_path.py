"""CPU per row of one memtable flush: gathering the rows, the SSTable writer, and finish().

A memtable of --rows plain rows (bench/write_path.py's keys b'user%012d' % i and 100-byte
random values, as version-3 plain payloads; 310k rows is what a 64 MiB memtable holds) is
flushed as ColumnFamilyStore.flush_memtable flushes it, three times, each into a fresh
directory; the least CPU time (`time.thread_time`) of each phase is printed per row. Runs the
engine on sys.path, so a frozen copy of main (one with SSTableWriter.append_unsorted and
token-less Memtable.put_plain) compares with PYTHONPATH (run as a script, so this file need not
be in the copy):

  PYTHONPATH=$PWD python bench/flush_path.py
  PYTHONPATH=/tmp/base python bench/flush_path.py
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    from engine.memtable import Memtable
    from engine.plain_insert import _packb
    from engine.sstable_writer import SSTableWriter
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=310_000)
    n = ap.parse_args().rows
    keys = [b"user%012d" % i for i in range(n)]
    payloads = [_packb([1_700_000_000_000_000 + i, 1, os.urandom(100)]) for i in range(n)]
    best: dict[str, float] = {}
    for _ in range(3):
        mt = Memtable((0, 0))
        for k, p in zip(keys, payloads):
            mt.put_plain(k, p, 1, 2, 0, 1, (1, 1))
        with tempfile.TemporaryDirectory(prefix="flush_path-") as d:
            t0 = time.thread_time()
            held_keys, held = mt.flush_columns()
            t1 = time.thread_time()
            writer = SSTableWriter(d, 1, expected_partitions=n)
            writer.append_unsorted(None, held_keys, held)
            t2 = time.thread_time()
            writer.finish(mt.stats.to_dict())
            t3 = time.thread_time()
        for name, spent in (("gather", t1 - t0), ("write", t2 - t1), ("finish", t3 - t2), ("total", t3 - t0)):
            best[name] = min(best.get(name, float("inf")), spent)
    print(f"{n} rows, load average "
          f"{os.getloadavg()[0]:.1f}; CPU us per row, least of 3: "
          + " ".join(f"{k} {v * 1e6 / n:.2f}" for k, v in best.items()))


if __name__ == "__main__":
    main()
