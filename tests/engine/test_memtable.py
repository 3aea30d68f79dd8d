"""Memtable runs: a partition updated n times holds O(log n) payloads, and reading it back
reconciles to exactly the rows written."""
import math

from engine import mutation as mut
from engine import row_decode
from engine.memtable import Memtable
from engine.partition import decode_partition, encode_partition, live_rows, merge_all
from engine.schema import make_table

TABLE = make_table("ks", "wide", {"k": "int", "c": "int", "v": "text"}, ("k", "c"))


def test_a_wide_partition_keeps_log_n_runs_and_every_row():
    mt = Memtable((0, 0))
    n = 5000
    for i in range(n):
        key, update = mut.build_insert(TABLE, {"k": 1, "c": i % 4000, "v": f"v{i}"}, 1_000 + i, 0, None, 1 << 20)
        mt.put(key, encode_partition(update), update, None)
        mt.check_invariants()
    payloads = mt.get(key)
    assert len(payloads) <= 8 + math.log2(n / 8) + 1
    merged = merge_all([decode_partition(p) for p in payloads])
    rows = {ck: cells for ck, cells in live_rows(merged, 0, b"", None, False)}
    assert len(rows) == 4000
    values = sorted(row_decode.row_dict(TABLE, {"k": 1}, ck, cells, None, False)["v"] for ck, cells in rows.items())
    assert values == sorted(f"v{i}" for i in range(1000, 5000))  # the newest write of each row wins
