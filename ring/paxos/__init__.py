"""Lightweight transactions: Cassandra's Paxos (v1) per (table, partition key), docs/lwt.md.

One concept per file: `ballot` (16-byte, time-ordered, unique per node), `state` (an acceptor's
durable state in `system.paxos`), `acceptor` (the replica's answers: promise, accept, commit),
`conditions` (IF clauses as a pure function of the current row), `proposer` (the coordinator's
state machine: prepare, finish in-progress, repair commits, read, propose, commit).
"""
