"""bench.quorum_client's open-loop schedule (`pacing`): intended start times stay exact whatever
the tick, every request is started once, none before its intended time, and the pacer never
sleeps past a due request's tick."""
from __future__ import annotations

import math

from bench.quorum_client import pacing


def run_schedule(interval: float, tick: float, t_end: float, jitter=lambda k: 0.0):
    """Drive `pacing` as the worker does, each wake-up late by jitter(k); returns (intended, started)."""
    t0, i, now, k, out = 0.0, 0, 0.0, 0, []
    while True:
        j, wake = pacing(i, t0, interval, now, t_end, tick)
        out += [(t0 + n * interval, now) for n in range(i, j)]
        i = j
        if wake is None:
            return out
        assert wake > now
        now = wake + jitter(k)
        k += 1


def test_intended_times_are_exact_and_each_request_starts_once():
    for tick in (0.0, 0.001, 0.002):
        out = run_schedule(1 / 1350, tick, 0.5)
        assert [x for x, _ in out] == [n * (1 / 1350) for n in range(len(out))]
        assert len(out) == math.ceil(0.5 * 1350)
        assert all(started >= intended for intended, started in out)


def test_tick_wakes_at_the_first_boundary_at_or_after_the_next_request():
    out = run_schedule(0.0003, 0.001, 0.1)
    assert max(started - intended for intended, started in out) <= 0.001 + 1e-12
    assert {round(started * 1000, 6) % 1 for _, started in out} == {0.0}     # wakes on ticks only
    out0 = run_schedule(0.0003, 0.0, 0.1)
    assert all(abs(started - intended) < 1e-12 for intended, started in out0)


def test_a_late_pacer_starts_everything_overdue_at_once():
    out = run_schedule(0.001, 0.001, 0.05, jitter=lambda k: 0.02 if k == 3 else 0.0)
    starts = [started for _, started in out]
    assert len(out) == 50
    assert max(starts.count(s) for s in set(starts)) >= 20     # the 20 ms stall's backlog in one batch
