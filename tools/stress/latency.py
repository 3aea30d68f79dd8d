"""Latency bookkeeping: per operation kind, HdrHistograms for the run, exact samples per interval.

Two latencies per operation, in microseconds:
- **service time**: from the moment the request was really sent to its answer;
- **response time**: from the moment the schedule *intended* to send it (coordinated-omission
  correction, as in wrk2 and cassandra-stress `fixed=`): when the cluster stalls, the requests
  that should have gone out meanwhile are late, and their lateness counts. In a closed loop
  (no rate) the intended start is the real start, and the two are equal.

Each operation is recorded twice: into the run's HdrHistograms (1 us .. 1 h, 3 significant
digits; longer values are clamped to 1 h) and into the current interval's sample lists, from which
the once-a-second progress figures are exact (sorting a second's samples is cheap; walking a
23,552-bucket histogram in Python twice a second would stall the load loop by ~80 ms).
Invariants: an interval holds exactly the operations finished in it; the totals hold every
operation of the run; errors are counted per kind by exception class name. Encoded totals
(`encode`/`decode`, HdrHistogram's compressed form) merge across processes.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

HIST_MIN_US, HIST_MAX_US, HIST_DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 95.0, 99.0, 99.9)
ERROR_LOG_MAX = 10_000        # (sent at, kind, error) of the first errors, for "when was it sent" questions
EMPTY = {"count": 0, "mean_ms": None, "min_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None,
         "p999_ms": None, "max_ms": None}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_MIN_US, HIST_MAX_US, HIST_DIGITS)


def _clamp(us: int) -> int:
    return HIST_MIN_US if us < HIST_MIN_US else min(us, HIST_MAX_US)


@dataclass
class OpStats:
    """One kind of operation (WRITE, READ, UPDATE, ...) over a whole run (or several merged)."""
    service: HdrHistogram = field(default_factory=new_histogram)
    response: HdrHistogram = field(default_factory=new_histogram)
    returns: Counter = field(default_factory=Counter)     # "OK", "NOT_FOUND" -> count
    errors: Counter = field(default_factory=Counter)      # exception class name -> count

    @property
    def ops(self) -> int:
        return self.response.get_total_count()

    def add(self, other: OpStats) -> None:
        self.service.add(other.service)
        self.response.add(other.response)
        self.returns.update(other.returns)
        self.errors.update(other.errors)

    def encode(self) -> dict:
        return {"service": self.service.encode(), "response": self.response.encode(),
                "returns": dict(self.returns), "errors": dict(self.errors)}

    @classmethod
    def decode(cls, d: dict) -> OpStats:
        s = cls()
        s.service.decode_and_add(d["service"])
        s.response.decode_and_add(d["response"])
        s.returns.update(d["returns"])
        s.errors.update(d["errors"])
        return s


@dataclass
class IntervalStats:
    """One kind of operation over one progress interval: every sample, in microseconds."""
    service_us: list = field(default_factory=list)
    response_us: list = field(default_factory=list)
    returns: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    @property
    def ops(self) -> int:
        return len(self.response_us)

    def add(self, other: IntervalStats) -> None:
        self.service_us.extend(other.service_us)
        self.response_us.extend(other.response_us)
        self.returns.update(other.returns)
        self.errors.update(other.errors)


def summarize(h: HdrHistogram) -> dict:
    """count, mean, min, percentiles and max of a histogram, in milliseconds."""
    n = h.get_total_count()
    if n == 0:
        return dict(EMPTY)
    pct = h.get_percentile_to_value_dict(list(PERCENTILES))
    return {"count": n, "mean_ms": h.get_mean_value() / 1000.0, "min_ms": h.get_min_value() / 1000.0,
            "p50_ms": pct[50.0] / 1000.0, "p95_ms": pct[95.0] / 1000.0, "p99_ms": pct[99.0] / 1000.0,
            "p999_ms": pct[99.9] / 1000.0, "max_ms": h.get_max_value() / 1000.0}


def summarize_samples(samples_us: list) -> dict:
    """The same figures, exact, from raw samples (nearest rank: the smallest value with at least
    p% of the samples at or below it, as HdrHistogram's value-at-percentile)."""
    n = len(samples_us)
    if n == 0:
        return dict(EMPTY)
    v = sorted(samples_us)

    def at(p: float) -> float:
        return v[max(0, math.ceil(p / 100.0 * n) - 1)] / 1000.0
    return {"count": n, "mean_ms": sum(v) / n / 1000.0, "min_ms": v[0] / 1000.0, "p50_ms": at(50.0),
            "p95_ms": at(95.0), "p99_ms": at(99.0), "p999_ms": at(99.9), "max_ms": v[-1] / 1000.0}


def merge_kinds(stats: dict):
    """All kinds together (the 'total' line); works for OpStats and IntervalStats alike."""
    values = list(stats.values())
    total = type(values[0])() if values else IntervalStats()
    for s in values:
        total.add(s)
    return total


class Recorder:
    """What one run saw: the totals per kind and the current interval per kind."""

    def __init__(self) -> None:
        self.totals: dict[str, OpStats] = {}
        self.interval: dict[str, IntervalStats] = {}
        self.sub_totals: dict[str, OpStats] = {}   # parts of an operation (YCSB's read-modify-write)
        self.error_log: list[tuple[float, str, str]] = []   # (sent at: s from the start, kind, error)

    def _kind(self, kind: str) -> tuple[OpStats, IntervalStats]:
        t = self.totals.get(kind)
        if t is None:
            t = self.totals[kind] = OpStats()
        i = self.interval.get(kind)
        if i is None:
            i = self.interval[kind] = IntervalStats()
        return t, i

    def record(self, kind: str, intended: float, started: float, finished: float, status: str = "OK") -> None:
        """Times in seconds on one monotonic clock."""
        t, i = self._kind(kind)
        service, response = _clamp(int((finished - started) * 1e6)), _clamp(int((finished - intended) * 1e6))
        t.service.record_value(service)
        t.response.record_value(response)
        t.returns[status] += 1
        i.service_us.append(service)
        i.response_us.append(response)
        i.returns[status] += 1

    def record_sub(self, kind: str, started: float, finished: float, status: str = "OK") -> None:
        """A part of an operation, measured on its own (service time only; not an operation of
        the run, so not in the intervals or the overall count)."""
        t = self.sub_totals.get(kind)
        if t is None:
            t = self.sub_totals[kind] = OpStats()
        us = _clamp(int((finished - started) * 1e6))
        t.service.record_value(us)
        t.response.record_value(us)
        t.returns[status] += 1

    def record_error(self, kind: str, error: str, sent_at_s: float | None = None) -> None:
        if sent_at_s is not None and len(self.error_log) < ERROR_LOG_MAX:
            self.error_log.append((round(sent_at_s, 4), kind, error))
        t, i = self._kind(kind)
        t.errors[error] += 1
        i.errors[error] += 1

    def take_interval(self) -> dict[str, IntervalStats]:
        """The interval just ended; a new one begins."""
        done, self.interval = self.interval, {}
        return done
