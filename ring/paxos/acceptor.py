"""The acceptor: a replica's answers to Prepare, Propose and Commit (Cassandra's PaxosState).

Rule: decisions are pure (`promise`, `accept`); `answer_*` load the state from `system.paxos`,
decide, and return the response with the mutation that records the decision, applied through the
store's replica API; like replica.answer_mutation, they return the commit-log position the
response must wait for (batch and group sync), so a promise or an accept is never acknowledged
before it is as durable as a write. A request the replica cannot serve becomes the response's
`error`, never an exception.

Rules (Paxos): promise a ballot only if it is greater than every ballot promised; accept a
proposal only if its ballot is at least the promised one (accepting promises it too); a commit
applies its update whatever its ballot (the cells carry the ballot's micros: last-write-wins
keeps the newest) and becomes the most recent commit only if it is newer. The prepare answer
carries the accepted proposal, the most recent commit and the current data of the requested
slice, read at the moment of the promise (the quorum read rides on the prepare).
"""
from __future__ import annotations

from engine.errors import EngineError, InvalidRequest
from engine.partition import slice_partition
from ring.coordinator import canonical_payload
from ring.faults import Faults
from ring.messages import (CommitRequest, MutationResponse, PrepareRequest, PrepareResponse, ProposeRequest,
                           ProposeResponse)
from ring.paxos import state as ps
from ring.replica import table_by_id


def promise(st: ps.PaxosState, ballot: bytes) -> bool:
    return ballot > st.promised


def accept(st: ps.PaxosState, ballot: bytes, faults: Faults) -> bool:
    if faults.paxos_accept_below_promise:  # canary: accept whatever was promised since
        return True
    return ballot >= st.promised


def _with_ballot(ballot: bytes, update: bytes | None) -> bytes:
    return ballot + update if ballot and update is not None else b""


def _now_s(store) -> int:
    return store.clock.now_s()


def answer_prepare(store, msg: PrepareRequest, faults: Faults):
    try:
        table = table_by_id(store, msg.table_id)
        st = ps.load(store, msg.table_id, msg.key)
        ok = promise(st, msg.ballot)
        position = None
        if ok:
            position = store.apply_mutations([ps.record(store, table, msg.key, msg.ballot, _now_s(store),
                                                        promise=True)])
        p = store.read_partition(table, msg.key)
        data = canonical_payload(slice_partition(p, msg.lo, msg.hi)) if p is not None else None
        response = PrepareResponse(msg.id, ok, msg.ballot if ok else st.promised,
                                   _with_ballot(st.accepted, st.accepted_update),
                                   _with_ballot(st.committed, st.committed_update), data, None)
        return response, position
    except (InvalidRequest, EngineError, ValueError) as e:
        return PrepareResponse(msg.id, False, b"", b"", b"", None, f"{type(e).__name__}: {e}"), None


def answer_propose(store, msg: ProposeRequest, faults: Faults):
    try:
        table = table_by_id(store, msg.table_id)
        st = ps.load(store, msg.table_id, msg.key)
        if not accept(st, msg.ballot, faults):
            return ProposeResponse(msg.id, False, st.promised, None), None
        position = store.apply_mutations([ps.record(store, table, msg.key, msg.ballot, _now_s(store),
                                                    proposal=msg.update)])
        return ProposeResponse(msg.id, True, msg.ballot, None), position
    except (InvalidRequest, EngineError, ValueError) as e:
        return ProposeResponse(msg.id, False, b"", f"{type(e).__name__}: {e}"), None


def answer_commit(store, msg: CommitRequest, faults: Faults):
    """Apply the committed update and record it, in one commit-log record."""
    try:
        table = table_by_id(store, msg.table_id)
        st = ps.load(store, msg.table_id, msg.key)
        mutations = [(table, msg.key, msg.update)]
        if msg.ballot > st.committed:
            mutations.append(ps.record(store, table, msg.key, msg.ballot, _now_s(store), commit=msg.update))
        return MutationResponse(msg.id, None), store.apply_mutations(mutations)
    except (InvalidRequest, EngineError, ValueError) as e:
        return MutationResponse(msg.id, f"{type(e).__name__}: {e}"), None


ANSWERS = {PrepareRequest: answer_prepare, ProposeRequest: answer_propose, CommitRequest: answer_commit}
