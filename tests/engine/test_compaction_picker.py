"""Tests for the pure compaction pickers: engine/compaction/{picker,size_tiered,leveled}.py.

Hand-made snapshots pin each rule; the simulated loop and the hypothesis properties are in
test_compaction_simulation.py.
"""
from __future__ import annotations

import pytest

from engine.compaction import picker, size_tiered
from engine.compaction.picker import plan_major
from engine.compaction.task import check_level_invariants
from engine.errors import InvalidRequest
from tests.engine.compaction_snapshots import DAY, LCS, MIB, NOW, STCS, plan_of, sst


# -- options ----------------------------------------------------------------------------------

def test_defaults_are_cassandras():
    s = picker.validate_options({})
    assert s == {"class": "SizeTieredCompactionStrategy", "enabled": True, "min_threshold": 4,
                 "max_threshold": 32, "tombstone_threshold": 0.2, "tombstone_compaction_interval": 86400,
                 "unchecked_tombstone_compaction": False, "bucket_low": 0.5, "bucket_high": 1.5,
                 "min_sstable_size": 50 * MIB}
    lcs = picker.validate_options({"class": "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"})
    assert lcs["class"] == "LeveledCompactionStrategy"
    assert lcs["sstable_size_in_mb"] == 160 and lcs["fanout_size"] == 10


def test_string_values_are_parsed():
    s = picker.validate_options({"class": "SizeTieredCompactionStrategy", "min_threshold": "6",
                                 "bucket_low": "0.25", "unchecked_tombstone_compaction": "true"})
    assert s["min_threshold"] == 6 and s["bucket_low"] == 0.25 and s["unchecked_tombstone_compaction"] is True


@pytest.mark.parametrize("options, word", [
    ({"class": "NoSuchStrategy"}, "class"),
    ({"class": "TimeWindowCompactionStrategy"}, "not supported"),
    ({"class": 3}, "class"),
    ({"min_threshold": 1}, "min_threshold"),
    ({"min_threshold": 0}, "min_threshold"),
    ({"min_threshold": 8, "max_threshold": 4}, "min_threshold"),
    ({"max_threshold": "x"}, "max_threshold"),
    ({"min_threshold": True}, "min_threshold"),
    ({"bucket_low": -0.1}, "bucket_low"),
    ({"bucket_low": 0.8, "bucket_high": 0.8}, "bucket_high"),
    ({"bucket_high": float("nan")}, "bucket_high"),
    ({"min_sstable_size": -1}, "min_sstable_size"),
    ({"tombstone_threshold": -0.5}, "tombstone_threshold"),
    ({"tombstone_compaction_interval": -1}, "tombstone_compaction_interval"),
    ({"unchecked_tombstone_compaction": "maybe"}, "unchecked_tombstone_compaction"),
    ({"enabled": 1}, "enabled"),
    ({"sstable_size_in_mb": 160}, "sstable_size_in_mb"),  # an LCS option given to STCS
    ({"class": "LeveledCompactionStrategy", "sstable_size_in_mb": 0}, "sstable_size_in_mb"),
    ({"class": "LeveledCompactionStrategy", "fanout_size": 0}, "fanout_size"),
    ({"class": "LeveledCompactionStrategy", "bogus": 1}, "bogus"),
])
def test_bad_options_raise_naming_the_option(options, word):
    with pytest.raises(InvalidRequest, match=word):
        picker.validate_options(options)
    with pytest.raises(InvalidRequest, match=word):
        plan_of(options, [])


def test_bad_gc_grace_raises():
    with pytest.raises(InvalidRequest, match="gc_grace_seconds"):
        plan_of(STCS, [], gc_grace=-1)


def test_disabled_plans_nothing_but_major_still_works():
    snap = [sst(i) for i in range(1, 6)]
    assert plan_of({"enabled": False}, snap) is None
    assert plan_major({"enabled": "false"}, snap, frozenset()).inputs == (1, 2, 3, 4, 5)


# -- STCS ---------------------------------------------------------------------------------------

def sizes_of(buckets):
    return [[s.size_bytes for s in b] for b in buckets]


def test_buckets_form_as_cassandra_does():
    # min_sstable_size 0: only the 0.5..1.5 (strict) rule applies; the average moves as tables join.
    snap = [sst(g, size) for g, size in enumerate([100, 150, 200, 1000, 1100, 5000], 1)]
    buckets = size_tiered.get_buckets(snap, 0.5, 1.5, 0)
    # 150 is not < 1.5*100 (strict); 200 joins the 150 bucket (avg 175); 1100 joins 1000.
    assert sizes_of(buckets) == [[100], [150, 200], [1000, 1100], [5000]]


def test_min_sstable_size_groups_small_tables_of_any_ratio():
    snap = [sst(1, 1 * MIB), sst(2, 40 * MIB), sst(3, 49 * MIB), sst(4, 2 * MIB)]
    assert sizes_of(size_tiered.get_buckets(snap, 0.5, 1.5, 50 * MIB)) == [[MIB, 2 * MIB, 40 * MIB, 49 * MIB]]
    assert len(size_tiered.get_buckets(snap, 0.5, 1.5, 0)) == 3
    t = plan_of(STCS, snap)
    assert t.inputs == (1, 2, 3, 4) and t.output_level == 0 and t.max_output_bytes is None
    assert t.reason == "size-tiered bucket"
    assert plan_of({**STCS, "min_sstable_size": 0}, snap) is None


def test_min_threshold():
    three = [sst(g, 100 * MIB) for g in (1, 2, 3)]
    assert plan_of(STCS, three) is None
    assert plan_of({"min_threshold": 3}, three).inputs == (1, 2, 3)
    assert plan_of(STCS, three + [sst(4, 110 * MIB)]).inputs == (1, 2, 3, 4)


def test_max_threshold_trims_the_largest():
    snap = [sst(g, (100 + g) * MIB) for g in range(1, 41)]
    t = plan_of(STCS, snap)
    assert t.inputs == tuple(range(1, 33))
    t = plan_of({"max_threshold": 5}, snap)
    assert t.inputs == (1, 2, 3, 4, 5)


def test_hottest_bucket_is_most_tables_then_smallest_average():
    small = [sst(g, 100 * MIB) for g in range(1, 5)]
    big = [sst(g, 1000 * MIB) for g in range(5, 10)]
    assert plan_of(STCS, small + big).inputs == (5, 6, 7, 8, 9)  # 5 tables beat 4
    big4 = big[:4]
    assert plan_of(STCS, big4 + small).inputs == (1, 2, 3, 4)  # equal counts: smaller average
    # count is taken after trimming to max_threshold
    assert plan_of({"max_threshold": 4}, small + big).inputs == (1, 2, 3, 4)


def test_compacting_tables_are_never_chosen():
    snap = [sst(g, 100 * MIB) for g in range(1, 7)]
    assert plan_of(STCS, snap, compacting={1, 2}).inputs == (3, 4, 5, 6)
    assert plan_of(STCS, snap, compacting={1, 2, 3}) is None
    assert plan_major(STCS, snap, frozenset({1, 2})).inputs == (3, 4, 5, 6)


def tomb(gen, size=100 * MIB, first=0, last=100, **kw):
    kw.setdefault("droppable", 30)
    kw.setdefault("cells", 100)
    return sst(gen, size, first=first, last=last, **kw)


def test_tombstone_compaction_conditions():
    t = plan_of(STCS, [tomb(1)])
    assert (t.inputs, t.reason, t.output_level, t.max_output_bytes) == ((1,), "tombstone", 0, None)
    # too young: age must reach tombstone_compaction_interval
    assert plan_of(STCS, [tomb(1, created=NOW - DAY + 1)]) is None
    assert plan_of(STCS, [tomb(1, created=NOW - DAY)]).inputs == (1,)
    # ratio must be strictly above tombstone_threshold
    assert plan_of(STCS, [tomb(1, droppable=20)]) is None
    assert plan_of(STCS, [tomb(1, droppable=21)]).inputs == (1,)
    assert plan_of({"tombstone_threshold": 0.5}, [tomb(1)]) is None
    assert plan_of(STCS, [tomb(1, droppable=5, cells=0)]).inputs == (1,)  # ratio = 5 / max(1, 0)


def test_tombstone_compaction_overlap_rules():
    other = sst(2, 10 * MIB, first=50, last=200, min_ts=100)
    assert plan_of(STCS, [tomb(1), other]) is None  # overlaps, may shadow
    assert plan_of({"unchecked_tombstone_compaction": True}, [tomb(1), other]).inputs == (1,)
    # compacting sstables still count as overlaps
    assert plan_of(STCS, [tomb(1), other], compacting={2}) is None
    # no overlap: a disjoint token range, or equal token but disjoint keys
    assert plan_of(STCS, [tomb(1), sst(2, 10 * MIB, first=101, last=200)]).inputs == (1,)
    edge = sst(2, 10 * MIB, first=100, last=200, fk=b"b")
    assert plan_of(STCS, [tomb(1, lk=b"a"), edge]).inputs == (1,)
    assert plan_of(STCS, [tomb(1, lk=b"b"), edge]) is None  # closed interval: (100,b) is shared
    # fully expired: every deletion past gc_before and all data older than the overlaps
    expired = tomb(1, max_ts=50, ldt=NOW - 864000 - 1)
    assert plan_of(STCS, [expired, other]).inputs == (1,)
    assert plan_of(STCS, [tomb(1, max_ts=50, ldt=NOW - 864000), other]) is None
    assert plan_of(STCS, [tomb(1, max_ts=100, ldt=0), other]) is None


def test_tombstone_compaction_picks_the_largest_and_only_without_a_bucket():
    snap = [tomb(1, 10 * MIB, first=0, last=9), tomb(2, 300 * MIB, first=10, last=19),
            tomb(3, 200 * MIB, first=20, last=29)]
    assert plan_of(STCS, snap).inputs == (2,)
    assert plan_of(STCS, snap, compacting={2}).inputs == (3,)
    bucket = [sst(g, 900 * MIB, first=1000, last=2000) for g in range(4, 8)]
    assert plan_of(STCS, snap + bucket).reason == "size-tiered bucket"


def test_stcs_major():
    assert plan_major(STCS, [sst(1)], frozenset()) is None
    assert plan_major(STCS, [tomb(1)], frozenset()).inputs == (1,)
    t = plan_major(STCS, [sst(3), sst(1, 10**12), sst(2)], frozenset())
    assert (t.inputs, t.output_level, t.max_output_bytes, t.reason) == ((1, 2, 3), 0, None, "major")


# -- LCS ----------------------------------------------------------------------------------------

S = 160 * MIB


def test_l0_to_l1_with_overlapping_l1():
    l0 = [sst(g, 50 * MIB, 0, first=100, last=300) for g in range(10, 13)]
    l1 = [sst(1, S, 1, 0, 99), sst(2, S, 1, 100, 199), sst(3, S, 1, 250, 400), sst(4, S, 1, 401, 500)]
    assert plan_of(LCS, l0 + l1) is None  # 3 L0 sstables: below the trigger
    l0.append(sst(13, 50 * MIB, 0, first=150, last=160))
    t = plan_of(LCS, l0 + l1)
    assert t.inputs == (2, 3, 10, 11, 12, 13)
    assert (t.output_level, t.max_output_bytes, t.reason) == (1, S, "L0->L1")
    # an overlapping L1 sstable is busy: wait
    assert plan_of(LCS, l0 + l1, compacting={3}) is None
    # the hull counts, not each sstable: [0..10] and [450..460] span L1 sstables between them
    spread = [sst(20, 50 * MIB, 0, 0, 10), sst(21, 50 * MIB, 0, 450, 460)] * 1
    spread += [sst(22, 50 * MIB, 0, 5, 6), sst(23, 50 * MIB, 0, 455, 456)]
    assert plan_of(LCS, spread + l1).inputs == (1, 2, 3, 4, 20, 21, 22, 23)


def test_big_l0_goes_up_below_the_count_trigger():
    # fewer than 4 L0 sstables, but over the L0 cap of 4 * sstable_size (e.g. after a switch from STCS)
    big = [sst(1, 3 * S, 0, 0, 100), sst(2, 2 * S, 0, 50, 150)]
    t = plan_of(LCS, big + [sst(9, S, 1, 140, 200), sst(10, S, 1, 300, 400)])
    assert (t.inputs, t.output_level) == ((1, 2, 9), 1)
    assert plan_of(LCS, [sst(1, 4 * S, 0, 0, 100)]) is None  # alone, nothing to merge with
    assert plan_of(LCS, [sst(1, 5 * S, 0, 0, 100), sst(9, S, 1, 50, 60)]).inputs == (1, 9)
    assert plan_of(LCS, big[:1] + [sst(2, S, 0, 50, 150)]) is None  # exactly 4 * sstable_size


def test_small_l0_is_merged_in_place():
    l0 = [sst(g, 10 * MIB, 0, 0, 100) for g in range(1, 5)]
    t = plan_of(LCS, l0 + [sst(9, S, 1, 0, 100)])
    assert (t.inputs, t.output_level, t.reason) == ((1, 2, 3, 4), 0, "L0 in place")


def test_l0_takes_the_32_oldest():
    l0 = [sst(g, 10 * MIB, 0, 0, 100) for g in range(1, 33)]
    t = plan_of(LCS, l0)
    assert t.inputs == tuple(range(1, 33)) and t.output_level == 1


def test_stcs_in_l0_at_33():
    l0 = [sst(g, 10 * MIB, 0, 0, 100) for g in range(1, 34)]
    t = plan_of(LCS, l0)
    assert (t.reason, t.output_level, t.max_output_bytes) == ("STCS in L0", 0, None)
    assert t.inputs == tuple(range(1, 33))  # trimmed to 32
    # the count includes compacting L0 sstables; the bucket does not
    t = plan_of(LCS, l0, compacting={1, 2})
    assert t.reason == "STCS in L0" and t.inputs == tuple(range(3, 34))


def l1_full(n, start_gen=1, size=S):
    """n L1 sstables of `size` over tokens [i*100, i*100+99]."""
    return [sst(start_gen + i, size, 1, i * 100, i * 100 + 99) for i in range(n)]


def test_level_overflow_pushes_the_cheapest_with_its_overlaps():
    l1 = l1_full(10)
    l2 = [sst(100, S, 2, 0, 150), sst(101, S, 2, 151, 250), sst(102, S, 2, 251, 1200)]
    assert plan_of(LCS, l1 + l2) is None  # exactly at target (10 * 160 MB)
    l1 = l1_full(11)
    # gen 1 [0..99] overlaps only 100 (1 byte above per byte pushed), as do gens 4..11 with 102;
    # gens 2 and 3 overlap two each. Ties go to the oldest.
    t = plan_of(LCS, l1 + l2)
    assert (t.inputs, t.output_level, t.max_output_bytes, t.reason) == ((1, 100), 2, S, "L1->L2")
    # the cheapest's overlaps are busy (100 also blocks 2): the next cheapest is taken
    t = plan_of(LCS, l1 + l2, compacting={100})
    assert t.inputs == (4, 102)
    # a cheaper younger sstable beats an older one
    l2_big_left = [sst(100, 5 * S, 2, 0, 150)] + l2[1:]
    assert plan_of(LCS, l1 + l2_big_left).inputs == (4, 102)
    # compacting bytes don't count toward the score
    assert plan_of(LCS, l1 + l2, compacting={11}) is None


def test_level_overflow_without_overlap_takes_a_neighbour():
    l1 = l1_full(11)
    t = plan_of(LCS, l1)
    assert (t.inputs, t.output_level) == ((1, 2), 2)
    l1 = l1_full(12)
    t = plan_of(LCS, l1, compacting={2})  # next neighbour busy: none on the left, so the next oldest
    assert t.inputs == (3, 4)
    # an L2 sstable in the gap between the neighbours joins
    gap = [sst(1, S, 1, 0, 10), sst(2, S, 1, 90, 99), sst(60, S, 2, 20, 30)]
    gap += [sst(50, 9 * S, 1, 1000, 1100), sst(61, 50 * S, 2, 1000, 1100)]
    t = plan_of(LCS, gap)
    assert t.inputs == (1, 2, 60)


def test_higher_levels_first_and_l8_never_pushed():
    l1 = l1_full(11)
    l2 = [sst(200 + i, S, 2, 10_000 + i * 100, 10_000 + i * 100 + 99) for i in range(101)]
    t = plan_of(LCS, l1 + l2)
    assert t.reason == "L2->L3" and t.inputs == (200, 201)
    l8 = [sst(900, 10**9 * S, 8, 0, 10)]
    assert plan_of(LCS, l8 + [sst(901, 10**9 * S, 8, 11, 20)]) is None


def test_busy_l0_hull_blocks_overlapping_l0():
    l0 = [sst(g, 50 * MIB, 0, 0, 100) for g in range(1, 5)]
    l0 += [sst(g, 50 * MIB, 0, 200, 300) for g in range(5, 9)]
    # 1 is being compacted: L0 sstables overlapping [0..100] wait; the others may go
    t = plan_of(LCS, l0, compacting={1})
    assert t.inputs == (5, 6, 7, 8) and t.output_level == 1
    # a candidate set whose hull spans the busy range waits entirely
    spanning = l0[:1] + [sst(g, 50 * MIB, 0, -50, -40) for g in (10, 11)]
    spanning += [sst(g, 50 * MIB, 0, 200, 300) for g in (12, 13)]
    assert plan_of(LCS, spanning, compacting={1}) is None


def test_lcs_tombstone_highest_level_first():
    snap = [tomb(1, S, first=0, last=10, level=1), tomb(2, S, first=20, last=30, level=2, droppable=25),
            tomb(3, S, first=40, last=50, level=2, droppable=90)]
    snap = [sst(s.generation, s.size_bytes, lvl, s.first_token, s.last_token, droppable=s.droppable_tombstones)
            for s, lvl in zip(snap, (1, 2, 2))]
    t = plan_of(LCS, snap)
    assert (t.inputs, t.output_level, t.reason, t.max_output_bytes) == ((3,), 2, "tombstone", S)
    assert plan_of(LCS, snap, compacting={3}).inputs == (2,)
    assert plan_of(LCS, snap, compacting={2, 3}).inputs == (1,)


def test_lcs_major():
    snap = [sst(1, S, 0, 0, 10), sst(2, 5 * S, 1, 0, 10), sst(3, 20 * S, 2, 0, 10)]
    t = plan_major(LCS, snap, frozenset())
    assert (t.inputs, t.output_level, t.max_output_bytes, t.reason) == ((1, 2, 3), 2, S, "major")
    assert plan_major(LCS, snap[:2], frozenset()).output_level == 1
    assert plan_major(LCS, snap, frozenset({1})) is None
    assert plan_major(LCS, [sst(1, S, 1)], frozenset()) is None
    assert plan_major(LCS, [], frozenset()) is None


def test_check_level_invariants():
    check_level_invariants(l1_full(3) + [sst(9, S, 0, 0, 1000), sst(10, S, 0, 0, 1000)])
    with pytest.raises(AssertionError, match="overlap"):
        check_level_invariants([sst(1, S, 1, 0, 100), sst(2, S, 1, 100, 200)])
    check_level_invariants([sst(1, S, 1, 0, 100, lk=b"a"), sst(2, S, 1, 100, 200, fk=b"b")])
    with pytest.raises(AssertionError, match="level"):
        check_level_invariants([sst(1, S, 9)])
    with pytest.raises(AssertionError, match="duplicate"):
        check_level_invariants([sst(1), sst(1)])
