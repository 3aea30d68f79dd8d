"""Phi accrual: Cassandra's ArrivalWindow arithmetic, conviction bound and local-pause grace."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ring.failure_detector import PHI_FACTOR, FailureDetector

EP = "10.0.0.2:9100"
BOUND = 8 * math.log(10)  # convicted after 18.42 mean intervals of silence


def steady(fd: FailureDetector, beats: int, interval_ms: int = 1000, start_ms: int = 0) -> int:
    now = start_ms
    for _ in range(beats):
        fd.report(EP, now)
        now += interval_ms
    return now - interval_ms  # the last heartbeat


def test_first_heartbeat_seeds_the_window_with_twice_the_gossip_interval():
    fd = FailureDetector()
    fd.report(EP, 50_000)
    assert fd.mean_interval_ms(EP) == 2000
    assert fd.phi(EP, 52_000) == PHI_FACTOR * 1.0
    assert FailureDetector(gossip_interval_ms=200).mean_interval_ms(EP) is None


def test_regular_heartbeats_keep_phi_small():
    fd = FailureDetector()
    last = steady(fd, 1001)
    assert fd.mean_interval_ms(EP) == 1000  # the 2 s seed has left the 1000-interval window
    assert fd.phi(EP, last) == 0.0
    assert fd.phi(EP, last + 1000) == PHI_FACTOR < 0.5
    assert fd.is_alive(EP, last + 1000)
    fd.check_invariants()


def test_conviction_after_18_42_mean_intervals_of_silence():
    fd = FailureDetector()
    last = steady(fd, 1001)
    assert fd.is_alive(EP, last + int(18.40 * 1000))
    assert fd.is_alive(EP, last + int(18.42 * 1000))  # 18.42 < 8 ln 10 = 18.4207
    assert not fd.is_alive(EP, last + int(18.43 * 1000))
    assert fd.tick(last + 18_000) == []
    assert fd.tick(last + 19_000) == [EP]


def test_intervals_above_the_maximum_are_ignored():
    fd = FailureDetector()
    fd.report(EP, 0)
    fd.report(EP, 1000)
    fd.report(EP, 60_000)  # a 59 s gap (a partition) is not learned
    assert fd.mean_interval_ms(EP) == (2000 + 1000) / 2
    fd.check_invariants()


def test_no_convictions_within_five_seconds_of_a_local_pause():
    fd = FailureDetector()
    last = steady(fd, 30)
    fd.tick(last)
    # this process was stopped for 30 s: every peer looks silent, but the silence is ours
    resumed = last + 30_000
    assert fd.tick(resumed) == []
    assert fd.is_alive(EP, resumed + 4_999)
    assert not fd.is_alive(EP, resumed + 5_000)
    fd2 = FailureDetector()
    fd2.report(EP, 0)
    fd2.note_local_pause(100_000)
    assert fd2.is_alive(EP, 104_000) and not fd2.is_alive(EP, 105_000)


def test_unknown_and_removed_endpoints_are_not_alive():
    fd = FailureDetector()
    assert fd.phi(EP, 0) == 0.0 and not fd.is_alive(EP, 0)
    fd.report(EP, 0)
    assert fd.is_alive(EP, 0) and fd.endpoints == [EP]
    fd.remove(EP)
    assert not fd.is_alive(EP, 0) and fd.endpoints == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=200), st.integers(0, 100_000),
       st.integers(0, 100_000))
def test_phi_is_monotonic_in_silence(intervals, a, b):
    fd = FailureDetector(window=50)
    now = 0
    fd.report(EP, now)
    for gap in intervals:
        now += gap
        fd.report(EP, now)
    fd.check_invariants()
    early, late = sorted((a, b))
    assert fd.phi(EP, now + early) <= fd.phi(EP, now + late)
    mean = fd.mean_interval_ms(EP)
    assert fd.is_alive(EP, now + early) == (early / mean <= BOUND)
