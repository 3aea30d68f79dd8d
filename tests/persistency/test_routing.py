"""Routing (pure): the token ranges of n partitions are disjoint, cover every key token and agree
with partition_of; an entry routed by its id routes by its row key's cluster token."""
from hypothesis import given
from hypothesis import strategies as st

from engine.token import MAX_TOKEN, MIN_TOKEN, token
from persistency.descriptor import SpaceTypeDescriptor
from persistency.mapping import DefaultFlattenedPropertiesFilter, Mapper, build_metadata
from persistency.routing import key_token, partition_of, routing_token, token_range

key_tokens = st.integers(MIN_TOKEN + 1, MAX_TOKEN)


@given(st.integers(1, 1024), key_tokens)
def test_each_token_is_in_exactly_the_range_of_its_partition(n, t):
    p = partition_of(t, n)
    assert 0 <= p < n
    start, end = token_range(p, n)
    assert start < t <= end
    for q in {0, n - 1, (p + 1) % n, (p - 1) % n} - {p}:
        s, e = token_range(q, n)
        assert not s < t <= e


@given(st.integers(1, 1024))
def test_ranges_are_contiguous_and_cover_the_ring(n):
    ranges = [token_range(i, n) for i in range(n)]
    assert ranges[0][0] == MIN_TOKEN and ranges[-1][1] == MAX_TOKEN
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(s < e for s, e in ranges)
    assert all(partition_of(e, n) == i and partition_of(s + 1, n) == i for i, (s, e) in enumerate(ranges))


def mapper(**kw):
    d = SpaceTypeDescriptor("T", "id", **kw)
    return Mapper(build_metadata(d, DefaultFlattenedPropertiesFilter(), "t"))


def test_routing_by_the_id_is_the_row_keys_token():
    m = mapper(fixed_properties={"id": "long"})
    assert key_token(m, 1) == token((1).to_bytes(8, "big", signed=True))
    assert routing_token(m, {"id": 1, "x": 2}) == key_token(m, 1)
    s = mapper(fixed_properties={"id": "string"})
    assert key_token(s, "k1") == token(b"k1")
    by_region = mapper(fixed_properties={"id": "long"}, routing_property="region")
    assert routing_token(by_region, {"id": 1, "region": "eu"}) != routing_token(by_region, {"id": 1, "region": "us"})
    assert routing_token(by_region, {"id": 1}) == key_token(m, 1)   # no routing value: the id
