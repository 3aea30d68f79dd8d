"""Consistency levels: Cassandra's block_for table, and properties of the pure tallies."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ring.consistency import (
    CL,
    ConsistencyLevel,
    assure_sufficient_live,
    block_for,
    block_for_per_dc,
    counts_towards,
    is_failed,
    is_sufficient,
    tally,
    validate_for_read,
    validate_for_write,
)
from ring.errors import InvalidRequest, ProtocolError, UnavailableError

ONE_DC = {"dc1": 3}
TWO_DCS = {"dc1": 3, "dc2": 2}

BLOCK_FOR = [
    # level,            1 DC (RF 3), 2 DCs (3 + 2) at dc1, 2 DCs at dc2
    (CL.ANY,             1, 1, 1),
    (CL.ONE,             1, 1, 1),
    (CL.TWO,             2, 2, 2),
    (CL.THREE,           3, 3, 3),
    (CL.QUORUM,          2, 3, 3),
    (CL.ALL,             3, 5, 5),
    (CL.LOCAL_QUORUM,    2, 2, 2),
    (CL.EACH_QUORUM,     2, 4, 4),
    (CL.LOCAL_ONE,       1, 1, 1),
]


@pytest.mark.parametrize("level, one_dc, two_dcs_at_dc1, two_dcs_at_dc2", BLOCK_FOR)
def test_block_for_table(level, one_dc, two_dcs_at_dc1, two_dcs_at_dc2):
    assert block_for(level, ONE_DC, "dc1") == one_dc
    assert block_for(level, TWO_DCS, "dc1") == two_dcs_at_dc1
    assert block_for(level, TWO_DCS, "dc2") == two_dcs_at_dc2


def test_block_for_details():
    assert block_for(CL.QUORUM, {"dc1": 5}, "dc1") == 3
    assert block_for(CL.QUORUM, {"dc1": 3, "dc2": 3}, "dc1") == 4
    assert block_for(CL.LOCAL_QUORUM, {"dc1": 5, "dc2": 1}, "dc2") == 1
    assert block_for(CL.LOCAL_QUORUM, TWO_DCS, "elsewhere") == 1  # RF 0 here: never available
    assert block_for(CL.EACH_QUORUM, {"dc1": 3, "dc2": 0}, "dc1") == 2  # RF-0 DCs are ignored
    assert block_for_per_dc(CL.EACH_QUORUM, {"dc1": 3, "dc2": 5}, "dc1") == {"dc1": 2, "dc2": 3}
    # writes add pending replicas: LOCAL_* only local ones, ANY none
    pending = {"dc1": 1, "dc2": 1}
    assert block_for(CL.QUORUM, TWO_DCS, "dc1", pending_by_dc=pending) == 5
    assert block_for(CL.LOCAL_QUORUM, TWO_DCS, "dc1", pending_by_dc={"dc2": 2}) == 2
    assert block_for(CL.LOCAL_ONE, TWO_DCS, "dc1", pending_by_dc=pending) == 2
    assert block_for(CL.ANY, TWO_DCS, "dc1", pending_by_dc=pending) == 1
    assert block_for(CL.EACH_QUORUM, TWO_DCS, "dc1", pending_by_dc={"dc2": 1}) == 5
    assert block_for_per_dc(CL.EACH_QUORUM, TWO_DCS, "dc1", pending_by_dc={"dc2": 1}) == \
        {"dc1": 2, "dc2": 3}


def test_wire_values_never_change():
    assert {level.name: level.to_wire() for level in CL} == {
        "ANY": 0, "ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": 4, "ALL": 5,
        "LOCAL_QUORUM": 6, "EACH_QUORUM": 7, "SERIAL": 8, "LOCAL_SERIAL": 9, "LOCAL_ONE": 10}
    assert all(ConsistencyLevel.from_wire(level.value) is level for level in CL)
    for bad in (11, -1, "4", 4.0, True):
        with pytest.raises(ProtocolError):
            ConsistencyLevel.from_wire(bad)
    assert ConsistencyLevel.parse(" local_quorum") is CL.LOCAL_QUORUM
    with pytest.raises(InvalidRequest, match="use one of ANY, ONE"):
        ConsistencyLevel.parse("MOST")


def test_reads_reject_any_and_counters_reject_any():
    with pytest.raises(InvalidRequest, match="only supported for writes"):
        validate_for_read(CL.ANY)
    validate_for_read(CL.ONE)
    validate_for_write(CL.ANY)
    with pytest.raises(InvalidRequest, match="counter"):
        validate_for_write(CL.ANY, counter=True)


def test_counts_towards():
    assert counts_towards(CL.LOCAL_QUORUM, "dc1", "dc1")
    assert not counts_towards(CL.LOCAL_QUORUM, "dc2", "dc1")
    assert not counts_towards(CL.LOCAL_ONE, "dc2", "dc1")
    assert all(counts_towards(level, "dc2", "dc1") for level in CL if level.name[:6] != "LOCAL_")


def test_assure_sufficient_live_raises_before_sending():
    where = {"a": "dc1", "b": "dc1", "c": "dc1", "d": "dc2", "e": "dc2"}
    assure_sufficient_live(CL.QUORUM, ["a", "d", "e"], where, TWO_DCS, "dc1")
    with pytest.raises(UnavailableError) as err:
        assure_sufficient_live(CL.QUORUM, ["a", "d"], where, TWO_DCS, "dc1")
    assert (err.value.required, err.value.alive) == (3, 2)
    assert "Cannot achieve consistency level QUORUM" in str(err.value)
    assert "nothing was sent to any replica" in str(err.value) and not err.value.retryable
    with pytest.raises(UnavailableError) as err:
        assure_sufficient_live(CL.LOCAL_QUORUM, ["a", "d", "e"], where, TWO_DCS, "dc1")
    assert (err.value.required, err.value.alive) == (2, 1)
    with pytest.raises(UnavailableError) as err:
        assure_sufficient_live(CL.EACH_QUORUM, ["a", "b", "c", "d"], where, TWO_DCS, "dc1")
    assert (err.value.required, err.value.alive, err.value.dc) == (2, 1, "dc2")
    assure_sufficient_live(CL.ANY, [], where, TWO_DCS, "dc1")  # a hint will do


# --- properties -------------------------------------------------------------------------------

DCS = ["dc1", "dc2", "dc3"]
LEVELS = st.sampled_from(list(CL))
RFS = st.dictionaries(st.sampled_from(DCS), st.integers(0, 5), min_size=1)


@st.composite
def counts_within(draw, rfs):
    return {dc: draw(st.integers(0, rf)) for dc, rf in rfs.items()}


@settings(max_examples=300, deadline=None)
@given(st.data(), LEVELS, RFS, st.sampled_from(DCS))
def test_tally_properties(data, level, rfs, local):
    acks = data.draw(counts_within(rfs))
    more = {dc: n + data.draw(st.integers(0, rfs[dc] - n)) for dc, n in acks.items()}
    done = tally(level, acks, rfs, local)
    # monotone: more acknowledgements never undo success
    if done:
        assert tally(level, more, rfs, local)
    # without hints, a tally is exactly the live-replica check
    if level is not CL.ANY:
        assert done == is_sufficient(level, acks, rfs, local)
        assert tally(level, acks, rfs, local, hints=5) == done  # hints count only for ANY
    else:
        assert tally(level, {}, rfs, local, hints=1) and not tally(level, {}, rfs, local)
    # LOCAL_* ignore answers from other DCs
    if level in (CL.LOCAL_ONE, CL.LOCAL_QUORUM):
        assert done == tally(level, {local: acks.get(local, 0)}, rfs, local)
    # once a request has failed, even every remaining replica answering cannot complete it
    failures = {dc: rfs[dc] - n for dc, n in acks.items()}
    assert is_failed(level, failures, rfs, rfs, local) == (
        level is not CL.ANY and not tally(level, acks, rfs, local))


@settings(max_examples=200, deadline=None)
@given(LEVELS, RFS, st.sampled_from(DCS))
def test_quorums_intersect(level, rfs, local):
    """Two sets of replicas that each satisfy a quorum level share a replica (in the DC(s) the
    level counts), which is why QUORUM writes + QUORUM reads see the latest write."""
    total = sum(rfs.values())
    if level is CL.QUORUM and total:
        assert 2 * block_for(level, rfs, local) > total
    if level is CL.LOCAL_QUORUM and rfs.get(local, 0):
        assert 2 * block_for(level, rfs, local) > rfs[local]
    if level is CL.EACH_QUORUM:
        for dc, need in block_for_per_dc(level, rfs, local).items():
            assert 2 * need > rfs[dc]


@settings(max_examples=200, deadline=None)
@given(st.data(), LEVELS, RFS, st.sampled_from(DCS))
def test_assure_agrees_with_is_sufficient(data, level, rfs, local):
    live = data.draw(counts_within(rfs))
    eps = [f"{dc}-{i}" for dc, n in live.items() for i in range(n)]
    where = {ep: ep.split("-")[0] for ep in eps}
    if is_sufficient(level, live, rfs, local):
        assure_sufficient_live(level, eps, where, rfs, local)
    else:
        with pytest.raises(UnavailableError) as err:
            assure_sufficient_live(level, eps, where, rfs, local)
        assert err.value.alive < err.value.required


def test_serial_levels_wait_for_a_quorum_and_refuse_plain_writes_and_range_reads():
    from ring.consistency import validate_for_range_read, validate_for_write
    assert block_for(CL.SERIAL, TWO_DCS, "dc1") == block_for(CL.QUORUM, TWO_DCS, "dc1")
    assert block_for(CL.LOCAL_SERIAL, TWO_DCS, "dc1") == block_for(CL.LOCAL_QUORUM, TWO_DCS, "dc1")
    validate_for_read(CL.SERIAL)
    for level in (CL.SERIAL, CL.LOCAL_SERIAL):
        with pytest.raises(InvalidRequest, match="conditional updates for serializable writes"):
            validate_for_write(level)
        with pytest.raises(InvalidRequest, match="one partition at a time"):
            validate_for_range_read(level)
