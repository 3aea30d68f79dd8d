"""Gossip state: merge is a lattice join; SYN/ACK/ACK2 built from examine() converges."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ring.errors import ProtocolError
from ring.membership import (
    DEAD_STATES,
    MAX_GENERATION_DIFFERENCE,
    ApplicationState,
    EndpointState,
    HeartbeatState,
    Status,
    VersionedValue,
    answer_requests,
    apply_states,
    digest,
    digests,
    digests_from_wire,
    digests_to_wire,
    examine,
    merge,
    parse_status,
    parse_tokens,
    states_newer_than,
    status_value,
    tokens_value,
)

KEYS = st.sampled_from([ApplicationState.STATUS, ApplicationState.LOAD, ApplicationState.SCHEMA,
                        ApplicationState.TOKENS, "X1"])
VALUES = st.sampled_from(["a", "b", "NORMAL,1", ""])


@st.composite
def endpoint_states(draw):
    """Arbitrary states of one endpoint (generations within a year of each other)."""
    gen = draw(st.integers(1, 3))
    app = draw(st.dictionaries(KEYS, st.builds(VersionedValue, VALUES, st.integers(1, 6))))
    return EndpointState(HeartbeatState(gen, draw(st.integers(1, 6))), app)


@settings(max_examples=300, deadline=None)
@given(endpoint_states(), endpoint_states(), endpoint_states())
def test_merge_is_a_join(a, b, c):
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    assert merge(merge(a, b), b) == merge(a, b)
    assert merge(None, a) is a


def test_merge_rules():
    old = EndpointState(HeartbeatState(100, 9), {"DC": VersionedValue("dc1", 3)})
    new = EndpointState(HeartbeatState(101, 1), {})
    assert merge(old, new) is new and merge(new, old) is new  # a newer generation wins wholesale
    a = EndpointState(HeartbeatState(100, 5), {"LOAD": VersionedValue("1", 4), "DC": VersionedValue("d", 1)})
    b = EndpointState(HeartbeatState(100, 7), {"LOAD": VersionedValue("2", 6)})
    assert merge(a, b) == EndpointState(
        HeartbeatState(100, 7), {"LOAD": VersionedValue("2", 6), "DC": VersionedValue("d", 1)})
    assert merge(merge(a, b), a) == merge(a, b)
    # an unbelievable generation is rejected (ahead of the local one, or of now when given)
    far = EndpointState(HeartbeatState(1000 + MAX_GENERATION_DIFFERENCE, 1), {})
    assert merge(old, far) is old
    assert merge(old, far, now_s=200) is old
    assert merge(old, far, now_s=10**10) is far
    assert merge(EndpointState(HeartbeatState(0, 1)), far) is far  # generation 0: no check


def test_states_newer_than_and_digest():
    s = EndpointState(HeartbeatState(7, 3), {"A": VersionedValue("x", 5), "B": VersionedValue("y", 2)})
    assert digest(s) == (7, 5) and s.max_version == 5
    assert states_newer_than(s, 5) is None
    assert states_newer_than(s, 4) == EndpointState(HeartbeatState(7, 3), {"A": VersionedValue("x", 5)})
    assert states_newer_than(s, 2) == EndpointState(HeartbeatState(7, 3), {"A": VersionedValue("x", 5)})
    assert states_newer_than(s, 1) == s
    assert states_newer_than(EndpointState(HeartbeatState(7, 9)), 8) == EndpointState(HeartbeatState(7, 9))
    assert digests({"b": s, "a": s}) == [("a", 7, 5), ("b", 7, 5)]


def test_examine_follows_examine_gossiper():
    mine = {
        "same": EndpointState(HeartbeatState(5, 4)),
        "older_there": EndpointState(HeartbeatState(6, 2), {"A": VersionedValue("v", 1)}),
        "newer_there": EndpointState(HeartbeatState(5, 9)),
        "ahead_here": EndpointState(HeartbeatState(5, 3), {"A": VersionedValue("v", 8), "B": VersionedValue("w", 2)}),
        "behind_here": EndpointState(HeartbeatState(5, 3)),
        "not_mentioned": EndpointState(HeartbeatState(5, 3)),
    }
    syn = [("same", 5, 4), ("older_there", 5, 20), ("newer_there", 6, 1),
           ("ahead_here", 5, 3), ("behind_here", 5, 7), ("unknown", 3, 3)]
    requests, send = examine(mine, syn)
    assert requests == [("newer_there", 6, 0), ("behind_here", 5, 3), ("unknown", 3, 0)]
    assert send == {
        "older_there": mine["older_there"],
        "ahead_here": EndpointState(HeartbeatState(5, 3), {"A": VersionedValue("v", 8)}),
    }
    assert answer_requests(mine, [("same", 5, 3), ("missing", 1, 0)]) == {"same": mine["same"]}


# --- convergence: views that are snapshots of each owner's history ------------------------------

EVENTS = st.lists(st.one_of(st.just(("beat",)), st.just(("restart",)),
                            st.tuples(st.just("set"), KEYS, VALUES)), min_size=1, max_size=12)


def history(events) -> list[EndpointState]:
    """Every state an owner passes through. Versions come from one counter starting at 1 that
    restarts with the process; a restart bumps the generation and republishes nothing."""
    gen, counter = 1000, 1
    state = EndpointState(HeartbeatState(gen, counter))
    out = [state]
    for event in events:
        counter += 1
        if event[0] == "beat":
            state = state.with_heartbeat(HeartbeatState(gen, counter))
        elif event[0] == "restart":
            gen, counter = gen + 1, 1
            state = EndpointState(HeartbeatState(gen, counter))
        else:
            state = state.with_app_state(event[1], event[2], counter)
        out.append(state)
    return out


def gossip(initiator: dict, receiver: dict) -> tuple[dict, dict]:
    """One round: initiator SYN -> receiver ACK -> initiator ACK2 -> receiver."""
    syn = digests_from_wire(msgpack.unpackb(msgpack.packb(digests_to_wire(digests(initiator)))))
    requests, states = examine(receiver, syn)
    wire = {ep: EndpointState.from_wire(msgpack.unpackb(msgpack.packb(s.to_wire())))
            for ep, s in states.items()}
    initiator, _ = apply_states(initiator, wire)
    receiver, _ = apply_states(receiver, answer_requests(initiator, requests))
    return initiator, receiver


@settings(max_examples=200, deadline=None)
@given(st.data(), st.dictionaries(st.sampled_from(["n1", "n2", "n3", "n4"]), EVENTS, min_size=1))
def test_syn_ack_ack2_brings_two_views_into_agreement(data, owners):
    a, b, newest = {}, {}, {}
    for ep, events in owners.items():
        states = history(events)
        ia = data.draw(st.integers(-1, len(states) - 1))
        ib = data.draw(st.integers(-1, len(states) - 1))
        if ia >= 0:
            a[ep] = states[ia]
        if ib >= 0:
            b[ep] = states[ib]
        if max(ia, ib) >= 0:
            newest[ep] = states[max(ia, ib)]
    a, b = gossip(a, b)  # a -> b
    b, a = gossip(b, a)  # b -> a: what a did not mention
    assert a == b == newest
    requests, send = examine(a, digests(b))
    assert requests == [] and send == {}


def test_apply_states_reports_changes_without_mutating():
    s1 = EndpointState(HeartbeatState(1, 1))
    s2 = EndpointState(HeartbeatState(1, 2))
    mine = {"a": s1}
    merged, changed = apply_states(mine, {"a": s2, "b": s1})
    assert merged == {"a": s2, "b": s1} and changed == ["a", "b"] and mine == {"a": s1}
    assert apply_states(merged, {"a": s1})[1] == []


# --- values and wire --------------------------------------------------------------------------


def test_wire_round_trip_is_plain_msgpack():
    s = EndpointState(HeartbeatState(1_700_000_000, 42), {
        ApplicationState.STATUS: VersionedValue(status_value(Status.NORMAL, 5), 40),
        ApplicationState.TOKENS: VersionedValue(tokens_value([3, -1, 2]), 41)})
    raw = msgpack.packb(s.to_wire())
    assert EndpointState.from_wire(msgpack.unpackb(raw)) == s
    assert msgpack.unpackb(raw) == [1_700_000_000, 42, [["STATUS", "NORMAL,5", 40], ["TOKENS", "-1;2;3", 41]]]
    assert parse_tokens(s.get("TOKENS")) == [-1, 2, 3]
    assert parse_status(s.get(ApplicationState.STATUS)) == ("NORMAL", ["5"])
    assert Status.LEFT in DEAD_STATES and Status.NORMAL not in DEAD_STATES
    with pytest.raises(TypeError):
        s.app_states["X"] = VersionedValue("y", 1)  # frozen all the way down


@pytest.mark.parametrize("bad", [None, [1, 2], [1, 2, 3], [1, "2", []], [1, 2, [["K", 3, 1]]],
                                 [1, 2, [["K", "v", True]]], [1.0, 2, []]])
def test_from_wire_rejects_malformed_states(bad):
    with pytest.raises(ProtocolError):
        EndpointState.from_wire(bad)


def test_digests_from_wire_rejects_malformed():
    with pytest.raises(ProtocolError):
        digests_from_wire([["a", 1]])
    with pytest.raises(ProtocolError):
        digests_from_wire({"a": 1})
