"""ring/batchlog.py: the entry format (docs/format.md#batchlog-entry), the batchlog endpoint
choice (Cassandra's rules), and a corrupt entry reported, never replayed nor deleted."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import CorruptionError
from ring import batchlog
from ring.runtime.sim import Simulation

MUTATIONS = st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=40), st.binary(max_size=200)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(MUTATIONS)
def test_entries_round_trip(mutations):
    assert batchlog.decode_entry(batchlog.encode_entry(mutations), "e") == mutations


@settings(max_examples=60, deadline=None)
@given(MUTATIONS.filter(bool), st.data())
def test_any_flipped_or_cut_byte_is_a_corruption_error(mutations, data):
    blob = batchlog.encode_entry(mutations)
    i = data.draw(st.integers(0, len(blob) - 1))
    flipped = blob[:i] + bytes([blob[i] ^ 1 << data.draw(st.integers(0, 7))]) + blob[i + 1:]
    for bad in (flipped, blob[:i]):
        with pytest.raises(CorruptionError) as e:
            batchlog.decode_entry(bad, "system.batches[x].mutations")
        assert "system.batches[x].mutations" in str(e.value)


def test_the_documented_example():
    blob = batchlog.encode_entry([("t1", b"\x00\x01", b"P")])
    assert blob.hex() == "4454424c01" + "00000009" + "01" + "027431" + "020001" + "0150" + "6d247e42"  # crc32 of the 9 body bytes


def alive_all(ep):
    return True


def test_endpoint_choice_follows_cassandra():
    rng = random.Random(1)
    assert batchlog.choose_endpoints("a", "r1", {"r1": ["a"]}, alive_all, rng) == ["a"]   # alone: itself
    assert batchlog.choose_endpoints("a", "r1", {"r1": ["a", "b"]}, alive_all, rng) == ["b"]
    assert batchlog.choose_endpoints("a", "r1", {"r1": ["a", "b"]}, lambda ep: ep != "b", rng) == []
    three = batchlog.choose_endpoints("a", "r1", {"r1": ["a", "b", "c"]}, alive_all, rng)
    assert sorted(three) == ["b", "c"]
    for _ in range(20):         # two other racks: one of each; never the local rack
        chosen = batchlog.choose_endpoints("a", "r1", {"r1": ["a", "b", "c"], "r2": ["d", "e"], "r3": ["f"]},
                                           alive_all, rng)
        assert len(chosen) == 2 and {"d", "e"} & set(chosen) and "f" in chosen
    # one other rack with a single live node: it, and one of our rack
    chosen = batchlog.choose_endpoints("a", "r1", {"r1": ["a", "b", "c"], "r2": ["d"]}, alive_all, rng)
    assert len(chosen) == 2 and "d" in chosen and set(chosen) - {"d"} <= {"b", "c"}
    assert batchlog.level_for(["b"]).name == "ONE" and batchlog.level_for(["b", "c"]).name == "TWO"


def test_a_corrupt_entry_is_reported_and_kept():
    sim = Simulation(4, 1, node_options={"write_request_timeout_ms": 100, "batchlog_replay_interval_ms": 100})
    try:
        sn = sim.nodes["n1"]
        bad = batchlog.encode_entry([("nope", b"k", b"p")])[:-1] + b"\x00"
        sn.store.insert(batchlog.SYSTEM, batchlog.TABLE, {"id": b"\x01" * 16, "written_at": 1, "mutations": bad})
        sim.run_for(1000)
        assert sn.node.stats.get("batchlog_corrupt_entries") == 1
        assert "checksum" in str(sn.node.batchlog.corrupt[b"\x01" * 16])
        assert len(list(sn.store.scan_all(batchlog.SYSTEM, batchlog.TABLE))) == 1
    finally:
        sim.close()
