"""Wide partitions: the write and hint-replay paths that were quadratic (engine/memtable.py runs,
ring/hinted_handoff.py chunks). One process, one store, no cluster:

1. 20,000 rows inserted into one partition (`Store.insert`), then 20,000 overwrites of one row;
2. 17,000 hints stored for one target (`HintStore.store_hint`: one `system.hints` partition), then
   replayed to the end as node.py does (`next_batch` of 64, each hint acknowledged).

    python -m bench.wide_partition
"""
from __future__ import annotations

import tempfile
import time

from engine.schema import make_table
from engine.store import Store
from ring.hinted_handoff import HintStore


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    with Store.open(tempfile.mkdtemp(prefix="dynatable-wide-"), background=False) as store:
        store.create_keyspace("ks")
        store.create_table("ks", "t", {"k": "int", "c": "int", "v": "text"}, primary_key=("k", "c"))
        wide = timed(lambda: [store.insert("ks", "t", {"k": 1, "c": i, "v": "x" * 50}) for i in range(20_000)])
        over = timed(lambda: [store.insert("ks", "t", {"k": 2, "c": 1, "v": str(i)}) for i in range(20_000)])
    with Store.open(tempfile.mkdtemp(prefix="dynatable-hints-"), background=False) as store:
        store.create_keyspace("system", {"class": "LocalStrategy"})
        hints = HintStore(store)
        table = make_table("ks", "kv", {"k": "int", "v": "text"}, "k")
        stored = timed(lambda: [hints.store_hint("b", "e", table, b"k%d" % i, b"p" * 150, 1000 + i)
                                for i in range(17_000)])

        def replay():
            while rows := hints.next_batch("b", 64):
                for row in rows:
                    hints.in_flight.add(("b", row["id"]))
                    hints.delivered("b", row["id"])

        replayed = timed(replay)
    print(f"20,000 rows into one partition:   {wide:6.2f} s")
    print(f"one row overwritten 20,000 times: {over:6.2f} s")
    print(f"17,000 hints stored for a target: {stored:6.2f} s")
    print(f"17,000 hints replayed:            {replayed:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
