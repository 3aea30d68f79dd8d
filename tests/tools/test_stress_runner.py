"""The load driver on an in-process workload whose answers take known times: stopping rules,
error counting, and coordinated-omission correction at a fixed rate."""
import asyncio

import pytest

from engine.errors import InvalidRequest
from tools.stress.latency import summarize
from tools.stress.runner import run_load


class SleepyWorkload:
    """Operation i answers after `delays.get(i, base_s)` seconds, or raises `errors[i]`."""

    def __init__(self, base_s=0.001, delays=None, errors=None):
        self.base_s, self.delays, self.errors = base_s, delays or {}, errors or {}
        self.i = 0
        self.recorder = None

    def next_op(self, rng):
        i, self.i = self.i, self.i + 1

        async def op():
            await asyncio.sleep(self.delays.get(i, self.base_s))
            if i in self.errors:
                raise self.errors[i]
            return "NOT_FOUND" if i % 10 == 0 else "OK"
        return "WRITE", op


def run(wl, **kw):
    intervals = []
    res = asyncio.run(run_load(wl, on_interval=lambda t, s: intervals.append((t, s)), **kw))
    return res, intervals


def test_closed_loop_stops_after_n_and_counts_returns():
    res, intervals = run(SleepyWorkload(), threads=4, n=100, duration_s=None, rate=None)
    w = res.totals["WRITE"]
    assert res.stopped_by == "n" and w.ops == 100
    assert w.returns == {"OK": 90, "NOT_FOUND": 10}
    assert sum(s["WRITE"].ops for _, s in intervals) == 100          # intervals add up to the totals
    assert summarize(w.service) == summarize(w.response)              # closed loop: the same clock


def test_duration_stops_the_run():
    res, _ = run(SleepyWorkload(), threads=2, n=None, duration_s=0.3, rate=None)
    assert res.stopped_by == "duration" and 0.3 <= res.elapsed_s < 2.0 and res.totals["WRITE"].ops > 10


def test_errors_are_counted_by_kind_and_do_not_stop_the_run():
    errors = {3: TimeoutError("slow"), 4: ConnectionError("gone"), 5: TimeoutError("slow")}
    res, intervals = run(SleepyWorkload(errors=errors), threads=1, n=20, duration_s=None, rate=None)
    assert res.totals["WRITE"].errors == {"TimeoutError": 2, "ConnectionError": 1}
    assert res.totals["WRITE"].ops == 17
    assert sum(sum(s["WRITE"].errors.values()) for _, s in intervals) == 3


def test_an_invalid_request_ends_the_run():
    res, _ = run(SleepyWorkload(errors={2: InvalidRequest("no such table")}), threads=1, n=50,
                 duration_s=None, rate=None)
    assert res.stopped_by == "error" and isinstance(res.error, InvalidRequest)
    assert res.totals["WRITE"].ops == 2


def test_fixed_rate_keeps_its_schedule():
    res, _ = run(SleepyWorkload(), threads=4, n=60, duration_s=None, rate=200.0)
    assert res.totals["WRITE"].ops == 60
    assert 0.28 <= res.elapsed_s < 1.5                               # 60 ops at 200/s: ~0.3 s, not faster


@pytest.mark.timeout(30)
def test_fixed_rate_charges_a_stall_to_the_operations_it_delayed():
    """One operation stalls 400 ms with one worker at 100/s: the ~40 operations scheduled during
    the stall are late, and their response time (from the intended start) shows it, while their
    service time does not. A closed-loop recorder would hide all but the one slow sample."""
    res, _ = run(SleepyWorkload(delays={10: 0.4}), threads=1, n=100, duration_s=None, rate=100.0)
    w = res.totals["WRITE"]
    service = [v for v, n in _values(w.service) for _ in range(n)]
    response = [v for v, n in _values(w.response) for _ in range(n)]
    assert sum(1 for v in service if v > 100_000) <= 2                # only the stalled op itself (+ noise)
    assert sum(1 for v in response if v > 100_000) >= 25             # the ops queued behind it
    assert max(response) >= 380_000


def _values(h):
    return [(item.value_iterated_to, item.count_at_value_iterated_to) for item in h.get_recorded_iterator()]


def test_errors_are_logged_with_their_send_time():
    res, _ = run(SleepyWorkload(delays={5: 0.3}, errors={5: TimeoutError("late")}), threads=1, n=8,
                 duration_s=None, rate=100.0)
    [(sent, kind, error)] = res.error_log
    assert (kind, error) == ("WRITE", "TimeoutError") and 0.04 <= sent < 0.2   # sent at ~0.05 s, failed at ~0.35 s
