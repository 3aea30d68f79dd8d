"""The pure-Python floor of put + flush, next to LevelDB and dynatable in the same process and run.

bench/floors.py's put floor stops at the memtable; a put also pays its share of the flush. This
floor is the least work any pure-Python LSM must do per key for the write path of issue 17, with
no checks, no format versioning, no statistics and no recovery:

* 1 per call: msgpack.packb((key, value)) + zlib.crc32 + a buffered append (1 MiB buffer) +
  a dict insert;
* batches of 1000: one packb of the batch's 1000 (key, value) pairs + crc32 + append, and one
  dict.update;
* flush, every 64 MiB of keys and values (as dynatable's memtable): sort the keys, one
  msgpack.packb([keys, values]) + crc32 per block of ~4 KiB, a bloom filter set in bulk by
  numpy from mmh3 digests (10 bits/key, k = 5; the bit loop in Python costs more), written and
  fsynced; the commit log is fsynced at the end.

The workload is bench/write_path.py's (= bench/engine_vs_anchors.py's put rows): keys
b'user%012d' % i in key order, 100-byte os.urandom values. Each of the six runs (LevelDB, floor,
dynatable; 1 per call and batches of 1000) writes a fresh directory; rates are per second of
wall time and of this process's CPU time (`time.process_time`, every thread: LevelDB's
compaction thread counts, as dynatable's flushes do, which run in the writer: `background=False`).

  python -m bench.put_floor --keys 1000000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib

import mmh3
import msgpack
import numpy as np

BATCH = 1000
MEMTABLE_BYTES = 64 * 1024 * 1024
BLOCK = 4096
ROW_OVERHEAD = 64          # a memtable entry's bookkeeping, as dynatable counts it


def _bloom_bits(keys: list) -> bytes:
    m = (len(keys) * 10 + 63) // 64 * 64
    h = np.frombuffer(b"".join(map(mmh3.hash_bytes, keys)), dtype="<i8").reshape(-1, 2)
    step, idx = h[:, 0] % m, h[:, 1] % m
    marks = np.zeros(m, dtype=np.bool_)
    for _ in range(5):
        marks[idx] = True
        idx = (idx + step) % m
    return np.packbits(marks, bitorder="little").tobytes()


def _flush(mem: dict, path: str) -> None:
    keys = sorted(mem)
    packb, crc32 = msgpack.packb, zlib.crc32
    per = max(1, BLOCK // (len(keys[0]) + len(mem[keys[0]]) + 4)) if keys else 1
    with open(path, "wb", buffering=1 << 20) as f:
        write = f.write
        for i in range(0, len(keys), per):
            ks = keys[i:i + per]
            block = packb([ks, [*map(mem.__getitem__, ks)]])
            write(block)
            write(crc32(block).to_bytes(4, "big"))
        write(_bloom_bits(keys))
        f.flush()
        os.fsync(f.fileno())


def floor(keys: list, values: list, root: str, batched: bool) -> None:
    packb, crc32 = msgpack.packb, zlib.crc32
    mem, size, flushes = {}, 0, 0
    limit = MEMTABLE_BYTES
    with open(os.path.join(root, "log"), "wb", buffering=1 << 20) as log:
        write = log.write
        if batched:
            for b in range(0, len(keys), BATCH):
                ks, vs = keys[b:b + BATCH], values[b:b + BATCH]
                rec = packb([*zip(ks, vs)])
                write(crc32(rec).to_bytes(4, "big") + rec)
                mem.update(zip(ks, vs))
                size += len(rec) + ROW_OVERHEAD * len(ks)
                if size > limit:
                    _flush(mem, os.path.join(root, f"sst-{flushes}"))
                    mem, size, flushes = {}, 0, flushes + 1
        else:
            for k, v in zip(keys, values):
                rec = packb((k, v))
                write(crc32(rec).to_bytes(4, "big") + rec)
                mem[k] = v
                size += len(rec) + ROW_OVERHEAD
                if size > limit:
                    _flush(mem, os.path.join(root, f"sst-{flushes}"))
                    mem, size, flushes = {}, 0, flushes + 1
        _flush(mem, os.path.join(root, f"sst-{flushes}"))
        log.flush()
        os.fsync(log.fileno())


def leveldb(keys: list, values: list, root: str, batched: bool) -> None:
    import plyvel
    db = plyvel.DB(root, create_if_missing=True, bloom_filter_bits=10)
    if batched:
        for b in range(0, len(keys), BATCH):
            with db.write_batch(sync=False) as wb:
                for i in range(b, min(len(keys), b + BATCH)):
                    wb.put(keys[i], values[i])
    else:
        put = db.put
        for k, v in zip(keys, values):
            put(k, v, sync=False)
    db.close()


def dynatable(keys: list, values: list, root: str, batched: bool) -> None:
    from engine.store import Store
    store = Store.open(root, commitlog_sync="periodic", background=False)
    store.create_keyspace("bench")
    store.create_table("bench", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    if batched:
        for b in range(0, len(keys), BATCH):
            with store.batch() as batch:
                add = batch.insert
                for i in range(b, min(len(keys), b + BATCH)):
                    add("bench", "kv", {"k": keys[i], "v": values[i]})
    else:
        insert = store.insert
        for k, v in zip(keys, values):
            insert("bench", "kv", {"k": k, "v": v})
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.keys
    keys = [b"user%012d" % i for i in range(n)]
    values = [os.urandom(100) for _ in range(n)]
    rates = {}
    with tempfile.TemporaryDirectory(prefix="put_floor-") as tmp:
        for batched in (False, True):
            for name, run in (("LevelDB", leveldb), ("floor", floor), ("dynatable", dynatable)):
                root = os.path.join(tmp, f"{name}-{int(batched)}")
                os.makedirs(root)
                c0, w0 = time.process_time(), time.perf_counter()
                run(keys, values, root, batched)   # each includes its close: every flush is paid
                rates[name, batched] = (n / (time.perf_counter() - w0), n / (time.process_time() - c0))
    print(f"{n} keys, load average {os.getloadavg()[0]:.1f}; puts per second (wall / CPU), close included")
    for batched, label in ((False, "1 per call"), (True, "batches of 1000")):
        ldb_wall, ldb_cpu = rates["LevelDB", batched]
        print(f"  {label}:")
        for name in ("LevelDB", "floor", "dynatable"):
            wall, cpu = rates[name, batched]
            print(f"    {name:9s} {wall / 1e3:8.1f}k / {cpu / 1e3:8.1f}k   x LevelDB {wall / ldb_wall:5.2f} / "
                  f"{cpu / ldb_cpu:5.2f}")
        fw, fc = rates["floor", batched]
        dw, dc = rates["dynatable", batched]
        print(f"    dynatable / floor {dw / fw:.2f} (wall) {dc / fc:.2f} (CPU)")


if __name__ == "__main__":
    main()
