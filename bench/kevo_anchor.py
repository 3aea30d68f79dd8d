"""kevo 0.2.0, the best pure-Python LSM peer (performance.md), on the standard workload.

kevo's LSMTree with its write-ahead log on (no fsync, as our periodic commit log). It has no
batch API and no range scan, so those figures are None. Before the reads the memtable is
flushed into a run, so hits and misses come from its runs, as ours come from SSTables.

kevo 0.2.0 pins mmh3<4 while dynatable needs mmh3>=4 (kevo only calls mmh3.hash, which 5.x
keeps), so it is installed without its dependency check:
    pip install --no-deps kevo==0.2.0      (its other dependencies are in the bench extra)
"""
from __future__ import annotations

import os
import shutil


def available() -> bool:
    try:
        import kevo  # noqa: F401
    except ImportError:
        return False
    return True


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def run_kevo(w, root: str, r) -> dict:
    from kevo import LSMTree
    out = {"put_batch": None, "scan": None}
    keys, values = w.keys, w.values
    path = os.path.join(root, "kevo")
    db = LSMTree(data_dir=path, use_wal=True)
    put = db.set

    def single(lo, hi):
        for i in range(lo, hi):
            put(keys[i], values[i])
    out["put_single"] = w.n / r.chunked("kevo put 1/call", w.n, single)
    db._flush()  # the memtable into a run: reads below come from runs (and the WAL is emptied)
    db.close()
    out["disk_bytes"] = _dir_bytes(path)
    db = LSMTree(data_dir=path, use_wal=True)
    get = db.get

    def hits(lo, hi):
        for i in range(lo, hi):
            if not get(w.hits[i]):
                raise AssertionError(f"kevo lost key {w.hits[i]!r}")
    out["get_hit"] = w.reads / r.chunked("kevo get hit", w.reads, hits)

    def misses(lo, hi):
        for i in range(lo, hi):
            if get(w.misses[i]):
                raise AssertionError("kevo found a key never written")
    out["get_miss"] = w.reads / r.chunked("kevo get miss", w.reads, misses)
    db.close()
    shutil.rmtree(path)
    return out
