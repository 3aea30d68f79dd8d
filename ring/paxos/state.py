"""An acceptor's Paxos state per (table id, partition key), kept in the local table `system.paxos`.

Cassandra's v1 `system.paxos` (row_key blob, cf_id, in_progress_ballot, proposal_ballot, proposal,
most_recent_commit_at, most_recent_commit), with each (ballot, update) pair in one blob
`ballot(16) || update` so a row is never half of two proposals (docs/format.md#system-paxos):

    in_progress_ballot  blob  the promised ballot (16 bytes)
    proposal            blob  the accepted proposal: ballot || encoded partition update
    most_recent_commit  blob  the newest committed proposal: ballot || encoded partition update

Every cell is written with the timestamp `ballot.micros` of the ballot it records (ties: the
greater blob, i.e. the greater ballot, wins), so on disk a later ballot supersedes an earlier one
whatever order the writes land in, and a restarted replica keeps its promises. Cells carry a TTL
of max(3 h, the table's gc_grace_seconds), Cassandra's paxos TTL: stale state expires.

A commit does not delete the accepted proposal (Cassandra v1 does, with a tombstone at the
commit's micros, which two ballots with equal micros could get wrong): the proposer ignores a
proposal that is not newer than the most recent commit anyway.

Invariant: the state goes through the store's commit log like any write (one record with the
user-table update on commit), so it is exactly as durable as the acknowledged data.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import mutation as mut
from engine.errors import CorruptionError
from ring.paxos import ballot as bl

TABLE = "paxos"
MIN_TTL_S = 3 * 3600


@dataclass(frozen=True, slots=True)
class PaxosState:
    promised: bytes = bl.NONE            # the highest ballot promised (or accepted)
    accepted: bytes = bl.NONE            # the ballot of the accepted proposal, NONE if none
    accepted_update: bytes | None = None
    committed: bytes = bl.NONE           # the ballot of the most recent commit, NONE if none
    committed_update: bytes | None = None


def create_table(store) -> None:
    store.create_keyspace("system", {"class": "LocalStrategy"}, if_not_exists=True)  # node-local, like the rest of system
    store.create_table("system", TABLE, {"row_key": "blob", "cf_id": "text", "in_progress_ballot": "blob",
                                         "proposal": "blob", "most_recent_commit": "blob"},
                       primary_key=["row_key", "cf_id"], if_not_exists=True)


def _split(blob: bytes | None, where: str) -> tuple[bytes, bytes | None]:
    if blob is None:
        return bl.NONE, None
    if len(blob) < bl.SIZE:
        raise CorruptionError(where, 0, f"paxos state blob of {len(blob)} bytes is shorter than a ballot")
    return blob[:bl.SIZE], blob[bl.SIZE:]


def load(store, table_id: str, key: bytes) -> PaxosState:
    row = store.get("system", TABLE, {"row_key": key, "cf_id": table_id})
    if row is None:
        return PaxosState()
    where = f"system.paxos[{table_id}:{key.hex()[:32]}]"
    promised = row.get("in_progress_ballot") or bl.NONE
    accepted, accepted_update = _split(row.get("proposal"), where)
    committed, committed_update = _split(row.get("most_recent_commit"), where)
    return PaxosState(max(promised, accepted), accepted, accepted_update, committed, committed_update)


def ttl_for(table) -> int:
    return max(MIN_TTL_S, int(table.option("gc_grace_seconds") or 0))


def record(store, table, key: bytes, ballot: bytes, now_s: int, *, promise: bool = False,
           proposal: bytes | None = None, commit: bytes | None = None):
    """The system.paxos mutation (table, key, payload) recording `ballot` as a promise, an
    accepted `proposal` update or a `commit` update, stamped with the ballot's micros."""
    paxos = store.table("system", TABLE)
    row = {"row_key": key, "cf_id": table.id}
    if promise or proposal is not None:
        row["in_progress_ballot"] = ballot
    if proposal is not None:
        row["proposal"] = ballot + proposal
    if commit is not None:
        row["most_recent_commit"] = ballot + commit
    pkey, _, payload = mut.build_insert_encoded(paxos, row, bl.micros(ballot), now_s, ttl_for(table),
                                                store.options["max_value_bytes"] + bl.SIZE)
    return paxos, pkey, payload
