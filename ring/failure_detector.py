"""Phi accrual failure detector (Cassandra's FailureDetector and ArrivalWindow, 4.0). Pure:
every call takes `now_ms` from the driver's monotonic clock.

* Each endpoint keeps its last `window` (1000) heartbeat inter-arrival intervals. The first
  heartbeat from an endpoint seeds the window with `initial_interval_ms` (2 x gossip interval =
  2 s): erring high means a new node is convicted late rather than flapping.
* Intervals longer than `max_interval_ms` (4.0: the initial value, 2 s) are ignored, so a long
  partition does not teach the detector to wait longer.
* phi = PHI_FACTOR * (now - last heartbeat) / mean interval, PHI_FACTOR = 1 / ln 10. An endpoint
  is convicted iff phi > phi_convict_threshold (8), i.e. silent for more than 8 ln 10 = 18.42
  mean intervals (about 18 s of silence at 1 s gossip).
* No convictions within `max_local_pause_ms` (5 s) of a local pause: when two `tick`s are more
  than 5 s apart this process was paused (GC, SIGSTOP, a slow event loop) and the silence it saw
  is its own. The driver may also call `note_local_pause` directly.

Rules in docs/ring.md#failure-detector.
"""
from __future__ import annotations

import math
from collections import deque

PHI_FACTOR = 1.0 / math.log(10.0)


class ArrivalWindow:
    """The last `size` inter-arrival intervals of one endpoint's heartbeats, with a running sum."""

    __slots__ = ("intervals", "total_ms", "last_ms", "max_interval_ms", "size")

    def __init__(self, size: int, max_interval_ms: float):
        self.intervals: deque[float] = deque()
        self.total_ms = 0.0
        self.last_ms: int | None = None
        self.max_interval_ms = max_interval_ms
        self.size = size

    def _append(self, interval_ms: float) -> None:
        if len(self.intervals) == self.size:
            self.total_ms -= self.intervals.popleft()
        self.intervals.append(interval_ms)
        self.total_ms += interval_ms

    def add(self, now_ms: int, initial_interval_ms: float) -> None:
        if self.last_ms is None:
            self._append(initial_interval_ms)
        else:
            interval = now_ms - self.last_ms
            if interval <= self.max_interval_ms:
                self._append(interval)
        self.last_ms = now_ms

    def mean_ms(self) -> float:
        return self.total_ms / len(self.intervals)

    def phi(self, now_ms: int) -> float:
        """Cassandra's unscaled phi: silence divided by the mean interval."""
        assert self.last_ms is not None and self.intervals
        return max(0, now_ms - self.last_ms) / (self.mean_ms() or 1e-9)  # all-zero intervals


class FailureDetector:
    def __init__(
        self,
        *,
        phi_convict_threshold: float = 8.0,
        gossip_interval_ms: int = 1000,
        initial_interval_ms: float | None = None,
        max_interval_ms: float | None = None,
        window: int = 1000,
        max_local_pause_ms: int = 5000,
    ):
        self.phi_convict_threshold = phi_convict_threshold
        self.initial_interval_ms = (
            2 * gossip_interval_ms if initial_interval_ms is None else initial_interval_ms)
        self.max_interval_ms = (
            self.initial_interval_ms if max_interval_ms is None else max_interval_ms)
        self.window = window
        self.max_local_pause_ms = max_local_pause_ms
        self._windows: dict[str, ArrivalWindow] = {}
        self._last_tick_ms: int | None = None
        self._last_pause_ms: int | None = None

    # --- inputs -------------------------------------------------------------------------------

    def report(self, ep: str, now_ms: int) -> None:
        """A heartbeat from `ep` arrived (gossip saw its heartbeat version or generation grow)."""
        arrivals = self._windows.get(ep)
        if arrivals is None:
            arrivals = self._windows[ep] = ArrivalWindow(self.window, self.max_interval_ms)
        arrivals.add(now_ms, self.initial_interval_ms)

    def remove(self, ep: str) -> None:
        """Forget `ep` (it left, was removed, or restarted with a new generation)."""
        self._windows.pop(ep, None)

    def note_local_pause(self, now_ms: int) -> None:
        self._last_pause_ms = now_ms

    def tick(self, now_ms: int) -> list[str]:
        """The driver's periodic status check (each gossip round). Notes a local pause when the
        previous tick is more than `max_local_pause_ms` ago; returns the endpoints convicted now,
        sorted."""
        if self._last_tick_ms is not None and now_ms - self._last_tick_ms > self.max_local_pause_ms:
            self.note_local_pause(now_ms)
        self._last_tick_ms = now_ms
        return [ep for ep in sorted(self._windows) if not self.is_alive(ep, now_ms)]

    # --- queries ------------------------------------------------------------------------------

    def phi(self, ep: str, now_ms: int) -> float:
        """phi scaled by PHI_FACTOR, comparable to the threshold; 0.0 for an unknown endpoint."""
        arrivals = self._windows.get(ep)
        if arrivals is None:
            return 0.0
        return PHI_FACTOR * arrivals.phi(now_ms)

    def in_pause_grace(self, now_ms: int) -> bool:
        return self._last_pause_ms is not None and now_ms - self._last_pause_ms < self.max_local_pause_ms

    def is_alive(self, ep: str, now_ms: int) -> bool:
        """False for an endpoint never heard from; otherwise not convicted (phi <= threshold, or
        inside the grace period after a local pause)."""
        if ep not in self._windows:
            return False
        if self.in_pause_grace(now_ms):
            return True
        return self.phi(ep, now_ms) <= self.phi_convict_threshold

    def mean_interval_ms(self, ep: str) -> float | None:
        arrivals = self._windows.get(ep)
        return None if arrivals is None else arrivals.mean_ms()

    @property
    def endpoints(self) -> list[str]:
        return sorted(self._windows)

    def check_invariants(self) -> None:
        for arrivals in self._windows.values():
            assert 0 < len(arrivals.intervals) <= arrivals.size
            assert math.isclose(arrivals.total_ms, sum(arrivals.intervals), rel_tol=1e-9, abs_tol=1e-6)
            assert all(0 <= i <= max(arrivals.max_interval_ms, self.initial_interval_ms)
                       for i in arrivals.intervals)
