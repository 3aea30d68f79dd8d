"""sstable_reader.token_buckets: a point read's bisect narrowed to the separators of its token's
bucket finds exactly the block the full bisect finds, whatever the spread of the tokens; and over
block_index.separator_tokens (8-byte ints) too, with the bytes bisect only on a tie."""
from bisect import bisect_right

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.block_index import separator_tokens
from engine.encoding import U64
from engine.sstable_reader import token_buckets

u64s = st.integers(0, 2**64 - 1)
skewed = st.integers(2**40, 2**40 + 50)  # every token in one bucket
sort_keys = st.tuples(st.one_of(u64s, skewed), st.binary(max_size=4)).map(lambda t: U64.pack(t[0]) + t[1])


# real separators are shortest separators, often 2-4 bytes (docs/format.md): shorter than a U64
separator = st.one_of(sort_keys, st.binary(min_size=1, max_size=7), skewed.map(lambda u: U64.pack(u)[:6]))


@settings(max_examples=300)
@given(st.lists(separator, max_size=300, unique=True), st.lists(sort_keys, min_size=1, max_size=50))
def test_narrowed_bisect_is_the_full_bisect(separators, probes):
    separators.sort()
    shift, bounds = token_buckets(separators)
    assert len(bounds) == (1 << (64 - shift)) + 1 and bounds[-1] == len(separators)
    for sk in probes + [s + b"\0" * 8 for s in separators]:  # at each separator: the edges
        b = int.from_bytes(sk[:8], "big") >> shift
        assert bisect_right(separators, sk, bounds[b], bounds[b + 1]) == bisect_right(separators, sk)


@settings(max_examples=300)
@given(st.lists(separator, max_size=300, unique=True), st.lists(sort_keys, min_size=1, max_size=50))
def test_int_bisect_is_the_bytes_bisect(separators, probes):
    separators.sort()
    shift, bounds = token_buckets(separators)
    qs = separator_tokens(separators)
    edges = [s + b"\0" * 8 for s in separators] + [s[:8].ljust(8, b"\0") + b"k" for s in separators]
    for sk in probes + edges:  # as SSTableReader.get_probed does it
        u = int.from_bytes(sk[:8], "big")
        b = u >> shift
        i = bisect_right(qs, u, bounds[b], bounds[b + 1]) - 1
        if i >= 0 and qs[i] == u:
            i = bisect_right(separators, sk) - 1
        assert i == bisect_right(separators, sk) - 1, (sk, i)


def test_about_one_separator_per_bucket():
    separators = sorted(U64.pack(i * (2**64 // 1000)) + b"k" for i in range(1000))
    shift, bounds = token_buckets(separators)
    assert 1000 <= len(bounds) - 1 < 2000
    assert max(bounds[b + 1] - bounds[b] for b in range(len(bounds) - 1)) == 1


def test_the_table_is_capped_and_stays_exact():
    separators = sorted(U64.pack(i * (2**64 // 200_000)) + b"k" for i in range(200_000))
    shift, bounds = token_buckets(separators)
    assert len(bounds) == 65_537
    for sk in separators[::997] + [U64.pack(2**64 - 1), U64.pack(0)]:
        b = int.from_bytes(sk[:8], "big") >> shift
        assert bisect_right(separators, sk, bounds[b], bounds[b + 1]) == bisect_right(separators, sk)
