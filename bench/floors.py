"""The pure-Python floors of performance.md, measured on the standard workload in the same run.

A floor is the least work any Python engine must do per operation, with no checks, no format
versioning and no recovery; the engine's figure divided by its floor says how much of the
machine it leaves on the table.

* put floor: msgpack.packb((key, value)) + zlib.crc32 + a buffered append (1 MiB buffer) +
  a SortedDict insert, per key, in workload order.
* hit floor: a pure-Python k=7 bloom probe (mmh3.hash64, 10 bits/key) + bisect over per-block
  first keys + one 4 KiB os.pread + bytes.find, on a file of 4 KiB blocks written beforehand.
* miss floor: the same get on keys never written (the bloom filter rejects almost all).
* scan floor: from the block holding the start key (bisect over per-block first keys), 256 KiB
  os.preads of a file of 4 KiB blocks, each block one msgpack array [k, v, k, v, ...] after a
  u16 length, unpacked whole; one dict {k, v} per row, yielded to the same counting loop as
  the engines' scans (SCANS scans of scan_rows keys).
"""
from __future__ import annotations

import os
import zlib
from bisect import bisect_right

import mmh3
import msgpack
from sortedcontainers import SortedDict

BLOCK = 4096
K = 7


class _Bloom:
    def __init__(self, n: int):
        self.m = n * 10 + 64
        self.bits = bytearray(self.m // 8 + 1)

    def add(self, key: bytes) -> None:
        h1, h2 = mmh3.hash64(key, 0, True, False)
        m, bits = self.m, self.bits
        idx, step = h2 % m, h1 % m
        for _ in range(K):
            bits[idx >> 3] |= 1 << (idx & 7)
            idx = (idx + step) % m

    def might_contain(self, key: bytes) -> bool:
        h1, h2 = mmh3.hash64(key, 0, True, False)
        m, bits = self.m, self.bits
        idx, step = h2 % m, h1 % m
        for _ in range(K):
            if not bits[idx >> 3] & (1 << (idx & 7)):
                return False
            idx = (idx + step) % m
        return True


def _put_floor(w, root: str, r) -> float:
    path = os.path.join(root, "floor.log")
    sd = SortedDict()
    packb, crc32, keys, values = msgpack.packb, zlib.crc32, w.keys, w.values
    with open(path, "wb", buffering=1 << 20) as f:
        write = f.write

        def put(lo, hi):
            for i in range(lo, hi):
                k = keys[i]
                rec = packb((k, values[i]))
                write(crc32(rec).to_bytes(4, "big") + rec)
                sd[k] = values[i]
        spent = r.chunked("floor put", w.n, put)
    os.remove(path)
    return w.n / spent


def _write_table(w, path: str) -> tuple[list[bytes], list[int], _Bloom]:
    bloom = _Bloom(w.n)
    first_keys, offsets, block, off = [], [], [], 0
    with open(path, "wb") as f:
        for k, v in zip(w.keys, w.values):  # keys are in sorted order
            rec = bytes((len(k),)) + k + bytes((len(v),)) + v
            if sum(map(len, block)) + len(rec) > BLOCK:
                f.write(b"".join(block).ljust(BLOCK, b"\0"))
                off += BLOCK
                block = []
            if not block:
                first_keys.append(k)
                offsets.append(off)
            block.append(rec)
            bloom.add(k)
        f.write(b"".join(block).ljust(BLOCK, b"\0"))
    return first_keys, offsets, bloom


def _get_floor(w, root: str, r) -> tuple[float, float]:
    path = os.path.join(root, "floor.sst")
    first_keys, offsets, bloom = _write_table(w, path)
    fd = os.open(path, os.O_RDONLY)
    pread, might = os.pread, bloom.might_contain

    def get(key: bytes):
        if not might(key):
            return None
        i = bisect_right(first_keys, key) - 1
        if i < 0:
            return None
        block = pread(fd, BLOCK, offsets[i])
        p = block.find(key)
        if p < 0:
            return None
        p += len(key)
        return block[p + 1:p + 1 + block[p]]

    def hits(lo, hi):
        for i in range(lo, hi):
            if get(w.hits[i]) is None:
                raise AssertionError("floor lost a key")

    def misses(lo, hi):
        for i in range(lo, hi):
            if get(w.misses[i]) is not None:
                raise AssertionError("floor found a key never written")
    try:
        hit = w.reads / r.chunked("floor get hit", w.reads, hits)
        miss = w.reads / r.chunked("floor get miss", w.reads, misses)
    finally:
        os.close(fd)
        os.remove(path)
    return hit, miss


def _scan_floor(w, root: str, r) -> float:
    path = os.path.join(root, "floor-scan.sst")
    first_keys, offsets, block, size, off = [], [], [], 5, 0  # array16 header + u16 length
    with open(path, "wb") as f:
        def close_block():
            raw = msgpack.packb(block)
            f.write((len(raw).to_bytes(2, "big") + raw).ljust(BLOCK, b"\0"))
        for k, v in zip(w.keys, w.values):  # keys are in sorted order
            if size + len(k) + len(v) + 4 > BLOCK:
                close_block()
                off += BLOCK
                block, size = [], 5
            if not block:
                first_keys.append(k)
                offsets.append(off)
            block += (k, v)
            size += len(k) + len(v) + 4
        close_block()
    fd = os.open(path, os.O_RDONLY)
    pread, unpackb, keys = os.pread, msgpack.unpackb, w.keys

    def rows(start: bytes):
        off = offsets[max(0, bisect_right(first_keys, start) - 1)]
        while True:
            chunk = pread(fd, 64 * BLOCK, off)
            if not chunk:
                return
            off += len(chunk)
            for b in range(0, len(chunk), BLOCK):
                kv = unpackb(chunk[b + 2:b + 2 + int.from_bytes(chunk[b:b + 2], "big")])
                it = iter(kv)
                yield from [{"k": k, "v": v} for k, v in zip(it, it) if k >= start]

    def scans():
        done = 0
        for s in w.scan_starts:
            n = 0
            for _ in rows(keys[s]):
                n += 1
                if n == w.scan_rows:
                    break
            assert n == w.scan_rows, f"floor scan from {s} returned only {n} rows"
            done += n
        return done
    try:
        spent, done = r.once("floor scan", scans)
    finally:
        os.close(fd)
        os.remove(path)
    return done / spent


def run_floors(w, root: str, r) -> dict:
    put = _put_floor(w, root, r)
    hit, miss = _get_floor(w, root, r)
    return {"put_single": put, "put_batch": put, "get_hit": hit, "get_miss": miss, "scan": _scan_floor(w, root, r)}
