"""Clocks, injected: a wall clock for write timestamps and TTLs, a monotonic one for intervals.

`SystemClock` reads the OS; `ManualClock` is set by tests (TTL expiry, gc_grace) and by the
simulator (skew, jumps). Nothing in the engine reads time any other way.
"""
from __future__ import annotations

import time


class SystemClock:
    offset_us = 0  # admin-set skew (the nemesis's clock fault); 0 in normal operation

    def wall_us(self) -> int:
        return time.time_ns() // 1000 + self.offset_us

    def wall_ms(self) -> int:
        return self.wall_us() // 1000

    def now_s(self) -> int:
        return self.wall_us() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock(SystemClock):
    def __init__(self, wall_us: int = 1_700_000_000_000_000):
        self._wall_us = wall_us
        self._mono = 0.0

    def wall_us(self) -> int:
        return self._wall_us + self.offset_us

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall_us += int(seconds * 1_000_000)
        self._mono += seconds
