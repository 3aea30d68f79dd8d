"""Speculative retry (Cassandra's table option `speculative_retry`): when a read's replicas have
not all answered after a threshold, one more replica is asked, so a replica that died but is not
yet convicted by the failure detector (or is just slow) costs a threshold, not a read timeout.

Values: `NONE`; `ALWAYS` (ask the extra replica at once); `<N>ms` (a fixed threshold); `<P>p`
(the P-th percentile, 0 < P < 100, of this node's recent replica read latencies: the default is
`99p`, as Cassandra's). One speculation per read at most. Pure: latencies arrive as numbers.
"""
from __future__ import annotations

import functools
import re
from bisect import bisect_left, insort

from engine.errors import InvalidRequest

DEFAULT = "99p"
WINDOW = 1024                 # recent replica read latencies kept
MIN_SAMPLES = 32              # below this, a percentile threshold falls back to FALLBACK_MS
FALLBACK_MS = 50
_FORM = re.compile(r"^(?:(NONE|ALWAYS)|(\d+(?:\.\d+)?)ms|(\d+(?:\.\d+)?)p)$", re.IGNORECASE)


@functools.lru_cache(maxsize=64)  # every coordinated read asks: the option is a handful of strings
def parse(value) -> tuple[str, float]:
    """("NONE", 0) | ("ALWAYS", 0) | ("ms", N) | ("p", P); InvalidRequest names a bad value."""
    m = _FORM.match(str(value if value is not None else DEFAULT).strip())
    if not m or (m.group(3) is not None and not 0 < float(m.group(3)) < 100):
        raise InvalidRequest(f"speculative_retry {value!r} is invalid: use NONE, ALWAYS, <N>ms or <P>p "
                             f"(0 < P < 100), e.g. '99p' or '20ms'")
    if m.group(1):
        return m.group(1).upper(), 0.0
    if m.group(2) is not None:
        return "ms", float(m.group(2))
    return "p", float(m.group(3))


class LatencyTracker:
    """The last WINDOW replica read latencies (ms), with percentiles from a sorted copy."""

    def __init__(self, window: int = WINDOW):
        self.window = window
        self.samples: list[float] = []
        self.sorted: list[float] = []
        self._next = 0

    def record(self, latency_ms: float) -> None:
        if len(self.samples) < self.window:
            self.samples.append(latency_ms)
        else:
            old = self.samples[self._next]
            self.samples[self._next] = latency_ms
            self._next = (self._next + 1) % self.window
            del self.sorted[bisect_left(self.sorted, old)]
        insort(self.sorted, latency_ms)

    def percentile(self, p: float) -> float | None:
        if len(self.sorted) < MIN_SAMPLES:
            return None
        return self.sorted[min(len(self.sorted) - 1, int(len(self.sorted) * p / 100))]


def threshold_ms(option, tracker: LatencyTracker) -> float | None:
    """How long to wait before speculating: None = never, 0 = at once."""
    kind, n = parse(option)
    if kind == "NONE":
        return None
    if kind == "ALWAYS":
        return 0.0
    if kind == "ms":
        return n
    found = tracker.percentile(n)
    return FALLBACK_MS if found is None else max(1.0, found)
