"""Key generators are what they claim, on seeded samples: cassandra-stress's distributions and
YCSB's zipfian, scrambled zipfian, latest, key names and the acknowledged insert counter."""
import random
import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.stress.distribution import (
    Fixed,
    Gaussian,
    Sequence,
    Uniform,
    parse_distribution,
)
from tools.stress.settings import parse
from tools.stress.ycsb import AcknowledgedCounter, YcsbWorkload, properties
from tools.stress.zipfian import (
    SCRAMBLED_ZETAN,
    ScrambledZipfianGenerator,
    SkewedLatestGenerator,
    ZipfianGenerator,
    fnvhash64,
    zeta,
)

N = 40_000


def sample(gen, n=N, seed=1):
    rng = random.Random(seed)
    return [gen.next(rng) for _ in range(n)]


def test_parse_spellings():
    assert parse_distribution("uniform(1..100)") == Uniform(1, 100)
    assert parse_distribution("GAUSSIAN(0..10, 2)") == Gaussian(0, 10, 2.0)
    assert parse_distribution("fixed(34)") == Fixed(34) == parse_distribution("34")
    assert parse_distribution("seq(5..9)") == Sequence(5, 9)


@given(low=st.integers(0, 10**6), width=st.integers(0, 10**6), seed=st.integers(0, 2**32))
def test_every_distribution_stays_in_its_range(low, width, seed):
    rng = random.Random(seed)
    for d in (Uniform(low, low + width), Gaussian(low, low + width, 0.5), Sequence(low, low + width)):
        for _ in range(20):
            assert low <= d.next(rng) <= low + width


def test_uniform_is_flat():
    xs = sample(Uniform(1, 100))
    counts = Counter((x - 1) // 10 for x in xs)
    assert min(xs) == 1 and max(xs) == 100
    assert all(abs(counts[d] - N / 10) < 0.06 * N / 10 for d in range(10)), counts
    assert abs(statistics.fmean(xs) - 50.5) < 0.5


def test_gaussian_has_the_cassandra_stress_mean_and_spread():
    d = Gaussian(1, 1000)                      # stdvrng 3: stdev = 999 / 2 / 3
    xs = sample(d)
    assert abs(statistics.fmean(xs) - 500.5) < 3
    assert abs(statistics.pstdev(xs) - 166.5) < 0.04 * 166.5
    inside = sum(1 for x in xs if abs(x - 500.5) <= 166.5) / N
    assert 0.66 < inside < 0.71                # one standard deviation: 68%


def test_sequence_walks_and_wraps():
    d = Sequence(3, 5)
    assert [d.next(None) for _ in range(7)] == [3, 4, 5, 3, 4, 5, 3]


def test_fnvhash64_matches_ycsb_key_names():
    # YCSB's first key is "user6284781860667377211" (insertorder=hashed)
    assert fnvhash64(0) == 6284781860667377211
    wl = YcsbWorkload(parse(["ycsb", "--workload", "a"]), "a", "load", seed=1)
    assert wl.key_name(0) == "user6284781860667377211"
    ordered = YcsbWorkload(parse(["ycsb", "--workload", "a", "-p", "insertorder=ordered", "-p", "zeropadding=5"]),
                           "a", "load", seed=1)
    assert ordered.key_name(42) == "user00042"
    assert all(fnvhash64(v) >= 0 for v in range(1000))


def test_zipfian_frequencies_follow_rank_to_the_minus_theta():
    items, theta = 1000, 0.99
    xs = sample(ZipfianGenerator(0, items - 1, theta), n=60_000)
    assert min(xs) >= 0 and max(xs) < items
    zn = zeta(0, items, theta)
    counts = Counter(xs)
    for rank in (0, 1):                         # the two ranks Gray's method draws exactly
        expected = 1 / ((rank + 1) ** theta * zn)
        got = counts[rank] / len(xs)
        assert abs(got - expected) < 0.08 * expected, (rank, got, expected)
    top10 = sum(counts[r] for r in range(10)) / len(xs)
    assert abs(top10 - zeta(0, 10, theta) / zn) < 0.05   # ~39% of draws hit the 10 hottest items
    assert counts[0] > counts[1] > counts[5] > counts[50]


def test_scrambled_zipfian_spreads_the_hot_keys():
    items = 1000
    xs = sample(ScrambledZipfianGenerator(0, items - 1), n=60_000)
    assert min(xs) >= 0 and max(xs) < items
    hottest, n = Counter(xs).most_common(1)[0]
    assert hottest == fnvhash64(0) % items       # zipfian item 0, scattered by FNV
    assert abs(n / len(xs) - 1 / SCRAMBLED_ZETAN) < 0.01   # ~3.8% of draws
    assert len(set(xs)) > items * 0.6            # and the rest spread over the key space


def test_latest_favours_the_newest_insert():
    counter = AcknowledgedCounter(1000)
    for k in range(1000, 1100):
        counter.next()
        counter.acknowledge(k)
    assert counter.last_value() == 1099
    xs = sample(SkewedLatestGenerator(counter), n=20_000)
    assert max(xs) == 1099 and min(xs) >= 0
    counts = Counter(xs)
    assert counts.most_common(1)[0][0] == 1099
    assert sum(1 for x in xs if x >= 1090) / len(xs) > 0.3


def test_acknowledged_counter_waits_for_gaps():
    c = AcknowledgedCounter(10)
    a, b, d = c.next(), c.next(), c.next()
    assert (a, b, d) == (10, 11, 12) and c.last_value() == 9
    c.acknowledge(12)
    c.acknowledge(11)
    assert c.last_value() == 9                   # 10 still in flight
    c.acknowledge(10)
    assert c.last_value() == 12


@pytest.mark.parametrize("letter, mix", [
    ("a", {"READ": 0.5, "UPDATE": 0.5}), ("b", {"READ": 0.95, "UPDATE": 0.05}), ("c", {"READ": 1.0}),
    ("d", {"READ": 0.95, "INSERT": 0.05}), ("e", {"SCAN": 0.95, "INSERT": 0.05}),
    ("f", {"READ": 0.5, "READ-MODIFY-WRITE": 0.5}),
])
def test_core_workload_mixes(letter, mix):
    wl = YcsbWorkload(parse(["ycsb", "--workload", letter]), letter, "run", seed=3)
    rng = random.Random(5)
    kinds = Counter(wl.next_op(rng)[0] for _ in range(10_000))
    assert set(kinds) == set(mix)
    for kind, share in mix.items():
        assert abs(kinds[kind] / 10_000 - share) < 0.02, (kind, kinds)


def test_ycsb_defaults_and_overrides():
    p = properties("e", {"fieldcount": "3", "readallfields": "false"})
    assert (p["recordcount"], p["operationcount"], p["fieldlength"]) == (1000, 1000, 100)
    assert p["fieldcount"] == 3 and p["readallfields"] is False and p["maxscanlength"] == 100
    assert p["insertcount"] == 1000 and p["requestdistribution"] == "zipfian"
    for bad, says in (({"colour": "x"}, "unknown YCSB property"), ({"fieldcount": "0"}, "1 to"),
                      ({"readproportion": "2"}, "between 0 and 1"), ({"requestdistribution": "pareto"}, "uniform")):
        with pytest.raises(Exception, match=says):
            properties("a", bad)


def test_load_phase_inserts_every_record_once():
    wl = YcsbWorkload(parse(["ycsb", "--workload", "a", "-p", "recordcount=50", "-p", "fieldlength=7"]),
                      "a", "load", seed=1)
    assert wl.total_ops == 50
    rng = random.Random(1)
    ops = [wl.next_op(rng) for _ in range(50)]
    assert {k for k, _ in ops} == {"INSERT"}
    zipf_keys = Counter(wl.key_name(wl.next_keynum(rng)) for _ in range(2000))
    assert set(zipf_keys) <= {wl.key_name(i) for i in range(50)}   # never a key that was not loaded
    assert len(wl._value(rng)) == 7
