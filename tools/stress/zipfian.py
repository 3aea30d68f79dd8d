"""YCSB's skewed key generators: zipfian, scrambled zipfian, skewed latest, and FNV-1 64 scrambling.

The algorithms are YCSB's (site.ycsb.generator), so a workload here picks keys with the same
popularity as a published YCSB run:

- `ZipfianGenerator(min, max, theta=0.99)`: Gray et al., "Quickly Generating Billion-Record
  Synthetic Databases" (SIGMOD 1994). Item `min` is the most popular, then `min+1`, ... When the
  item count grows (`next(rng, itemcount)`), zeta is extended incrementally, as YCSB does;
- `ScrambledZipfianGenerator(min, max)`: a zipfian over 10^10 items (zeta precomputed for
  theta 0.99), each draw scattered by `fnvhash64` and folded into [min, max], so the popular
  keys are spread over the key space instead of bunched at its start;
- `SkewedLatestGenerator(counter)`: zipfian distance back from the latest inserted key
  (`counter.last_value()`), for workload D;
- `fnvhash64(v)`: YCSB's `Utils.fnvhash64` (FNV-1 over the 8 little-endian bytes of a Java long,
  Java's wrap-around multiplication and `Math.abs`), also used to turn key numbers into key names.

Invariants: every draw comes from the `random.Random` passed in; results lie in [min, max].
"""
from __future__ import annotations

import math

ZIPFIAN_CONSTANT = 0.99
SCRAMBLED_ITEM_COUNT = 10_000_000_000
SCRAMBLED_ZETAN = 26.46902820178302          # zeta(10^10, 0.99), as YCSB precomputes it
FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 1099511628211
_MASK64 = (1 << 64) - 1


def _signed64(v: int) -> int:
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def fnvhash64(val: int) -> int:
    """YCSB's Utils.fnvhash64: a non-negative Java long (Long.MIN_VALUE stays negative, as in Java)."""
    h = FNV_OFFSET_BASIS_64
    v = val & _MASK64
    for _ in range(8):
        h ^= v & 0xFF
        v >>= 8
        h = (h * FNV_PRIME_64) & _MASK64
    h = _signed64(h)
    return h if h == -(1 << 63) else abs(h)


def zeta(start: int, n: int, theta: float, initial: float = 0.0) -> float:
    """sum over i in [start, n) of 1 / (i + 1)^theta, added to `initial`."""
    total = initial
    for i in range(start, n):
        total += 1.0 / math.pow(i + 1, theta)
    return total


class ZipfianGenerator:
    def __init__(self, low: int, high: int, theta: float = ZIPFIAN_CONSTANT, zetan: float | None = None):
        assert high >= low
        self.base = low
        self.items = high - low + 1
        self.theta = theta
        self.zeta2theta = zeta(0, 2, theta)
        self.alpha = 1.0 / (1.0 - theta)
        self.zetan = zeta(0, self.items, theta) if zetan is None else zetan
        self.count_for_zeta = self.items
        self.eta = self._eta()

    def _eta(self) -> float:
        # YCSB computes eta from `items` (the constructor's count) even after zeta grows
        return (1 - math.pow(2.0 / self.items, 1 - self.theta)) / (1 - self.zeta2theta / self.zetan)

    def next(self, rng, itemcount: int | None = None) -> int:
        n = self.items if itemcount is None else itemcount
        if n > self.count_for_zeta:            # more items now: extend zeta incrementally
            self.zetan = zeta(self.count_for_zeta, n, self.theta, self.zetan)
            self.count_for_zeta = n
            self.eta = self._eta()
        u = rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return self.base
        if uz < 1.0 + math.pow(0.5, self.theta):
            return self.base + 1
        return self.base + int(n * math.pow(self.eta * u - self.eta + 1, self.alpha))


class ScrambledZipfianGenerator:
    def __init__(self, low: int, high: int, theta: float = ZIPFIAN_CONSTANT):
        assert high >= low
        self.low = low
        self.items = high - low + 1
        if theta == ZIPFIAN_CONSTANT:
            self.gen = ZipfianGenerator(0, SCRAMBLED_ITEM_COUNT, theta, SCRAMBLED_ZETAN)
        else:
            self.gen = ZipfianGenerator(0, SCRAMBLED_ITEM_COUNT, theta)

    def next(self, rng) -> int:
        return self.low + fnvhash64(self.gen.next(rng)) % self.items


class SkewedLatestGenerator:
    """Recent keys are the most popular: `latest - zipfian(latest)`; `counter` has last_value()."""

    def __init__(self, counter):
        self.counter = counter
        self.zipfian = ZipfianGenerator(0, max(1, counter.last_value()) - 1)

    def next(self, rng) -> int:
        latest = self.counter.last_value()
        return latest - self.zipfian.next(rng, max(1, latest))
