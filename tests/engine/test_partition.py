"""The reconcile rule and the partition model: Cassandra's tie-breaks, algebraic laws, shadowing, purge."""
from hypothesis import given, strategies as st

from engine.compaction.purge import compact_partition
from engine.partition import (NO_DELETION_TIME, Partition, Row, decode_partition,
                              encode_partition, live_rows, merge_all, reconcile_cells)

ts = st.integers(0, 5)
ldt = st.integers(0, 5)
value = st.binary(max_size=2)
live = st.builds(lambda t, v: (t, NO_DELETION_TIME, 0, v), ts, value)
expiring = st.builds(lambda t, e, ttl, v: (t, e, ttl, v), ts, ldt, st.integers(1, 3), value)
tombstone = st.builds(lambda t, d: (t, d, 0, None), ts, ldt)
cells = st.one_of(live, expiring, tombstone)


def test_cassandra_tie_breaks():
    live_a = (10, NO_DELETION_TIME, 0, b"a")
    live_b = (10, NO_DELETION_TIME, 0, b"b")
    tomb = (10, 100, 0, None)
    exp = (10, 200, 5, b"z")
    assert reconcile_cells((11, NO_DELETION_TIME, 0, b"a"), tomb)[0] == 11   # higher timestamp wins
    assert reconcile_cells(live_a, tomb) == tomb          # tombstone beats live on a tie
    assert reconcile_cells(live_b, exp) == exp            # expiring beats live (CASSANDRA-14592)
    assert reconcile_cells(exp, tomb) == tomb             # pure tombstone beats expiring
    assert reconcile_cells((10, 101, 0, None), tomb) == (10, 101, 0, None)  # higher ldt
    assert reconcile_cells(live_a, live_b) == live_b      # greater value
    assert reconcile_cells((10, NO_DELETION_TIME, 0, b"\x80"), (10, NO_DELETION_TIME, 0, b"\x7f"))[3] == b"\x80"  # unsigned


@given(cells, cells)
def test_reconcile_is_commutative(a, b):
    assert reconcile_cells(a, b) == reconcile_cells(b, a)


@given(cells, cells, cells)
def test_reconcile_is_associative(a, b, c):
    assert reconcile_cells(reconcile_cells(a, b), c) == reconcile_cells(a, reconcile_cells(b, c))


@given(cells)
def test_reconcile_is_idempotent(a):
    assert reconcile_cells(a, a) == a


ck = st.sampled_from([b"", b"a", b"b", b"c"])
deletion = st.one_of(st.none(), st.tuples(ts, ldt))
rows = st.dictionaries(ck, st.builds(Row, deletion, st.dictionaries(st.integers(0, 2), cells, max_size=3)), max_size=3)
ranges = st.lists(st.tuples(st.sampled_from([b"", b"a", b"b"]), st.sampled_from([None, b"b", b"c"]), ts, ldt), max_size=2)
partitions = st.builds(Partition, deletion, rows, ranges)


@given(partitions)
def test_encode_decode_round_trip(p):
    normal = merge_all([p])
    assert decode_partition(encode_partition(normal)) == normal


@given(partitions, partitions, partitions)
def test_partition_merge_is_order_independent(a, b, c):
    one = merge_all([a, b, c])
    two = merge_all([c, a, b])
    assert one == two
    assert merge_all([one, b]) == one  # idempotent: replayed hints and repairs are harmless


def test_shadowing_by_every_level():
    cell = (5, NO_DELETION_TIME, 0, b"v")
    p = Partition(None, {b"a": Row(None, {1: cell}), b"b": Row(None, {1: cell}), b"c": Row(None, {1: cell})})
    assert [k for k, _ in live_rows(p, 0)] == [b"a", b"b", b"c"]
    p.rows[b"a"].deletion = (5, 0)                       # row deletion covers ts <= 5
    p.ranges.append((b"b", b"c", 6, 0))                  # range [b, c)
    assert [k for k, _ in live_rows(p, 0)] == [b"c"]
    p.deletion = (5, 0)                                  # partition deletion
    assert list(live_rows(p, 0)) == []
    p.rows[b"c"].cells[1] = (7, NO_DELETION_TIME, 0, b"new")  # newer data survives
    assert [k for k, _ in live_rows(p, 0)] == [b"c"]


def test_ttl_expiry_and_tombstone_counter():
    p = Partition(None, {b"": Row(None, {1: (1, 100, 10, b"v"), 2: (1, 50, 0, None)})})
    counter = [0]
    assert [k for k, _ in live_rows(p, 99, counter=counter)] == [b""]
    assert counter == [1]
    assert list(live_rows(p, 100)) == []   # expired at its expiry second


def test_purge_only_past_gc_grace_and_below_overlapping_data():
    tomb = (10, 1000, 0, None)
    p = Partition(None, {b"": Row(None, {1: tomb})})
    assert compact_partition(p, 2000, gc_before=1000, max_purgeable_ts=2**63 - 1) is not None  # ldt not < gc_before
    assert compact_partition(p, 2000, gc_before=1001, max_purgeable_ts=2**63 - 1) is None
    assert compact_partition(p, 2000, gc_before=1001, max_purgeable_ts=10) is not None   # older data elsewhere


def test_compaction_drops_shadowed_and_turns_expired_into_tombstones():
    p = Partition((5, 100), {b"a": Row(None, {1: (4, NO_DELETION_TIME, 0, b"old"), 2: (9, 150, 50, b"e")})})
    out = compact_partition(p, now_s=200, gc_before=0, max_purgeable_ts=2**63 - 1)
    assert out.deletion == (5, 100)
    assert out.rows[b"a"].cells == {2: (9, 100, 0, None)}  # expired: tombstone dated expiry - ttl
